package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestChatPostsToCentral runs `dialoq central` and `dialoq chat` with CENTRAL_URL
// pointing at it: the submission arrives over HTTP and shows up in the export.
func TestChatPostsToCentral(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	t.Setenv("DIALOQ_DATA", t.TempDir())
	t.Setenv("DATABASE_URL", "")
	t.Setenv("CENTRAL_TOKENS", "tok-a,tok-b")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"central", "--listen", addr}, strings.NewReader(""), io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("central exited %d", code)
		}
	}()
	base := "http://" + addr
	waitReady(t, base+"/readyz")

	t.Setenv("CENTRAL_URL", base)
	t.Setenv("CENTRAL_TOKEN", "tok-b")
	var stdin strings.Builder
	for _, l := range csoScript("Azərbaycan") {
		stdin.WriteString(l.text + "\n")
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"chat", "--flow", "cso", "--lang", "az"}, strings.NewReader(stdin.String()), &stdout, &stderr); code != 0 {
		t.Fatalf("chat exited %d\n%s\n%s", code, tail(stdout.String(), 1000), stderr.String())
	}

	req, _ := http.NewRequest("GET", base+"/v1/exports/cso.jsonl", nil)
	req.Header.Set("Authorization", "Bearer tok-a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("export: %d %s", resp.StatusCode, body)
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"lang":"az"`) {
		t.Errorf("export holds %d lines, want the one submission in az:\n%s", len(lines), body)
	}

	// Without a token the API refuses.
	resp, err = http.Get(base + "/v1/exports/cso.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: status %d, want 401", resp.StatusCode)
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}

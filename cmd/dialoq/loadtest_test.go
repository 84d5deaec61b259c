package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/dialoq/dialoq/storage/redisstate/redistest"
)

// The command line runs a small load end to end and ends on the machine-readable
// line, which says the run was clean.
func TestLoadtestCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	code := runLoadtest(context.Background(), []string{
		"--users", "5", "--think", "0", "--ramp", "100ms", "--quiet",
		"--redis", redistest.URL(), "--dir", t.TempDir(),
	}, &out, &errOut)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if code != 0 || !strings.Contains(last, " ok=true") || !strings.Contains(last, "stored=5 ") {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
}

func TestLoadtestUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := runLoadtest(context.Background(), []string{"--think", "fast"}, &out, &errOut); code != 2 {
		t.Fatalf("exit %d for a bad flag, want 2: %s", code, errOut.String())
	}
	if code := runLoadtest(context.Background(), []string{"--mode", "polling", "--replicas", "2"}, &out, &errOut); code != 2 {
		t.Fatalf("exit %d for polling replicas, want 2: %s", code, errOut.String())
	}
}

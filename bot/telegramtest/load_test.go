package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// loadClient reuses connections the way a tuned production client would;
// with the default transport thousands of calls would exhaust local ports.
func loadClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}
}

func postJSON(c *http.Client, url string, body any) (int, error) {
	b, _ := json.Marshal(body)
	resp, err := c.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestBroadcastToManyUsers(t *testing.T) {
	users := 10000
	if testing.Short() {
		users = 1000
	}
	s := Start(t, Options{CallLogSize: -1})
	for i := range users {
		s.AddUser(User{ID: int64(100000 + i), FirstName: "U"})
	}
	for i := 0; i < users; i += 97 {
		s.Block(int64(100000 + i))
	}
	client := loadClient()
	var wg sync.WaitGroup
	var forbidden, failed atomic.Int64
	ids := make(chan int64)
	for range 32 {
		wg.Go(func() {
			for id := range ids {
				status, err := postJSON(client, s.MethodURL("sendMessage"), map[string]any{"chat_id": id, "text": "📣 New survey is open"})
				switch {
				case err != nil:
					t.Error(err)
					failed.Add(1)
				case status == 403:
					forbidden.Add(1)
				case status != 200:
					failed.Add(1)
				}
			}
		})
	}
	for i := range users {
		ids <- int64(100000 + i)
	}
	close(ids)
	wg.Wait()
	wantBlocked := int64((users + 96) / 97)
	if forbidden.Load() != wantBlocked || failed.Load() != 0 {
		t.Fatalf("forbidden %d (want %d), failed %d", forbidden.Load(), wantBlocked, failed.Load())
	}
	if st := s.Stats(); st.Calls["sendMessage"] != users || st.Statuses[200] != users-int(wantBlocked) {
		t.Fatalf("stats = %+v", st)
	}
}

// TestManyUsersThroughWebhook has 1000 users talk to a bot behind a webhook
// at once; the "bot" replies to every update, and every user must get
// exactly their replies, in order.
func TestManyUsersThroughWebhook(t *testing.T) {
	users, rounds := 1000, 3
	if testing.Short() {
		users = 200
	}
	s := Start(t, Options{CallLogSize: -1})
	client := loadClient()
	hook := startReceiver(t, &receiver{reply: func(u wireUpdate) (string, string) {
		// The bot calls the API from its handler, as dialoq will.
		postJSON(client, s.MethodURL("sendMessage"), map[string]any{"chat_id": u.Message.Chat.ID, "text": "got " + u.Message.Text})
		return "", ""
	}})
	callJSON(t, s, "setWebhook", map[string]any{"url": hook, "max_connections": 40})
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var wg sync.WaitGroup
	for i := range users {
		wg.Go(func() {
			u := User{ID: int64(200000 + i), FirstName: "U"}
			for r := range rounds {
				s.SendText(u, fmt.Sprint(r))
				ms, err := s.WaitMessages(ctx, u.ID, HasMessages(r+1))
				if err != nil {
					t.Error(err)
					cancel()
					return
				}
				if ms[r].Text != fmt.Sprint("got ", r) || ms[r].AfterUpdateID == 0 {
					t.Errorf("user %d round %d: %+v", u.ID, r, ms[r])
				}
			}
		})
	}
	wg.Wait()
	// Replies are sent from inside the webhook handler, so the last
	// deliveries complete just after the users have seen them.
	if err := s.WaitFor(testCtx(t), func() bool { return s.Stats().Delivered == users*rounds }); err != nil {
		t.Fatalf("%v: %+v", err, s.Stats())
	}
	if st := s.Stats(); st.Pending != 0 || st.Calls["sendMessage"] != users*rounds {
		t.Fatalf("stats = %+v", st)
	}
}

func BenchmarkSendMessage(b *testing.B) {
	s := New(Options{CallLogSize: -1})
	defer s.Close()
	for i := range 1000 {
		s.AddUser(User{ID: int64(1 + i), FirstName: "U"})
	}
	client := loadClient()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := n.Add(1)%1000 + 1
			if status, err := postJSON(client, s.MethodURL("sendMessage"), map[string]any{"chat_id": id, "text": "hi <b>there</b>", "parse_mode": "HTML"}); err != nil || status != 200 {
				b.Fatal(status, err)
			}
		}
	})
}

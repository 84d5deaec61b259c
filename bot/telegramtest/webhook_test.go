package telegramtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// receiver is a bot's webhook endpoint for tests: it records accepted
// updates and can be told to fail.
type receiver struct {
	mu       sync.Mutex
	accepted []wireUpdate
	secrets  []string
	fail     func(n int, u wireUpdate) int // status to answer; 0 = 200
	reply    func(u wireUpdate) (ctype, body string)
	calls    int
	inFlight atomic.Int32
	maxIn    atomic.Int32
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := rc.inFlight.Add(1)
	defer rc.inFlight.Add(-1)
	for {
		m := rc.maxIn.Load()
		if n <= m || rc.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	var u wireUpdate
	b, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(b, &u); err != nil || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad update", 400)
		return
	}
	rc.mu.Lock()
	rc.calls++
	status := 0
	if rc.fail != nil {
		status = rc.fail(rc.calls, u)
	}
	if status == 0 {
		rc.accepted = append(rc.accepted, u)
		rc.secrets = append(rc.secrets, r.Header.Get("X-Telegram-Bot-Api-Secret-Token"))
	}
	reply := rc.reply
	rc.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	if reply != nil {
		ct, body := reply(u)
		w.Header().Set("Content-Type", ct)
		io.WriteString(w, body)
	}
}

func (rc *receiver) acceptedIDs() []int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	ids := make([]int, len(rc.accepted))
	for i, u := range rc.accepted {
		ids[i] = u.UpdateID
	}
	return ids
}

func startReceiver(t *testing.T, rc *receiver) string {
	hs := httptest.NewServer(rc)
	t.Cleanup(hs.Close)
	return hs.URL + "/hook"
}

func TestWebhookDeliveryRetryAndSecret(t *testing.T) {
	s := Start(t, Options{})
	ctx := testCtx(t)
	rc := &receiver{fail: func(n int, _ wireUpdate) int {
		if n <= 2 {
			return 500
		}
		return 0
	}}
	hook := startReceiver(t, rc)
	before := s.SendText(alice, "queued before setWebhook")

	for _, tc := range []struct{ name, secret, desc string }{
		{"bad charset", "sp ace", "Bad Request: secret token contains unallowed characters"},
		{"too long", strings.Repeat("a", 257), "Bad Request: secret token contains unallowed characters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, callJSON(t, s, "setWebhook", map[string]any{"url": hook, "secret_token": tc.secret}), 400, tc.desc)
		})
	}
	wantError(t, callJSON(t, s, "setWebhook", map[string]any{"url": "ftp://x.org/h"}), 400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")

	r := callJSON(t, s, "setWebhook", map[string]any{"url": hook, "secret_token": "s3cr3t_-X", "max_connections": 5})
	if !r.OK || r.Description != "Webhook was set" {
		t.Fatalf("setWebhook: %+v", r)
	}
	if r := callJSON(t, s, "setWebhook", map[string]any{"url": hook, "secret_token": "s3cr3t_-X", "max_connections": 5}); r.Description != "Webhook is already set" {
		t.Fatalf("repeat setWebhook: %+v", r)
	}
	after := s.SendText(alice, "sent after setWebhook")
	if err := s.WaitFor(ctx, func() bool { return len(rc.acceptedIDs()) == 2 }); err != nil {
		t.Fatal(err)
	}
	if ids := rc.acceptedIDs(); ids[0] != before || ids[1] != after {
		t.Fatalf("order: %v", ids)
	}
	rc.mu.Lock()
	if rc.secrets[0] != "s3cr3t_-X" || rc.accepted[1].Message.Text != "sent after setWebhook" {
		t.Fatalf("secret %q, update %+v", rc.secrets[0], rc.accepted[1])
	}
	rc.mu.Unlock()

	// The receiver has the update before the server records the attempt's status.
	if err := s.WaitFor(ctx, func() bool { return len(s.Deliveries()) >= 4 }); err != nil {
		t.Fatal(err)
	}
	ds := s.Deliveries()
	if len(ds) != 4 || ds[0].Status != 500 || ds[1].Status != 500 || ds[2].Status != 200 || ds[2].Attempt != 3 || ds[2].UpdateID != before {
		t.Fatalf("deliveries = %+v", ds)
	}
	wantError(t, callJSON(t, s, "getUpdates", nil), 409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")

	var info apiWebhookInfo
	callJSON(t, s, "getWebhookInfo", nil).decode(t, &info)
	if info.URL != hook || info.PendingUpdateCount != 0 || info.MaxConnections != 5 || info.LastErrorMessage != "Wrong response from the webhook: 500 Internal Server Error" || info.LastErrorDate == 0 {
		t.Fatalf("info = %+v", info)
	}
	if r := callJSON(t, s, "deleteWebhook", nil); r.Description != "Webhook was deleted" {
		t.Fatalf("deleteWebhook: %+v", r)
	}
	if r := callJSON(t, s, "deleteWebhook", nil); r.Description != "Webhook is already deleted" {
		t.Fatalf("second deleteWebhook: %+v", r)
	}
	var ups []wireUpdate
	callJSON(t, s, "getUpdates", nil).decode(t, &ups)
	if len(ups) != 0 {
		t.Fatalf("delivered updates came back: %+v", ups)
	}
}

func TestWebhookKeepsUndeliveredOnDelete(t *testing.T) {
	s := Start(t, Options{})
	ctx := testCtx(t)
	rc := &receiver{fail: func(int, wireUpdate) int { return 503 }}
	hook := startReceiver(t, rc)
	callJSON(t, s, "setWebhook", map[string]any{"url": hook})
	id := s.SendText(alice, "stuck")
	if err := s.WaitFor(ctx, func() bool { return len(s.Deliveries()) >= 3 }); err != nil {
		t.Fatal(err)
	}
	callJSON(t, s, "deleteWebhook", nil)
	var ups []wireUpdate
	callJSON(t, s, "getUpdates", nil).decode(t, &ups)
	if len(ups) != 1 || ups[0].UpdateID != id {
		t.Fatalf("undelivered update lost: %+v", ups)
	}
	// drop_pending_updates discards it.
	callJSON(t, s, "setWebhook", map[string]any{"url": hook, "drop_pending_updates": true})
	callJSON(t, s, "deleteWebhook", nil)
	callJSON(t, s, "getUpdates", nil).decode(t, &ups)
	if len(ups) != 0 {
		t.Fatalf("drop_pending_updates kept %+v", ups)
	}
}

func TestWebhookOrderPerChatUnderFailures(t *testing.T) {
	s := Start(t, Options{})
	ctx := testCtx(t)
	const chats, perChat, maxConn = 30, 10, 8
	rc := &receiver{fail: func(n int, _ wireUpdate) int {
		if n%7 == 0 {
			return 502
		}
		return 0
	}}
	hook := startReceiver(t, rc)
	callJSON(t, s, "setWebhook", map[string]any{"url": hook, "max_connections": maxConn})
	var wg sync.WaitGroup
	for c := range chats {
		wg.Go(func() {
			u := User{ID: int64(7000 + c), FirstName: "U"}
			for i := range perChat {
				s.SendText(u, fmt.Sprint(i))
			}
		})
	}
	wg.Wait()
	if err := s.WaitFor(ctx, func() bool { return len(rc.acceptedIDs()) == chats*perChat }); err != nil {
		t.Fatalf("%v: delivered %d", err, len(rc.acceptedIDs()))
	}
	// The server counts a delivery once the receiver's answer is back.
	if err := s.WaitFor(ctx, func() bool { return s.Stats().Delivered == chats*perChat }); err != nil {
		t.Fatalf("%v: stats %+v", err, s.Stats())
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	next := map[int64]int{}
	for _, u := range rc.accepted {
		chat := u.Message.Chat.ID
		if u.Message.Text != fmt.Sprint(next[chat]) {
			t.Fatalf("chat %d: got %q, want %d", chat, u.Message.Text, next[chat])
		}
		next[chat]++
	}
	if m := rc.maxIn.Load(); m > maxConn {
		t.Fatalf("%d concurrent deliveries, max_connections %d", m, maxConn)
	}
	if st := s.Stats(); st.Delivered != chats*perChat || st.Pending != 0 {
		t.Fatalf("stats = %+v", st)
	}
}

func TestDeliverTwice(t *testing.T) {
	s := Start(t, Options{DeliverTwice: true})
	ctx := testCtx(t)
	rc := &receiver{}
	callJSON(t, s, "setWebhook", map[string]any{"url": startReceiver(t, rc)})
	a := s.SendText(alice, "one")
	b := s.SendText(alice, "two")
	if err := s.WaitFor(ctx, func() bool { return len(rc.acceptedIDs()) == 4 }); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rc.acceptedIDs()); got != fmt.Sprint([]int{a, a, b, b}) {
		t.Fatalf("deliveries %s", got)
	}
	if st := s.Stats(); st.Delivered != 2 {
		t.Fatalf("Delivered = %d", st.Delivered)
	}
}

func TestWebhookReplyMethod(t *testing.T) {
	s := Start(t, Options{})
	ctx := testCtx(t)
	rc := &receiver{reply: func(u wireUpdate) (string, string) {
		if u.Message.Text == "form" {
			return "application/x-www-form-urlencoded", fmt.Sprintf("method=sendMessage&chat_id=%d&text=pong+form", u.Message.Chat.ID)
		}
		return "application/json", fmt.Sprintf(`{"method":"sendMessage","chat_id":%d,"text":"pong json"}`, u.Message.Chat.ID)
	}}
	callJSON(t, s, "setWebhook", map[string]any{"url": startReceiver(t, rc)})
	s.SendText(alice, "json")
	s.SendText(alice, "form")
	if _, err := s.WaitMessages(ctx, alice.ID, HasMessages(2)); err != nil {
		t.Fatal(err)
	}
	if ms := s.Messages(alice.ID); ms[0].Text != "pong json" || ms[1].Text != "pong form" {
		t.Fatalf("messages = %+v", ms)
	}
}

package bot_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dialoq/dialoq/bot"
	"github.com/dialoq/dialoq/bot/telegramtest"
	"github.com/dialoq/dialoq/flows"
)

// 100 users answer at the same time through two replicas behind one webhook URL,
// sharing Redis; each user came by a deep link with their own code. Every
// submission arrives once, complete, with exactly the answers its user gave.
func TestManyUsersTwoReplicas(t *testing.T) {
	const users = 100
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 120*time.Second)
	var backends []string
	for range 2 {
		// Registered once below, pointing at the load balancer.
		r := h.run(h.config(bot.ModeWebhook), false)
		backends = append(backends, r.url)
	}
	first := h.newBotWebhook(ctx)
	if err := first.SetWebhook(ctx, webhookLB(t, backends)); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	want := map[string]*flows.Completion{}
	for i := range users {
		wg.Go(func() {
			u := h.user(int64(10000+i), []string{"ru", "az", "en"}[i%3])
			code := fmt.Sprintf("org-%03d", i)
			u.start(ctx, "cso", code)
			c := u.answerAll(ctx)
			u.finish(ctx)
			mu.Lock()
			want[code] = c
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	subs := h.submissions(ctx, users)
	for _, s := range subs {
		w, ok := want[s.Code]
		if !ok {
			t.Errorf("submission with unknown code %q", s.Code)
			continue
		}
		delete(want, s.Code)
		checkSubmission(t, s, w, s.Code)
	}
	if len(want) > 0 {
		t.Errorf("%d users have no submission", len(want))
	}
	h.checkClean()
}

func (h *harness) newBotWebhook(ctx context.Context) *bot.Bot {
	h.t.Helper()
	cfg := h.config(bot.ModeWebhook)
	cfg.WebhookSecret = "test-secret_123"
	b, err := bot.New(ctx, cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

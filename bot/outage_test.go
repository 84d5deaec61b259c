package bot_test

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dialoq/dialoq/bot"
	"github.com/dialoq/dialoq/bot/telegramtest"
	"github.com/dialoq/dialoq/storage/central"
	"github.com/dialoq/dialoq/storage/flowschema"
	"github.com/dialoq/dialoq/storage/redisstate"
)

// centralService is `dialoq central` in process, stoppable and restartable on the
// same address, as a real deployment would come back.
type centralService struct {
	t    *testing.T
	addr string
	h    http.Handler
	mu   sync.Mutex
	srv  *http.Server
}

func newCentralService(t *testing.T, h *harness) *centralService {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // down until started
	c := &centralService{t: t, addr: addr,
		h: central.NewServer(h.store, flowschema.New(h.set, h.cat), central.Config{Tokens: []string{"bot-token"}})}
	t.Cleanup(c.stop)
	return c
}

func (c *centralService) start() {
	c.t.Helper()
	var ln net.Listener
	var err error
	for range 100 { // the port may linger briefly after stop
		if ln, err = net.Listen("tcp", c.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	c.mu.Lock()
	c.srv = &http.Server{Handler: c.h, ReadHeaderTimeout: 5 * time.Second}
	srv := c.srv
	c.mu.Unlock()
	go srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed on stop
}

func (c *centralService) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.srv != nil {
		c.srv.Close()
		c.srv = nil
	}
}

// finishSessions has n users complete the hotlines session concurrently.
func finishSessions(ctx context.Context, t *testing.T, h *harness, first int64, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for i := range n {
		u := h.user(first+int64(i), "en")
		wg.Go(func() {
			u.start(ctx, "hotlines", "")
			u.answerAll(ctx)
			u.finish(ctx)
		})
	}
	wg.Wait()
}

func waitCount(ctx context.Context, t *testing.T, h *harness, want int) {
	t.Helper()
	h.waitFor(ctx, "submissions stored", func() bool {
		n, err := h.store.Count(ctx)
		return err == nil && n >= want
	})
	// Let stragglers (a duplicate would be one) arrive before the final count.
	time.Sleep(300 * time.Millisecond)
	if n, _ := h.store.Count(ctx); n != want {
		t.Fatalf("store holds %d submissions, want exactly %d", n, want)
	}
}

// The central store is down while 200 dialogues finish and comes back ten seconds
// later: exactly 200 submissions are stored, none twice, none lost.
func TestCentralOutageLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a ten-second outage")
	}
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 120*time.Second)
	svc := newCentralService(t, h)
	cfg := h.config(bot.ModePolling)
	cfg.Poster = central.NewClient("http://"+svc.addr, "bot-token", &http.Client{Timeout: 2 * time.Second})
	cfg.OutboxMaxBackoff = time.Second
	h.start(cfg)

	finishSessions(ctx, t, h, 30001, 200)
	if n, _ := h.store.Count(ctx); n != 0 {
		t.Fatalf("%d submissions stored while the central store was down", n)
	}
	time.Sleep(10 * time.Second)
	svc.start()
	waitCount(ctx, t, h, 200)
	h.checkClean()
}

// A bot replica dies while its delivery worker holds entries it could not post; a
// new replica takes them over after the claim timeout: every submission arrives
// exactly once.
func TestKilledReplicaEntriesAreClaimed(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 120*time.Second)
	svc := newCentralService(t, h)
	cfg := h.config(bot.ModePolling)
	cfg.Poster = central.NewClient("http://"+svc.addr, "bot-token", &http.Client{Timeout: 2 * time.Second})
	cfg.OutboxMaxBackoff = 200 * time.Millisecond
	cfg.OutboxClaimIdle = time.Second
	first := h.start(cfg)

	finishSessions(ctx, t, h, 31001, 50)
	pending := func() int64 {
		var n int64
		for s := range 8 {
			p, err := h.rdb.XPending(ctx, redisstate.OutboxKey(h.prefix, s), "delivery").Result()
			if err == nil {
				n += p.Count
			}
		}
		return n
	}
	h.waitFor(ctx, "entries pending at the first replica", func() bool { return pending() > 0 })
	first.stop(t) // the replica dies holding entries

	svc.start()
	h.start(cfg)
	waitCount(ctx, t, h, 50)
}

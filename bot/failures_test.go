package bot_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/bot"
	"github.com/dialoq/dialoq/bot/telegramtest"
	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/storage/outbox"
	"github.com/dialoq/dialoq/storage/redisstate/redistest"
)

// Redis goes away in the middle of a questionnaire: the user is told once to try
// again shortly, and the answer is applied when Redis is back, not lost.
func TestRedisDown(t *testing.T) {
	for _, mode := range []bot.Mode{bot.ModePolling, bot.ModeWebhook} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			mr := miniredis.RunT(t)
			rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), DialTimeout: time.Second, MaxRetries: 1})
			t.Cleanup(func() { _ = rdb.Close() })
			set, cat := runtimeT(t)
			h := newHarnessWith(t, telegramtest.Options{}, rdb, "dq", set, cat)
			ctx := ctxT(t, 60*time.Second)
			h.start(h.config(mode))
			u := h.user(7001, "ru")
			u.start(ctx, "cso", "")
			u.answerN(ctx, 4)
			u.shown = u.waitPrompt(ctx)

			mr.Close()
			sorry := cat.Text("ru", "bot.try_again", nil)
			u.answer(ctx, u.shown) // not applied yet
			if u.lastQID != "" {
				u.waitAnswer(ctx, u.lastQID, sorry)
			} else {
				u.waitReply(ctx, "try again", func(m telegramtest.Message) bool { return strings.Contains(m.Text, sorry) })
			}
			if err := mr.Restart(); err != nil {
				t.Fatal(err)
			}
			want := u.answerAll(ctx)
			u.finish(ctx)
			checkSubmission(t, h.submissions(ctx, 1)[0], want, "")
			told := 0
			for _, m := range h.srv.Messages(u.tg.ID) {
				if strings.Contains(m.Text, sorry) {
					told++
				}
			}
			for _, c := range h.srv.CallLog() {
				if c.Method == "answerCallbackQuery" && c.Params["text"] == sorry {
					told++
				}
			}
			if told != 1 {
				t.Errorf("told %d times to try again, want once", told)
			}
			h.checkClean()
		})
	}
}

// recordSleep replaces the bot's sleep: it records what was asked for and waits a
// token time, so a 429's retry_after can be checked without waiting it out.
type recordSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *recordSleep) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	r.mu.Unlock()
	return outbox.Sleep(ctx, min(d, 5*time.Millisecond))
}

func (r *recordSleep) saw(d time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.waits {
		if w == d {
			return true
		}
	}
	return false
}

// Telegram refuses with 429 (retry_after), 5xx, an HTML error page or a dropped
// connection: each message still arrives, after waiting as told.
func TestTelegramTransientErrors(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 60*time.Second)
	rs := &recordSleep{}
	cfg := h.config(bot.ModePolling)
	cfg.Sleep = rs.sleep
	h.start(cfg)
	u := h.user(8001, "ru")
	h.srv.InjectFault("sendMessage", telegramtest.TooManyRequests(7), 2)
	u.say("/start")
	u.waitReply(ctx, "menu", func(m telegramtest.Message) bool { return hasData(m, "m:cso") })
	if !rs.saw(7 * time.Second) {
		t.Errorf("did not wait retry_after (waits %v)", rs.waits)
	}
	for _, f := range []telegramtest.Fault{telegramtest.ServerError(502), telegramtest.BadGatewayHTML(), telegramtest.ConnectionReset()} {
		before := len(h.srv.Messages(u.tg.ID))
		h.srv.InjectFault("sendMessage", f, 1)
		u.say("/help")
		u.waitReply(ctx, "help", func(m telegramtest.Message) bool { return m.ID > before })
	}
	h.checkClean()
}

// A user who blocked the bot is marked inactive after the first 403, and nothing
// more is attempted for that update; writing again makes them active.
func TestBlockedUser(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 60*time.Second)
	r := h.start(h.config(bot.ModePolling))
	u := h.user(9001, "ru")
	u.start(ctx, "cso", "")
	u.answerN(ctx, 3)
	u.shown = u.waitPrompt(ctx)

	h.srv.Block(u.tg.ID)
	sends := h.srv.Calls("sendMessage")
	u.say("/help") // the reply is refused with 403
	h.waitFor(ctx, "inactive", func() bool {
		d, err := r.b.Inspect(ctx, u.tg.ID, u.tg.ID)
		return err == nil && d.Inactive
	})
	if n := h.srv.Calls("sendMessage") - sends; n != 1 {
		t.Errorf("%d sendMessage calls after the block, want 1 (no retry on 403)", n)
	}
	d, _ := r.b.Inspect(ctx, u.tg.ID, u.tg.ID)
	if d.Flow != "cso" || d.Answers != len(u.st.Answers) {
		t.Errorf("the dialogue was changed by the block: %+v", d)
	}

	h.srv.Unblock(u.tg.ID)
	u.say("/resume")
	u.mirror(flows.Input{Kind: flows.InRepeat})
	want := u.answerAll(ctx)
	u.finish(ctx)
	if d, _ := r.b.Inspect(ctx, u.tg.ID, u.tg.ID); d.Inactive {
		t.Error("still inactive after writing again")
	}
	checkSubmission(t, h.submissions(ctx, 1)[0], want, "")
	h.checkClean()
}

// An update costs two Redis round trips: one Load, one Commit.
func TestHotPathRoundTrips(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 30*time.Second)
	counter := &redistest.Counter{}
	opt, _ := redis.ParseURL(redistest.URL())
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	rdb.AddHook(counter)
	cfg := h.config(bot.ModePolling)
	cfg.Redis = rdb
	b, err := bot.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	u := h.user(9101, "ru")
	u.say("/start cso")
	warm := h.fetch(ctx, 1)[0] // the first commit also loads the script
	if err := b.HandleUpdate(ctx, warm); err != nil {
		t.Fatal(err)
	}
	msgs := h.srv.Messages(u.tg.ID)
	next := msgs[len(msgs)-1]
	if _, _, err := h.srv.PressButton(u.tg, next.ID, next.Buttons()[0].CallbackData); err != nil {
		t.Fatal(err)
	}
	press := h.fetch(ctx, 1)[0]
	counter.Reset()
	if err := b.HandleUpdate(ctx, press); err != nil {
		t.Fatal(err)
	}
	if n := counter.N(); n > 2 {
		t.Errorf("%d Redis round trips for one update, want at most 2", n)
	}
	if d, _ := b.Inspect(ctx, u.tg.ID, u.tg.ID); d.Question == "intro" || d.Flow != "cso" {
		t.Errorf("the press was not applied: %+v", d)
	}
	h.checkClean()
}

// gatedSleep holds waits of exactly d (a 429's retry_after) until released, so a
// test can look at the world while a chat waits; other waits are real.
type gatedSleep struct {
	d       time.Duration
	release chan struct{}
	held    atomic.Int32 // waits of d begun
}

func (g *gatedSleep) sleep(ctx context.Context, d time.Duration) error {
	if d != g.d {
		return outbox.Sleep(ctx, d)
	}
	g.held.Add(1)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-g.release:
		return nil
	}
}

// A 429 for one chat delays only that chat: with every chat on one polling
// worker, another user is still answered while the first chat's messages wait out
// retry_after, and those arrive afterwards in the order they were made.
func TestFloodWaitHoldsOnlyItsChat(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 60*time.Second)
	gate := &gatedSleep{d: 30 * time.Second, release: make(chan struct{})}
	cfg := h.config(bot.ModePolling)
	cfg.Workers = 1
	cfg.Sleep = gate.sleep
	r := h.start(cfg)
	limited, other := h.user(8101, "en"), h.user(8102, "en")

	h.srv.InjectFault("sendMessage", telegramtest.TooManyRequests(30), 1)
	limited.say("/start")
	h.waitFor(ctx, "the 429 to be waited out", func() bool { return gate.held.Load() == 1 })
	limited.say("/help")

	other.say("/start")
	other.waitReply(ctx, "menu", func(m telegramtest.Message) bool { return hasData(m, "m:cso") })
	h.waitFor(ctx, "the help update to be handled", func() bool { return metricValue(t, r.b, "dialoq_bot_telegram_calls_waiting") == 2 })
	for _, m := range h.srv.Messages(limited.tg.ID) {
		if m.FromBot {
			t.Fatalf("message sent to the rate-limited chat before retry_after: %q", m.Text)
		}
	}

	close(gate.release)
	limited.waitReply(ctx, "help", func(m telegramtest.Message) bool { return !hasData(m, "m:cso") })
	var fromBot []telegramtest.Message
	for _, m := range h.srv.Messages(limited.tg.ID) {
		if m.FromBot {
			fromBot = append(fromBot, m)
		}
	}
	if len(fromBot) != 2 || !hasData(fromBot[0], "m:cso") || hasData(fromBot[1], "m:cso") {
		t.Fatalf("rate-limited chat got %d messages, want the menu then the help: %+v", len(fromBot), fromBot)
	}
	h.waitFor(ctx, "the backlog to empty", func() bool { return metricValue(t, r.b, "dialoq_bot_telegram_calls_waiting") == 0 })
	h.checkClean()
}

// metricValue reads one unlabelled metric from the bot's /metrics (-1: absent).
func metricValue(t *testing.T, b *bot.Bot, name string) float64 {
	t.Helper()
	for line := range strings.Lines(metrics(t, b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	return -1
}

// lockedBuffer collects a log written from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The token is part of every Bot API URL, and net/http puts the URL into its
// errors: a failed poll or send is logged, even at debug level, without it.
func TestTokenNeverLogged(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 30*time.Second)
	var logs lockedBuffer
	cfg := h.config(bot.ModePolling)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.srv.InjectFault("getUpdates", telegramtest.ConnectionReset(), 2)
	h.start(cfg)
	u := h.user(8301, "en")
	h.srv.InjectFault("sendMessage", telegramtest.ConnectionReset(), 2)
	u.say("/start")
	u.waitReply(ctx, "menu", func(m telegramtest.Message) bool { return hasData(m, "m:cso") })
	out := logs.String()
	if strings.Contains(out, h.srv.Token()) {
		t.Fatalf("the token reached the log:\n%s", out)
	}
	if !strings.Contains(out, "<token>") {
		t.Fatalf("no failed call was logged, so nothing was checked:\n%s", out)
	}
}

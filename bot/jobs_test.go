package bot

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/bot/telegramtest"
	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/locales"
	"github.com/dialoq/dialoq/storage/redisstate/redistest"
)

// vclock is a virtual clock: sleeping moves it forward at once. The fake Telegram
// reads the same clock, so its rate limits see exactly the times the sender chose,
// and a broadcast of minutes runs in the time its HTTP calls take.
type vclock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *vclock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *vclock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *vclock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d > 0 {
		c.advance(d)
	}
	return nil
}

var (
	rtOnce sync.Once
	rtSet  *flows.Set
	rtCat  *locales.Catalog
	rtErr  error
)

func testRuntime(tb testing.TB) (*flows.Set, *locales.Catalog) {
	tb.Helper()
	rtOnce.Do(func() {
		if rtSet, rtErr = flows.Builtin(); rtErr == nil {
			rtCat, rtErr = locales.Embedded()
		}
	})
	if rtErr != nil {
		tb.Fatal(rtErr)
	}
	return rtSet, rtCat
}

// jobWorld is a fake Telegram with limits on a virtual clock, and Redis.
type jobWorld struct {
	srv    *telegramtest.Server
	clock  *vclock
	rdb    redis.UniversalClient
	prefix string
	thr    Throttle
	sent   atomic.Int64
	onSend atomic.Pointer[func()]
}

func newJobWorld(tb testing.TB, rate int) *jobWorld {
	tb.Helper()
	w := &jobWorld{clock: &vclock{t: time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)}}
	w.rdb, w.prefix = redistest.Client(tb)
	w.thr = Throttle{PerSecond: rate, PerChatPerSecond: 1, PerGroupPerMinute: 20, Concurrency: 1}
	w.srv = telegramtest.Start(tb, telegramtest.Options{
		Clock:       w.clock.now,
		Limits:      telegramtest.Limits{PerSecond: rate, PerChatPerSecond: 1, PerGroupPerMinute: 20},
		CallLogSize: -1,
		OnSend: func(telegramtest.Message) {
			w.sent.Add(1)
			if f := w.onSend.Load(); f != nil {
				(*f)()
			}
		},
	})
	return w
}

func (w *jobWorld) bot(tb testing.TB) *Bot {
	tb.Helper()
	set, cat := testRuntime(tb)
	b, err := New(context.Background(), Config{
		Token: w.srv.Token(), Endpoint: w.srv.Endpoint(),
		Redis: w.rdb, Prefix: w.prefix, Shards: 8,
		Engine: flows.NewEngine(set, cat), Catalog: cat,
		Throttle: w.thr,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Clock:    w.clock.now, Sleep: w.clock.sleep,
		RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// broadcastTo registers n users with the fake Telegram and queues a broadcast to
// them.
func (w *jobWorld) broadcastTo(tb testing.TB, b *Bot, n int) (string, []int64) {
	tb.Helper()
	ctx := context.Background()
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(5_000_000 + i)
		w.srv.AddUser(telegramtest.User{ID: ids[i], FirstName: "U"})
	}
	j, err := b.createJob(ctx, job{Kind: jobBroadcast, Owner: 1, Lang: "en", Text: "Hello &amp; welcome"}, ids)
	if err != nil {
		tb.Fatal(err)
	}
	if ok, err := b.queueJob(ctx, j.ID, 0, b.now()); err != nil || !ok {
		tb.Fatalf("queue: %v %v", ok, err)
	}
	return j.ID, ids
}

// A broadcast to 10,000 users stays within the configured rate (the fake server
// enforces the same limits on the same clock and never answers 429), reaches every
// user exactly once, and does so even when the runner is stopped half way and a new
// one (a new process on the same Redis) continues the job.
func TestBroadcastExactlyOnceAcrossRestart(t *testing.T) {
	const n = 10000
	w := newJobWorld(t, 30)
	b1 := w.bot(t)
	id, ids := w.broadcastTo(t, b1, n)
	// Opted-out and blocked users are skipped.
	optedOut, blocked := ids[7], ids[8]
	w.rdb.SAdd(context.Background(), b1.optOutKey(), chatString(optedOut))
	w.rdb.SAdd(context.Background(), b1.blockedKey(), chatString(blocked))

	ctx1, kill := context.WithCancel(context.Background())
	defer kill()
	stop := func() {
		if w.sent.Load() == n/2 {
			kill()
		}
	}
	w.onSend.Store(&stop)
	start := w.clock.now()
	if err := b1.runJob(ctx1, id, nil); err == nil {
		t.Fatal("the first runner finished although it was stopped")
	}
	w.onSend.Store(nil)
	if got := w.sent.Load(); got < n/2 || got > n/2+int64(w.thr.Concurrency) {
		t.Fatalf("first runner sent %d, want about %d", got, n/2)
	}
	// A restart takes a moment; the new process's limiter starts empty.
	w.clock.advance(time.Second)
	b2 := w.bot(t)
	if err := b2.runJob(context.Background(), id, nil); err != nil {
		t.Fatal(err)
	}
	elapsed := w.clock.now().Sub(start)

	if rl := w.srv.Stats().RateLimited; rl != 0 {
		t.Errorf("%d sends refused with 429", rl)
	}
	for _, c := range ids {
		want := 1
		if c == optedOut || c == blocked {
			want = 0
		}
		if got := len(w.srv.Messages(c)); got != want {
			t.Fatalf("chat %d got %d messages, want %d", c, got, want)
		}
	}
	j, _, err := b2.loadJob(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if j.State != jobDone || j.Sent != n-2 || j.Skipped != 2 || j.Failed != 0 || j.Unsure != 0 {
		t.Errorf("job = %+v", j)
	}
	// 9,998 messages at 30/s take at least 333 s; much more means the rate sagged.
	if min := time.Duration(n-2) * time.Second / 30; elapsed < min-time.Second || elapsed > min*105/100+2*time.Second {
		t.Errorf("took %v of virtual time, want about %v", elapsed, min)
	}
}

// A runner that crashed leaves claimed and sending recipients behind: the claimed
// ones are sent by the next runner, the one being sent to is counted as uncertain
// and never sent twice.
func TestJobRecoveryAfterCrash(t *testing.T) {
	w := newJobWorld(t, 30)
	b := w.bot(t)
	ctx := context.Background()
	id, ids := w.broadcastTo(t, b, 3)
	// What a crash mid-send leaves: all three claimed, the first one being sent.
	for _, c := range ids {
		if err := b.rdb.HSet(ctx, b.flyKey(id), chatString(c), "c").Err(); err != nil {
			t.Fatal(err)
		}
	}
	b.rdb.Del(ctx, b.todoKey(id))
	b.rdb.HSet(ctx, b.flyKey(id), chatString(ids[0]), "s")
	if err := b.runJob(ctx, id, nil); err != nil {
		t.Fatal(err)
	}
	if got := len(w.srv.Messages(ids[0])); got != 0 {
		t.Errorf("the uncertain recipient got %d messages", got)
	}
	for _, c := range ids[1:] {
		if got := len(w.srv.Messages(c)); got != 1 {
			t.Errorf("chat %d got %d messages, want 1", c, got)
		}
	}
	j, _, _ := b.loadJob(ctx, id)
	if j.Sent != 2 || j.Unsure != 1 || j.State != jobDone {
		t.Errorf("job = %+v", j)
	}
}

// A 429 from Telegram pauses every throttled send for retry_after, then they go on.
func TestThrottleWaitsRetryAfter(t *testing.T) {
	w := newJobWorld(t, 30)
	b := w.bot(t)
	w.srv.InjectFault("sendMessage", telegramtest.TooManyRequests(5), 1)
	w.srv.AddUser(telegramtest.User{ID: 42, FirstName: "U"})
	w.srv.AddUser(telegramtest.User{ID: 43, FirstName: "U"})
	start := w.clock.now()
	for _, c := range []int64{42, 43} {
		if _, err := b.snd.sendMessage(context.Background(), c, "hi", nil); err != nil {
			t.Fatal(err)
		}
	}
	if d := w.clock.now().Sub(start); d < 5*time.Second {
		t.Errorf("sent after %v, want at least retry_after 5s", d)
	}
	if len(w.srv.Messages(42)) != 1 || len(w.srv.Messages(43)) != 1 {
		t.Error("messages missing after the 429")
	}
}

func TestLimiterWindows(t *testing.T) {
	c := &vclock{t: time.Unix(0, 0)}
	l := newLimiter(Throttle{PerSecond: 3, PerChatPerSecond: 1, PerGroupPerMinute: 2}, c.now)
	var got []time.Duration
	for _, chat := range []int64{1, 2, 3, 4, 4, -5, -5, -5} {
		got = append(got, l.reserve(chat).Sub(c.now()))
	}
	want := []time.Duration{0, 0, 0, time.Second, 2 * time.Second, 2 * time.Second, 2 * time.Second, time.Minute + 2*time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("reservation %d at %v, want %v (all: %v)", i, got[i], want[i], got)
			break
		}
	}
}

// BenchmarkBroadcast100k sends a broadcast to 100,000 users at the default
// 30 messages per second against the fake Telegram enforcing the same limits, and
// reports the rate achieved in the fake server's (virtual) time as a share of the
// configured rate. Run: go test ./bot -run '^$' -bench Broadcast100k -benchtime 1x
func BenchmarkBroadcast100k(bm *testing.B) {
	const n = 100000
	for range bm.N {
		bm.StopTimer()
		w := newJobWorld(bm, 30)
		b := w.bot(bm)
		id, _ := w.broadcastTo(bm, b, n)
		start := w.clock.now()
		bm.StartTimer()
		if err := b.runJob(context.Background(), id, nil); err != nil {
			bm.Fatal(err)
		}
		bm.StopTimer()
		elapsed := w.clock.now().Sub(start)
		rate := float64(w.sent.Load()) / elapsed.Seconds()
		bm.ReportMetric(rate, "msgs/virtual-s")
		bm.ReportMetric(100*rate/float64(w.thr.PerSecond), "%-of-configured")
		bm.ReportMetric(float64(w.srv.Stats().RateLimited), "429s")
	}
}

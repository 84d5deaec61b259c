package outbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/storage/outbox"
	"github.com/dialoq/dialoq/storage/redisstate"
	"github.com/dialoq/dialoq/storage/redisstate/redistest"
)

// secret is put in every entry; logs must never contain it.
const secret = "SECRET-ANSWER"

var errTransient = errors.New("central store: 503")

// recorder is a Poster that remembers which submission ids it accepted.
type recorder struct {
	mu       sync.Mutex
	attempts map[string]int
	ok       map[string]int
	// fail decides the outcome of the n-th attempt (1-based) for id.
	fail func(id string, n int) error
}

func newRecorder(fail func(id string, n int) error) *recorder {
	return &recorder{attempts: map[string]int{}, ok: map[string]int{}, fail: fail}
}

func (r *recorder) Post(ctx context.Context, entry []byte) error {
	var e struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(entry, &e); err != nil {
		return fmt.Errorf("%w: %v", outbox.ErrPermanent, err)
	}
	r.mu.Lock()
	r.attempts[e.ID]++
	n := r.attempts[e.ID]
	r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(e.ID, n); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.ok[e.ID]++
	r.mu.Unlock()
	return nil
}

func (r *recorder) delivered() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int, len(r.ok))
	for k, v := range r.ok {
		m[k] = v
	}
	return m
}

func (r *recorder) tries(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.attempts[id]
}

// syncBuffer collects log output from worker goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sleeps records requested pauses; it sleeps for real only briefly so tests
// stay fast while still yielding.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return outbox.Sleep(ctx, min(d, 2*time.Millisecond))
}

type env struct {
	rdb    redis.UniversalClient
	prefix string
	shards int
	store  *redisstate.Store
	logs   *syncBuffer
}

func newEnv(t *testing.T, shards int) *env {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	return &env{
		rdb: rdb, prefix: prefix, shards: shards,
		store: redisstate.New(rdb, redisstate.Config{Prefix: prefix, Shards: shards}),
		logs:  &syncBuffer{},
	}
}

func (e *env) config(consumer string) outbox.Config {
	return outbox.Config{
		Prefix:      e.prefix,
		Shards:      e.shards,
		Consumer:    consumer,
		Batch:       7,
		MinBackoff:  time.Millisecond,
		MaxBackoff:  5 * time.Millisecond,
		ClaimIdle:   time.Hour, // tests that want claims lower it
		MaxAttempts: 10,
		Poll:        5 * time.Millisecond,
		Logger:      slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// enqueue commits one finished dialogue per id, each with one outbox entry,
// through the real Store so entries spread over shards as in production.
func (e *env) enqueue(t *testing.T, ids ...string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		k := redisstate.Key{ChatID: int64(len(id)) * 1000, UserID: int64(hash(id))}
		entry := fmt.Sprintf(`{"id":%q,"answers":[%q]}`, id, secret)
		if _, err := e.store.Apply(ctx, k, func(redisstate.Snapshot) (redisstate.Write, error) {
			return redisstate.Write{Outbox: [][]byte{[]byte(entry)}, Now: time.Now()}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func hash(s string) uint32 {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

// run starts w and stops it (waiting for Run to return) at test cleanup or
// when the returned func is called.
func run(t *testing.T, w *outbox.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds, failing the test after a generous
// bound; it never asserts how fast things happen.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func stats(t *testing.T, w *outbox.Worker) outbox.Stats {
	t.Helper()
	s, err := w.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func drained(t *testing.T, w *outbox.Worker) func() bool {
	return func() bool {
		s := stats(t, w)
		return s.Queued == 0 && s.Pending == 0
	}
}

func assertExactlyOnce(t *testing.T, got map[string]int, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("delivered %d distinct ids, want %d", len(got), len(want))
	}
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("%s delivered %d times, want 1", id, got[id])
		}
	}
}

func assertNoContentLogged(t *testing.T, logs string) {
	t.Helper()
	if strings.Contains(logs, secret) {
		t.Errorf("entry content leaked into logs:\n%s", logs)
	}
}

func TestDeliversEachEntryOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, redisstate.DefaultShards)
	want := ids("sub", 200)
	e.enqueue(t, want...)
	rec := newRecorder(nil)
	w := outbox.NewWorker(e.rdb, rec, e.config("w1"))
	stop := run(t, w)
	waitFor(t, "all entries delivered and acked", drained(t, w))
	stop() // the Delivered counter is bumped just after the XACK lands
	assertExactlyOnce(t, rec.delivered(), want)
	if s := stats(t, w); s.Delivered != 200 || s.Dead != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestTransientErrorsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 16)
	const failures = 3
	rec := newRecorder(func(id string, n int) error {
		if n <= failures {
			return errTransient
		}
		return nil
	})
	var sl sleeps
	cfg := e.config("w1")
	cfg.Sleep = sl.sleep
	w := outbox.NewWorker(e.rdb, rec, cfg)
	want := ids("flaky", 40)
	e.enqueue(t, want...)
	stop := run(t, w)
	waitFor(t, "all entries delivered and acked", drained(t, w))
	stop()
	assertExactlyOnce(t, rec.delivered(), want)
	for _, id := range want {
		if n := rec.tries(id); n != failures+1 {
			t.Errorf("%s: %d attempts, want %d", id, n, failures+1)
		}
	}
	if s := stats(t, w); s.Dead != 0 || s.Delivered != int64(len(want)) {
		t.Fatalf("stats = %+v", s)
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	var backoffs int
	for _, d := range sl.d {
		if d < 0 || d > cfg.Poll && d > cfg.MaxBackoff {
			t.Errorf("pause %v outside [0, max(Poll, MaxBackoff)]", d)
		}
		if d != cfg.Poll {
			backoffs++
		}
	}
	if backoffs == 0 {
		t.Error("no backoff pauses recorded")
	}
	assertNoContentLogged(t, e.logs.String())
}

func TestPermanentErrorDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 8)
	rec := newRecorder(func(id string, n int) error {
		if strings.HasPrefix(id, "bad") {
			return fmt.Errorf("%w: HTTP 422 missing field", outbox.ErrPermanent)
		}
		return nil
	})
	w := outbox.NewWorker(e.rdb, rec, e.config("w1"))
	good, bad := ids("good", 20), ids("bad", 3)
	e.enqueue(t, append(good, bad...)...)
	run(t, w)
	waitFor(t, "all entries handled", func() bool {
		s := stats(t, w)
		return s.Queued == 0 && s.Pending == 0 && s.Dead == int64(len(bad))
	})
	assertExactlyOnce(t, rec.delivered(), good)
	for _, id := range bad {
		if n := rec.tries(id); n != 1 {
			t.Errorf("%s posted %d times; permanent errors must not be retried", id, n)
		}
	}
	dead := deadEntries(t, e)
	if len(dead) != len(bad) {
		t.Fatalf("dead entries = %d, want %d", len(dead), len(bad))
	}
	for _, m := range dead {
		reason, _ := m.Values["reason"].(string)
		if !strings.Contains(reason, "HTTP 422") {
			t.Errorf("dead reason = %q", reason)
		}
		entry, _ := m.Values["e"].(string)
		if !strings.Contains(entry, `"id":"bad-`) || !strings.Contains(entry, secret) {
			t.Errorf("dead entry lost the original: %q", entry)
		}
		if m.Values["attempts"] != "1" || m.Values["id"] == "" {
			t.Errorf("dead metadata = %v", m.Values)
		}
	}
	if !strings.Contains(e.logs.String(), "HTTP 422") {
		t.Error("reason not logged")
	}
	assertNoContentLogged(t, e.logs.String())
}

func TestMaxAttemptsDeadLetters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4)
	rec := newRecorder(func(string, int) error { return errTransient })
	cfg := e.config("w1")
	cfg.MaxAttempts = 3
	w := outbox.NewWorker(e.rdb, rec, cfg)
	e.enqueue(t, "doomed")
	run(t, w)
	waitFor(t, "entry dead-lettered", func() bool { return stats(t, w).Dead == 1 })
	if n := rec.tries("doomed"); n != 3 {
		t.Fatalf("attempts = %d, want 3", n)
	}
	dead := deadEntries(t, e)
	if reason := dead[0].Values["reason"].(string); !strings.Contains(reason, "3 attempts") || !strings.Contains(reason, "503") {
		t.Fatalf("reason = %q", reason)
	}
	if s := stats(t, w); s.Pending != 0 || s.Queued != 0 {
		t.Fatalf("stats = %+v", s)
	}
	assertNoContentLogged(t, e.logs.String())
}

func deadEntries(t *testing.T, e *env) []redis.XMessage {
	t.Helper()
	var all []redis.XMessage
	for shard := range e.shards {
		msgs, err := e.rdb.XRange(context.Background(), redisstate.DeadKey(e.prefix, shard), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, msgs...)
	}
	return all
}

// crashRead makes consumer "crashed" read every entry and never ack them,
// like a replica that died mid-delivery.
func crashRead(t *testing.T, e *env) (pending int) {
	t.Helper()
	ctx := context.Background()
	for shard := range e.shards {
		stream := redisstate.OutboxKey(e.prefix, shard)
		if err := e.rdb.XGroupCreateMkStream(ctx, stream, outbox.DefaultGroup, "0").Err(); err != nil {
			t.Fatal(err)
		}
		res, err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: outbox.DefaultGroup, Consumer: "crashed", Streams: []string{stream, ">"}, Count: 1000, Block: -1,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range res {
			pending += len(s.Messages)
		}
	}
	return pending
}

func TestClaimsFromCrashedConsumer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 8)
	want := ids("orphan", 30)
	e.enqueue(t, want...)
	if n := crashRead(t, e); n != len(want) {
		t.Fatalf("crashed consumer read %d entries, want %d", n, len(want))
	}
	rec := newRecorder(nil)
	cfg := e.config("survivor")
	cfg.ClaimIdle = 100 * time.Millisecond
	w := outbox.NewWorker(e.rdb, rec, cfg)
	if s := stats(t, w); s.Pending != int64(len(want)) {
		t.Fatalf("pending before = %d", s.Pending)
	}
	run(t, w)
	waitFor(t, "orphans claimed and delivered", drained(t, w))
	assertExactlyOnce(t, rec.delivered(), want)
	if !strings.Contains(e.logs.String(), "claimed abandoned entry") {
		t.Error("claims not logged")
	}
}

func TestWorkerStoppedMidPostIsTakenOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	want := ids("inflight", 10)
	e.enqueue(t, want...)
	// Replica A hangs in Post (central store unreachable) and is then
	// killed: its batch stays pending under its name.
	inPost := make(chan struct{}, 1)
	hang := outbox.PosterFunc(func(ctx context.Context, _ []byte) error {
		select {
		case inPost <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	})
	cfgA := e.config("replica-a")
	a := outbox.NewWorker(e.rdb, hang, cfgA)
	stopA := run(t, a)
	<-inPost
	stopA()
	if s := stats(t, a); s.Pending == 0 || s.Delivered != 0 {
		t.Fatalf("after A died: %+v", s)
	}
	rec := newRecorder(nil)
	cfgB := e.config("replica-b")
	cfgB.ClaimIdle = 50 * time.Millisecond
	b := outbox.NewWorker(e.rdb, rec, cfgB)
	run(t, b)
	waitFor(t, "B delivered everything", drained(t, b))
	assertExactlyOnce(t, rec.delivered(), want)
}

func TestPoisonEntryDeadLetteredAfterRepeatedCrashes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	e.enqueue(t, "poison")
	if n := crashRead(t, e); n != 1 {
		t.Fatalf("read %d", n)
	}
	ctx := context.Background()
	stream := redisstate.OutboxKey(e.prefix, 0)
	msgs, err := e.rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("xrange: %v %v", msgs, err)
	}
	// As if it had already crashed 10 consumers.
	if err := e.rdb.Do(ctx, "XCLAIM", stream, outbox.DefaultGroup, "crashed", 0, msgs[0].ID, "RETRYCOUNT", 10, "JUSTID").Err(); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder(nil)
	cfg := e.config("survivor")
	cfg.ClaimIdle = 50 * time.Millisecond
	cfg.MaxAttempts = 5
	w := outbox.NewWorker(e.rdb, rec, cfg)
	run(t, w)
	waitFor(t, "poison dead-lettered", func() bool { return stats(t, w).Dead == 1 })
	if n := rec.tries("poison"); n != 0 {
		t.Fatalf("poison posted %d times", n)
	}
}

func TestTwoWorkersShareTheStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 16)
	rdb2, _ := redistest.Client(t)
	// One Poster shared by both replicas, as the central store would be.
	rec := newRecorder(nil)
	w1 := outbox.NewWorker(e.rdb, rec, e.config("replica-1"))
	w2 := outbox.NewWorker(rdb2, rec, e.config("replica-2"))
	before, during := ids("early", 150), ids("late", 150)
	e.enqueue(t, before...)
	stop1, stop2 := run(t, w1), run(t, w2)
	e.enqueue(t, during...)
	waitFor(t, "all delivered", drained(t, w1))
	stop1()
	stop2()
	got := rec.delivered()
	want := append(before, during...)
	// ClaimIdle is an hour here, so no entry can be claimed and the group
	// hands each entry to exactly one replica: no duplicates at all. With
	// claims, a duplicate is possible (a slow owner and a claimer both
	// post); the central store dedups by submission id.
	assertExactlyOnce(t, got, want)
	s1, s2 := stats(t, w1), stats(t, w2)
	if s1.Delivered+s2.Delivered != int64(len(want)) {
		t.Fatalf("delivered %d + %d, want %d", s1.Delivered, s2.Delivered, len(want))
	}
	t.Logf("replica-1 delivered %d, replica-2 delivered %d", s1.Delivered, s2.Delivered)
}

func TestTwoWorkersWithClaimsLoseNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 8)
	rdb2, _ := redistest.Client(t)
	// A slow Poster and a ClaimIdle shorter than a batch's posting time make
	// the workers claim each other's entries: duplicates are allowed, loss
	// is not. MaxAttempts is high because every claim counts as a delivery.
	rec := newRecorder(func(string, int) error {
		time.Sleep(2 * time.Millisecond)
		return nil
	})
	cfg1, cfg2 := e.config("replica-1"), e.config("replica-2")
	for _, c := range []*outbox.Config{&cfg1, &cfg2} {
		c.ClaimIdle = 10 * time.Millisecond
		c.Batch = 10
		c.MaxAttempts = 1000
	}
	w1 := outbox.NewWorker(e.rdb, rec, cfg1)
	w2 := outbox.NewWorker(rdb2, rec, cfg2)
	want := ids("sub", 100)
	e.enqueue(t, want...)
	run(t, w1)
	run(t, w2)
	waitFor(t, "all delivered", drained(t, w1))
	got := rec.delivered()
	dups := 0
	for _, id := range want {
		if got[id] == 0 {
			t.Errorf("%s lost", id)
		}
		dups += got[id] - 1
	}
	if len(got) != len(want) {
		t.Errorf("delivered ids = %d, want %d", len(got), len(want))
	}
	if s := stats(t, w1); s.Dead != 0 {
		t.Errorf("dead = %d", s.Dead)
	}
	t.Logf("claims: %d, duplicates: %d", strings.Count(e.logs.String(), "claimed abandoned entry"), dups)
}

func TestRecreatesDeletedGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 2)
	rec := newRecorder(nil)
	w := outbox.NewWorker(e.rdb, rec, e.config("w1"))
	e.enqueue(t, "one")
	run(t, w)
	waitFor(t, "first delivered", func() bool { return len(rec.delivered()) == 1 })
	// Someone deletes the streams (and with them the groups).
	for shard := range e.shards {
		if err := e.rdb.Del(context.Background(), redisstate.OutboxKey(e.prefix, shard)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	e.enqueue(t, "two", "three")
	waitFor(t, "later entries delivered", func() bool { return len(rec.delivered()) == 3 })
	assertExactlyOnce(t, rec.delivered(), []string{"one", "two", "three"})
}

func TestStatsBeforeRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 4)
	e.enqueue(t, "a", "b")
	w := outbox.NewWorker(e.rdb, newRecorder(nil), e.config("w1"))
	s := stats(t, w)
	if s != (outbox.Stats{Queued: 2}) {
		t.Fatalf("stats = %+v", s)
	}
}

func TestRunSurvivesRedisDown(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	var sl sleeps
	w := outbox.NewWorker(rdb, newRecorder(nil), outbox.Config{
		Shards: 2, Sleep: sl.sleep, MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	waitFor(t, "a few failed passes", func() bool {
		sl.mu.Lock()
		defer sl.mu.Unlock()
		return len(sl.d) >= 3
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	sl.mu.Lock()
	defer sl.mu.Unlock()
	for _, d := range sl.d {
		if d < 0 || d > 4*time.Millisecond {
			t.Fatalf("backoff %v outside [0, MaxBackoff]", d)
		}
	}
	if _, err := w.Stats(context.Background()); err == nil {
		t.Fatal("Stats: want error with Redis down")
	}
}

func TestRunTwiceRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 1)
	w := outbox.NewWorker(e.rdb, newRecorder(nil), e.config("w1"))
	stop := run(t, w)
	defer stop()
	waitFor(t, "group created", func() bool {
		g, err := e.rdb.XInfoGroups(context.Background(), redisstate.OutboxKey(e.prefix, 0)).Result()
		return err == nil && len(g) == 1
	})
	if err := w.Run(context.Background()); err == nil {
		t.Fatal("second Run: want error")
	}
}

func TestWorkerMiniredis(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	e := &env{
		rdb: rdb, prefix: redisstate.DefaultPrefix, shards: 4,
		store: redisstate.New(rdb, redisstate.Config{Shards: 4}),
		logs:  &syncBuffer{},
	}
	good, bad := ids("good", 20), ids("bad", 2)
	e.enqueue(t, good...)
	e.enqueue(t, bad...)
	n := crashRead(t, e)
	if n != len(good)+len(bad) {
		t.Fatalf("crash read %d", n)
	}
	e.enqueue(t, "fresh")
	rec := newRecorder(func(id string, n int) error {
		switch {
		case strings.HasPrefix(id, "bad"):
			return fmt.Errorf("%w: 400", outbox.ErrPermanent)
		case n == 1:
			return errTransient
		}
		return nil
	})
	cfg := e.config("embedded")
	cfg.ClaimIdle = 20 * time.Millisecond
	w := outbox.NewWorker(rdb, rec, cfg)
	run(t, w)
	waitFor(t, "drained", func() bool {
		s := stats(t, w)
		return s.Queued == 0 && s.Pending == 0 && s.Dead == int64(len(bad))
	})
	assertExactlyOnce(t, rec.delivered(), append(good, "fresh"))
}

func ExamplePosterFunc() {
	post := func(ctx context.Context, entry []byte) error { return nil } // e.g. central.Client.Post
	var p outbox.Poster = outbox.PosterFunc(post)
	_ = p
}

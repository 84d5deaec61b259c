package redisstate_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/storage/redisstate"
	"github.com/dialoq/dialoq/storage/redisstate/redistest"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func newStore(t testing.TB, cfg redisstate.Config) (*redisstate.Store, *redis.Client, redisstate.Config) {
	t.Helper()
	rdb, prefix := redistest.Client(t)
	cfg.Prefix = prefix
	return redisstate.New(rdb, cfg), rdb, cfg
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// incr is an Apply callback treating Data as a decimal counter.
func incr(now time.Time) func(redisstate.Snapshot) (redisstate.Write, error) {
	return func(s redisstate.Snapshot) (redisstate.Write, error) {
		n := 0
		if s.Exists {
			var err error
			if n, err = strconv.Atoi(string(s.Data)); err != nil {
				return redisstate.Write{}, err
			}
		}
		return redisstate.Write{Data: []byte(strconv.Itoa(n + 1)), Active: true, Now: now}, nil
	}
}

// testConcurrentApply runs goroutines on stores (think: replicas) that all
// increment one counter; no increment may be lost.
func testConcurrentApply(t *testing.T, stores []*redisstate.Store, perStore int) {
	t.Helper()
	ctx := ctxT(t)
	k := redisstate.Key{ChatID: -100123, UserID: 42}
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*perStore)
	for _, s := range stores {
		for range perStore {
			wg.Go(func() {
				if _, err := s.Apply(ctx, k, incr(t0)); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Apply: %v", err)
	}
	snap, err := stores[0].Load(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	want := len(stores) * perStore
	if got := string(snap.Data); got != strconv.Itoa(want) {
		t.Fatalf("counter = %s, want %d (lost updates)", got, want)
	}
	if snap.Version != int64(want) {
		t.Fatalf("version = %d, want %d", snap.Version, want)
	}
}

func TestApplyConcurrentNoLostUpdate(t *testing.T) {
	t.Parallel()
	// Generous attempts: 100 writers on one key is far beyond real traffic
	// (one user rarely has two updates in flight) and the point here is
	// correctness, not the retry bound.
	cfg := redisstate.Config{MaxAttempts: 1000}
	s1, _, cfg := newStore(t, cfg)
	rdb2, _ := redistest.Client(t)
	s2 := redisstate.New(rdb2, cfg)
	testConcurrentApply(t, []*redisstate.Store{s1, s2}, 50)
}

func TestApplyDefaultAttemptsNeverLoses(t *testing.T) {
	t.Parallel()
	// With the default bound some callers may give up under this artificial
	// contention; they must get ErrConflict and the counter must equal the
	// number of calls that succeeded.
	s, _, _ := newStore(t, redisstate.Config{})
	ctx := ctxT(t)
	k := redisstate.Key{ChatID: 1, UserID: 1}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ok, fail int
	)
	for range 50 {
		wg.Go(func() {
			_, err := s.Apply(ctx, k, incr(t0))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, redisstate.ErrConflict):
				fail++
			default:
				t.Errorf("Apply: %v", err)
			}
		})
	}
	wg.Wait()
	snap, err := s.Load(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if string(snap.Data) != strconv.Itoa(ok) {
		t.Fatalf("counter = %s, successful Apply calls = %d", snap.Data, ok)
	}
	t.Logf("default attempts: %d succeeded, %d gave up with ErrConflict", ok, fail)
}

func TestApplyMiniredis(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	cfg := redisstate.Config{MaxAttempts: 1000}
	newClient := func() *redis.Client {
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		return rdb
	}
	s1 := redisstate.New(newClient(), cfg)
	s2 := redisstate.New(newClient(), cfg)
	testConcurrentApply(t, []*redisstate.Store{s1, s2}, 50)

	// The rest of the script's paths on the embedded server too.
	ctx := ctxT(t)
	k := redisstate.Key{ChatID: 7, UserID: 8}
	if _, err := s1.Commit(ctx, k, 0, redisstate.Write{Data: []byte("a"), UpdateID: 10, Outbox: [][]byte{[]byte(`{"id":"x"}`)}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s1.Commit(ctx, k, 1, redisstate.Write{Data: []byte("b"), UpdateID: 10, Now: t0}); !errors.Is(err, redisstate.ErrDuplicate) {
		t.Fatalf("redelivered update: err = %v, want ErrDuplicate", err)
	}
	if _, err := s1.Commit(ctx, k, 5, redisstate.Write{Data: []byte("b"), UpdateID: 11, Now: t0}); !errors.Is(err, redisstate.ErrConflict) {
		t.Fatalf("stale version: err = %v, want ErrConflict", err)
	}
	if _, err := s1.Commit(ctx, k, 1, redisstate.Write{Data: nil, UpdateID: 11, Now: t0}); err != nil {
		t.Fatal(err)
	}
	snap, err := s1.Load(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Exists || snap.Version != 2 || snap.LastUpdate != 11 {
		t.Fatalf("tombstone = %+v", snap)
	}
	shard := s1.Shard(k)
	if n := mr.TTL(redisstate.StateKey(redisstate.DefaultPrefix, shard, k)); n <= 0 {
		t.Fatalf("TTL = %v", n)
	}
	if entries, err := newClient().XLen(ctx, redisstate.OutboxKey(redisstate.DefaultPrefix, shard)).Result(); err != nil || entries != 1 {
		t.Fatalf("outbox len = %d, %v", entries, err)
	}
}

// An older update that arrives after a newer one (two webhook deliveries at once,
// one replica slower than another) was never applied and must be, once; only an
// update older than a full window of remembered ones is refused, unseen.
func TestLateOlderUpdateIsApplied(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, redisstate.Config{})
	ctx := ctxT(t)
	k := redisstate.Key{ChatID: 7, UserID: 8}
	apply := func(upd int64) error {
		_, err := s.Apply(ctx, k, func(snap redisstate.Snapshot) (redisstate.Write, error) {
			return redisstate.Write{Data: append(snap.Data, byte('a'+upd%26)), UpdateID: upd, Active: true, Now: t0}, nil
		})
		return err
	}
	for _, upd := range []int64{100, 99} {
		if err := apply(upd); err != nil {
			t.Fatalf("update %d: %v", upd, err)
		}
	}
	if err := apply(99); !errors.Is(err, redisstate.ErrDuplicate) {
		t.Fatalf("redelivered 99: %v, want ErrDuplicate", err)
	}
	for upd := int64(101); upd < 101+redisstate.RecentUpdates; upd++ {
		if err := apply(upd); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := s.Load(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Recent) != redisstate.RecentUpdates || snap.LastUpdate != 100+redisstate.RecentUpdates || len(snap.Data) != 2+redisstate.RecentUpdates {
		t.Fatalf("snapshot %+v", snap)
	}
	if err := apply(98); !errors.Is(err, redisstate.ErrDuplicate) {
		t.Fatalf("update older than the window: %v, want ErrDuplicate", err)
	}
}

func TestDuplicateUpdateWritesNothing(t *testing.T) {
	t.Parallel()
	s, rdb, cfg := newStore(t, redisstate.Config{})
	ctx := ctxT(t)
	k := redisstate.Key{ChatID: 5, UserID: 6}
	shard := s.Shard(k)
	outbox := redisstate.OutboxKey(cfg.Prefix, shard)

	apply := func(upd int64, data string) (redisstate.Snapshot, error) {
		return s.Apply(ctx, k, func(redisstate.Snapshot) (redisstate.Write, error) {
			return redisstate.Write{Data: []byte(data), UpdateID: upd, Outbox: [][]byte{[]byte(data)}, Active: true, Now: t0}, nil
		})
	}
	if _, err := apply(100, "first"); err != nil {
		t.Fatal(err)
	}
	if _, err := apply(100, "again"); !errors.Is(err, redisstate.ErrDuplicate) {
		t.Fatalf("update 100: err = %v, want ErrDuplicate", err)
	}
	// Commit alone (bypassing Apply's early check) must also refuse.
	if _, err := s.Commit(ctx, k, 1, redisstate.Write{Data: []byte("again"), UpdateID: 100, Outbox: [][]byte{[]byte("again")}, Now: t0}); !errors.Is(err, redisstate.ErrDuplicate) {
		t.Fatalf("Commit: err = %v, want ErrDuplicate", err)
	}
	snap, err := s.Load(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if string(snap.Data) != "first" || snap.Version != 1 || snap.LastUpdate != 100 {
		t.Fatalf("after duplicates: %+v", snap)
	}
	if n, err := rdb.XLen(ctx, outbox).Result(); err != nil || n != 1 {
		t.Fatalf("outbox len = %d, %v; want 1", n, err)
	}
	// Non-update writes (UpdateID 0) are not deduplicated and keep the mark.
	got, err := s.Apply(ctx, k, func(redisstate.Snapshot) (redisstate.Write, error) {
		return redisstate.Write{Data: []byte("timer"), Active: true, Now: t0}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.LastUpdate != 100 || got.Version != 2 {
		t.Fatalf("non-update write: %+v", got)
	}
	if got, err := apply(101, "next"); err != nil || got.LastUpdate != 101 || got.Version != 3 {
		t.Fatalf("next update: %+v, %v", got, err)
	}
}

func TestFinishKeepsDedupTombstone(t *testing.T) {
	t.Parallel()
	s, rdb, cfg := newStore(t, redisstate.Config{})
	ctx := ctxT(t)
	k := redisstate.Key{ChatID: 9, UserID: 9}
	finish := func(redisstate.Snapshot) (redisstate.Write, error) {
		return redisstate.Write{Data: nil, UpdateID: 500, Outbox: [][]byte{[]byte(`{"id":"sub-1"}`)}, Now: t0}, nil
	}
	if _, err := s.Commit(ctx, k, 0, redisstate.Write{Data: []byte("q1"), UpdateID: 499, Active: true, Now: t0}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Apply(ctx, k, finish)
	if err != nil {
		t.Fatal(err)
	}
	if got.Exists || got.Version != 2 {
		t.Fatalf("finished: %+v", got)
	}
	// Telegram redelivers the final answer: it must not enqueue again.
	if _, err := s.Apply(ctx, k, finish); !errors.Is(err, redisstate.ErrDuplicate) {
		t.Fatalf("redelivered finish: %v", err)
	}
	if n, _ := rdb.XLen(ctx, redisstate.OutboxKey(cfg.Prefix, s.Shard(k))).Result(); n != 1 {
		t.Fatalf("outbox len = %d, want 1", n)
	}
	if n, _ := rdb.ZCard(ctx, redisstate.ActiveKey(cfg.Prefix, s.Shard(k))).Result(); n != 0 {
		t.Fatalf("finished dialogue still active (%d)", n)
	}
	// A new dialogue continues from the tombstone's version.
	got, err = s.Apply(ctx, k, func(snap redisstate.Snapshot) (redisstate.Write, error) {
		if snap.Exists || snap.Version != 2 {
			t.Errorf("tombstone snapshot: %+v", snap)
		}
		return redisstate.Write{Data: []byte("q1"), UpdateID: 501, Active: true, Now: t0}, nil
	})
	if err != nil || got.Version != 3 || !got.Exists {
		t.Fatalf("restart: %+v, %v", got, err)
	}
}

func TestCommitAtomicWithOutbox(t *testing.T) {
	t.Parallel()
	s, rdb, cfg := newStore(t, redisstate.Config{})
	ctx := ctxT(t)
	k := redisstate.Key{ChatID: 11, UserID: 12}
	shard := s.Shard(k)
	outbox := redisstate.OutboxKey(cfg.Prefix, shard)
	entries := [][]byte{[]byte(`{"id":"a"}`), []byte(`{"id":"b"}`)}

	v, err := s.Commit(ctx, k, 0, redisstate.Write{Data: []byte("done"), UpdateID: 1, Outbox: entries, Active: true, Now: t0})
	if err != nil || v != 1 {
		t.Fatalf("Commit = %d, %v", v, err)
	}
	snap, err := s.Load(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Exists || string(snap.Data) != "done" || snap.Version != 1 || snap.LastUpdate != 1 || !snap.UpdatedAt.Equal(t0) {
		t.Fatalf("state = %+v", snap)
	}
	msgs, err := rdb.XRange(ctx, outbox, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 || msgs[0].Values["e"] != `{"id":"a"}` || msgs[1].Values["e"] != `{"id":"b"}` {
		t.Fatalf("outbox = %+v", msgs)
	}

	// Version check fails: neither state nor outbox may change.
	for _, expect := range []int64{0, 7} {
		_, err = s.Commit(ctx, k, expect, redisstate.Write{Data: []byte("other"), UpdateID: 2, Outbox: [][]byte{[]byte(`{"id":"c"}`)}, Active: true, Now: t0.Add(time.Hour)})
		if !errors.Is(err, redisstate.ErrConflict) {
			t.Fatalf("expect %d: err = %v, want ErrConflict", expect, err)
		}
	}
	after, err := s.Load(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if string(after.Data) != "done" || after.Version != 1 || after.LastUpdate != 1 || !after.UpdatedAt.Equal(t0) {
		t.Fatalf("state changed by failed commit: %+v", after)
	}
	if n, _ := rdb.XLen(ctx, outbox).Result(); n != 2 {
		t.Fatalf("outbox len = %d after failed commit, want 2", n)
	}
	score, err := rdb.ZScore(ctx, redisstate.ActiveKey(cfg.Prefix, shard), k.String()).Result()
	if err != nil || int64(score) != t0.UnixMilli() {
		t.Fatalf("activity score = %v, %v; want unchanged", score, err)
	}
}

func TestTTLAndDelete(t *testing.T) {
	t.Parallel()
	s, rdb, cfg := newStore(t, redisstate.Config{TTL: time.Hour})
	ctx := ctxT(t)
	k := redisstate.Key{ChatID: 3, UserID: 4}
	if _, err := s.Commit(ctx, k, 0, redisstate.Write{Data: []byte("x"), Active: true, Outbox: [][]byte{[]byte("kept")}, Now: t0}); err != nil {
		t.Fatal(err)
	}
	ttl, err := rdb.PTTL(ctx, s.StateKey(k)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > time.Hour {
		t.Fatalf("TTL = %v, want (0, 1h]", ttl)
	}
	if err := s.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Load(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if snap.Exists || snap.Version != 0 || snap.Data != nil {
		t.Fatalf("after Delete: %+v", snap)
	}
	if n, _ := rdb.Exists(ctx, s.StateKey(k)).Result(); n != 0 {
		t.Fatal("state key still exists")
	}
	if n, _ := rdb.ZCard(ctx, redisstate.ActiveKey(cfg.Prefix, s.Shard(k))).Result(); n != 0 {
		t.Fatal("activity entry still exists")
	}
	if n, _ := rdb.XLen(ctx, redisstate.OutboxKey(cfg.Prefix, s.Shard(k))).Result(); n != 1 {
		t.Fatalf("queued outbox entry removed by Delete (len %d)", n)
	}
	// Deleting what is not there is fine (idempotent /forget).
	if err := s.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
}

func TestIdle(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t, redisstate.Config{Shards: 8})
	ctx := ctxT(t)
	write := func(k redisstate.Key, at time.Time, active bool) {
		t.Helper()
		if _, err := s.Apply(ctx, k, func(redisstate.Snapshot) (redisstate.Write, error) {
			return redisstate.Write{Data: []byte("s"), Active: active, Now: at}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	var old []redisstate.Key
	for i := range 20 {
		k := redisstate.Key{ChatID: int64(1000 + i), UserID: int64(i)}
		write(k, t0.Add(time.Duration(i)*time.Minute), true)
		old = append(old, k)
	}
	fresh := redisstate.Key{ChatID: 1, UserID: 2}
	write(fresh, t0.Add(3*time.Hour), true)
	done := redisstate.Key{ChatID: 3, UserID: 4}
	write(done, t0, true)
	write(done, t0, false) // finished: leaves the index

	cut := t0.Add(2 * time.Hour)
	got, err := s.Idle(ctx, cut, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(old) {
		t.Fatalf("Idle = %v, want the %d old keys", got, len(old))
	}
	for i, k := range got {
		if k != old[i] {
			t.Fatalf("Idle[%d] = %v, want %v (oldest first)", i, k, old[i])
		}
	}
	got, err = s.Idle(ctx, cut, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0] != old[0] || got[4] != old[4] {
		t.Fatalf("Idle limit 5 = %v", got)
	}
	// Strictly older than before.
	got, err = s.Idle(ctx, t0, 100)
	if err != nil || len(got) != 0 {
		t.Fatalf("Idle(t0) = %v, %v; want none", got, err)
	}
}

func TestRoundTrips(t *testing.T) {
	t.Parallel()
	rdb, prefix := redistest.Client(t)
	var c redistest.Counter
	rdb.AddHook(&c)
	s := redisstate.New(rdb, redisstate.Config{Prefix: prefix})
	ctx := ctxT(t)
	// Warm up: the connection and, on a server that has never seen the
	// script, the one-off EVALSHA→NOSCRIPT→EVAL fallback.
	warm := redisstate.Key{ChatID: -1, UserID: -1}
	if _, err := s.Commit(ctx, warm, 0, redisstate.Write{Data: []byte("w"), Now: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, warm); err != nil {
		t.Fatal(err)
	}
	k := redisstate.Key{ChatID: 77, UserID: 88}
	var version int64
	for i := range 3 {
		c.Reset()
		snap, err := s.Load(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if n := c.N(); n != 1 {
			t.Fatalf("Load round trips = %d, want 1", n)
		}
		c.Reset()
		version, err = s.Commit(ctx, k, snap.Version, redisstate.Write{
			Data: []byte("d"), UpdateID: int64(i + 1), Outbox: [][]byte{[]byte("e1"), []byte("e2")}, Active: true, Now: t0,
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := c.N(); n != 1 {
			t.Fatalf("Commit round trips = %d, want 1", n)
		}
	}
	if version != 3 {
		t.Fatalf("version = %d", version)
	}
	c.Reset()
	if _, err := s.Apply(ctx, k, incr(t0)); err == nil {
		t.Fatal("incr on non-numeric data should fail")
	}
	c.Reset()
	if err := s.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	if n := c.N(); n != 1 {
		t.Fatalf("Delete round trips = %d, want 1", n)
	}
}

func TestRedisDownReturnsError(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1. With go-redis defaults a call gives up on
	// its own after its dial retries (about 2s: 5 dials 100ms apart, times
	// MaxRetries+1); a caller's shorter deadline cuts that short. Either way
	// the call returns an error instead of hanging.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // production defaults
	t.Cleanup(func() { _ = rdb.Close() })
	s := redisstate.New(rdb, redisstate.Config{})
	k := redisstate.Key{ChatID: 1, UserID: 1}
	calls := map[string]func(context.Context) error{
		"Load": func(ctx context.Context) error { _, err := s.Load(ctx, k); return err },
		"Commit": func(ctx context.Context) error {
			_, err := s.Commit(ctx, k, 0, redisstate.Write{Data: []byte("x"), Now: t0})
			return err
		},
		"Apply":  func(ctx context.Context) error { _, err := s.Apply(ctx, k, incr(t0)); return err },
		"Delete": func(ctx context.Context) error { return s.Delete(ctx, k) },
		"Idle":   func(ctx context.Context) error { _, err := s.Idle(ctx, t0, 10); return err },
	}
	for name, call := range calls {
		deadlines := []time.Duration{50 * time.Millisecond}
		if name == "Load" {
			deadlines = append(deadlines, time.Minute) // no help from the caller
		}
		for _, d := range deadlines {
			ctx, cancel := context.WithTimeout(context.Background(), d)
			err := call(ctx)
			cancel()
			if err == nil || errors.Is(err, redisstate.ErrConflict) {
				t.Errorf("%s (deadline %v): err = %v, want a connection error", name, d, err)
			}
		}
	}
}

func TestShardLayout(t *testing.T) {
	t.Parallel()
	k := redisstate.Key{ChatID: -1001234567890, UserID: 987654321}
	sh := redisstate.ShardOf(k, 64)
	if sh < 0 || sh >= 64 {
		t.Fatalf("shard %d", sh)
	}
	want := "dq:{s" + pad2(sh) + "}:st:-1001234567890:987654321"
	if got := redisstate.StateKey("dq", sh, k); got != want {
		t.Fatalf("StateKey = %q, want %q", got, want)
	}
	if got := redisstate.OutboxKey("dq", 7); got != "dq:{s07}:outbox" {
		t.Fatal(got)
	}
	if got := redisstate.DeadKey("dq", 7); got != "dq:{s07}:dead" {
		t.Fatal(got)
	}
	if got := redisstate.ActiveKey("dq", 7); got != "dq:{s07}:active" {
		t.Fatal(got)
	}
	// Keys of a shard must share a Cluster slot, i.e. the same hash tag.
	tag := func(key string) string {
		i := strings.IndexByte(key, '{')
		j := strings.IndexByte(key[i+1:], '}')
		return key[i+1 : i+1+j]
	}
	for _, key := range []string{
		redisstate.StateKey("dq", sh, k), redisstate.OutboxKey("dq", sh),
		redisstate.DeadKey("dq", sh), redisstate.ActiveKey("dq", sh),
	} {
		if got := tag(key); got != "s"+pad2(sh) {
			t.Fatalf("hash tag of %q = %q", key, got)
		}
	}
}

func pad2(n int) string {
	s := strconv.Itoa(n)
	if len(s) < 2 {
		s = "0" + s
	}
	return s
}

func BenchmarkLoadCommit(b *testing.B) {
	s, _, _ := newStore(b, redisstate.Config{})
	ctx := context.Background()
	k := redisstate.Key{ChatID: -100500, UserID: 42}
	data := make([]byte, 300)
	b.ReportAllocs()
	for b.Loop() {
		snap, err := s.Load(ctx, k)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Commit(ctx, k, snap.Version, redisstate.Write{Data: data, Active: true, Now: t0}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoadCommitParallel(b *testing.B) {
	s, _, _ := newStore(b, redisstate.Config{})
	ctx := context.Background()
	data := make([]byte, 300)
	var next int64
	var mu sync.Mutex
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		mu.Lock()
		next++
		k := redisstate.Key{ChatID: next, UserID: next}
		mu.Unlock()
		for pb.Next() {
			snap, err := s.Load(ctx, k)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := s.Commit(ctx, k, snap.Version, redisstate.Write{Data: data, Active: true, Now: t0}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

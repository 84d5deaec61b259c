package redisstate_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/storage/redisstate"
	"github.com/dialoq/dialoq/storage/redisstate/redistest"
)

// writeLegacy stores a state the way releases before the string layout did: a hash
// with d (data, absent for a tombstone), v, u, t and r.
func writeLegacy(t testing.TB, rdb *redis.Client, key string, data []byte, version, last int64, recent []int64, at time.Time) {
	t.Helper()
	ctx := ctxT(t)
	ids := make([]string, len(recent))
	for i, id := range recent {
		ids[i] = strconv.FormatInt(id, 10)
	}
	fields := []any{"v", version, "t", at.UnixMilli()}
	if last > 0 {
		fields = append(fields, "u", last)
	}
	if len(recent) > 0 {
		fields = append(fields, "r", strings.Join(ids, " "))
	}
	if data != nil {
		fields = append(fields, "d", data)
	}
	if err := rdb.HSet(ctx, key, fields...).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.PExpire(ctx, key, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
}

// A running deployment upgrades in place: a state hash of the previous release must
// load as it was and turn into the string layout at its next Commit, which keeps
// its version and window of recent updates.
func TestLegacyHashUpgrades(t *testing.T) {
	t.Parallel()
	s, rdb, _ := newStore(t, redisstate.Config{TTL: 2 * time.Hour})
	ctx := ctxT(t)
	k := redisstate.Key{ChatID: 21, UserID: 22}
	writeLegacy(t, rdb, s.StateKey(k), []byte("old\nstate"), 3, 105, []int64{100, 101, 105}, t0)

	snap, err := s.Load(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	if !snap.Exists || string(snap.Data) != "old\nstate" || snap.Version != 3 || snap.LastUpdate != 105 ||
		!slices.Equal(snap.Recent, []int64{100, 101, 105}) || !snap.UpdatedAt.Equal(t0) {
		t.Fatalf("legacy snapshot %+v", snap)
	}
	if _, err := s.Commit(ctx, k, 3, redisstate.Write{Data: []byte("x"), UpdateID: 101, Now: t0}); !errors.Is(err, redisstate.ErrDuplicate) {
		t.Fatalf("update in the legacy window: %v, want ErrDuplicate", err)
	}
	if _, err := s.Commit(ctx, k, 2, redisstate.Write{Data: []byte("x"), UpdateID: 106, Now: t0}); !errors.Is(err, redisstate.ErrConflict) {
		t.Fatalf("stale version on a legacy hash: %v, want ErrConflict", err)
	}
	if typ := rdb.Type(ctx, s.StateKey(k)).Val(); typ != "hash" {
		t.Fatalf("refused commits rewrote the legacy state (%s)", typ)
	}
	at := t0.Add(time.Minute)
	got, err := s.Apply(ctx, k, func(redisstate.Snapshot) (redisstate.Write, error) {
		return redisstate.Write{Data: []byte("new"), UpdateID: 103, Active: true, Now: at}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if typ := rdb.Type(ctx, s.StateKey(k)).Val(); typ != "string" {
		t.Fatalf("after a commit the state is a %s", typ)
	}
	if ttl := rdb.PTTL(ctx, s.StateKey(k)).Val(); ttl <= time.Hour || ttl > 2*time.Hour {
		t.Fatalf("TTL %v after the upgrade, want the store's 2h", ttl)
	}
	again, err := s.Load(ctx, k)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{100, 101, 103, 105}
	if string(again.Data) != "new" || again.Version != 4 || again.LastUpdate != 105 || !slices.Equal(again.Recent, want) ||
		!again.UpdatedAt.Equal(at) || got.Version != 4 || !slices.Equal(got.Recent, want) {
		t.Fatalf("upgraded: loaded %+v, returned %+v", again, got)
	}
}

// A legacy tombstone, and one from before the window of recent updates (only the
// high-water mark u), still refuse a redelivery after the upgrade.
func TestLegacyTombstoneUpgrades(t *testing.T) {
	t.Parallel()
	s, rdb, _ := newStore(t, redisstate.Config{})
	ctx := ctxT(t)
	k := redisstate.Key{ChatID: 23, UserID: 24}
	writeLegacy(t, rdb, s.StateKey(k), nil, 7, 500, nil, t0)
	snap, err := s.Load(ctx, k)
	if err != nil || snap.Exists || snap.Version != 7 || snap.LastUpdate != 500 || snap.Recent != nil {
		t.Fatalf("legacy tombstone %+v, %v", snap, err)
	}
	if _, err := s.Commit(ctx, k, 7, redisstate.Write{Data: []byte("x"), UpdateID: 500, Now: t0}); !errors.Is(err, redisstate.ErrDuplicate) {
		t.Fatalf("redelivery onto a legacy tombstone: %v", err)
	}
	// A write that is not an update keeps the mark, now in the string layout.
	if _, err := s.Commit(ctx, k, 7, redisstate.Write{Now: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, k, 8, redisstate.Write{Data: []byte("x"), UpdateID: 499, Now: t0}); !errors.Is(err, redisstate.ErrDuplicate) {
		t.Fatalf("old update after the rewrite: %v", err)
	}
	snap, err = s.Load(ctx, k)
	if err != nil || snap.Exists || snap.Version != 8 || snap.LastUpdate != 500 || rdb.Type(ctx, s.StateKey(k)).Val() != "string" {
		t.Fatalf("rewritten tombstone %+v, %v", snap, err)
	}
}

// The layout is what Decode documents, and the script writes exactly that.
func TestStringLayout(t *testing.T) {
	t.Parallel()
	s, rdb, _ := newStore(t, redisstate.Config{})
	ctx := ctxT(t)
	k := redisstate.Key{ChatID: 25, UserID: 26}
	at := time.UnixMilli(1_795_564_112_345)
	for _, upd := range []int64{1_000_000_300, 1_000_000_200, 1_000_000_000} {
		if _, err := s.Apply(ctx, k, func(redisstate.Snapshot) (redisstate.Write, error) {
			return redisstate.Write{Data: []byte("data"), UpdateID: upd, Now: at}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := rdb.Get(ctx, s.StateKey(k)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	want := binary.AppendUvarint([]byte{1, 3}, uint64(at.UnixMilli()))
	want = append(want, 3, 0x80, 0x94, 0xeb, 0xdc, 0x03, 0xc8, 0x01, 0x64, 'd', 'd', 'a', 't', 'a')
	if !bytes.Equal(raw, want) {
		t.Fatalf("stored % x\nwant     % x", raw, want)
	}
	snap, err := redisstate.Decode(raw)
	if err != nil || snap.Version != 3 || !slices.Equal(snap.Recent, []int64{1_000_000_000, 1_000_000_200, 1_000_000_300}) ||
		snap.LastUpdate != 1_000_000_300 || !snap.UpdatedAt.Equal(at) || string(snap.Data) != "data" {
		t.Fatalf("Decode = %+v, %v", snap, err)
	}
}

func TestCorruptValue(t *testing.T) {
	t.Parallel()
	for _, b := range [][]byte{nil, {0}, {2, 1, 1, 0, 0}, {1}, {1, 1, 1}, {1, 1, 1, 0}, {1, 1, 1, 0, 0, 'x'},
		{1, 1, 1, 2, 5}, {1, 1, 1, 17, 1}, {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 0, 0}} {
		if _, err := redisstate.Decode(b); !errors.Is(err, redisstate.ErrCorrupt) {
			t.Errorf("Decode(% x) = %v, want ErrCorrupt", b, err)
		}
	}
	// A corrupt value is reported, not overwritten: the dialogue is not silently reset.
	s, rdb, _ := newStore(t, redisstate.Config{})
	ctx := ctxT(t)
	k := redisstate.Key{ChatID: 27, UserID: 28}
	if err := rdb.Set(ctx, s.StateKey(k), "\x01\xff", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(ctx, k); !errors.Is(err, redisstate.ErrCorrupt) {
		t.Errorf("Load: %v", err)
	}
	if _, err := s.Commit(ctx, k, 0, redisstate.Write{Data: []byte("x"), UpdateID: 1, Now: t0}); err == nil {
		t.Error("Commit over a corrupt value succeeded")
	}
	if v := rdb.Get(ctx, s.StateKey(k)).Val(); v != "\x01\xff" {
		t.Errorf("value now %q", v)
	}
}

// nearEnd is what the bot stores for the largest dialogue of the load test: the CSO
// questionnaire near its end, the 22-item training matrix answered (written by
// go test ./bot -run StoredEnvelopeFixture -update).
func nearEnd(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile("testdata/cso-near-end.envelope")
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// memoryUsage commits data with a full window of update ids under a key as long as
// a production one (prefix "dq", a ten-digit private chat), and returns MEMORY
// USAGE of the state key and the length of its value.
func memoryUsage(tb testing.TB, data []byte) (usage, value int64) {
	tb.Helper()
	rdb, _ := redistest.Client(tb)
	var r [2]byte
	_, _ = rand.Read(r[:])
	prefix := "m" + hex.EncodeToString(r[:]) // the length of "dq" plus a short random tag
	tb.Cleanup(func() { redistest.Clean(tb, rdb, prefix) })
	s := redisstate.New(rdb, redisstate.Config{Prefix: prefix})
	ctx := ctxT(tb)
	k := redisstate.Key{ChatID: 7000066123, UserID: 7000066123}
	upd := int64(812_345_678)
	for range redisstate.RecentUpdates {
		upd += 4000 // other chats' updates in between
		if _, err := s.Apply(ctx, k, func(redisstate.Snapshot) (redisstate.Write, error) {
			return redisstate.Write{Data: data, UpdateID: upd, Active: true, Now: time.Now()}, nil
		}); err != nil {
			tb.Fatal(err)
		}
	}
	key := s.StateKey(k)
	return rdb.MemoryUsage(ctx, key).Val(), rdb.StrLen(ctx, key).Val()
}

// TestStateMemory is the goal of at most 1 KB of Redis memory per dialogue, with
// Redis's default settings, on the largest dialogue of the load test.
func TestStateMemory(t *testing.T) {
	t.Parallel()
	usage, value := memoryUsage(t, nearEnd(t))
	t.Logf("near-end CSO dialogue: MEMORY USAGE %d bytes, value %d bytes", usage, value)
	if usage > 1024 {
		t.Errorf("MEMORY USAGE %d bytes, over 1 KB", usage)
	}
}

// BenchmarkStateMemory reports the memory of the near-end CSO dialogue, in the
// previous layout too (a hash, the envelope as JSON header, the window as decimals),
// measured the same way. Run with -benchtime 1x: the figure does not depend on b.N.
func BenchmarkStateMemory(b *testing.B) {
	for b.Loop() {
		usage, value := memoryUsage(b, nearEnd(b))
		b.ReportMetric(float64(usage), "redis-bytes")
		b.ReportMetric(float64(value), "value-bytes")
	}
	legacy, err := os.ReadFile("../../bot/testdata/cso-near-end.json-envelope")
	if err != nil {
		b.Fatal(err)
	}
	rdb, prefix := redistest.Client(b)
	key := redisstate.StateKey("m"+prefix[len(prefix)-4:], 7, redisstate.Key{ChatID: 7000066123, UserID: 7000066123})
	b.Cleanup(func() { rdb.Del(ctxT(b), key) })
	recent := make([]int64, redisstate.RecentUpdates)
	for i := range recent {
		recent[i] = 812_345_678 + 4000*int64(i+1)
	}
	writeLegacy(b, rdb, key, legacy, 16, recent[len(recent)-1], recent, time.Now())
	b.ReportMetric(float64(rdb.MemoryUsage(ctxT(b), key).Val()), "legacy-redis-bytes")
}

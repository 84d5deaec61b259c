// Package redistest connects tests to the real Redis they run against and
// gives each test its own key prefix, so parallel tests and concurrent runs of
// the suite never see each other's keys.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultURL is used when DIALOQ_TEST_REDIS_URL is unset; database 15 keeps
// tests away from data in the default database.
const DefaultURL = "redis://127.0.0.1:6379/15"

// URL returns the Redis URL tests should use.
func URL() string {
	if u := os.Getenv("DIALOQ_TEST_REDIS_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// Client returns a client for the test Redis and a prefix unique to this test
// and run. Every key under the prefix is removed when the test ends. The test
// fails (it does not skip) if Redis is unreachable: these tests are about
// Redis behaviour and must not pass silently without it.
func Client(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	opt, err := redis.ParseURL(URL())
	if err != nil {
		tb.Fatalf("redistest: parse %s: %v", URL(), err)
	}
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		tb.Fatalf("redistest: redis at %s unreachable (set DIALOQ_TEST_REDIS_URL): %v", URL(), err)
	}
	prefix := Prefix()
	tb.Cleanup(func() {
		Clean(tb, rdb, prefix)
		_ = rdb.Close()
	})
	return rdb, prefix
}

// Prefix returns a fresh random key prefix. Hex only, so it is never a glob
// pattern and never contains a hash-tag brace.
func Prefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "dqtest-" + hex.EncodeToString(b[:])
}

// Clean deletes every key starting with prefix+":".
func Clean(tb testing.TB, rdb redis.UniversalClient, prefix string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	iter := rdb.Scan(ctx, 0, prefix+":*", 500).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		tb.Errorf("redistest: scan %s: %v", prefix, err)
		return
	}
	// One DEL per key: keys of different shards are in different slots.
	for _, k := range keys {
		if err := rdb.Del(ctx, k).Err(); err != nil {
			tb.Errorf("redistest: del %s: %v", k, err)
		}
	}
}

// Counter is a go-redis hook counting round trips: a single command and a
// whole pipeline (or MULTI) each count as one. The handshake go-redis runs on a
// freshly dialled connection (HELLO, SELECT, CLIENT SETINFO, AUTH) also passes
// through hooks; it is not counted because it belongs to the pool, not to the
// operation being measured.
type Counter struct {
	n atomic.Int64
}

// N returns the number of round trips seen.
func (c *Counter) N() int64 { return c.n.Load() }

// Reset sets the count to zero.
func (c *Counter) Reset() { c.n.Store(0) }

// DialHook implements redis.Hook.
func (c *Counter) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (c *Counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *Counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) == 0 || !handshake(cmds[0]) {
			c.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "select", "client", "auth":
		return true
	}
	return false
}

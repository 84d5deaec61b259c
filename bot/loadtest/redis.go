package loadtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/storage/redisstate"
)

// cmdCounter is a go-redis hook counting what the in-process bots ask of Redis:
// commands by name and round trips (a pipeline or MULTI is one). The hot path of an
// update is the state Load (a script reading either layout of a state key), the Commit script (EVALSHA, or EVAL when the
// server does not know the script yet, on the state's 3 keys) and, when a dialogue
// starts or ends, the user-index pipeline after the commit (SADD/SREM/HINCRBY);
// everything else is the outbox worker and the sweeper, counted apart.
type cmdCounter struct {
	mu     sync.Mutex
	byName map[string]int64
	rtt    int64
	hot    int64
}

func newCmdCounter() *cmdCounter { return &cmdCounter{byName: map[string]int64{}} }

func (c *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			c.mu.Lock()
			c.rtt++
			c.byName[cmd.FullName()]++
			if hotCommand(cmd) {
				c.hot++
			}
			c.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}

func (c *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && !handshake(cmds[0]) {
			c.mu.Lock()
			c.rtt++
			index := false
			for _, cmd := range cmds {
				c.byName[cmd.FullName()]++
				switch cmd.Name() {
				case "sadd", "srem", "hincrby":
					index = true
				}
			}
			if index {
				c.hot++
			}
			c.mu.Unlock()
		}
		return next(ctx, cmds)
	}
}

// handshake commands belong to a new connection, not to the operation measured.
func handshake(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "hello", "select", "client", "auth":
		return true
	}
	return false
}

// hotCommand tells the state Load and Commit from the other scripts: the commit
// script is the only one on three keys, the load script the only one on a state key
// alone.
func hotCommand(cmd redis.Cmder) bool {
	switch cmd.Name() {
	case "evalsha", "eval":
		args := cmd.Args()
		if len(args) < 4 {
			return false
		}
		switch fmt.Sprint(args[2]) {
		case "3":
			return true
		case "1":
			return strings.Contains(fmt.Sprint(args[3]), ":st:")
		}
	}
	return false
}

type cmdSnapshot struct {
	byName   map[string]int64
	rtt, hot int64
}

func (c *cmdCounter) snapshot() cmdSnapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]int64, len(c.byName))
	for k, v := range c.byName {
		m[k] = v
	}
	return cmdSnapshot{byName: m, rtt: c.rtt, hot: c.hot}
}

func (s cmdSnapshot) sub(o cmdSnapshot) cmdSnapshot {
	m := map[string]int64{}
	for k, v := range s.byName {
		if d := v - o.byName[k]; d != 0 {
			m[k] = d
		}
	}
	return cmdSnapshot{byName: m, rtt: s.rtt - o.rtt, hot: s.hot - o.hot}
}

func (s cmdSnapshot) total() int64 {
	var n int64
	for _, v := range s.byName {
		n += v
	}
	return n
}

// commandStats reads INFO commandstats: calls per command, as the server counts them
// (commands a script runs included). It is how the commands of bot processes are
// counted; on a shared server other clients' commands are in it too.
func commandStats(ctx context.Context, rdb redis.UniversalClient) (map[string]int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("loadtest: INFO commandstats: %w", err)
	}
	out := map[string]int64{}
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		for kv := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				out[name] = n
			}
		}
	}
	return out, nil
}

// infoInt reads one integer field of an INFO section.
func infoInt(ctx context.Context, rdb redis.UniversalClient, section, field string) (int64, error) {
	info, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return 0, fmt.Errorf("loadtest: INFO %s: %w", section, err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("loadtest: INFO %s has no %s", section, field)
}

// memSampler measures what a dialogue costs Redis: MEMORY USAGE of state keys
// (key, value and allocator overhead) and the stored envelope's length, sampled
// while dialogues are in progress and averaged.
type memSampler struct {
	rdb    redis.UniversalClient
	prefix string
	shards int

	mu        sync.Mutex
	keys      int64 // state keys measured
	usage     int64 // sum of MEMORY USAGE
	data      int64 // sum of the lengths of the states' data (the bot's envelopes)
	maxUsage  int64 // largest MEMORY USAGE seen
	maxActive int64 // most dialogues in the activity index at one sample
	usedAt    int64 // used_memory at that sample
}

const memSampleKeys = 100

// sample measures up to memSampleKeys state keys found by SCAN.
func (m *memSampler) sample(ctx context.Context) error {
	pattern := m.prefix + ":{s*}:st:*"
	var keys []string
	iter := m.rdb.Scan(ctx, 0, pattern, 1000).Iterator()
	for len(keys) < memSampleKeys && iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("loadtest: scan state keys: %w", err)
	}
	pipe := m.rdb.Pipeline()
	usage := make([]*redis.IntCmd, len(keys))
	values := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		usage[i] = pipe.MemoryUsage(ctx, k)
		values[i] = pipe.Get(ctx, k)
	}
	active := make([]*redis.IntCmd, m.shards)
	for s := range m.shards {
		active[s] = pipe.ZCard(ctx, redisstate.ActiveKey(m.prefix, s))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return fmt.Errorf("loadtest: memory usage: %w", err)
	}
	var n, u, d, act int64
	for i := range keys {
		if usage[i].Err() != nil || values[i].Err() != nil {
			continue // expired
		}
		snap, err := redisstate.Decode([]byte(values[i].Val()))
		if err != nil || len(snap.Data) == 0 {
			continue // a tombstone of a finished dialogue
		}
		n++
		u += usage[i].Val()
		d += int64(len(snap.Data))
		m.mu.Lock()
		m.maxUsage = max(m.maxUsage, usage[i].Val())
		m.mu.Unlock()
	}
	for _, c := range active {
		act += c.Val()
	}
	used, _ := infoInt(ctx, m.rdb, "memory", "used_memory")
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys += n
	m.usage += u
	m.data += d
	if act > m.maxActive {
		m.maxActive, m.usedAt = act, used
	}
	return nil
}

func (m *memSampler) averages() (usage, data float64, samples int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys == 0 {
		return 0, 0, 0
	}
	return float64(m.usage) / float64(m.keys), float64(m.data) / float64(m.keys), m.keys
}

// deleteKeys removes every key matching prefix:* (one UNLINK per key: keys of
// different shards may live in different cluster slots).
func deleteKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	iter := rdb.Scan(ctx, 0, prefix+":*", 1000).Iterator()
	pipe := rdb.Pipeline()
	n := 0
	for iter.Next(ctx) {
		pipe.Unlink(ctx, iter.Val())
		if n++; n%500 == 0 {
			if _, err := pipe.Exec(ctx); err != nil {
				return fmt.Errorf("loadtest: delete %s:*: %w", prefix, err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("loadtest: scan %s:*: %w", prefix, err)
	}
	if _, err := pipe.Exec(ctx); err != nil && n > 0 {
		return fmt.Errorf("loadtest: delete %s:*: %w", prefix, err)
	}
	return nil
}

// ownRedis is a private redis-server with the AOF on, restartable on the same port
// and directory.
type ownRedis struct {
	p    *proc
	addr string
}

func startOwnRedis(ctx context.Context, bin, dir string, extra []string) (*ownRedis, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := strings.Cut(addr, ":")
	data := filepath.Join(dir, "redis")
	if err := os.MkdirAll(data, 0o750); err != nil {
		return nil, fmt.Errorf("loadtest: redis dir: %w", err)
	}
	r := &ownRedis{addr: addr, p: &proc{
		name: "redis-server", bin: bin, log: filepath.Join(dir, "redis.log"), env: os.Environ(),
		args: []string{"--bind", "127.0.0.1", "--port", port, "--dir", data, "--save", "",
			"--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "yes"},
	}}
	r.p.args = append(r.p.args, extra...)
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *ownRedis) url() string { return "redis://" + r.addr + "/0" }

func (r *ownRedis) start(ctx context.Context) error {
	if err := r.p.start(); err != nil {
		return err
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		// PING answers LOADING while the AOF is read back.
		if err := rdb.Ping(ctx).Err(); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("loadtest: own redis-server on %s did not come up (see %s)", r.addr, r.p.log)
}

// stop shuts Redis down with SIGTERM, which makes it write and fsync the AOF.
func (r *ownRedis) stop() { r.p.stop(syscall.SIGTERM, 10*time.Second) }

// Package outbox delivers the entries that redisstate.Commit appends to the
// per-shard outbox streams (see package redisstate for the key layout) to
// the central store.
//
// Every replica runs one Worker. All workers share one consumer group per
// shard stream, so XREADGROUP hands each new entry to exactly one of them.
// An entry is acknowledged (XACK, and XDEL so the stream only holds
// undelivered work) only after the Poster succeeded. Entries left pending by a
// replica that crashed are taken over with XAUTOCLAIM once they have been idle
// longer than ClaimIdle.
//
// Delivery is therefore at-least-once: a Poster can see an entry twice when a
// worker crashes between Post and XACK, or when a slow worker's entry is
// claimed by another one (Post slower than ClaimIdle/2 makes that possible).
// Entries carry their own submission id and the central store's POST is
// idempotent by that id, so such duplicates are harmless. The stream entry id
// is not that key: it is not known to the producer of the submission.
//
// Every command touches one key (one slot), so the worker runs unchanged on
// Redis Cluster; acknowledging and dead-lettering are MULTI transactions on
// the shard's own slot.
//
// Transient Post errors are retried in place with exponential backoff and full
// jitter (the downstream is shared, so a failing central store should slow the
// whole worker, not be hammered with other entries). Permanent errors
// (Config.Permanent) and entries that failed MaxAttempts times go to the
// shard's dead stream with the reason; their content is never logged.
package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/storage/redisstate"
)

// Poster posts one entry to the central store. It should return an error
// wrapping ErrPermanent (or one the configured Permanent accepts) when
// retrying cannot help, e.g. on an HTTP 4xx. It should bound its own duration
// well below ClaimIdle/2.
type Poster interface {
	Post(ctx context.Context, entry []byte) error
}

// PosterFunc adapts a function, such as a central store client's method
// value, to Poster.
type PosterFunc func(ctx context.Context, entry []byte) error

// Post calls f.
func (f PosterFunc) Post(ctx context.Context, entry []byte) error { return f(ctx, entry) }

// ErrPermanent marks a Post error that retrying cannot fix; the default
// Config.Permanent tests for it with errors.Is.
var ErrPermanent = errors.New("outbox: permanent delivery error")

// Defaults for zero Config fields.
const (
	DefaultGroup       = "delivery"
	DefaultBatch       = 10
	DefaultMinBackoff  = 200 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
	DefaultClaimIdle   = 2 * time.Minute
	DefaultMaxAttempts = 20
	DefaultPoll        = time.Second
)

// Config configures a Worker. Zero values get the defaults above; Prefix and
// Shards must match the redisstate.Store's.
type Config struct {
	Prefix string
	Shards int
	// Group is the consumer group shared by all replicas.
	Group string
	// Consumer must be unique per replica; default hostname-pid-random.
	Consumer string
	// Batch is the number of entries read (and claimed) per shard per pass.
	Batch int
	// MinBackoff and MaxBackoff bound the full-jitter exponential backoff
	// between attempts of one entry and after Redis errors. MaxBackoff plus
	// a Post's duration should stay below ClaimIdle, or other replicas take
	// the entry over while it is being retried.
	MinBackoff, MaxBackoff time.Duration
	// ClaimIdle is how long an entry must sit unacknowledged before another
	// consumer takes it over (its owner is presumed crashed).
	ClaimIdle time.Duration
	// MaxAttempts is the number of failed deliveries after which an entry
	// is dead-lettered. Deliveries to crashed consumers count too, so an
	// entry that crashes its consumer cannot loop forever.
	MaxAttempts int
	// Permanent reports whether a Post error should dead-letter the entry
	// at once; default errors.Is(err, ErrPermanent).
	Permanent func(error) bool
	Logger    *slog.Logger
	// Clock and Sleep are injectable for tests. Sleep must return ctx.Err()
	// when ctx ends first.
	Clock func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	// Poll is the pause after a pass that found nothing in any shard.
	// Reads do not BLOCK: a blocking read holds a connection per shard, and
	// one multi-stream read would span slots on Cluster.
	Poll time.Duration
}

// Stats are counters for metrics and tests.
type Stats struct {
	// Pending is the number of entries read by some consumer but not yet
	// acknowledged, over all shards.
	Pending int64
	// Dead is the length of the dead-letter streams, over all shards.
	Dead int64
	// Delivered is the number of entries this Worker posted successfully
	// since it was created.
	Delivered int64
	// Queued is the number of entries not yet acknowledged, read or not
	// (the outbox streams' length): the delivery backlog.
	Queued int64
}

// Worker delivers outbox entries. Create it with NewWorker and call Run once.
type Worker struct {
	rdb       redis.UniversalClient
	poster    Poster
	cfg       Config
	log       *slog.Logger
	outbox    []string
	dead      []string
	delivered atomic.Int64
	running   atomic.Bool
}

// NewWorker returns a Worker posting entries to p.
func NewWorker(rdb redis.UniversalClient, p Poster, cfg Config) *Worker {
	if cfg.Prefix == "" {
		cfg.Prefix = redisstate.DefaultPrefix
	}
	if cfg.Shards <= 0 {
		cfg.Shards = redisstate.DefaultShards
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Consumer == "" {
		cfg.Consumer = defaultConsumer()
	}
	if cfg.Batch <= 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	if cfg.ClaimIdle <= 0 {
		cfg.ClaimIdle = DefaultClaimIdle
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.Permanent == nil {
		cfg.Permanent = func(err error) bool { return errors.Is(err, ErrPermanent) }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = Sleep
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	w := &Worker{
		rdb:    rdb,
		poster: p,
		cfg:    cfg,
		log:    cfg.Logger.With("component", "outbox", "consumer", cfg.Consumer),
		outbox: make([]string, cfg.Shards),
		dead:   make([]string, cfg.Shards),
	}
	for shard := range cfg.Shards {
		w.outbox[shard] = redisstate.OutboxKey(cfg.Prefix, shard)
		w.dead[shard] = redisstate.DeadKey(cfg.Prefix, shard)
	}
	if cfg.MaxBackoff >= cfg.ClaimIdle {
		w.log.Warn("outbox: MaxBackoff >= ClaimIdle; entries being retried may be claimed by other replicas and posted twice",
			"max_backoff", cfg.MaxBackoff, "claim_idle", cfg.ClaimIdle)
	}
	return w
}

func defaultConsumer() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}

// Sleep waits d, or returns ctx.Err() as soon as ctx ends: the default
// Config.Sleep, and the one the bot's retries use too.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// runState is what one Run remembers between passes.
type runState struct {
	ready  []bool   // consumer group known to exist
	cursor []string // XAUTOCLAIM scan position
}

// Run delivers entries until ctx is done, then returns nil. Redis errors are
// logged and retried with backoff rather than returned, so a replica that
// starts before Redis (or outlives a failover) keeps working. Entries being
// posted when ctx ends stay pending and are claimed later.
func (w *Worker) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("outbox: Run called twice on one Worker")
	}
	defer w.running.Store(false)
	st := &runState{ready: make([]bool, w.cfg.Shards), cursor: make([]string, w.cfg.Shards)}
	for i := range st.cursor {
		st.cursor[i] = "0-0"
	}
	failures := 0
	for ctx.Err() == nil {
		n, err := w.pass(ctx, st)
		if ctx.Err() != nil {
			break
		}
		var pause time.Duration
		switch {
		case err != nil:
			failures++
			pause = w.backoff(failures)
			w.log.Warn("outbox: pass failed", "err", err, "retry_in", pause)
		case n == 0:
			failures = 0
			pause = w.cfg.Poll
		default:
			failures = 0
			continue
		}
		if err := w.cfg.Sleep(ctx, pause); err != nil {
			break
		}
	}
	return nil
}

// pass visits every shard once, claiming abandoned entries and reading new
// ones, and returns the number of entries handled. Shards are read one at a
// time, each right before its entries are posted: reading every shard up
// front would leave entries of later shards sitting in this consumer's
// pending list long enough for other replicas to claim them.
func (w *Worker) pass(ctx context.Context, st *runState) (int, error) {
	handled := 0
	var errs []error
	if err := w.ensureGroups(ctx, st); err != nil {
		// Shards whose group exists can still be served.
		errs = append(errs, err)
	}
	for shard := range w.cfg.Shards {
		if !st.ready[shard] {
			continue
		}
		n, err := w.serveShard(ctx, st, shard)
		handled += n
		if err != nil {
			if ctx.Err() != nil {
				return handled, ctx.Err()
			}
			errs = append(errs, err)
			if st.ready[shard] {
				// Not a lost group but Redis itself failing: the other
				// shards would only fail the same way, one slow dial
				// after another.
				return handled, errors.Join(errs...)
			}
		}
	}
	return handled, errors.Join(errs...)
}

// serveShard claims and reads up to Batch entries each from one shard, in
// one round trip (both commands are on the shard's slot), and delivers them.
func (w *Worker) serveShard(ctx context.Context, st *runState, shard int) (int, error) {
	pipe := w.rdb.Pipeline()
	claim := pipe.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream:   w.outbox[shard],
		Group:    w.cfg.Group,
		Consumer: w.cfg.Consumer,
		MinIdle:  w.cfg.ClaimIdle,
		Start:    st.cursor[shard],
		Count:    int64(w.cfg.Batch),
	})
	read := pipe.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    w.cfg.Group,
		Consumer: w.cfg.Consumer,
		Streams:  []string{w.outbox[shard], ">"},
		Count:    int64(w.cfg.Batch),
		Block:    -1, // no BLOCK argument: see Config.Poll
	})
	// Exec reports the first failed command; both are examined below.
	_, _ = pipe.Exec(ctx)
	readAt := w.cfg.Clock()

	handled := 0
	claimed, next, err := claim.Result()
	if err != nil {
		return 0, w.shardErr(st, shard, "claim", err)
	}
	st.cursor[shard] = next
	if len(claimed) > 0 {
		n, err := w.deliverClaimed(ctx, shard, claimed, readAt)
		handled += n
		if err != nil {
			return handled, err
		}
	}
	streams, err := read.Result()
	if errors.Is(err, redis.Nil) {
		return handled, nil
	}
	if err != nil {
		return handled, w.shardErr(st, shard, "read", err)
	}
	for _, s := range streams {
		for _, m := range s.Messages {
			if err := w.deliver(ctx, shard, m, 0, readAt); err != nil {
				return handled, err
			}
			handled++
		}
	}
	return handled, nil
}

// shardErr notes a missing group (the stream was deleted, or Redis lost its
// data) so that the next pass recreates it, and wraps err.
func (w *Worker) shardErr(st *runState, shard int, op string, err error) error {
	if redis.HasErrorPrefix(err, "NOGROUP") {
		st.ready[shard] = false
		st.cursor[shard] = "0-0"
	}
	return fmt.Errorf("outbox: %s %s: %w", op, w.outbox[shard], err)
}

// ensureGroups creates the consumer group of every shard not known to have
// one. Starting at ID 0 delivers entries committed before any worker ran.
func (w *Worker) ensureGroups(ctx context.Context, st *runState) error {
	pipe := w.rdb.Pipeline()
	cmds := make([]*redis.StatusCmd, w.cfg.Shards)
	missing := false
	for shard, ok := range st.ready {
		if !ok {
			cmds[shard] = pipe.XGroupCreateMkStream(ctx, w.outbox[shard], w.cfg.Group, "0")
			missing = true
		}
	}
	if !missing {
		return nil
	}
	_, _ = pipe.Exec(ctx)
	var errs []error
	for shard, cmd := range cmds {
		if cmd == nil {
			continue
		}
		if err := cmd.Err(); err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
			errs = append(errs, fmt.Errorf("outbox: create group on %s: %w", w.outbox[shard], err))
			continue
		}
		st.ready[shard] = true
	}
	return errors.Join(errs...)
}

// deliverClaimed delivers entries taken over from other consumers, counting
// their earlier deliveries as failed attempts.
func (w *Worker) deliverClaimed(ctx context.Context, shard int, msgs []redis.XMessage, readAt time.Time) (int, error) {
	pend, err := w.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream:   w.outbox[shard],
		Group:    w.cfg.Group,
		Start:    msgs[0].ID,
		End:      msgs[len(msgs)-1].ID,
		Count:    int64(len(msgs)),
		Consumer: w.cfg.Consumer,
	}).Result()
	if err != nil {
		return 0, fmt.Errorf("outbox: pending of %s: %w", w.outbox[shard], err)
	}
	count := make(map[string]int64, len(pend))
	for _, p := range pend {
		count[p.ID] = p.RetryCount
	}
	for i, m := range msgs {
		// The claim itself counted as a delivery; earlier ones were
		// attempts that never got acknowledged.
		prior := max(int(count[m.ID])-1, 0)
		w.log.Info("outbox: claimed abandoned entry", "shard", shard, "id", m.ID, "deliveries", prior)
		if err := w.deliver(ctx, shard, m, prior, readAt); err != nil {
			return i, err
		}
	}
	return len(msgs), nil
}

// deliver posts one entry until it is acknowledged, dead-lettered, or lost
// to another consumer. A returned error is a Redis or context error; the
// entry then stays pending and is claimed again later.
func (w *Worker) deliver(ctx context.Context, shard int, m redis.XMessage, prior int, readAt time.Time) error {
	raw, ok := m.Values["e"].(string)
	if !ok {
		return w.bury(ctx, shard, m, prior, "malformed outbox entry: no field e")
	}
	if prior >= w.cfg.MaxAttempts {
		return w.bury(ctx, shard, m, prior, fmt.Sprintf("gave up after %d unacknowledged deliveries", prior))
	}
	attempts := prior
	fresh := readAt // when the entry's idle time was last reset
	for {
		// Retries always re-own the entry; a first attempt only when it
		// waited in the batch long enough to be near claimable.
		if attempts > prior || w.cfg.Clock().Sub(fresh) > w.cfg.ClaimIdle/2 {
			owned, err := w.touch(ctx, shard, m.ID)
			if err != nil {
				return err
			}
			if !owned {
				w.log.Info("outbox: entry taken over by another consumer", "shard", shard, "id", m.ID)
				return nil
			}
			fresh = w.cfg.Clock()
		}
		err := w.poster.Post(ctx, []byte(raw))
		attempts++
		if err == nil {
			return w.ack(ctx, shard, m.ID)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if w.cfg.Permanent(err) {
			return w.bury(ctx, shard, m, attempts, "permanent error: "+err.Error())
		}
		if attempts >= w.cfg.MaxAttempts {
			return w.bury(ctx, shard, m, attempts, fmt.Sprintf("gave up after %d attempts: %v", attempts, err))
		}
		d := w.backoff(attempts)
		w.log.Warn("outbox: delivery failed, will retry",
			"shard", shard, "id", m.ID, "attempt", attempts, "retry_in", d, "err", err)
		if err := w.cfg.Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// touchScript resets an entry's idle time if this consumer still owns it,
// so that other replicas do not claim an entry that is being retried; a plain
// XCLAIM would steal it back from a consumer that already took it over.
var touchScript = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then
  return 0
end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
`)

func (w *Worker) touch(ctx context.Context, shard int, id string) (bool, error) {
	n, err := touchScript.Run(ctx, w.rdb, []string{w.outbox[shard]}, w.cfg.Group, w.cfg.Consumer, id).Int()
	if err != nil {
		return false, fmt.Errorf("outbox: touch %s %s: %w", w.outbox[shard], id, err)
	}
	return n == 1, nil
}

func (w *Worker) ack(ctx context.Context, shard int, id string) error {
	_, err := w.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAck(ctx, w.outbox[shard], w.cfg.Group, id)
		p.XDel(ctx, w.outbox[shard], id)
		return nil
	})
	if err != nil {
		// Posted but not acknowledged: it will be claimed and posted again,
		// which the idempotent central store absorbs.
		return fmt.Errorf("outbox: ack %s %s: %w", w.outbox[shard], id, err)
	}
	w.delivered.Add(1)
	return nil
}

// bury moves an entry to the dead stream, keeping its original fields, and
// acknowledges it, atomically on the shard's slot.
func (w *Worker) bury(ctx context.Context, shard int, m redis.XMessage, attempts int, reason string) error {
	values := []any{
		"id", m.ID,
		"reason", reason,
		"attempts", attempts,
		"consumer", w.cfg.Consumer,
		"at", w.cfg.Clock().UnixMilli(),
	}
	if raw, ok := m.Values["e"]; ok {
		values = append(values, "e", raw)
	} else {
		for k, v := range m.Values {
			values = append(values, "orig:"+k, v)
		}
	}
	_, err := w.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: w.dead[shard], Values: values})
		p.XAck(ctx, w.outbox[shard], w.cfg.Group, m.ID)
		p.XDel(ctx, w.outbox[shard], m.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("outbox: dead-letter %s %s: %w", w.outbox[shard], m.ID, err)
	}
	w.log.Error("outbox: entry dead-lettered",
		"shard", shard, "id", m.ID, "attempts", attempts, "reason", reason, "dead_stream", w.dead[shard])
	return nil
}

// backoff is "full jitter": uniform in [0, min(MaxBackoff, MinBackoff*2^(n-1))],
// which spreads replicas retrying against the same recovering store.
func (w *Worker) backoff(n int) time.Duration {
	ceil := w.cfg.MinBackoff
	for i := 1; i < n && ceil < w.cfg.MaxBackoff; i++ {
		ceil *= 2
	}
	ceil = min(ceil, w.cfg.MaxBackoff)
	return mrand.N(ceil + 1)
}

// Stats reads the pending, dead and queued counts of all shards in one
// pipeline.
func (w *Worker) Stats(ctx context.Context) (Stats, error) {
	pipe := w.rdb.Pipeline()
	pend := make([]*redis.XPendingCmd, w.cfg.Shards)
	dead := make([]*redis.IntCmd, w.cfg.Shards)
	queued := make([]*redis.IntCmd, w.cfg.Shards)
	for shard := range w.cfg.Shards {
		pend[shard] = pipe.XPending(ctx, w.outbox[shard], w.cfg.Group)
		dead[shard] = pipe.XLen(ctx, w.dead[shard])
		queued[shard] = pipe.XLen(ctx, w.outbox[shard])
	}
	_, _ = pipe.Exec(ctx)
	st := Stats{Delivered: w.delivered.Load()}
	for shard := range w.cfg.Shards {
		p, err := pend[shard].Result()
		switch {
		case err == nil:
			st.Pending += p.Count
		case redis.HasErrorPrefix(err, "NOGROUP"):
			// No worker has run on this shard yet: nothing pending.
		default:
			return Stats{}, fmt.Errorf("outbox: stats %s: %w", w.outbox[shard], err)
		}
		d, err := dead[shard].Result()
		if err != nil {
			return Stats{}, fmt.Errorf("outbox: stats %s: %w", w.dead[shard], err)
		}
		st.Dead += d
		q, err := queued[shard].Result()
		if err != nil {
			return Stats{}, fmt.Errorf("outbox: stats %s: %w", w.outbox[shard], err)
		}
		st.Queued += q
	}
	return st, nil
}

// Consumer returns the consumer name this Worker reads as.
func (w *Worker) Consumer() string { return w.cfg.Consumer }

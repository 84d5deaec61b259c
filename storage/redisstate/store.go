package redisstate

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTTL is how long an untouched state survives.
const DefaultTTL = 30 * 24 * time.Hour

// DefaultMaxAttempts bounds Apply's optimistic retries.
const DefaultMaxAttempts = 5

var (
	// ErrConflict means the stored version is not the expected one: somebody
	// else committed in between. Apply reloads and retries.
	ErrConflict = errors.New("redisstate: version conflict")
	// ErrDuplicate means the update_id was already applied to this dialogue
	// (Telegram redelivered it); nothing was written.
	ErrDuplicate = errors.New("redisstate: duplicate update")
)

// Config configures a Store. Zero values get defaults.
type Config struct {
	// Prefix of every key; default "dq".
	Prefix string
	// Shards is the number of hash-tag shards; default 64. Changing it
	// orphans existing state and outbox entries (see the package doc).
	Shards int
	// TTL of a state after its last write; default 30 days.
	TTL time.Duration
	// MaxAttempts bounds Apply's Load+Commit attempts on ErrConflict;
	// default 5.
	MaxAttempts int
}

// Store reads and writes dialogue states. It is safe for concurrent use.
type Store struct {
	rdb redis.UniversalClient
	cfg Config
}

// Snapshot is a loaded (or just committed) state.
type Snapshot struct {
	Data []byte
	// Version is 0 for a dialogue never written (or removed by Delete). It
	// keeps counting after a Commit with nil Data, so pass it unchanged as
	// Commit's expect.
	Version int64
	// LastUpdate is the highest Telegram update_id applied.
	LastUpdate int64
	// Recent are the update_ids applied last (at most RecentUpdates), which
	// tell a redelivery from an older update that arrives late.
	Recent []int64
	// Exists reports whether there is state data (false for a tombstone).
	Exists bool
	// UpdatedAt is the Now of the last Commit (zero if never written).
	UpdatedAt time.Time
}

// Write is what a Commit stores.
type Write struct {
	// Data is the new state; nil deletes the data (e.g. cancel or finish)
	// while keeping the version and update_id watermark as a tombstone.
	Data []byte
	// UpdateID is the Telegram update_id being applied (0 = not from an
	// update, no deduplication).
	UpdateID int64
	// Outbox entries are appended to the shard's outbox stream in the same
	// atomic step. They must carry their own idempotency id: delivery is
	// at-least-once.
	Outbox [][]byte
	// Active keeps the dialogue in the activity index; false removes it.
	Active bool
	// Now is the time of the write; the store has no clock of its own so
	// tests control time.
	Now time.Time
}

// New returns a Store using rdb, which may be a single node, a failover or a
// cluster client.
func New(rdb redis.UniversalClient, cfg Config) *Store {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.Shards <= 0 {
		cfg.Shards = DefaultShards
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	return &Store{rdb: rdb, cfg: cfg}
}

// Shard returns the shard k lives in.
func (s *Store) Shard(k Key) int { return ShardOf(k, s.cfg.Shards) }

// StateKey returns the Redis key of k's state.
func (s *Store) StateKey(k Key) string { return StateKey(s.cfg.Prefix, s.Shard(k), k) }

// Load reads the state of k in one round trip. A missing state is not an
// error: it returns a Snapshot with Exists false.
func (s *Store) Load(ctx context.Context, k Key) (Snapshot, error) {
	res, err := loadScript.Run(ctx, s.rdb, []string{s.StateKey(k)}).Result()
	if errors.Is(err, redis.Nil) {
		return Snapshot{}, nil
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("redisstate: load %s: %w", k, err)
	}
	var snap Snapshot
	switch v := res.(type) {
	case string:
		snap, err = Decode([]byte(v))
	case []any:
		snap, err = decodeHash(v)
	default:
		err = fmt.Errorf("unexpected script reply %T", res)
	}
	if err != nil {
		return Snapshot{}, fmt.Errorf("redisstate: load %s: %w", k, err)
	}
	return snap, nil
}

// loadScript reads a state in either layout. A script and not a GET because a state
// written by an older release is a hash until its next Commit, and Load must stay
// one round trip for those too.
var loadScript = redis.NewScript(`
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then
  return false
end
if kind == 'hash' then
  return redis.call('HMGET', KEYS[1], 'd', 'v', 'u', 't', 'r')
end
return redis.call('GET', KEYS[1])
`)

// layout starts every state value; a later layout gets another first byte.
const layout = 1

// ErrCorrupt means a stored state value could not be read.
var ErrCorrupt = errors.New("redisstate: corrupt state value")

// Decode reads a state value as Commit stores it, for tools that read state keys
// themselves. Data aliases value.
//
// The value is one string rather than a hash because with Redis's default
// hash-max-listpack-value (64) a hash holding a state of a few hundred bytes is a
// hashtable, which costs several hundred bytes per key more than the state. It is:
//
//	0x01 (layout), uvarint version, uvarint updated-at (unix ms),
//	uvarint n (how many recent update ids), then
//	  n = 0: uvarint last applied update id (of a state from before the window), or
//	  n > 0: the lowest id, then the n-1 gaps to the next higher one,
//	then nothing for a tombstone, or 'd' and the data.
//
// The highest recent id is the last applied one: the window always keeps it.
func Decode(value []byte) (Snapshot, error) {
	if len(value) == 0 || value[0] != layout {
		return Snapshot{}, ErrCorrupt
	}
	b := value[1:]
	next := func() int64 {
		v, n := binary.Uvarint(b)
		if n <= 0 || v > math.MaxInt64 {
			b = nil
			return -1
		}
		b = b[n:]
		return int64(v)
	}
	var snap Snapshot
	snap.Version = next()
	ms := next()
	n := next()
	if n > RecentUpdates {
		return Snapshot{}, ErrCorrupt
	}
	if n == 0 {
		snap.LastUpdate = next()
	}
	for i := range n {
		id := next()
		if i > 0 {
			id += snap.Recent[i-1]
		}
		snap.Recent = append(snap.Recent, id)
		snap.LastUpdate = id
	}
	if b == nil || snap.Version < 0 || ms < 0 || snap.LastUpdate < 0 {
		return Snapshot{}, ErrCorrupt
	}
	snap.UpdatedAt = time.UnixMilli(ms)
	if len(b) > 0 {
		if b[0] != 'd' {
			return Snapshot{}, ErrCorrupt
		}
		snap.Data, snap.Exists = b[1:], true
	}
	return snap, nil
}

// decodeHash reads the fields d, v, u, t, r of a state hash, the layout of older
// releases.
func decodeHash(vals []any) (Snapshot, error) {
	if len(vals) != 5 {
		return Snapshot{}, fmt.Errorf("%w: %d hash fields", ErrCorrupt, len(vals))
	}
	var snap Snapshot
	var err error
	if d, ok := vals[0].(string); ok {
		snap.Data = []byte(d)
		snap.Exists = true
	}
	if snap.Version, err = intField(vals[1]); err != nil {
		return Snapshot{}, fmt.Errorf("version: %w", err)
	}
	if snap.LastUpdate, err = intField(vals[2]); err != nil {
		return Snapshot{}, fmt.Errorf("last update: %w", err)
	}
	ms, err := intField(vals[3])
	if err != nil {
		return Snapshot{}, fmt.Errorf("updated-at: %w", err)
	}
	if ms != 0 {
		snap.UpdatedAt = time.UnixMilli(ms)
	}
	if r, ok := vals[4].(string); ok {
		for _, f := range strings.Fields(r) {
			id, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				return Snapshot{}, fmt.Errorf("recent updates: %w", err)
			}
			snap.Recent = append(snap.Recent, id)
		}
	}
	return snap, nil
}

// RecentUpdates is how many applied update_ids a dialogue remembers. Telegram
// sends the updates of one chat in order, but a webhook may deliver two at once
// and a replica may be slower than another: an older update that was never
// applied must not be taken for a redelivery, as a single high-water mark would.
const RecentUpdates = 16

// Seen reports whether update id was applied already, or is older than every
// remembered one of a full window and so cannot be told from a redelivery; such
// an update is dropped rather than risk applying an answer twice.
func (s Snapshot) Seen(id int64) bool {
	if id <= 0 {
		return false
	}
	if len(s.Recent) == 0 {
		return id <= s.LastUpdate // a state written before the window existed
	}
	oldest := s.Recent[0]
	for _, r := range s.Recent {
		if r == id {
			return true
		}
		oldest = min(oldest, r)
	}
	return len(s.Recent) >= RecentUpdates && id < oldest
}

func intField(v any) (int64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, nil
	}
	return strconv.ParseInt(s, 10, 64)
}

// commitScript is the whole Commit so that the version check, the dedup check
// and all writes happen atomically on one slot. It reads a state in either layout
// (see Decode and decodeHash) and always writes the string one: SET replaces a
// hash of an older release in the same step.
//
// KEYS: 1 state, 2 outbox stream, 3 activity zset.
// ARGV: 1 expect, 2 update id, 3 now ms, 4 ttl ms, 5 has data (1/0), 6 data,
// 7 active (1/0), 8 activity member, 9 window of recent update ids, 10..
// outbox entries.
// Returns {code, version}: code 0 ok (version = new), 1 conflict, 2 duplicate.
//
// Lua numbers are doubles: exact for every integer below 2^53, far above any
// version, update id or time in ms.
var commitScript = redis.NewScript(`
local function uvarint(s, i)
  local n, mul = 0, 1
  while true do
    local b = string.byte(s, i)
    if b == nil or mul > 2^49 then
      return nil, i
    end
    i = i + 1
    if b < 128 then
      return n + b * mul, i
    end
    n = n + (b - 128) * mul
    mul = mul * 128
  end
end
local function varint(n)
  local out = {}
  while n >= 128 do
    local low = n % 128
    table.insert(out, low + 128)
    n = (n - low) / 128
  end
  table.insert(out, n)
  return string.char(unpack(out))
end

-- parse returns version, last applied update id and the recent ones (ascending)
-- of a value in the string layout, or nil if it is not one.
local function parse(s)
  if string.byte(s, 1) ~= 1 then
    return nil
  end
  local ver, at, n, i
  ver, i = uvarint(s, 2)
  if ver then at, i = uvarint(s, i) end
  if at then n, i = uvarint(s, i) end
  if n == nil then
    return nil
  end
  if n == 0 then
    local last = uvarint(s, i)
    return ver, last, {}
  end
  local recent, id = {}, 0
  for j = 1, n do
    local gap
    gap, i = uvarint(s, i)
    if gap == nil then
      return nil
    end
    id = id + gap
    recent[j] = id
  end
  return ver, id, recent
end

local ver, last, recent = 0, 0, {}
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'string' then
  ver, last, recent = parse(redis.call('GET', KEYS[1]))
  if last == nil then
    return redis.error_reply('redisstate: corrupt state value')
  end
elseif kind == 'hash' then
  local cur = redis.call('HMGET', KEYS[1], 'v', 'u', 'r')
  ver = tonumber(cur[1]) or 0
  last = tonumber(cur[2]) or 0
  for id in string.gmatch(cur[3] or '', '%S+') do
    table.insert(recent, tonumber(id))
  end
  table.sort(recent)
end

local upd = tonumber(ARGV[2])
local window = tonumber(ARGV[9])
if upd > 0 then
  for _, id in ipairs(recent) do
    if id == upd then
      return {2, ver}
    end
  end
  if #recent == 0 and upd <= last then
    return {2, ver}
  end
  if #recent >= window and upd < recent[1] then
    return {2, ver}
  end
end
if ver ~= tonumber(ARGV[1]) then
  return {1, ver}
end
ver = ver + 1
if upd > 0 then
  table.insert(recent, upd)
  table.sort(recent)
  while #recent > window do
    table.remove(recent, 1)
  end
end

local out = {'\1', varint(ver), varint(tonumber(ARGV[3])), varint(#recent)}
if #recent == 0 then
  table.insert(out, varint(last))
end
local prev = 0
for _, id in ipairs(recent) do
  table.insert(out, varint(id - prev))
  prev = id
end
if ARGV[5] == '1' then
  table.insert(out, 'd')
  table.insert(out, ARGV[6])
end
redis.call('SET', KEYS[1], table.concat(out), 'PX', ARGV[4])
for i = 10, #ARGV do
  redis.call('XADD', KEYS[2], '*', 'e', ARGV[i])
end
if ARGV[7] == '1' then
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[8])
else
  redis.call('ZREM', KEYS[3], ARGV[8])
end
return {0, ver}
`)

// Commit writes w if the stored version still equals expect (0 = nothing
// stored) and w.UpdateID is above the last applied update_id. It is one round
// trip (EVALSHA, plus an EVAL the first time a server sees the script). It
// returns the new version, or ErrConflict / ErrDuplicate with nothing written.
func (s *Store) Commit(ctx context.Context, k Key, expect int64, w Write) (int64, error) {
	if w.Now.IsZero() {
		// A zero time would file the dialogue as idle since year 1.
		return 0, fmt.Errorf("redisstate: commit %s: Write.Now is zero", k)
	}
	shard := s.Shard(k)
	keys := []string{
		StateKey(s.cfg.Prefix, shard, k),
		OutboxKey(s.cfg.Prefix, shard),
		ActiveKey(s.cfg.Prefix, shard),
	}
	args := make([]any, 0, 9+len(w.Outbox))
	args = append(args,
		expect,
		w.UpdateID,
		w.Now.UnixMilli(),
		s.cfg.TTL.Milliseconds(),
		boolArg(w.Data != nil),
		w.Data,
		boolArg(w.Active),
		k.String(),
		RecentUpdates,
	)
	for _, e := range w.Outbox {
		args = append(args, e)
	}
	res, err := commitScript.Run(ctx, s.rdb, keys, args...).Int64Slice()
	if err != nil {
		return 0, fmt.Errorf("redisstate: commit %s: %w", k, err)
	}
	if len(res) != 2 {
		return 0, fmt.Errorf("redisstate: commit %s: unexpected script reply %v", k, res)
	}
	switch res[0] {
	case 0:
		return res[1], nil
	case 1:
		return 0, fmt.Errorf("%w: %s expected version %d, stored %d", ErrConflict, k, expect, res[1])
	case 2:
		return 0, fmt.Errorf("%w: %s update %d", ErrDuplicate, k, w.UpdateID)
	default:
		return 0, fmt.Errorf("redisstate: commit %s: unexpected script code %d", k, res[0])
	}
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Apply runs Load, fn, Commit and retries on ErrConflict up to MaxAttempts
// times with a short jittered pause, so that two replicas handling the same
// dialogue serialise instead of losing an update. fn must be pure: it may run
// several times. ErrDuplicate is returned as is (the update was applied
// before); errors from fn are returned wrapped. It returns the committed
// snapshot.
func (s *Store) Apply(ctx context.Context, k Key, fn func(Snapshot) (Write, error)) (Snapshot, error) {
	var lastErr error
	for attempt := range s.cfg.MaxAttempts {
		if attempt > 0 {
			if err := pause(ctx, attempt); err != nil {
				return Snapshot{}, fmt.Errorf("redisstate: apply %s: %w (after %w)", k, err, lastErr)
			}
		}
		snap, err := s.Load(ctx, k)
		if err != nil {
			return Snapshot{}, err
		}
		w, err := fn(snap)
		if err != nil {
			return Snapshot{}, fmt.Errorf("redisstate: apply %s: %w", k, err)
		}
		// Saves the script call for the common redelivery case; Commit
		// checks again atomically.
		if snap.Seen(w.UpdateID) {
			return Snapshot{}, fmt.Errorf("%w: %s update %d", ErrDuplicate, k, w.UpdateID)
		}
		v, err := s.Commit(ctx, k, snap.Version, w)
		if errors.Is(err, ErrConflict) {
			lastErr = err
			continue
		}
		if err != nil {
			return Snapshot{}, err
		}
		last, recent := snap.LastUpdate, snap.Recent
		if w.UpdateID > 0 {
			last = max(last, w.UpdateID)
			recent = append(slices.Clone(recent), w.UpdateID)
			slices.Sort(recent)
			recent = recent[max(0, len(recent)-RecentUpdates):]
		}
		return Snapshot{
			Data:       w.Data,
			Version:    v,
			LastUpdate: last,
			Recent:     recent,
			Exists:     w.Data != nil,
			UpdatedAt:  time.UnixMilli(w.Now.UnixMilli()),
		}, nil
	}
	return Snapshot{}, fmt.Errorf("redisstate: apply %s: gave up after %d attempts: %w", k, s.cfg.MaxAttempts, lastErr)
}

// pause spreads out retrying writers of one hot key; full jitter so they do
// not collide again in lockstep.
func pause(ctx context.Context, attempt int) error {
	ceiling := time.Millisecond << min(attempt, 6)
	t := time.NewTimer(rand.N(ceiling))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Delete removes the state and the activity entry of k (for /forget). Outbox
// entries already queued are not touched. One round trip (MULTI on one slot).
func (s *Store) Delete(ctx context.Context, k Key) error {
	shard := s.Shard(k)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, StateKey(s.cfg.Prefix, shard, k))
		p.ZRem(ctx, ActiveKey(s.cfg.Prefix, shard), k.String())
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstate: delete %s: %w", k, err)
	}
	return nil
}

// Idle returns up to limit dialogues whose last activity is strictly before
// before, oldest first, across all shards. It reads every shard's index in
// one pipeline (one single-key command per shard, so it works on Cluster).
// A returned key's state may already have expired by TTL; the caller should
// then Delete it to drop the stale index entry.
func (s *Store) Idle(ctx context.Context, before time.Time, limit int) ([]Key, error) {
	if limit <= 0 {
		return nil, nil
	}
	p := s.rdb.Pipeline()
	cmds := make([]*redis.ZSliceCmd, s.cfg.Shards)
	maxScore := "(" + strconv.FormatInt(before.UnixMilli(), 10)
	for shard := range s.cfg.Shards {
		cmds[shard] = p.ZRangeByScoreWithScores(ctx, ActiveKey(s.cfg.Prefix, shard), &redis.ZRangeBy{
			Min: "-inf", Max: maxScore, Count: int64(limit),
		})
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redisstate: idle: %w", err)
	}
	var all []redis.Z
	for _, c := range cmds {
		all = append(all, c.Val()...)
	}
	slices.SortFunc(all, func(a, b redis.Z) int { return cmp.Compare(a.Score, b.Score) })
	if len(all) > limit {
		all = all[:limit]
	}
	keys := make([]Key, 0, len(all))
	for _, z := range all {
		m, _ := z.Member.(string)
		k, err := parseKey(m)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Package redisstate keeps the dialogue state of every (chat, user) pair in
// Redis so that bot replicas can stay stateless, and enqueues finished
// submissions into a Redis Stream outbox in the same atomic step as the state
// write.
//
// # Key layout
//
// With the default prefix "dq" and shard 7 the keys are:
//
//	dq:{s07}:st:<chatID>:<userID>  string: version, updated-at, recent update_ids, data (see Decode)
//	dq:{s07}:outbox                stream of entries for delivery to the central store (field "e")
//	dq:{s07}:dead                  stream of entries the delivery worker gave up on
//	dq:{s07}:active                zset, member "<chatID>:<userID>", score = unix ms of last activity
//
// The shard is fnv32a("<chatID>:<userID>") % Shards (default 64).
//
// Releases before the string layout kept a state as a hash (d=data, v=version,
// u=last applied update_id, t=updated-at in unix ms, r=recent update_ids). Load
// still reads such a hash and Commit replaces it with the string in the same
// atomic step, so a deployment upgrades in place. The string is what keeps a
// dialogue under 1 KB with Redis's default settings: a hash whose data exceeds
// hash-max-listpack-value (64 bytes) is a hashtable, which costs several hundred
// bytes per key beyond its contents.
//
// # Why a shard hash tag and not a per-user tag
//
// A Commit must write the user's state and append to an outbox stream in one
// atomic step (a Lua script), and on Redis Cluster a script may only touch
// keys of one hash slot. With a per-user tag such as {u:123} the outbox would
// have to be per user as well, and the delivery worker would then have to
// discover and poll millions of tiny streams. With a shard tag the state of
// many users shares a slot with one outbox stream, so the worker polls a fixed
// set of Shards streams, each XREADGROUP touching a single key. The activity
// index lives in the same slot, so "is this dialogue still active" is updated
// in the same script. Shards (64 by default) spreads the load over the cluster
// well enough while keeping the worker's per-pass command count small.
//
// Changing Shards (or Prefix) moves every (chat, user) pair to a different
// key: existing state, activity entries and undelivered outbox entries of the
// old layout are orphaned. Drain the outboxes before changing it and accept
// that in-progress dialogues restart.
//
// # Concurrency and deduplication
//
// Each state carries a version; Commit succeeds only if the stored version is
// the one the caller loaded (optimistic concurrency) and the Telegram update_id
// being applied is not among the last RecentUpdates applied, nor older than all
// of a full window of them (so redelivered webhooks are dropped with
// ErrDuplicate; see Snapshot.Seen). Committing a nil Data
// keeps a small tombstone (version, last update_id, no data) until TTL so that
// a redelivery of the update that finished a dialogue is still recognised as a
// duplicate and cannot enqueue the submission twice, and so that versions never
// restart at 1 (which would let a stale writer's expectation match again).
// Delete, used for /forget, removes the key entirely.
//
// An older update that arrives after a newer one of the same dialogue was
// applied is still applied once, unless RecentUpdates newer ones came first.
//
// # Round trips and failures
//
// Load is one EVALSHA (a read-only script, so that either layout is one round
// trip), Commit one EVALSHA (go-redis falls back to EVAL once per script when
// a server has not cached it yet, e.g. after a restart), Delete one
// MULTI, Idle one pipeline. The same script runs on miniredis, the embedded
// default used when no REDIS_URL is configured. The store has no timeouts of
// its own: callers bound every call with their context. Without a deadline a
// call against a Redis that is down fails after go-redis' own dial retries
// (about 2s with default options).
//
// A timed-out Commit may or may not have been applied. For a write carrying an
// UpdateID, retrying through Apply is safe: the reload either sees the
// update_id already applied (ErrDuplicate) or the old state (the Commit did
// not happen). A write with UpdateID 0 has no such guard and may be applied
// twice by a blind retry.
package redisstate

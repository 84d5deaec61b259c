package redisstate

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Defaults shared with the outbox worker, which must agree on the layout.
const (
	DefaultPrefix = "dq"
	DefaultShards = 64
)

// Key identifies one dialogue: a user in a chat.
type Key struct {
	ChatID, UserID int64
}

// String is the "chat key": the hash input for the shard and the member of the
// activity index.
func (k Key) String() string {
	return strconv.FormatInt(k.ChatID, 10) + ":" + strconv.FormatInt(k.UserID, 10)
}

// parseKey is the inverse of Key.String, for activity index members.
func parseKey(s string) (Key, error) {
	c, u, ok := strings.Cut(s, ":")
	if !ok {
		return Key{}, fmt.Errorf("redisstate: malformed activity member %q", s)
	}
	chat, err := strconv.ParseInt(c, 10, 64)
	if err != nil {
		return Key{}, fmt.Errorf("redisstate: malformed activity member %q: %w", s, err)
	}
	user, err := strconv.ParseInt(u, 10, 64)
	if err != nil {
		return Key{}, fmt.Errorf("redisstate: malformed activity member %q: %w", s, err)
	}
	return Key{ChatID: chat, UserID: user}, nil
}

// ShardOf returns the shard of k for a layout with the given number of shards.
func ShardOf(k Key, shards int) int {
	if shards <= 0 {
		shards = DefaultShards
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(k.String()))
	return int(h.Sum32() % uint32(shards))
}

// shardBase is "<prefix>:{sNN}", the part every key of a shard starts with;
// the braces make it the Redis Cluster hash tag.
func shardBase(prefix string, shard int) string {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	return fmt.Sprintf("%s:{s%02d}", prefix, shard)
}

// StateKey is the hash holding the state of k, which lives in shard.
func StateKey(prefix string, shard int, k Key) string {
	return shardBase(prefix, shard) + ":st:" + k.String()
}

// OutboxKey is the stream of entries awaiting delivery for shard.
func OutboxKey(prefix string, shard int) string {
	return shardBase(prefix, shard) + ":outbox"
}

// DeadKey is the dead-letter stream for shard.
func DeadKey(prefix string, shard int) string {
	return shardBase(prefix, shard) + ":dead"
}

// ActiveKey is the activity index (zset) for shard.
func ActiveKey(prefix string, shard int) string {
	return shardBase(prefix, shard) + ":active"
}

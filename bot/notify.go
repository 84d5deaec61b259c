package bot

import (
	"strings"
	"sync"
	"time"

	"github.com/dialoq/dialoq/storage/redisstate"
)

// notifier remembers, in memory only, whom the bot already told that it cannot
// reach its storage, so a user is told once per outage rather than at every retry.
// It is deliberately not in Redis: it exists for when Redis is down.
type notifier struct {
	mu   sync.Mutex
	now  func() time.Time
	seen map[string]time.Time
}

const (
	// notifyTTL is how long one "try again shortly" covers; a user still stuck after
	// that hears it again.
	notifyTTL = 10 * time.Minute
	// notifyMax bounds memory during a long outage with many users.
	notifyMax = 100000
)

func newNotifier(now func() time.Time) *notifier {
	return &notifier{now: now, seen: map[string]time.Time{}}
}

// first reports whether key was not told within notifyTTL, and records it.
func (n *notifier) first(key string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	if t, ok := n.seen[key]; ok && now.Sub(t) < notifyTTL {
		return false
	}
	if len(n.seen) >= notifyMax {
		for k, t := range n.seen {
			if now.Sub(t) >= notifyTTL {
				delete(n.seen, k)
			}
		}
		if len(n.seen) >= notifyMax {
			// Still full: forget everything rather than grow; the worst case is a
			// second "try again" message to someone.
			clear(n.seen)
		}
	}
	n.seen[key] = now
	return true
}

func (n *notifier) forget(key string) {
	n.mu.Lock()
	delete(n.seen, key)
	n.mu.Unlock()
}

// scrubbed hides a dialogue key in an error: redisstate names the key ("load
// 123:456: …"), and ids must not reach logs above debug level.
type scrubbed struct {
	err error
	key string
}

func (s *scrubbed) Error() string {
	return strings.ReplaceAll(s.err.Error(), s.key, "<chat>:<user>")
}

func (s *scrubbed) Unwrap() error { return s.err }

func scrub(err error, k redisstate.Key) error {
	if err == nil {
		return nil
	}
	return &scrubbed{err: err, key: k.String()}
}

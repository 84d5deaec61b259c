package bot

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"
)

// Telegram's broadcast limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).
const (
	DefaultPerSecond         = 30
	DefaultPerChatPerSecond  = 1
	DefaultPerGroupPerMinute = 20
	// MaxPaidPerSecond is what allow_paid_broadcast lifts the overall limit to.
	MaxPaidPerSecond = 1000
	// DefaultSendConcurrency is how many throttled sends may be in flight: at
	// 30/s and a round trip near 100 ms, three would do; eight leave room for slow
	// answers without letting the rate drop.
	DefaultSendConcurrency = 8
)

// Throttle configures the throttled sender that broadcasts and reminders share.
// Ordinary replies do not go through it: they answer a user who just wrote, which
// Telegram does not count against broadcasts in practice, and must not queue behind
// a broadcast of 100,000 messages.
type Throttle struct {
	PerSecond         int // messages per second overall; default 30
	PerChatPerSecond  int // per private chat; default 1
	PerGroupPerMinute int // per group chat; default 20
	// PaidBroadcast sends with allow_paid_broadcast (charged in Stars by Telegram),
	// which allows PerSecond up to MaxPaidPerSecond.
	PaidBroadcast bool
	// Concurrency bounds sends in flight; default DefaultSendConcurrency. Tests that
	// drive a virtual clock use 1, so that every send reaches the server at exactly
	// the time it was scheduled for.
	Concurrency int
}

func (t *Throttle) defaults() {
	if t.PerSecond <= 0 {
		t.PerSecond = DefaultPerSecond
	}
	limit := DefaultPerSecond
	if t.PaidBroadcast {
		limit = MaxPaidPerSecond
	}
	t.PerSecond = min(t.PerSecond, limit)
	if t.PerChatPerSecond <= 0 {
		t.PerChatPerSecond = DefaultPerChatPerSecond
	}
	if t.PerGroupPerMinute <= 0 {
		t.PerGroupPerMinute = DefaultPerGroupPerMinute
	}
	if t.Concurrency <= 0 {
		t.Concurrency = DefaultSendConcurrency
	}
}

// slots is a sliding window: the start times of the last n sends, oldest at next.
type slots struct {
	times []time.Time
	next  int
}

// earliest is when one more send fits into n per period.
func (w *slots) earliest(n int, per time.Duration) time.Time {
	if len(w.times) < n {
		return time.Time{}
	}
	return w.times[w.next].Add(per)
}

func (w *slots) add(t time.Time, n int) {
	if len(w.times) < n {
		w.times = append(w.times, t)
		return
	}
	w.times[w.next] = t
	w.next = (w.next + 1) % n
}

// limiter hands out send times that keep within every limit. It is the same
// sliding window Telegram (and the fake server) apply, not a token bucket: a bucket
// allows a burst of its size at any moment, which a window counting the last second
// would refuse. Times are handed out in non-decreasing order, so each window's ring
// stays sorted; a chat that must wait delays the sends behind it, which costs little
// because a broadcast or reminder round writes to each chat once.
type limiter struct {
	mu     sync.Mutex
	cfg    Throttle
	now    func() time.Time
	last   time.Time // the latest time handed out
	paused time.Time // no send before this (after a 429)
	global slots
	chats  map[int64]*slots
}

func newLimiter(cfg Throttle, now func() time.Time) *limiter {
	return &limiter{cfg: cfg, now: now, chats: map[int64]*slots{}}
}

// maxChatWindows bounds the per-chat windows kept; the oldest are only relevant for
// a second (a minute for groups), so dropping them all now and then is harmless.
const maxChatWindows = 50000

// reserve returns when a send to chatID may start and records it.
func (l *limiter) reserve(chatID int64) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := later(l.now(), l.last, l.paused, l.global.earliest(l.cfg.PerSecond, time.Second))
	if len(l.chats) > maxChatWindows {
		// Windows older than a minute constrain nothing any more.
		for id, w := range l.chats {
			if len(w.times) > 0 && t.Sub(w.times[(w.next+len(w.times)-1)%len(w.times)]) > time.Minute {
				delete(l.chats, id)
			}
		}
	}
	cw := l.chats[chatID]
	if cw == nil {
		cw = &slots{}
		l.chats[chatID] = cw
	}
	n, per := l.cfg.PerChatPerSecond, time.Second
	if chatID < 0 { // groups and channels
		n, per = l.cfg.PerGroupPerMinute, time.Minute
	}
	t = later(t, cw.earliest(n, per))
	l.global.add(t, l.cfg.PerSecond)
	cw.add(t, n)
	l.last = t
	return t
}

// pause holds every send for d, after Telegram answered 429: its retry_after applies
// to the bot as a whole, so the other sends in flight would only be refused too.
func (l *limiter) pause(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.paused = later(l.paused, l.now().Add(d))
}

func later(ts ...time.Time) time.Time {
	var m time.Time
	for _, t := range ts {
		if t.After(m) {
			m = t
		}
	}
	return m
}

// sender makes throttled sends. It has its own copy of the API client so that a 429
// pauses the limiter, and so that tests can give it a virtual clock.
type sender struct {
	tg    *telegram
	lim   *limiter
	cfg   Throttle
	now   func() time.Time
	sleep func(context.Context, time.Duration) error
}

func (b *Bot) newSender() *sender {
	cfg := b.cfg.Throttle
	lim := newLimiter(cfg, b.now)
	tg := *b.tg
	tg.onFlood = lim.pause
	return &sender{tg: &tg, lim: lim, cfg: cfg, now: b.now, sleep: b.sleep}
}

// wait blocks until a send to chatID may start.
func (s *sender) wait(ctx context.Context, chatID int64) error {
	at := s.lim.reserve(chatID)
	if d := at.Sub(s.now()); d > 0 {
		return s.sleep(ctx, d)
	}
	return ctx.Err()
}

// sendMessage sends one HTML message within the limits.
func (s *sender) sendMessage(ctx context.Context, chatID int64, html string, kb keyboard) (int, error) {
	if err := s.wait(ctx, chatID); err != nil {
		return 0, err
	}
	return s.send(ctx, chatID, html, kb)
}

// send is sendMessage for a caller that waited for its slot already.
func (s *sender) send(ctx context.Context, chatID int64, html string, kb keyboard) (int, error) {
	return s.tg.send(ctx, textParams{ChatID: chatID, Text: html, PaidBcast: s.cfg.PaidBroadcast, ReplyMarkup: kb}, false)
}

// editText edits a message within the limits (the progress of a broadcast).
func (s *sender) editText(ctx context.Context, chatID int64, msgID int, html string, kb keyboard) error {
	if err := s.wait(ctx, chatID); err != nil {
		return err
	}
	return s.tg.editText(ctx, chatID, msgID, html, kb, false)
}

// isBlocked reports whether err is Telegram's 403 for the chat.
func isBlocked(err error) bool { return errors.Is(err, errBlocked) }

func chatString(id int64) string { return strconv.FormatInt(id, 10) }

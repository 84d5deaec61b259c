package bot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"sync"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
)

// allowedUpdates are the update kinds the bot asks Telegram for.
var allowedUpdates = []string{"message", "callback_query", "my_chat_member"}

// Poll receives updates by long polling until ctx ends, then lets the updates being
// handled finish (within ShutdownTimeout) and returns. Updates of one chat are
// handled in order by one worker; different chats in parallel. The offset confirmed
// to Telegram never passes an update that was not handled, so whatever a stopped
// process did not finish is delivered again to the next one (and deduplicated by
// the store if it had been applied after all).
func (b *Bot) Poll(ctx context.Context) error {
	if _, err := b.tg.call(ctx, "deleteWebhook", tgbotapi.DeleteWebhookConfig{}); err != nil && ctx.Err() == nil {
		b.log.Warn("bot: deleteWebhook failed; getUpdates may be refused", "err", err)
	}
	// Workers outlive ctx by up to ShutdownTimeout, so an update being handled when
	// the process is told to stop is still committed and answered.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	tr := newTracker()
	queues := make([]chan Update, b.cfg.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan Update, 64)
		wg.Go(func() {
			for u := range queues[i] {
				// Once stopping, queued updates are left for the next process.
				if ctx.Err() == nil && b.process(ctx, work, u) {
					tr.finish(u.UpdateID)
				}
			}
		})
	}
	err := b.pollLoop(ctx, tr, queues)
	for _, q := range queues {
		close(q)
	}
	deadline := time.AfterFunc(b.cfg.ShutdownTimeout, cancelWork)
	wg.Wait()
	deadline.Stop()
	if off := tr.offset(); off > 0 {
		b.confirm(off)
	}
	return err
}

func (b *Bot) pollLoop(ctx context.Context, tr *tracker, queues []chan Update) error {
	failures := 0
	timeout := int(b.cfg.PollTimeout.Seconds())
	for ctx.Err() == nil {
		var batch []json.RawMessage
		err := b.getUpdates(ctx, b.pollHC, getUpdatesParams{
			Offset: tr.offset(), Limit: 100, Timeout: timeout, AllowedUpdates: allowedUpdates,
		}, &batch)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			code := apiCode(err)
			b.m.telegramError("getUpdates", code)
			if code == http.StatusUnauthorized || code == http.StatusNotFound {
				return fmt.Errorf("bot: getUpdates: %w", b.tg.redact(err)) // a wrong token does not heal
			}
			failures++
			wait := backoff(b.cfg.RetryMin, b.cfg.RetryMax, failures)
			b.log.Warn("bot: getUpdates failed", "code", code, "retry_in", wait, "err", b.tg.redact(err))
			if b.sleep(ctx, wait) != nil {
				return nil
			}
			continue
		}
		failures = 0
		fresh := 0
		for _, raw := range batch {
			// Telegram returns every update not yet confirmed, so most of a batch
			// is usually known already: only new ones are decoded.
			id, ok := updateID(raw)
			if !ok || !tr.start(id) {
				continue // still being handled, or handled but not yet confirmed
			}
			fresh++
			var u Update
			if err := json.Unmarshal(raw, &u); err != nil {
				b.log.Warn("bot: undecodable update skipped", "update_id", id, "err", err)
				tr.finish(id)
				continue
			}
			select {
			case queues[b.worker(u)] <- u:
			case <-ctx.Done():
				return nil
			}
		}
		if fresh == 0 && len(batch) > 0 {
			// Telegram returns unconfirmed updates at once, so asking again before
			// one of them finishes would spin; but a slow one (a store retry) must
			// not hold up other chats for long either.
			if err := tr.wait(ctx, stalledPoll); err != nil {
				return nil
			}
		}
		// Each getUpdates brings back every update not yet confirmed, and reading
		// them again cost the bot two thirds as much as handling them (the load
		// test: 8.5 s against 12.4 s). Fetching more than the workers can start
		// only makes that window wider, so the next ask waits until they have room.
		for tr.busy() >= 2*b.cfg.Workers {
			if err := tr.wait(ctx, stalledPoll); err != nil {
				return nil
			}
		}
	}
	return nil
}

type getUpdatesParams struct {
	Offset         int      `json:"offset,omitempty"`
	Limit          int      `json:"limit"`
	Timeout        int      `json:"timeout"`
	AllowedUpdates []string `json:"allowed_updates,omitempty"`
}

// getUpdates makes one getUpdates request (no retries: the loop has its own).
func (b *Bot) getUpdates(ctx context.Context, hc *http.Client, p getUpdatesParams, batch *[]json.RawMessage) error {
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	var result any
	if batch != nil {
		result = batch
	}
	return b.tg.once(ctx, hc, "getUpdates", body, result)
}

// updateID reads an update's update_id. Telegram writes it first, which makes
// the common case a few byte comparisons; anything else is decoded properly.
func updateID(raw json.RawMessage) (int, bool) {
	const head = `{"update_id":`
	if rest, ok := bytes.CutPrefix(raw, []byte(head)); ok {
		if n, ok := leadingInt(rest); ok {
			return n, true
		}
	}
	var u struct {
		UpdateID *int `json:"update_id"`
	}
	if json.Unmarshal(raw, &u) != nil || u.UpdateID == nil {
		return 0, false
	}
	return *u.UpdateID, true
}

// worker picks the worker of the update's chat.
func (b *Bot) worker(u Update) int {
	var chat int64
	switch {
	case u.Message != nil && u.Message.Chat != nil:
		chat = u.Message.Chat.ID
	case u.CallbackQuery != nil && u.CallbackQuery.Message != nil && u.CallbackQuery.Message.Chat != nil:
		chat = u.CallbackQuery.Message.Chat.ID
	case u.CallbackQuery != nil && u.CallbackQuery.From != nil:
		chat = u.CallbackQuery.From.ID
	case u.MyChatMember != nil:
		chat = u.MyChatMember.Chat.ID
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(strconv.FormatInt(chat, 10)))
	return int(h.Sum32() % uint32(b.cfg.Workers))
}

// process handles one update, waiting for the store to come back if it is down. It
// reports whether the update is done with (false: stopped before it could be).
func (b *Bot) process(stop, work context.Context, u Update) bool {
	for attempt := 1; ; attempt++ {
		err := b.HandleUpdate(work, u)
		if err == nil {
			return true
		}
		if !errors.Is(err, ErrStorage) {
			b.log.Error("bot: update failed", "update_id", u.UpdateID, "err", err)
			return true
		}
		if stop.Err() != nil || work.Err() != nil {
			return false
		}
		b.TellTryAgain(work, u)
		wait := backoff(b.cfg.RetryMin, min(b.cfg.RetryMax, maxStorageRetry), attempt)
		b.log.Warn("bot: store unavailable, retrying update", "update_id", u.UpdateID, "retry_in", wait, "err", err)
		if b.sleep(stop, wait) != nil {
			return false
		}
	}
}

// maxStorageRetry caps the pause between attempts of an update while the store is
// down. A Redis restart takes seconds; with RetryMax (10 s) an update that had
// failed a few times could wait up to 10 s more after Redis was back. A worker's
// retry is one cheap dial, so trying more often costs nothing worth saving.
const maxStorageRetry = 2 * time.Second

// confirm tells Telegram which updates are done, so a successor starts after them.
func (b *Bot) confirm(offset int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.getUpdates(ctx, b.tg.hc, getUpdatesParams{Offset: offset, Limit: 1}, nil); err != nil {
		b.log.Debug("bot: confirm offset", "err", b.tg.redact(err))
	}
}

// tracker knows which fetched updates are being handled and which are finished, and
// from that the offset: the lowest update not finished.
type tracker struct {
	mu       sync.Mutex
	pending  map[int]bool // id → finished
	next     int          // offset when nothing is pending: one past the highest finished
	progress chan struct{}
}

func newTracker() *tracker {
	return &tracker{pending: map[int]bool{}, progress: make(chan struct{}, 1)}
}

// start records a fetched update; false if it is already known.
func (t *tracker) start(id int) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, known := t.pending[id]; known || (t.next > 0 && id < t.next) {
		return false
	}
	t.pending[id] = false
	return true
}

func (t *tracker) finish(id int) {
	t.mu.Lock()
	if _, ok := t.pending[id]; ok {
		t.pending[id] = true
	}
	t.prune()
	t.mu.Unlock()
	select {
	case t.progress <- struct{}{}:
	default:
	}
}

// prune drops finished updates below the lowest unfinished one. t.mu must be held.
func (t *tracker) prune() {
	low := -1
	for id, done := range t.pending {
		if !done && (low < 0 || id < low) {
			low = id
		}
	}
	for id, done := range t.pending {
		if done && (low < 0 || id < low) {
			t.next = max(t.next, id+1)
			delete(t.pending, id)
		}
	}
}

// busy counts the fetched updates not yet finished.
func (t *tracker) busy() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, done := range t.pending {
		if !done {
			n++
		}
	}
	return n
}

func (t *tracker) offset() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	low := -1
	for id, done := range t.pending {
		if !done && (low < 0 || id < low) {
			low = id
		}
	}
	if low >= 0 {
		return low
	}
	return t.next
}

// stalledPoll is how often polling looks for new updates while every update it
// has is still being handled.
const stalledPoll = 500 * time.Millisecond

// wait returns when an update finishes, after d, or when ctx ends.
func (t *tracker) wait(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-t.progress:
		return nil
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

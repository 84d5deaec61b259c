package bot

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dialoq/dialoq/storage/redisstate"
)

// tgCall is one Bot API call an update's outcome makes. run makes one attempt
// (transient errors retried inside it) and returns a *floodError on a 429.
type tgCall struct {
	method string
	run    func(ctx context.Context) error
}

// maxChatBacklog bounds the calls one chat may have waiting: a user who keeps
// writing through a long flood ban must not grow the process without bound.
const maxChatBacklog = 64

// backlog holds, per chat, the Telegram calls that wait out a 429. Telegram limits
// sends per chat, and sleeping retry_after inside the update held a worker, and
// with it every chat hashed to that worker (and, in polling mode, the offset), so
// one rate-limited chat slowed everyone. The update's goroutine hands the rest of
// its calls over and goes on; the chat's later calls queue behind them, in order.
//
// The update itself is committed before its calls are made, so a process that dies
// with calls waiting here loses only those messages; the user's next tap or
// /resume shows the current question again.
type backlog struct {
	log     *slog.Logger
	sleep   func(context.Context, time.Duration) error
	blocked func(context.Context, redisstate.Key) // a 403: nothing more for this chat
	waiting prometheus.Gauge

	// ctx bounds the waiting calls; stop ends it once shutdown gave up on them.
	ctx  context.Context
	stop context.CancelFunc

	mu    sync.Mutex
	chats map[int64]*chatCalls
	wg    sync.WaitGroup
}

type chatCalls struct {
	key    redisstate.Key
	calls  []tgCall
	wait   time.Duration // before the first call is tried again
	floods int           // 429s of the first call so far
}

func newBacklog(log *slog.Logger, sleep func(context.Context, time.Duration) error, blocked func(context.Context, redisstate.Key), waiting prometheus.Gauge) *backlog {
	ctx, stop := context.WithCancel(context.Background())
	return &backlog{log: log, sleep: sleep, blocked: blocked, waiting: waiting, ctx: ctx, stop: stop, chats: map[int64]*chatCalls{}}
}

// run makes calls in order under ctx, unless the chat has calls waiting: then they
// queue behind those. A call answered 429 is queued with everything after it.
func (q *backlog) run(ctx context.Context, key redisstate.Key, calls []tgCall) {
	if len(calls) == 0 || q.queue(key, calls, 0, false) {
		return
	}
	for i, c := range calls {
		err := c.run(ctx)
		var fe *floodError
		if errors.As(err, &fe) {
			q.queue(key, calls[i:], fe.after, true)
			return
		}
		if q.failed(ctx, key, c, err) {
			return
		}
	}
}

// queue appends calls to the chat's waiting ones and reports whether it did: when
// the chat has none waiting it does so only if start is set, with the first call
// retried after wait.
func (q *backlog) queue(key redisstate.Key, calls []tgCall, wait time.Duration, start bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	c, busy := q.chats[key.ChatID]
	if !busy && !start {
		return false
	}
	if !busy {
		c = &chatCalls{key: key, wait: wait, floods: 1}
		q.chats[key.ChatID] = c
		q.wg.Go(func() { q.drain(c) })
	}
	room := maxChatBacklog - len(c.calls)
	if len(calls) > room {
		q.log.Warn("bot: too many Telegram calls waiting for one chat; dropping the newest", "dropped", len(calls)-max(room, 0))
		calls = calls[:max(room, 0)]
	}
	c.calls = append(c.calls, calls...)
	q.waiting.Add(float64(len(calls)))
	return true
}

// drain makes a chat's waiting calls, each after the wait Telegram asked for.
func (q *backlog) drain(c *chatCalls) {
	for {
		q.mu.Lock()
		wait, call := c.wait, c.calls[0]
		q.mu.Unlock()
		if q.sleep(q.ctx, wait) != nil {
			q.drop(c, "the process is stopping")
			return
		}
		err := call.run(q.ctx)
		var fe *floodError
		flooded := errors.As(err, &fe)
		q.mu.Lock()
		if flooded && c.floods < maxFloodAttempts && fe.after <= maxRetryAfter {
			c.floods++
			c.wait = fe.after
			q.mu.Unlock()
			continue
		}
		c.calls, c.wait, c.floods = c.calls[1:], 0, 0
		q.waiting.Dec()
		q.mu.Unlock()
		if flooded {
			q.log.Warn("bot: telegram call dropped: still rate limited", "method", call.method, "err", err)
		} else if q.failed(q.ctx, c.key, call, err) {
			q.drop(c, "")
			return
		}
		q.mu.Lock()
		if len(c.calls) == 0 {
			delete(q.chats, c.key.ChatID)
			q.mu.Unlock()
			return
		}
		q.mu.Unlock()
	}
}

// drop forgets a chat's waiting calls.
func (q *backlog) drop(c *chatCalls, why string) {
	q.mu.Lock()
	n := len(c.calls)
	c.calls = nil
	delete(q.chats, c.key.ChatID)
	q.mu.Unlock()
	q.waiting.Sub(float64(n))
	if why != "" && n > 0 {
		q.log.Warn("bot: telegram calls dropped", "calls", n, "why", why)
	}
}

// failed logs a call's error and reports whether the chat gets nothing more: the
// user blocked the bot, or the context ended.
func (q *backlog) failed(ctx context.Context, key redisstate.Key, c tgCall, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, errBlocked):
		q.blocked(ctx, key)
		return true
	case ctx.Err() != nil:
		return true
	case c.method == "answerCallbackQuery":
		// Mostly "query is too old": the spinner has long stopped by itself.
		q.log.Debug("bot: answer callback", "err", err)
	default:
		q.log.Warn("bot: telegram call failed", "method", c.method, "code", apiCode(err), "err", err)
	}
	return false
}

// flush waits up to d for the waiting calls, then drops what is left.
func (q *backlog) flush(d time.Duration) {
	done := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		q.stop()
		<-done
	}
}

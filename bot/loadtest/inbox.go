package loadtest

import (
	"sync"

	"github.com/dialoq/dialoq/bot/telegramtest"
)

// router hands every message the bot sends or edits (telegramtest Options.OnSend) to
// the user of its chat. Waiting on a channel per user is far cheaper than
// Server.WaitMessages, which copies a chat's whole history at every change: with a
// thousand users the harness would otherwise burn the CPU the bot is measured on.
type router struct {
	mu    sync.RWMutex
	boxes map[int64]*inbox
}

func newRouter() *router { return &router{boxes: map[int64]*inbox{}} }

// onSend runs inside the fake server's request handler: it only appends and signals.
func (r *router) onSend(m telegramtest.Message) {
	r.mu.RLock()
	b := r.boxes[m.ChatID]
	r.mu.RUnlock()
	if b != nil {
		b.push(m)
	}
}

func (r *router) open(chat int64) *inbox {
	b := &inbox{wake: make(chan struct{}, 1)}
	r.mu.Lock()
	r.boxes[chat] = b
	r.mu.Unlock()
	return b
}

func (r *router) close(chat int64) {
	r.mu.Lock()
	delete(r.boxes, chat)
	r.mu.Unlock()
}

// inbox holds the messages of one chat not yet looked at by its user.
type inbox struct {
	mu   sync.Mutex
	msgs []telegramtest.Message
	wake chan struct{} // capacity 1: "something arrived"
}

// maxInbox bounds what a user that stopped reading can make the harness hold.
const maxInbox = 256

func (b *inbox) push(m telegramtest.Message) {
	b.mu.Lock()
	if len(b.msgs) >= maxInbox {
		b.msgs = append(b.msgs[:0], b.msgs[len(b.msgs)/2:]...)
	}
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *inbox) take() []telegramtest.Message {
	b.mu.Lock()
	out := b.msgs
	b.msgs = nil
	b.mu.Unlock()
	return out
}

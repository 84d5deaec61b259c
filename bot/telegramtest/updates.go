package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// updateRec is one queued update. payload is rendered once at injection;
// getUpdates and webhook delivery only copy bytes.
type updateRec struct {
	id        int
	chatID    int64
	payload   []byte
	delivered bool // confirmed by getUpdates offset or delivered to the webhook
}

// poller is the getUpdates request currently waiting; a newer request or
// setWebhook terminates it, as Telegram does.
type poller struct {
	stop   chan struct{}
	reason string
}

// webhook is the delivery state while a webhook is set. Updates are queued
// per chat: one worker owns a chat at a time, which keeps each chat in
// order while different chats are delivered in parallel.
type webhook struct {
	url, secret string
	maxConn     int
	ctx         context.Context
	cancel      context.CancelFunc
	wg          sync.WaitGroup
	cond        *sync.Cond // on Server.updMu
	queues      map[int64][]*updateRec
	ready       []int64 // chats with queued updates and no worker
	readyHead   int
	stopped     bool
}

func (wh *webhook) push(rec *updateRec) {
	q, active := wh.queues[rec.chatID]
	wh.queues[rec.chatID] = append(q, rec)
	if !active {
		wh.ready = append(wh.ready, rec.chatID)
		wh.cond.Signal()
	}
}

// enqueue appends an update. Callers may hold a chat lock (lock order is
// chat → updMu). body is the JSON of the update's single field.
func (s *Server) enqueue(chatID int64, kind string, body []byte, now time.Time) int {
	s.updMu.Lock()
	defer s.updMu.Unlock()
	id := s.nextUpdateID
	s.nextUpdateID++
	payload := make([]byte, 0, len(body)+len(kind)+32)
	payload = append(payload, `{"update_id":`...)
	payload = strconv.AppendInt(payload, int64(id), 10)
	payload = append(payload, `,"`...)
	payload = append(payload, kind...)
	payload = append(payload, `":`...)
	payload = append(payload, body...)
	payload = append(payload, '}')
	rec := &updateRec{id: id, chatID: chatID, payload: payload}
	s.upd = append(s.upd, rec)
	s.pending++
	s.totalUpdates++
	s.injected[id] = now
	if s.wh != nil {
		s.wh.push(rec)
	}
	if s.pollWake != nil {
		close(s.pollWake)
		s.pollWake = nil
	}
	s.notify()
	return id
}

// InjectUpdate queues an arbitrary update, e.g. InjectUpdate("my_chat_member",
// obj); body is marshalled to JSON and update_id is added. Such updates are
// ordered among themselves, not with any chat.
func (s *Server) InjectUpdate(kind string, body any) (updateID int) {
	b, err := json.Marshal(body)
	if err != nil {
		panic(fmt.Sprintf("telegramtest: InjectUpdate: %v", err))
	}
	return s.enqueue(0, kind, b, s.now())
}

// InjectedAt is the server-clock time an update was injected.
func (s *Server) InjectedAt(updateID int) (time.Time, bool) {
	s.updMu.Lock()
	defer s.updMu.Unlock()
	t, ok := s.injected[updateID]
	return t, ok
}

// confirm applies getUpdates' offset semantics. updMu must be held.
func (s *Server) confirm(offset int) {
	drop := 0
	switch {
	case offset > 0:
		for drop < len(s.upd) && s.upd[drop].id < offset {
			drop++
		}
	case offset < 0:
		drop = max(len(s.upd)+offset, 0)
	}
	for _, r := range s.upd[:drop] {
		r.delivered = true
	}
	s.pending -= drop
	clear(s.upd[:drop])
	s.upd = s.upd[drop:]
}

// trimDelivered drops the delivered prefix of the queue. updMu must be held.
func (s *Server) trimDelivered() {
	k := 0
	for k < len(s.upd) && s.upd[k].delivered {
		k++
	}
	clear(s.upd[:k])
	s.upd = s.upd[k:]
}

func (s *Server) dropPending() {
	for _, r := range s.upd {
		r.delivered = true
	}
	s.upd = nil
	s.pending = 0
}

const (
	conflictWebhook   = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
	conflictOtherPoll = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
	conflictSetHook   = "Conflict: terminated by setWebhook request"
)

func (s *Server) getUpdates(c *callCtx) (any, *apiError) {
	offset, _ := c.p.int("offset")
	limit := 100
	if v, ok := c.p.int("limit"); ok {
		limit = min(max(v, 1), 100)
	}
	timeout, _ := c.p.int("timeout")
	me := &poller{stop: make(chan struct{})}

	s.updMu.Lock()
	if s.wh != nil {
		s.updMu.Unlock()
		return nil, &apiError{code: 409, desc: conflictWebhook}
	}
	if s.poller != nil {
		s.poller.reason = conflictOtherPoll
		close(s.poller.stop)
	}
	s.poller = me
	s.confirm(offset)
	s.updMu.Unlock()
	defer func() {
		s.updMu.Lock()
		if s.poller == me {
			s.poller = nil
		}
		s.updMu.Unlock()
	}()

	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(time.Duration(timeout) * time.Second)
		defer t.Stop()
		expired = t.C
	}
	for {
		s.updMu.Lock()
		var buf bytes.Buffer
		buf.WriteByte('[')
		n := 0
		for _, r := range s.upd {
			if n == limit {
				break
			}
			if r.delivered {
				continue
			}
			if n > 0 {
				buf.WriteByte(',')
			}
			buf.Write(r.payload)
			n++
		}
		buf.WriteByte(']')
		if n > 0 || expired == nil {
			s.updMu.Unlock()
			return json.RawMessage(buf.Bytes()), nil
		}
		if s.pollWake == nil {
			s.pollWake = make(chan struct{})
			s.notify() // lets tests wait until a poll is parked
		}
		wake := s.pollWake
		s.updMu.Unlock()
		select {
		case <-wake:
		case <-expired:
			return json.RawMessage("[]"), nil
		case <-me.stop:
			s.updMu.Lock()
			reason := me.reason
			s.updMu.Unlock()
			return nil, &apiError{code: 409, desc: reason}
		case <-c.ctx.Done():
			return nil, &apiError{code: -1}
		case <-s.closed:
			return json.RawMessage("[]"), nil
		}
	}
}

func validSecret(t string) bool {
	if len(t) < 1 || len(t) > 256 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if !isCmdChar(t[i]) && t[i] != '-' {
			return false
		}
	}
	return true
}

func (s *Server) setWebhook(c *callCtx) (any, *apiError) {
	raw := strings.TrimSpace(c.p["url"])
	if raw == "" {
		// An empty URL removes the webhook, as documented.
		return s.deleteWebhook(c)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, badRequest("bad webhook: Failed to resolve host: Name or service not known")
	}
	// Telegram insists on HTTPS; the fake accepts plain HTTP because test
	// webhooks are httptest servers on loopback.
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, badRequest("bad webhook: An HTTPS URL must be provided for webhook")
	}
	secret, hasSecret := c.p["secret_token"]
	if hasSecret && secret != "" && !validSecret(secret) {
		return nil, badRequest("secret token contains unallowed characters")
	}
	maxConn := 40
	if v, ok := c.p.int("max_connections"); ok {
		maxConn = min(max(v, 1), 100)
	}
	var allowed []string
	if a := c.p["allowed_updates"]; a != "" {
		if json.Unmarshal([]byte(a), &allowed) != nil {
			return nil, badRequest("can't parse allowed updates JSON object")
		}
	}
	drop := c.p.bool("drop_pending_updates")

	s.whMu.Lock()
	defer s.whMu.Unlock()
	s.updMu.Lock()
	same := s.wh != nil && s.wh.url == raw && s.wh.secret == secret && s.wh.maxConn == maxConn && !drop
	s.updMu.Unlock()
	if same {
		c.desc = "Webhook is already set"
		return true, nil
	}
	s.stopWebhookLocked()

	ctx, cancel := context.WithCancel(context.Background())
	wh := &webhook{url: raw, secret: secret, maxConn: maxConn, ctx: ctx, cancel: cancel, queues: make(map[int64][]*updateRec)}
	wh.cond = sync.NewCond(&s.updMu)
	s.updMu.Lock()
	if s.poller != nil {
		s.poller.reason = conflictSetHook
		close(s.poller.stop)
		s.poller = nil
	}
	if drop {
		s.dropPending()
	}
	for _, r := range s.upd {
		if !r.delivered {
			wh.push(r)
		}
	}
	s.wh = wh
	s.whInfo = apiWebhookInfo{URL: raw, MaxConnections: maxConn, AllowedUpdates: allowed}
	s.updMu.Unlock()
	wh.wg.Add(maxConn)
	for range maxConn {
		go s.webhookWorker(wh)
	}
	c.desc = "Webhook was set"
	s.log.Debug("telegramtest: webhook set", "url", raw, "max_connections", maxConn)
	return true, nil
}

func (s *Server) deleteWebhook(c *callCtx) (any, *apiError) {
	drop := c.p.bool("drop_pending_updates")
	s.whMu.Lock()
	defer s.whMu.Unlock()
	s.updMu.Lock()
	wasSet := s.wh != nil
	s.updMu.Unlock()
	s.stopWebhookLocked()
	s.updMu.Lock()
	if drop {
		s.dropPending()
	}
	s.whInfo = apiWebhookInfo{}
	s.updMu.Unlock()
	if wasSet {
		c.desc = "Webhook was deleted"
	} else {
		c.desc = "Webhook is already deleted"
	}
	return true, nil
}

// stopWebhookLocked stops delivery and waits for the workers, which abort
// any request in flight; undelivered updates stay queued. whMu must be held.
func (s *Server) stopWebhookLocked() {
	s.updMu.Lock()
	wh := s.wh
	s.wh = nil
	if wh != nil {
		wh.stopped = true
		wh.cond.Broadcast()
	}
	s.updMu.Unlock()
	if wh == nil {
		return
	}
	wh.cancel()
	wh.wg.Wait()
	s.updMu.Lock()
	// Chats were delivered out of global order, so delivered updates may
	// sit between pending ones; getUpdates expects a clean queue.
	s.upd = slices.DeleteFunc(s.upd, func(r *updateRec) bool { return r.delivered })
	s.updMu.Unlock()
}

func (s *Server) getWebhookInfo(*callCtx) (any, *apiError) {
	s.updMu.Lock()
	defer s.updMu.Unlock()
	info := s.whInfo
	info.PendingUpdateCount = s.pending
	return info, nil
}

func (s *Server) webhookWorker(wh *webhook) {
	defer wh.wg.Done()
	for {
		s.updMu.Lock()
		for !wh.stopped && wh.readyHead == len(wh.ready) {
			wh.cond.Wait()
		}
		if wh.stopped {
			s.updMu.Unlock()
			return
		}
		chatID := wh.ready[wh.readyHead]
		wh.readyHead++
		if wh.readyHead > 1024 && wh.readyHead*2 > len(wh.ready) {
			wh.ready = append(wh.ready[:0], wh.ready[wh.readyHead:]...)
			wh.readyHead = 0
		}
		rec := wh.queues[chatID][0]
		s.updMu.Unlock()

		ok := s.deliver(wh, rec)

		s.updMu.Lock()
		if ok {
			q := wh.queues[chatID][1:]
			rec.delivered = true
			s.pending--
			s.trimDelivered()
			if len(q) == 0 {
				delete(wh.queues, chatID)
			} else {
				wh.queues[chatID] = q
				wh.ready = append(wh.ready, chatID)
				wh.cond.Signal()
			}
		}
		s.updMu.Unlock()
		if ok {
			s.statsMu.Lock()
			s.delivered++
			s.statsMu.Unlock()
			s.notify()
		}
	}
}

// deliver POSTs one update until it is accepted (twice with DeliverTwice),
// backing off exponentially like Telegram. It returns false only when the
// webhook was stopped first.
func (s *Server) deliver(wh *webhook, rec *updateRec) bool {
	copies := 1
	if s.opts.DeliverTwice {
		copies = 2
	}
	backoff := s.opts.WebhookRetryMin
	attempt := 0
	for done := 0; done < copies; {
		attempt++
		status, reply, ctype, err := s.post(wh, rec.payload)
		d := Delivery{UpdateID: rec.id, Attempt: attempt, Status: status, At: s.now()}
		if err != nil {
			d.Err = err.Error()
		}
		s.statsMu.Lock()
		s.deliveries = append(s.deliveries, d)
		s.statsMu.Unlock()
		s.notify()
		if err == nil && status >= 200 && status < 300 {
			done++
			backoff = s.opts.WebhookRetryMin
			s.runWebhookReply(wh.ctx, reply, ctype)
			continue
		}
		if wh.ctx.Err() != nil {
			return false
		}
		msg := fmt.Sprintf("Wrong response from the webhook: %d %s", status, http.StatusText(status))
		if err != nil {
			msg = "Connection failed: " + err.Error()
		}
		s.updMu.Lock()
		if s.wh == wh {
			s.whInfo.LastErrorDate = s.now().Unix()
			s.whInfo.LastErrorMessage = msg
		}
		s.updMu.Unlock()
		s.log.Debug("telegramtest: webhook delivery failed", "update_id", rec.id, "attempt", attempt, "error", msg)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-wh.ctx.Done():
			t.Stop()
			return false
		}
		backoff = min(backoff*2, s.opts.WebhookRetryMax)
	}
	return true
}

func (s *Server) post(wh *webhook, payload []byte) (status int, body []byte, ctype string, err error) {
	ctx, cancel := context.WithTimeout(wh.ctx, s.opts.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, wh.url, bytes.NewReader(payload))
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if wh.secret != "" {
		req.Header.Set("X-Telegram-Bot-Api-Secret-Token", wh.secret)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, body, resp.Header.Get("Content-Type"), nil
}

// runWebhookReply executes a method the bot returned in its webhook
// response, which the Bot API allows instead of a separate request.
func (s *Server) runWebhookReply(ctx context.Context, body []byte, ctype string) {
	if len(bytes.TrimSpace(body)) == 0 {
		return
	}
	mt, _, _ := mime.ParseMediaType(ctype)
	p := params{}
	switch mt {
	case "application/json":
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil {
			return
		}
		for k, v := range m {
			if sv, ok := rawParam(v); ok {
				p[k] = sv
			}
		}
	case "application/x-www-form-urlencoded":
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			return
		}
		for k, v := range vals {
			p[k] = v[0]
		}
	default:
		return
	}
	method := p["method"]
	if method == "" {
		return
	}
	delete(p, "method")
	switch strings.ToLower(method) {
	case "setwebhook", "deletewebhook":
		// These wait for the delivery workers, one of which is us.
		go s.execute(context.Background(), method, p)
	default:
		s.execute(ctx, method, p)
	}
}

// Deliveries returns every webhook delivery attempt so far.
func (s *Server) Deliveries() []Delivery {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return slices.Clone(s.deliveries)
}

package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/dialoq/dialoq/storage/redisstate"
)

// ErrStorage wraps the error HandleUpdate returns when the dialogue store could not
// be read or written. Nothing was committed and nothing was sent except, once per
// outage, a "try again shortly" (see TellTryAgain); the update should be retried.
var ErrStorage = errors.New("bot: dialogue store unavailable")

// errNoWrite tells Apply that the update changes nothing worth storing.
var errNoWrite = errors.New("bot: nothing to write")

// errInternal marks a failure that retrying cannot fix.
var errInternal = errors.New("bot: internal error")

// HandleUpdate applies one update: Load, a pure step, Commit, then the messages. It
// returns nil when the update is done with (applied, a duplicate, or ignored) and an
// error wrapping ErrStorage when it must be retried. It is safe for concurrent use;
// two updates of one dialogue are serialised by the store's version check.
func (b *Bot) HandleUpdate(ctx context.Context, u Update) error {
	return b.handle(ctx, u, nil)
}

// handle is HandleUpdate with the webhook's reply, which answers a pressed button
// without a request of its own (nil: no webhook reply).
func (b *Bot) handle(ctx context.Context, u Update, reply *webhookReply) (err error) {
	start := b.now()
	ev, ok := b.parseUpdate(u)
	if !ok {
		b.m.update("other", "ignored")
		return nil
	}
	ev.reply = reply
	defer func() {
		// A bug in one update must not stop the worker or block the offset behind
		// it forever: it is logged and counted as done.
		if r := recover(); r != nil {
			b.log.Error("bot: panic handling update", "update_id", ev.updateID, "panic", r, "stack", string(debug.Stack()))
			b.m.update(ev.kind.String(), "panic")
			err = nil
		}
		b.m.handle.Observe(b.now().Sub(start).Seconds())
	}()
	if ev.kind == evCallback && ev.cbOK && ev.cb.kind == cbForgetYes && ev.private {
		return b.forget(ctx, ev)
	}
	if done, err := b.privileged(ctx, ev); done {
		return err
	}
	var out outcome
	_, err = b.store.Apply(ctx, ev.key, func(snap redisstate.Snapshot) (redisstate.Write, error) {
		out = b.decide(snap, ev)
		if !out.write {
			return redisstate.Write{}, errNoWrite
		}
		data, err := encodeEnvelope(out.env)
		if err != nil {
			return redisstate.Write{}, fmt.Errorf("%w: %w", errInternal, err)
		}
		return redisstate.Write{
			Data: data, UpdateID: ev.updateID, Outbox: out.outbox,
			Active: out.env.state.Active(), Now: b.now(),
		}, nil
	})
	switch {
	case errors.Is(err, redisstate.ErrDuplicate):
		// Applied before (a redelivery): its messages were sent then. A callback is
		// still answered, quietly: if the first delivery died between commit and
		// answer, or an older press lost to a newer one of the same user, the
		// client would otherwise spin until it times out. A second answer to the
		// same query is refused by Telegram, harmlessly.
		b.m.update(ev.kind.String(), "duplicate")
		b.answer(ctx, ev, "")
		return nil
	case errors.Is(err, errInternal):
		b.log.Error("bot: cannot handle update", "update_id", ev.updateID, "err", scrub(err, ev.key))
		b.m.update(ev.kind.String(), "error")
		return nil
	case errors.Is(err, errNoWrite):
	case err != nil:
		b.m.update(ev.kind.String(), "storage_error")
		return fmt.Errorf("%w: %w", ErrStorage, scrub(err, ev.key))
	}
	b.told.forget(tellKey(ev.key))
	if out.corrupt {
		b.log.Warn("bot: unreadable dialogue state was reset", "update_id", ev.updateID)
	}
	for _, complete := range out.subs {
		b.m.submission(complete)
	}
	switch out.result {
	case "forged":
		b.m.forgedCallback()
		b.log.Debug("bot: forged callback data", "update_id", ev.updateID, "chat", ev.key.ChatID)
	case "stale":
		b.m.stale.Inc()
	}
	b.m.update(ev.kind.String(), out.result)
	if out.write {
		b.afterCommit(ctx, ev.key, out.idx)
	}
	b.perform(ctx, ev, out)
	return nil
}

// perform makes the Telegram calls an outcome asks for, after the commit. A failed
// call is logged and the rest still made (a failed edit must not swallow the next
// question), except after a 403: the user blocked the bot and gets nothing more.
// Calls answered 429 wait in the backlog, not in this update's goroutine.
func (b *Bot) perform(ctx context.Context, ev event, out outcome) {
	chat := ev.key.ChatID
	lang := out.env.Lang
	calls := make([]tgCall, 0, len(out.acts)+1)
	if ev.queryID != "" && !ev.reply.take(ev.queryID, out.cbText) {
		// First: the client shows a spinner until then.
		calls = append(calls, tgCall{"answerCallbackQuery", func(ctx context.Context) error {
			return b.tg.answerCallback(ctx, ev.queryID, out.cbText, true)
		}})
	}
	// Edits of earlier messages go last: the user waits for the next question, not
	// for the answered one to turn into its transcript line.
	var edits []tgCall
	for _, a := range out.acts {
		switch a.kind {
		case actSend:
			parts := b.parts(lang, a.html)
			for i, p := range parts {
				var kb keyboard
				if i == len(parts)-1 {
					kb = a.kb
				}
				calls = append(calls, tgCall{"sendMessage", func(ctx context.Context) error {
					_, err := b.tg.sendMessage(ctx, chat, p, kb, true)
					return err
				}})
			}
		case actEditText:
			html := b.single(lang, a.html)
			edits = append(edits, tgCall{"editMessageText", func(ctx context.Context) error {
				return b.tg.editText(ctx, chat, a.msgID, html, nil, true)
			}})
		case actEditMarkup:
			edits = append(edits, tgCall{"editMessageReplyMarkup", func(ctx context.Context) error {
				return b.tg.editMarkup(ctx, chat, a.msgID, a.kb, true)
			}})
		}
	}
	b.later.run(ctx, ev.key, append(calls, edits...))
}

// answer answers the pressed button's query, in the webhook reply when there is
// one. It is best effort: a lost answer only leaves a spinner that stops by itself.
func (b *Bot) answer(ctx context.Context, ev event, text string) {
	if ev.queryID == "" || ev.reply.take(ev.queryID, text) {
		return
	}
	if err := b.tg.answerCallback(ctx, ev.queryID, text, true); err != nil {
		b.log.Debug("bot: answer callback", "err", err)
	}
}

// parts splits a message into pieces Telegram accepts, marking right-to-left ones.
func (b *Bot) parts(lang, html string) []string {
	prefix := ""
	if isRTL(lang) {
		prefix = rtlMark
	}
	parts := splitHTML(html, maxMessageUnits-visibleUnits(prefix))
	for i := range parts {
		parts[i] = prefix + parts[i]
	}
	return parts
}

// single is parts for an edit, which can only be one message.
func (b *Bot) single(lang, html string) string {
	prefix := ""
	if isRTL(lang) {
		prefix = rtlMark
	}
	return prefix + truncateHTML(html, maxMessageUnits-visibleUnits(prefix))
}

// forget deletes the dialogue state, the only thing stored under the user's id, and
// withdraws the submissions the user sent from here: the withdrawals go into the
// outbox in the same atomic step that deletes the state, so none is lost. What
// remains after the commit is a tombstone, which Delete then removes too.
func (b *Bot) forget(ctx context.Context, ev event) error {
	lang := b.clientLang(ev.clientLang)
	var withdrawn int
	_, err := b.store.Apply(ctx, ev.key, func(snap redisstate.Snapshot) (redisstate.Write, error) {
		w := redisstate.Write{UpdateID: ev.updateID, Now: b.now()}
		withdrawn = 0
		if env, err := decodeEnvelope(snap.Data); err == nil {
			if env.Lang != "" {
				lang = env.Lang
			}
			for _, id := range env.Sent {
				entry, err := json.Marshal(outboxEntry{Withdraw: id})
				if err != nil {
					return w, err
				}
				w.Outbox = append(w.Outbox, entry)
				withdrawn++
			}
		}
		return w, nil
	})
	if err != nil && !errors.Is(err, redisstate.ErrDuplicate) {
		b.m.update(ev.kind.String(), "storage_error")
		return fmt.Errorf("%w: %w", ErrStorage, scrub(err, ev.key))
	}
	if err := b.store.Delete(ctx, ev.key); err != nil {
		b.m.update(ev.kind.String(), "storage_error")
		return fmt.Errorf("%w: %w", ErrStorage, scrub(err, ev.key))
	}
	if err := b.forgetIndex(ctx, ev.key); err != nil {
		b.m.update(ev.kind.String(), "storage_error")
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	b.told.forget(tellKey(ev.key))
	b.m.update(ev.kind.String(), "forgotten")
	done := b.t(lang, "bot.forget.done", nil)
	if withdrawn > 0 {
		done = b.tp(lang, "bot.forget.withdrawn", withdrawn)
	}
	b.perform(ctx, ev, outcome{
		env:    envelope{Lang: lang},
		cbText: b.t(lang, "bot.forget.done_short", nil),
		acts:   []action{{kind: actEditText, msgID: ev.msgID, html: esc(done)}},
	})
	return nil
}

// markInactive records a 403 in the envelope, so nothing more is sent to the user
// until they write again.
func (b *Bot) markInactive(ctx context.Context, k redisstate.Key) {
	b.m.blocked.Inc()
	if err := b.rdb.SAdd(ctx, b.blockedKey(), chatString(k.ChatID)).Err(); err != nil {
		b.log.Warn("bot: cannot record blocked chat", "err", err)
	}
	_, err := b.store.Apply(ctx, k, func(snap redisstate.Snapshot) (redisstate.Write, error) {
		if !snap.Exists {
			return redisstate.Write{}, errNoWrite
		}
		env, err := decodeEnvelope(snap.Data)
		if err != nil || env.Inactive {
			return redisstate.Write{}, errNoWrite
		}
		env.Inactive = true
		data, err := encodeEnvelope(env)
		if err != nil {
			return redisstate.Write{}, err
		}
		return redisstate.Write{Data: data, Active: env.state.Active(), Now: b.now()}, nil
	})
	if err != nil && !errors.Is(err, errNoWrite) {
		b.log.Warn("bot: cannot mark user inactive", "err", scrub(err, k))
	}
}

func tellKey(k redisstate.Key) string { return "k:" + k.String() }

// TellTryAgain tells the sender of u, once per outage, that the bot cannot store
// anything right now. It needs no storage: the language comes from the client.
func (b *Bot) TellTryAgain(ctx context.Context, u Update) {
	ev, ok := b.parseUpdate(u)
	if !ok || !ev.private || ev.kind == evMember {
		return
	}
	text := b.t(b.clientLang(ev.clientLang), "bot.try_again", nil)
	if ev.queryID != "" {
		b.told.first(tellKey(ev.key))
		if b.told.first("q:" + ev.queryID) {
			if err := b.tg.answerCallback(ctx, ev.queryID, text, true); err != nil {
				b.log.Debug("bot: answer callback", "err", err)
			}
		}
		return
	}
	if b.told.first(tellKey(ev.key)) {
		if _, err := b.tg.sendMessage(ctx, ev.key.ChatID, esc(text), nil, true); err != nil {
			b.log.Debug("bot: send try-again message", "err", err)
		}
	}
}

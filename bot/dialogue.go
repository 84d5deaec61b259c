package bot

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/storage/flowschema"
	"github.com/dialoq/dialoq/storage/redisstate"
)

type actionKind uint8

const (
	actSend actionKind = iota + 1
	actEditText
	actEditMarkup
)

// action is one Telegram call to make after the commit.
type action struct {
	kind  actionKind
	msgID int
	html  string
	kb    keyboard // actEditMarkup: nil removes the keyboard
}

// outcome is what handling one update decided. decide computes it without any I/O,
// so it can run again when a concurrent writer forces a retry.
type outcome struct {
	write   bool // commit env (false: nothing to store, e.g. forged data)
	env     envelope
	outbox  [][]byte
	subs    []bool // Complete of each outbox entry, for metrics
	acts    []action
	cbText  string // the answer to the callback query
	result  string // for metrics: ok, forged, stale, ignored
	corrupt bool   // the stored state was unreadable and was reset
	idx     indexChange
}

// turn accumulates the outcome of one update.
type turn struct {
	b     *Bot
	ev    event
	now   time.Time
	env   envelope
	notes []string // HTML paragraphs that go before the next message
	out   outcome
}

func (t *turn) lang() string { return t.env.Lang }

func (t *turn) tx(id string, data map[string]any) string { return t.b.t(t.lang(), id, data) }

func (t *turn) note(html string) {
	if strings.TrimSpace(html) != "" {
		t.notes = append(t.notes, html)
	}
}

// send queues a message, with the pending notes in front of it: one message reads
// better than three and costs a third of the per-chat rate limit.
func (t *turn) send(html string, kb keyboard) {
	body := paragraphs(append(t.notes, html)...)
	t.notes = nil
	if strings.TrimSpace(body) == "" {
		return
	}
	t.out.acts = append(t.out.acts, action{kind: actSend, html: body, kb: kb})
}

func (t *turn) flush() {
	if len(t.notes) > 0 {
		t.send("", nil)
	}
}

func (t *turn) editText(msgID int, html string) {
	if msgID != 0 {
		t.out.acts = append(t.out.acts, action{kind: actEditText, msgID: msgID, html: html})
	}
}

func (t *turn) editMarkup(msgID int, kb keyboard) {
	if msgID != 0 {
		t.out.acts = append(t.out.acts, action{kind: actEditMarkup, msgID: msgID, kb: kb})
	}
}

func (t *turn) answer(text string) {
	if t.out.cbText == "" {
		t.out.cbText = text
	}
}

// decide turns a loaded snapshot and an event into what to store and what to say.
func (b *Bot) decide(snap redisstate.Snapshot, ev event) outcome {
	t := &turn{b: b, ev: ev, now: b.now(), out: outcome{write: true, result: "ok"}}
	env, err := decodeEnvelope(snap.Data)
	if err == nil {
		err = b.engine.Check(env.state)
	}
	if err != nil {
		// A state this engine cannot continue (corrupted, or from an incompatible
		// release): start afresh rather than misfile answers. Tokens must keep
		// growing, or buttons of the lost dialogue could answer new questions; each
		// commit adds at most two, so twice the version is past any old token.
		t.out.corrupt = true
		env = envelope{Lang: env.Lang}
		env.state = flows.State{Token: int(min(2*snap.Version+2, 1e8))}
		t.note(esc(b.t(b.clientLang(ev.clientLang), "bot.state_reset", nil)))
	}
	if env.Lang == "" || !b.cat.Supported(env.Lang) {
		env.Lang = b.clientLang(ev.clientLang)
	}
	env.state.Lang = env.Lang
	t.env = env

	if !ev.private {
		// Answers typed in a group would be read by everyone in it.
		t.out.write = false
		t.out.result = "ignored"
		if ev.kind == evCommand {
			t.send(esc(t.tx("bot.private_only", nil)), nil)
		}
		if ev.kind == evCallback {
			t.answer(t.tx("bot.private_only", nil))
		}
		return t.out
	}
	if ev.kind == evMember {
		t.env.Inactive = ev.blocked
		t.out.env = t.env
		return t.out
	}
	// Anyone who writes has not blocked the bot (any more).
	t.out.idx.unblocked = t.env.Inactive
	t.env.Inactive = false
	if !snap.Exists {
		t.out.idx.segs = append(t.out.idx.segs, segAll)
	}
	if t.env.Closed {
		days := max(1, int(b.cfg.PartialAfter.Hours()/24))
		t.note(esc(b.cat.Plural(t.lang(), "bot.closed", days, nil)))
		t.env.Closed = false
	}
	switch ev.kind {
	case evCommand:
		t.command(ev.cmd, ev.arg)
	case evText:
		if t.env.state.Active() {
			t.render(t.step(flows.Input{Kind: flows.InText, Text: ev.text}))
		} else {
			t.note(esc(t.tx("bot.free_text", nil)))
			t.showMenu()
		}
	case evOther:
		t.note(esc(t.tx("bot.text_only", nil)))
		if t.env.state.Active() {
			t.render(t.step(flows.Input{Kind: flows.InRepeat}))
		} else {
			t.showMenu()
		}
	case evCallback:
		t.callback()
	}
	t.flush()
	t.out.env = t.env
	return t.out
}

// step runs the engine and keeps the channel's part of the state in line: when the
// running flow started, its code, and the submission of a finished one.
func (t *turn) step(in flows.Input) flows.Output {
	old := t.env.state
	st, out := t.b.engine.Step(old, in)
	t.env.state = st
	if st.Active() && (!old.Active() || old.Flow != st.Flow || in.Kind == flows.InStart || in.Kind == flows.InRestart) {
		t.env.Started = t.now.Unix()
	}
	if out.Done != nil {
		t.enqueue(out.Done, t.now)
	}
	if !st.Active() {
		t.env.Started, t.env.Code = 0, ""
	}
	return out
}

// enqueue puts the submission of c into the outbox of this very commit.
func (t *turn) enqueue(c *flows.Completion, finished time.Time) {
	started := time.Unix(t.env.Started, 0)
	if t.env.Started == 0 || started.After(finished) {
		started = finished
	}
	sub := flowschema.Submission(c, flowschema.Meta{Code: t.env.Code, StartedAt: started, FinishedAt: finished})
	data, err := json.Marshal(sub)
	if err != nil {
		t.b.log.Error("bot: encode submission", "err", err) // plain data: cannot happen
		return
	}
	t.out.outbox = append(t.out.outbox, data)
	t.out.subs = append(t.out.subs, c.Complete)
	t.env.remember(sub.ID)
	if c.Complete {
		t.out.idx.segs = append(t.out.idx.segs, completionSegments(c.Flow, c.Country, c.Stakeholder)...)
		if t.env.Code != "" {
			t.out.idx.codeFinished = c.Flow + "-" + t.env.Code
		}
	}
}

// render says what the engine's output means, as new messages.
func (t *turn) render(out flows.Output) {
	for _, n := range out.Notices {
		t.note(esc(n))
	}
	if out.Error != "" {
		t.note("⚠️ " + esc(out.Error))
	}
	switch {
	case out.Prompt != nil:
		t.send(t.b.promptHTML(t.lang(), out.Prompt), t.b.promptKeyboard(t.lang(), out.Prompt))
	case out.Done != nil:
		if d, ok := t.b.set.Get(out.Done.Flow); ok && d.Kind == flows.KindSession {
			// A session ends on its own last card; what comes next is the menu.
			t.showMenu()
			return
		}
		if len(out.Notices) == 0 {
			// The questionnaire ended on its own closing card, which said thank
			// you already; the save is still worth confirming.
			t.note(esc(t.tx("bot.saved", nil)))
		}
		t.send("", t.b.menuButton(t.lang()))
	case out.Cancelled:
		t.send("", t.b.menuButton(t.lang()))
	case out.Idle:
		t.note(esc(t.tx("bot.idle", nil)))
		t.showMenu()
	}
}

func (t *turn) showMenu() {
	t.send(t.b.menuHTML(t.lang(), t.env.state), t.b.menuKeyboard(t.lang(), t.env.state))
}

func (t *turn) languagePicker() {
	t.send(esc(t.tx("bot.language.choose", nil)), t.b.languageKeyboard(t.lang()))
}

func (t *turn) resume() {
	if !t.env.state.Active() {
		t.note(esc(t.tx("bot.nothing_to_resume", nil)))
		t.showMenu()
		return
	}
	t.render(t.step(flows.Input{Kind: flows.InRepeat}))
}

// startFlow opens a flow, or shows where the user is when it is open already: a
// second tap on the same menu entry or link must not throw answers away. A different
// flow (or code) replaces the running one, whose answers are posted as a partial
// submission, as the sweeper would have done had the user just left.
func (t *turn) startFlow(flow, code string) {
	st := t.env.state
	if st.Active() && st.Flow == flow && (code == "" || code == t.env.Code) {
		t.render(t.step(flows.Input{Kind: flows.InRepeat}))
		return
	}
	if c, ok := t.b.engine.Partial(st); ok && st.Active() {
		t.enqueue(c, t.now)
	}
	t.env.Code = code
	if code != "" {
		t.out.idx.codeStarted = flow + "-" + code
	}
	t.render(t.step(flows.Input{Kind: flows.InStart, Flow: flow, Lang: t.lang()}))
}

// setLang switches language, keeping every answer, and shows the current question
// (or the menu) in the new language.
func (t *turn) setLang(lang string) {
	t.env.Lang = lang
	out := t.step(flows.Input{Kind: flows.InLang, Lang: lang})
	t.note(esc(t.tx("bot.language.set", map[string]any{"Name": t.b.languageName(lang)})))
	if out.Prompt != nil {
		t.render(out)
		return
	}
	t.showMenu()
}

func (t *turn) forged() {
	t.out.write = false
	t.out.result = "forged"
}

func (t *turn) stale() {
	t.answer(t.tx("bot.stale", nil))
	t.out.write = false
	t.out.result = "stale"
}

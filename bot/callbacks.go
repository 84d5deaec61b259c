package bot

import (
	"github.com/dialoq/dialoq/flows"
)

// callback handles a pressed inline button.
func (t *turn) callback() {
	if !t.ev.cbOK {
		t.forged()
		return
	}
	cb := t.ev.cb
	switch cb.kind {
	case cbChoose, cbToggle, cbDone, cbBack, cbSkip:
		t.pressed(cb)
	case cbFlow:
		if _, ok := t.b.set.Get(cb.arg); !ok {
			t.forged()
			return
		}
		t.startFlow(cb.arg, "")
	case cbLang:
		if !t.b.cat.Supported(cb.arg) {
			t.forged()
			return
		}
		t.editMarkup(t.ev.msgID, nil)
		t.setLang(cb.arg)
		t.answer(t.tx("bot.language.set", map[string]any{"Name": t.b.languageName(cb.arg)}))
	case cbLangMenu:
		t.languagePicker()
	case cbMenu:
		t.showMenu()
	case cbResume:
		t.resume()
	case cbOptOut, cbOptIn:
		t.editMarkup(t.ev.msgID, nil)
		t.setOptOut(cb.kind == cbOptOut)
	case cbForgetNo:
		t.editText(t.ev.msgID, esc(t.tx("bot.forget.kept", nil)))
	default:
		// f:yes never gets here (HandleUpdate deletes before any state is loaded).
		t.forged()
	}
}

// pressed handles a button of a prompt: the token says which prompt, so a press on
// anything but the current one changes nothing.
func (t *turn) pressed(cb callback) {
	st := t.env.state
	switch {
	case cb.token > st.Token:
		t.forged() // tokens are never handed out ahead
		return
	case cb.token < st.Token || !st.Active():
		t.stale()
		return
	}
	in := flows.Input{Token: cb.token}
	_, cur := t.b.engine.Step(st, flows.Input{Kind: flows.InRepeat})
	prev := cur.Prompt
	switch cb.kind {
	case cbChoose, cbToggle:
		if prev == nil || prev.Token != cb.token || cb.index >= len(prev.Options) {
			t.forged()
			return
		}
		in.Kind, in.Option = flows.InChoose, prev.Options[cb.index].ID
		if cb.kind == cbToggle {
			in.Kind = flows.InToggle
		}
	case cbDone:
		in.Kind = flows.InDone
	case cbBack:
		in.Kind = flows.InBack
	case cbSkip:
		in.Kind = flows.InSkip
	}
	out := t.step(in)
	msg := t.ev.msgID
	if out.Prompt != nil && out.Prompt.Token == cb.token {
		// Still the same question: a toggle, or an answer that was refused. The
		// message is updated in place instead of sending the question again.
		if out.Error != "" {
			t.answer(out.Error)
		} else if cb.kind == cbToggle {
			t.editMarkup(msg, t.b.promptKeyboard(t.lang(), out.Prompt))
		}
		for _, n := range out.Notices {
			t.note(esc(n))
		}
		return
	}
	switch {
	case out.Answered != nil && out.Answered.Token == cb.token:
		t.editText(msg, answeredHTML(out.Answered))
	case cb.kind == cbSkip && prev != nil:
		t.editText(msg, t.b.skippedHTML(t.lang(), prev))
	default:
		// A card that was read, or a question left with Back: keep the text, drop
		// the buttons that no longer apply.
		t.editMarkup(msg, nil)
	}
	t.render(out)
}

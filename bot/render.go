package bot

import (
	"strings"
	"unicode/utf8"

	"github.com/dialoq/dialoq/flows"
)

// keyboard is an inline keyboard; nil means "no keyboard" and an empty one removes
// the keyboard of an edited message.
type keyboard = *inlineKeyboard

// inlineKeyboard is the Bot API's InlineKeyboardMarkup with the only kind of button
// the bot uses, so that encoding it (for every question sent) walks two fields per
// button, not a dozen optional ones.
type inlineKeyboard struct {
	InlineKeyboard [][]inlineButton `json:"inline_keyboard"`
}

type inlineButton struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data"`
}

func emptyKeyboard() keyboard {
	return &inlineKeyboard{InlineKeyboard: [][]inlineButton{}}
}

func button(label, data string) inlineButton {
	return inlineButton{Text: label, CallbackData: data}
}

// t returns a message of the bot's own texts, never empty: a missing translation
// falls back to English in the catalog, and a missing message to its id, which lint
// and the tests catch long before a user could see it.
func (b *Bot) t(lang, id string, data map[string]any) string {
	if s := b.cat.Text(lang, id, data); s != "" {
		return s
	}
	return id
}

// tp is t for a message with plural forms, chosen for n by the rules of lang.
func (b *Bot) tp(lang, id string, n int) string {
	if s := b.cat.Plural(lang, id, n, map[string]any{"Count": n}); s != "" {
		return s
	}
	return id
}

// isCard reports whether p is a card to read (a note, a list of hotlines) rather than
// a question: it has a single Next button and nothing to skip.
func isCard(p *flows.Prompt) bool {
	switch p.Type {
	case flows.TypeNote, flows.TypeHotlines:
		return true
	}
	return p.Progress.Total == 0 && len(p.Options) == 1 && p.Options[0].ID == "next"
}

// promptHTML renders a question or card: progress, text, item, hint, how to answer.
func (b *Bot) promptHTML(lang string, p *flows.Prompt) string {
	var head []string
	if p.Progress.Total > 0 && p.Progress.Text != "" {
		head = append(head, italic(p.Progress.Text))
	}
	question := bold(p.Text)
	if isCard(p) {
		question = esc(p.Text) // a card is read, not answered: no need to shout it
	}
	body := lines(question, itemLine(p.Item))
	var foot []string
	if p.Hint != "" {
		foot = append(foot, italic(p.Hint))
	}
	if p.Input != "" {
		foot = append(foot, esc(p.Input))
	}
	if p.Current != "" && !p.Multi {
		foot = append(foot, esc(b.t(lang, "bot.current", map[string]any{"Answer": p.Current})))
	}
	return paragraphs(lines(head...), body, lines(foot...))
}

func itemLine(item string) string {
	if item == "" {
		return ""
	}
	return "» " + bold(item)
}

// answeredHTML is what a question's message turns into once it is answered by a
// button: the question and the answer, no buttons, so the chat reads as a transcript.
func answeredHTML(a *flows.Answered) string {
	return lines(bold(a.Text), itemLine(a.Item), "✔ "+italic(a.Answer))
}

func (b *Bot) skippedHTML(lang string, p *flows.Prompt) string {
	return lines(bold(p.Text), itemLine(p.Item), "— "+italic(b.t(lang, "bot.skipped", nil)))
}

// Button layout: labels up to these many characters share a row with others.
const (
	shortLabel  = 6
	mediumLabel = 12
	longLabel   = 20
)

func perRow(labels []string) int {
	longest := 0
	for _, l := range labels {
		longest = max(longest, utf8.RuneCountInString(l))
	}
	switch {
	case longest <= shortLabel:
		return 4
	case longest <= mediumLabel:
		return 3
	case longest <= longLabel:
		return 2
	}
	return 1
}

func grid(btns []inlineButton, labels []string) [][]inlineButton {
	n := perRow(labels)
	var rows [][]inlineButton
	for len(btns) > 0 {
		k := min(n, len(btns))
		rows = append(rows, btns[:k])
		btns = btns[k:]
	}
	return rows
}

// promptKeyboard lays out a prompt's buttons; nil when it has none.
func (b *Bot) promptKeyboard(lang string, p *flows.Prompt) keyboard {
	var rows [][]inlineButton
	tok := p.Token
	switch {
	case isCard(p):
		label := firstNonEmpty(optionLabel(p, 0), b.t(lang, "ui.next", nil))
		rows = append(rows, []inlineButton{button(label, callback{kind: cbChoose, token: tok}.String())})
	case p.Type == flows.TypeRating || p.Type == flows.TypeMatrix:
		// One compact row of numbers; "not applicable" is long, so it gets its own.
		var nums, na []inlineButton
		for i, o := range p.Options {
			btn := button(firstNonEmpty(o.Label, o.ID), callback{kind: cbChoose, token: tok, index: i}.String())
			if o.ID == flows.NA {
				na = append(na, btn)
			} else {
				nums = append(nums, btn)
			}
		}
		rows = append(rows, nums)
		if len(na) > 0 {
			rows = append(rows, na)
		}
	case len(p.Options) > 0:
		kind := cbChoose
		if p.Multi {
			kind = cbToggle
		}
		btns := make([]inlineButton, len(p.Options))
		labels := make([]string, len(p.Options))
		for i, o := range p.Options {
			label := firstNonEmpty(o.Label, o.ID)
			if p.Multi && o.Picked {
				label = "✅ " + label
			}
			labels[i] = label
			btns[i] = button(label, callback{kind: kind, token: tok, index: i}.String())
		}
		rows = append(rows, grid(btns, labels)...)
		if p.Multi {
			rows = append(rows, []inlineButton{button(b.t(lang, "ui.done", nil), callback{kind: cbDone, token: tok}.String())})
		}
	}
	var nav []inlineButton
	if p.CanBack {
		nav = append(nav, button(b.t(lang, "bot.button.back", nil), callback{kind: cbBack, token: tok}.String()))
	}
	if !p.Required && !isCard(p) {
		nav = append(nav, button(b.t(lang, "bot.button.skip", nil), callback{kind: cbSkip, token: tok}.String()))
	}
	if isCard(p) {
		// A card reader may want another session rather than the next card; the
		// menu keeps this one open behind its Continue button.
		nav = append(nav, button(b.t(lang, "bot.button.menu", nil), callback{kind: cbMenu}.String()))
	}
	if len(nav) > 0 {
		rows = append(rows, nav)
	}
	if len(rows) == 0 {
		return nil
	}
	return &inlineKeyboard{InlineKeyboard: rows}
}

func optionLabel(p *flows.Prompt, i int) string {
	if i < len(p.Options) {
		return p.Options[i].Label
	}
	return ""
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return "…"
}

// menuHTML lists the flows a user can open, with the running one named first.
func (b *Bot) menuHTML(lang string, st flows.State) string {
	var items []string
	for _, id := range b.menu {
		title := b.t(lang, id+".title", nil)
		line := "• " + bold(title)
		if d := b.cat.Text(lang, id+".description", nil); d != "" {
			line += " — " + esc(d)
		}
		items = append(items, line)
	}
	var active string
	if st.Active() {
		active = esc(b.t(lang, "bot.menu.active", map[string]any{"Title": b.t(lang, st.Flow+".title", nil)}))
	}
	return paragraphs(active, bold(b.t(lang, "bot.menu.title", nil)), lines(items...))
}

func (b *Bot) menuKeyboard(lang string, st flows.State) keyboard {
	var rows [][]inlineButton
	if st.Active() {
		rows = append(rows, []inlineButton{button(b.t(lang, "bot.button.continue", nil), callback{kind: cbResume}.String())})
	}
	for _, id := range b.menu {
		rows = append(rows, []inlineButton{button(b.t(lang, id+".title", nil), callback{kind: cbFlow, arg: id}.String())})
	}
	rows = append(rows, []inlineButton{button(b.t(lang, "bot.button.language", nil), callback{kind: cbLangMenu}.String())})
	return &inlineKeyboard{InlineKeyboard: rows}
}

// menuButton is the small keyboard under a closing message: one press to the menu.
func (b *Bot) menuButton(lang string) keyboard {
	return &inlineKeyboard{InlineKeyboard: [][]inlineButton{{button(b.t(lang, "bot.button.menu", nil), callback{kind: cbMenu}.String())}}}
}

// languageKeyboard offers every language by its own name, the current one ticked.
func (b *Bot) languageKeyboard(current string) keyboard {
	var btns []inlineButton
	var labels []string
	for _, l := range b.langs {
		label := b.languageName(l)
		if l == current {
			label = "✅ " + label
		}
		labels = append(labels, label)
		btns = append(btns, button(label, callback{kind: cbLang, arg: l}.String()))
	}
	rows := grid(btns, labels)
	return &inlineKeyboard{InlineKeyboard: rows}
}

package flows

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/dialoq/dialoq/flows/expr"
)

// Translator gives localised text. It is an interface so the engine stays free of
// go-i18n; Text returns "" when no locale has the message, never the id.
type Translator interface {
	Text(lang, id string, data map[string]any) string
	Plural(lang, id string, count int, data map[string]any) string
}

// Engine steps through the definitions of a Set. It holds no per-user data and is safe
// for concurrent use.
type Engine struct {
	set *Set
	tr  Translator
}

// NewEngine returns an engine over set that speaks through tr.
func NewEngine(set *Set, tr Translator) *Engine { return &Engine{set: set, tr: tr} }

// Set returns the definitions the engine runs.
func (e *Engine) Set() *Set { return e.set }

// InputKind says what the user did.
type InputKind uint8

// Inputs.
const (
	InStart  InputKind = iota + 1 // begin Flow (restarts if one is running)
	InText                        // typed Text
	InChoose                      // pressed Option
	InToggle                      // toggled Option of a multiple-choice question
	InDone                        // finished picking
	InBack
	InSkip
	InRestart
	InCancel
	InRepeat // show the current question again
	InLang   // switch to Lang, keeping every answer
)

// Input is one thing the user did. Token, when not zero, is the token of the prompt
// the input answers (from a button); a mismatch means the press is stale.
type Input struct {
	Kind   InputKind
	Flow   string
	Lang   string
	Text   string
	Option string
	Token  int
}

// State is everything the engine needs to continue a dialogue. It is small and
// serialisable; answers are keyed by question id, never by position, so a changed
// definition can never file an answer under the wrong question.
type State struct {
	Flow    string            `json:"f,omitempty"`
	Version int               `json:"v,omitempty"`
	Hash    string            `json:"h,omitempty"`
	Lang    string            `json:"l,omitempty"`
	Cur     string            `json:"c,omitempty"`
	Answers map[string]string `json:"a,omitempty"`
	Picks   []string          `json:"p,omitempty"`
	// Token grows every time a new prompt is shown, and never goes back, so a button of
	// an earlier prompt, even of an earlier run of the flow, is recognised as stale.
	Token int `json:"t,omitempty"`
}

// Active reports whether a flow is running.
func (s State) Active() bool { return s.Flow != "" }

// ownAnswers gives s answers of its own, for a step that is about to change them:
// a step shares the caller's answers otherwise, since most steps (a repeated prompt,
// a refused answer, a toggle) change none, and a copy of a long questionnaire's
// answers on every step was a good part of the engine's cost.
func (s *State) ownAnswers() {
	s.Answers = maps.Clone(s.Answers)
}

// Output is what to say after an input.
type Output struct {
	// Notices come first: a flow was updated, a flow was stopped, and so on.
	Notices []string
	// Answered is the prompt that was just answered, with the answer's text, so a chat
	// can replace the question's buttons with what was chosen.
	Answered *Answered
	// Error is why the input was refused; the prompt is repeated.
	Error  string
	Prompt *Prompt
	Done   *Completion
	// Stale is set when a button of an old prompt was pressed; nothing changed.
	Stale bool
	// Idle is set when no flow runs and the input needs one.
	Idle      bool
	Cancelled bool
}

// Answered describes an accepted answer.
type Answered struct {
	Token    int
	Question string
	Text     string // the question as it was asked
	Item     string // the matrix item, if any
	Answer   string // the answer as the user would say it
}

// Prompt is a question or card, localised.
type Prompt struct {
	Token    int
	Key      string
	Question string
	Type     Type
	Text     string
	Item     string // the matrix item being rated
	Hint     string
	Input    string // how to answer, for typed answers
	Options  []Option
	Multi    bool
	Current  string // the stored answer as the user would say it, when they came back to it
	Progress Progress
	Required bool
	CanBack  bool
}

// Option is a choice with a stable id (the XLSForm choice name).
type Option struct {
	ID     string
	Label  string
	Picked bool
}

// Progress is "question N of Total"; zero on cards.
type Progress struct {
	N, Total int
	Text     string
}

// Completion carries every answer of a finished (or, when Complete is false,
// abandoned) dialogue. Answers to questions that ended up not relevant are dropped, as
// XLSForm does.
type Completion struct {
	Flow        string
	Version     int
	Hash        string
	Lang        string
	Stakeholder string
	Country     string
	Complete    bool
	Answers     map[string]string
}

// Step applies in to st. It does not modify st; the state it returns may share
// answers and picks with st, so neither may be modified afterwards.
func (e *Engine) Step(st State, in Input) (State, Output) {
	if st.Answers == nil {
		st.Answers = map[string]string{}
	}
	var out Output
	switch in.Kind {
	case InStart:
		return e.start(st, in.Flow, langOr(in.Lang, st.Lang), &out)
	case InLang:
		st.Lang = in.Lang
		if !st.Active() {
			return st, out
		}
		in = Input{Kind: InRepeat}
	}
	if !st.Active() {
		out.Idle = true
		return st, out
	}
	d, ok := e.set.Get(st.Flow)
	if !ok {
		out.Notices = append(out.Notices, e.text(st.Lang, "ui.flow_gone", nil))
		return e.stop(st), out
	}
	if d.Hash != st.Hash && !e.migrate(d, &st) {
		out.Notices = append(out.Notices, e.text(st.Lang, "ui.flow_changed", nil))
		return e.start(st, d.ID, st.Lang, &out)
	}
	if in.Token != 0 && in.Token != st.Token {
		out.Stale = true
		return st, out
	}
	i, ok := d.index[st.Cur]
	if !ok {
		return e.start(st, d.ID, st.Lang, &out)
	}
	s := &d.steps[i]
	switch in.Kind {
	case InRepeat:
	case InCancel:
		out.Cancelled = true
		out.Notices = append(out.Notices, e.text(st.Lang, "ui.cancelled", nil))
		return e.stop(st), out
	case InRestart:
		return e.start(st, d.ID, st.Lang, &out)
	case InBack:
		prev := d.prev(i, st.Answers)
		if prev < 0 {
			out.Error = e.text(st.Lang, "ui.error.no_back", nil)
			break
		}
		return e.moveTo(d, st, prev, &out)
	case InSkip:
		if s.q.Required || s.q.card() {
			out.Error = e.text(st.Lang, "ui.error.required", nil)
			break
		}
		st.ownAnswers()
		delete(st.Answers, s.key)
		if !s.other {
			delete(st.Answers, otherKey(s.q.ID))
		}
		return e.advance(d, st, i, &out)
	case InToggle:
		if !s.multi() {
			return e.choose(d, st, s, i, in.Option, &out)
		}
		if !slices.Contains(s.options(), in.Option) {
			out.Error = e.text(st.Lang, "ui.error.choice", nil)
			break
		}
		// New slices, not in place: st.Picks may be the caller's.
		if j := slices.Index(st.Picks, in.Option); j >= 0 {
			st.Picks = slices.Concat(st.Picks[:j], st.Picks[j+1:])
		} else if s.q.Max != nil && len(st.Picks) >= int(*s.q.Max) {
			out.Error = e.invalid(st.Lang, badN("ui.error.max_picks", int(*s.q.Max)), s)
		} else {
			st.Picks = append(slices.Clip(st.Picks), in.Option)
		}
	case InDone:
		if !s.multi() {
			out.Error = e.text(st.Lang, "ui.error.choice", nil)
			break
		}
		return e.accept(d, st, s, i, orderPicks(s, st.Picks), &out)
	case InChoose:
		return e.choose(d, st, s, i, in.Option, &out)
	case InText:
		return e.typed(d, st, s, i, in.Text, &out)
	}
	out.Prompt = e.prompt(d, st, i)
	return st, out
}

func langOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (e *Engine) start(st State, flow, lang string, out *Output) (State, Output) {
	d, ok := e.set.Get(flow)
	if !ok {
		out.Error = e.text(lang, "ui.error.unknown_flow", nil)
		out.Idle = !st.Active()
		return st, *out
	}
	st = State{Flow: d.ID, Version: d.Version, Hash: d.Hash, Lang: lang, Token: st.Token, Answers: map[string]string{}}
	return e.advance(d, st, -1, out)
}

func (e *Engine) stop(st State) State {
	return State{Lang: st.Lang, Token: st.Token + 1}
}

// migrate keeps a session across a changed definition only when every answer it holds
// is still a valid answer to a question of the same id and the current question still
// exists; anything less and answers could be misread, so the caller restarts.
func (e *Engine) migrate(d *Definition, st *State) bool {
	if _, ok := d.index[st.Cur]; !ok {
		return false
	}
	for k, v := range st.Answers {
		if d.CheckAnswer(k, v) != nil {
			return false
		}
	}
	st.Version, st.Hash = d.Version, d.Hash
	return true
}

func (e *Engine) choose(d *Definition, st State, s *step, i int, option string, out *Output) (State, Output) {
	opts := s.options()
	if len(opts) == 0 || !slices.Contains(opts, option) {
		out.Error = e.text(st.Lang, "ui.error.choice", nil)
		out.Prompt = e.prompt(d, st, i)
		return st, *out
	}
	if s.q.card() {
		return e.advance(d, st, i, out)
	}
	// On a multiple-choice list this is a client that cannot toggle: one pick.
	return e.accept(d, st, s, i, []string{option}, out)
}

// typed handles typed text: a value, or a choice by its number, name or label.
func (e *Engine) typed(d *Definition, st State, s *step, i int, text string, out *Output) (State, Output) {
	if s.q.card() {
		return e.advance(d, st, i, out)
	}
	opts := s.options()
	if opts == nil {
		v, err := parseText(s, text)
		if err != nil {
			out.Error = e.invalid(st.Lang, err, s)
			out.Prompt = e.prompt(d, st, i)
			return st, *out
		}
		return e.accept(d, st, s, i, []string{v}, out)
	}
	var words []string
	if s.multi() {
		words = strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\n' })
		if id := e.matchOption(st.Lang, s, opts, strings.TrimSpace(text)); id != "" {
			words = []string{id} // a label with spaces in it
		}
	} else {
		words = []string{strings.TrimSpace(text)}
	}
	var picks []string
	for _, w := range words {
		id := e.matchOption(st.Lang, s, opts, w)
		if id == "" {
			out.Error = e.text(st.Lang, "ui.error.choice", nil)
			out.Prompt = e.prompt(d, st, i)
			return st, *out
		}
		if !slices.Contains(picks, id) {
			picks = append(picks, id)
		}
	}
	if s.multi() {
		picks = orderPicks(s, picks)
	}
	return e.accept(d, st, s, i, picks, out)
}

func (e *Engine) matchOption(lang string, s *step, opts []string, w string) string {
	if n, err := strconv.Atoi(w); err == nil && n >= 1 && n <= len(opts) && !isScale(s.q) {
		return opts[n-1]
	}
	for k, id := range opts {
		if strings.EqualFold(id, w) || strings.EqualFold(e.label(lang, s, k), w) {
			return id
		}
	}
	return ""
}

// isScale is true for ratings, where "3" means the value 3, not the third button.
func isScale(q *Question) bool { return q.Type == TypeRating || q.Type == TypeMatrix }

// orderPicks stores picks in list order, so the same choices always give the same answer.
func orderPicks(s *step, picks []string) []string {
	out := make([]string, 0, len(picks))
	for _, id := range s.options() {
		if slices.Contains(picks, id) {
			out = append(out, id)
		}
	}
	return out
}

func (e *Engine) accept(d *Definition, st State, s *step, i int, vals []string, out *Output) (State, Output) {
	if s.multi() {
		if err := checkPicks(s, vals); err != nil {
			st.Picks = vals
			out.Error = e.invalid(st.Lang, err, s)
			out.Prompt = e.prompt(d, st, i)
			return st, *out
		}
	}
	value := strings.Join(vals, " ")
	if c := s.q.Constraint; c != nil && !s.other && !c.True(&env{answers: st.Answers, current: value}) {
		out.Error = e.text(st.Lang, s.constraintID, nil)
		if out.Error == "" {
			out.Error = e.text(st.Lang, "ui.error.constraint", nil)
		}
		out.Prompt = e.prompt(d, st, i)
		return st, *out
	}
	st.ownAnswers()
	st.Answers[s.key] = value
	if !s.other && s.q.Other && !slices.Contains(vals, OtherChoice) {
		delete(st.Answers, otherKey(s.q.ID))
	}
	out.Answered = &Answered{Token: st.Token, Question: s.key, Text: e.questionText(st.Lang, s), Answer: e.display(st.Lang, s, value)}
	if s.item != "" {
		out.Answered.Item = e.text(st.Lang, s.itemID, nil)
	}
	return e.advance(d, st, i, out)
}

// advance moves to the first relevant step after i, or completes the flow.
func (e *Engine) advance(d *Definition, st State, i int, out *Output) (State, Output) {
	next := d.next(i, st.Answers)
	if next >= 0 {
		return e.moveTo(d, st, next, out)
	}
	out.Done = d.completion(st, true)
	// A flow that ends on its own closing card has said thank you already.
	if d.Kind == KindQuestionnaire && (i < 0 || !d.steps[i].q.card()) {
		out.Notices = append(out.Notices, e.text(st.Lang, "ui.completed", nil))
	}
	return e.stop(st), *out
}

func (e *Engine) moveTo(d *Definition, st State, i int, out *Output) (State, Output) {
	s := &d.steps[i]
	st.Cur = s.key
	st.Token++
	st.Picks = nil
	if s.multi() {
		st.Picks = strings.Fields(st.Answers[s.key])
	}
	out.Prompt = e.prompt(d, st, i)
	return st, *out
}

// Partial returns the answers of an abandoned dialogue, or false when it holds none.
func (e *Engine) Partial(st State) (*Completion, bool) {
	d, ok := e.set.Get(st.Flow)
	if !ok || len(st.Answers) == 0 || d.Kind != KindQuestionnaire {
		return nil, false
	}
	if d.Hash != st.Hash && !e.migrate(d, &st) {
		return nil, false
	}
	c := d.completion(st, false)
	return c, len(c.Answers) > 0
}

func (d *Definition) completion(st State, complete bool) *Completion {
	answers := map[string]string{}
	r := relevance{answers: st.Answers}
	for k, v := range st.Answers {
		if i, ok := d.index[k]; ok && d.relevant(i, &r) {
			answers[k] = v
		}
	}
	c := &Completion{Flow: d.ID, Version: d.Version, Hash: d.Hash, Lang: st.Lang,
		Stakeholder: d.Stakeholder, Complete: complete, Answers: answers}
	if d.CountryField != "" {
		c.Country = answers[d.CountryField]
	}
	return c
}

func (d *Definition) next(i int, answers map[string]string) int {
	r := relevance{answers: answers}
	for j := i + 1; j < len(d.steps); j++ {
		if d.relevant(j, &r) {
			return j
		}
	}
	return -1
}

func (d *Definition) prev(i int, answers map[string]string) int {
	r := relevance{answers: answers}
	for j := i - 1; j >= 0; j-- {
		if d.relevant(j, &r) {
			return j
		}
	}
	return -1
}

// relevant evaluates a step's own condition and those of the groups it sits in; a
// follow-up is relevant only while "other" is picked.
func (d *Definition) relevant(i int, r *relevance) bool {
	s := &d.steps[i]
	for k := range s.conds {
		if !r.holds(&s.conds[k]) {
			return false
		}
	}
	if s.other {
		return hasWord(r.answers[s.q.ID], OtherChoice)
	}
	return true
}

// relevance evaluates conditions on one set of answers, each distinct condition once:
// most questions of a flow share theirs (typically "${consent} = 'yes'"), and the
// progress line asks about every step of the flow.
type relevance struct {
	answers map[string]string
	// Bit k of evaluated is set once condition k is evaluated, bit k of truth holds
	// its value; conditions from 64 on are evaluated every time.
	evaluated, truth uint64
	// The same for cond.pending, whose position is fixed for a relevance value.
	checked, waiting uint64
}

func (r *relevance) holds(c *cond) bool {
	if c.id >= 64 {
		return c.e.True(answerEnv(r.answers))
	}
	bit := uint64(1) << c.id
	if r.evaluated&bit == 0 {
		r.evaluated |= bit
		if c.e.True(answerEnv(r.answers)) {
			r.truth |= bit
		}
	}
	return r.truth&bit != 0
}

// pending is cond.pending, remembered; i must be the same on every call.
func (r *relevance) pending(c *cond, i int) bool {
	if c.id >= 64 {
		return c.pending(i, r.answers)
	}
	bit := uint64(1) << c.id
	if r.checked&bit == 0 {
		r.checked |= bit
		if c.pending(i, r.answers) {
			r.waiting |= bit
		}
	}
	return r.waiting&bit != 0
}

// hasWord reports whether w is one of the space-separated words of list, as
// slices.Contains(strings.Fields(list), w) does, without allocating.
func hasWord(list, w string) bool {
	for f := range strings.FieldsSeq(list) {
		if f == w {
			return true
		}
	}
	return false
}

// env exposes answers to expressions, the XLSForm way.
type env struct {
	answers map[string]string
	current string
}

var _ expr.Env = (*env)(nil)

func (e *env) Value(field string) (string, bool) {
	v, ok := e.answers[field]
	return v, ok
}

func (e *env) Current() string { return e.current }

// answerEnv is env without a current answer, for relevance. Being a map, it goes into
// an expr.Env without an allocation, and relevance is evaluated for every step of
// the flow on every prompt (for the progress line).
type answerEnv map[string]string

var _ expr.Env = answerEnv(nil)

func (e answerEnv) Value(field string) (string, bool) {
	v, ok := e[field]
	return v, ok
}

func (answerEnv) Current() string { return "" }

func (e *Engine) prompt(d *Definition, st State, i int) *Prompt {
	s := &d.steps[i]
	lang := st.Lang
	p := &Prompt{
		Token: st.Token, Key: s.key, Question: s.q.ID, Type: s.q.Type,
		Text: e.questionText(lang, s), Multi: s.multi(), Required: s.q.Required,
		CanBack: d.prev(i, st.Answers) >= 0,
	}
	if v, ok := st.Answers[s.key]; ok {
		p.Current = e.display(lang, s, v)
	}
	if !s.other {
		p.Hint = e.text(lang, s.hintID, nil)
	}
	if s.item != "" {
		p.Item = e.text(lang, s.itemID, nil)
	}
	if s.q.Type == TypeHotlines && d.hotlines != nil {
		card := d.hotlines.card(e.tr, lang, st.Answers[s.q.Country])
		if p.Text != "" {
			card = p.Text + "\n\n" + card
		}
		p.Text = card
	}
	if opts := s.options(); len(opts) > 0 {
		p.Options = make([]Option, len(opts))
		for k, id := range opts {
			p.Options[k] = Option{ID: id, Label: e.label(lang, s, k), Picked: slices.Contains(st.Picks, id)}
		}
	}
	if s.other {
		p.Type = TypeText
	}
	switch p.Type {
	case TypeText:
		limit := s.q.MaxLength
		if limit == 0 || s.other {
			limit = DefaultMaxLength
		}
		p.Input = e.plural(lang, "ui.input.text", limit, nil)
	case TypeInteger, TypeDecimal:
		if s.q.Min != nil && s.q.Max != nil {
			p.Input = e.text(lang, "ui.input.range", map[string]any{"Min": fmtNum(*s.q.Min), "Max": fmtNum(*s.q.Max)})
		} else {
			p.Input = e.text(lang, "ui.input.number", nil)
		}
	case TypeDate:
		p.Input = e.text(lang, "ui.input.date", nil)
	case TypeSelectMultiple:
		p.Input = e.text(lang, "ui.input.multi", nil)
	}
	if !s.q.card() {
		n, total := d.progress(i, st.Answers)
		p.Progress = Progress{N: n, Total: total, Text: e.text(lang, "ui.progress", map[string]any{"N": n, "Total": total})}
	}
	return p
}

// progress counts questions: "question N of Total". Questions ahead whose condition
// waits on an answer not given yet count as relevant, so the total can only shrink as
// the user goes on, which reads better than a total that grows. Cards are not counted.
func (d *Definition) progress(i int, answers map[string]string) (n, total int) {
	r := relevance{answers: answers}
	for j := range d.steps {
		if d.steps[j].q.card() {
			continue
		}
		if j <= i {
			if d.relevant(j, &r) {
				total++
				n++
			}
			continue
		}
		if d.maybeRelevant(i, j, &r) {
			total++
		}
	}
	return n, total
}

// maybeRelevant is relevant, except that a condition on a question not reached yet
// (from position i) counts as possibly true.
func (d *Definition) maybeRelevant(i, j int, r *relevance) bool {
	s := &d.steps[j]
	if s.other {
		return d.relevant(j, r)
	}
	for k := range s.conds {
		if c := &s.conds[k]; !r.pending(c, i) && !r.holds(c) {
			return false
		}
	}
	return true
}

// pending reports whether c reads a field that is unanswered and not before i.
func (c *cond) pending(i int, answers map[string]string) bool {
	for _, r := range c.refs {
		if _, answered := answers[r.field]; !answered && r.pos >= i {
			return true
		}
	}
	return false
}

func conditions(groups []*Question) []*expr.Expr {
	out := make([]*expr.Expr, 0, len(groups)+1)
	for _, g := range groups {
		out = append(out, g.Relevant)
	}
	return out
}

func (e *Engine) questionText(lang string, s *step) string {
	if s.other {
		if t := e.text(lang, s.otherID, nil); t != "" {
			return t
		}
		return e.text(lang, "ui.other_specify", nil)
	}
	return e.text(lang, s.textID, nil)
}

// label is the label of the k-th option of s.
func (e *Engine) label(lang string, s *step, k int) string {
	if s.labels[k] == "" {
		return s.opts[k]
	}
	return e.text(lang, s.labels[k], nil)
}

func (e *Engine) optionLabel(lang string, s *step, id string) string {
	if k := slices.Index(s.opts, id); k >= 0 {
		return e.label(lang, s, k)
	}
	// A stored answer that is no option (a state from another definition).
	if l := labelID(s, id); l != "" {
		return e.text(lang, l, nil)
	}
	return id
}

// display is how an answer reads back to the user: the option labels, comma-separated.
func (e *Engine) display(lang string, s *step, value string) string {
	if s.options() == nil {
		return value
	}
	var first string
	var b strings.Builder
	n := 0
	for id := range strings.FieldsSeq(value) {
		l := e.optionLabel(lang, s, id)
		switch n {
		case 0:
			first = l
		case 1:
			b.WriteString(first)
			fallthrough
		default:
			b.WriteString(", ")
			b.WriteString(l)
		}
		n++
	}
	if n <= 1 {
		return first
	}
	return b.String()
}

func (e *Engine) invalid(lang string, err error, s *step) string {
	inv, ok := err.(*invalid)
	if !ok {
		return e.text(lang, "ui.error.constraint", nil)
	}
	if inv.count >= 0 {
		return e.plural(lang, inv.id, inv.count, inv.data)
	}
	return e.text(lang, inv.id, inv.data)
}

func (e *Engine) text(lang, id string, data map[string]any) string {
	return e.tr.Text(lang, id, data)
}

func (e *Engine) plural(lang, id string, n int, data map[string]any) string {
	if data == nil {
		data = map[string]any{}
	}
	data["Count"] = n
	return e.tr.Plural(lang, id, n, data)
}

// Check reports whether st is a state this engine could have produced: the flow
// exists, the current question is one of it, and every answer fits its question. The
// fuzz tests hold every step to it; the bot uses it on states read back from storage.
func (e *Engine) Check(st State) error {
	if !st.Active() {
		if st.Cur != "" || len(st.Answers) > 0 {
			return fmt.Errorf("inactive state holds a position or answers")
		}
		return nil
	}
	d, ok := e.set.Get(st.Flow)
	if !ok {
		return fmt.Errorf("unknown flow %q", st.Flow)
	}
	if st.Hash != d.Hash {
		return nil // checked against the definition it came from when next stepped
	}
	i, ok := d.index[st.Cur]
	if !ok {
		return fmt.Errorf("current question %q is not in %s", st.Cur, d.ID)
	}
	for k, v := range st.Answers {
		if err := d.CheckAnswer(k, v); err != nil {
			return fmt.Errorf("answer %s=%q: %w", k, v, err)
		}
	}
	opts := d.steps[i].opts
	for _, p := range st.Picks {
		if !slices.Contains(opts, p) {
			return fmt.Errorf("pick %q is not an option of %s", p, st.Cur)
		}
	}
	return nil
}

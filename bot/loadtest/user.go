package loadtest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dialoq/dialoq/bot/telegramtest"
	"github.com/dialoq/dialoq/flows"
)

// flowID is the questionnaire every simulated user completes.
const flowID = "cso"

// Limits that keep one user's work bounded whatever the bot does.
const (
	maxActions  = 400 // the CSO questionnaire takes about 70
	maxAttempts = 6   // sends of one action (first + re-sends after resyncs)
	maxResyncs  = 4   // /resume rounds per lost reply
)

// population is what all users of a run share.
type population struct {
	srv     *telegramtest.Server
	eng     *flows.Engine
	def     *flows.Definition
	router  *router
	latency *histogram // update injected → expected reply, as the fake server measured it
	window  *histogram // the same, since the last soak sample; may be nil
	settle  *histogram // first send of an action → its reply accepted, recoveries included
	cfg     *Config
	run     string // run id: in deep-link codes and in every user's tag

	updates  atomic.Int64 // updates injected by users
	actions  atomic.Int64 // actions completed
	resends  atomic.Int64 // same button pressed again after a timeout
	resyncs  atomic.Int64 // /resume sent to find out where the dialogue stands
	redone   atomic.Int64 // actions found lost and sent again
	mismatch atomic.Int64 // keyboard labels that differ from the mirror's options
	unsent   atomic.Int64 // presses refused by the fake server: the button was gone
}

// errStopped ends a user when the load's deadline passes or the run is interrupted.
var errStopped = errors.New("loadtest: user stopped before finishing (deadline or interrupt)")

// result is what one simulated user did.
type result struct {
	ID        int64
	Lang      string
	Code      string // deep-link code; "" when the user came through the menu
	Tag       string // unique text that starts the user's comments answer
	Completed bool   // saw the closing message
	Want      *flows.Completion
	Started   time.Time
	Err       error
}

// user plays one Telegram user and keeps a mirror of the dialogue.
type user struct {
	p    *population
	tg   telegramtest.User
	lang string
	code string
	tag  string
	box  *inbox
	rng  *rand.Rand

	st, prev   flows.State // mirror after and before the last action
	out, prevO flows.Output
	msg        telegramtest.Message // the bot message showing the current prompt or menu
	last       int                  // update id of the last thing sent
	backed     bool
}

// act is one thing a user does.
type act struct {
	press string       // callback data pressed on u.msg; "" for a typed message
	text  string       // typed message or command
	in    *flows.Input // what the mirror steps with; nil when the dialogue does not move
	retap bool         // pressing it again is harmless (it carries the prompt's token)
}

func newUser(p *population, id int64, lang, code string, seed uint64) *user {
	return &user{
		p:    p,
		tg:   telegramtest.User{ID: id, FirstName: "U" + strconv.FormatInt(id, 10), LanguageCode: lang},
		lang: lang,
		code: code,
		tag:  fmt.Sprintf("lt-%s-u%d", p.run, id),
		rng:  rand.New(rand.NewPCG(seed, uint64(id))),
	}
}

// complete runs one questionnaire from /start to the closing message.
func (u *user) complete(ctx context.Context) (r result) {
	r = result{ID: u.tg.ID, Lang: u.lang, Code: u.code, Tag: u.tag, Started: time.Now()}
	u.box = u.p.router.open(u.tg.ID)
	defer u.p.router.close(u.tg.ID)
	if err := u.start(ctx); err != nil {
		r.Err = err
		return r
	}
	for n := 0; u.out.Done == nil; n++ {
		if n >= maxActions {
			r.Err = fmt.Errorf("user %d: no end after %d actions", u.tg.ID, n)
			return r
		}
		if err := u.think(ctx); err != nil {
			r.Err = err
			return r
		}
		if err := u.answer(ctx); err != nil {
			r.Err = err
			return r
		}
	}
	r.Completed = true
	r.Want = u.out.Done
	return r
}

func (u *user) think(ctx context.Context) error {
	lo, hi := u.p.cfg.ThinkMin, u.p.cfg.ThinkMax
	if hi <= 0 {
		return ctx.Err()
	}
	d := lo
	if hi > lo {
		d += rand.N(hi - lo)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return errStopped
	case <-t.C:
		return nil
	}
}

// start opens the questionnaire: by a campaign deep link when the user has a code,
// else by /start and the menu button.
func (u *user) start(ctx context.Context) error {
	start := flows.Input{Kind: flows.InStart, Flow: flowID, Lang: u.lang}
	if u.code != "" {
		return u.do(ctx, act{text: "/start " + flowID + "-" + u.code, in: &start})
	}
	if err := u.do(ctx, act{text: "/start"}); err != nil {
		return err
	}
	if err := u.think(ctx); err != nil {
		return err
	}
	return u.do(ctx, act{press: "m:" + flowID, in: &start})
}

// answer answers the current prompt the way a varied but careful person would.
func (u *user) answer(ctx context.Context) error {
	p := u.out.Prompt
	if p == nil {
		return fmt.Errorf("user %d: no prompt and not done: %+v", u.tg.ID, u.out)
	}
	u.checkKeyboard(p)
	tok := strconv.Itoa(p.Token)
	card := p.Type == flows.TypeNote || p.Type == flows.TypeHotlines
	switch {
	case card:
		return u.press(ctx, "c:"+tok+":0", flows.Input{Kind: flows.InChoose, Option: p.Options[0].ID, Token: p.Token})
	case p.CanBack && !u.backed && p.Progress.N >= 3 && u.rng.IntN(20) == 0:
		// Once per dialogue at most: go back and answer the previous question anew.
		u.backed = true
		return u.press(ctx, "b:"+tok, flows.Input{Kind: flows.InBack, Token: p.Token})
	case !p.Required && p.Key != "comments" && u.rng.IntN(10) == 0:
		return u.press(ctx, "s:"+tok, flows.Input{Kind: flows.InSkip, Token: p.Token})
	case p.Multi:
		return u.multi(ctx, p)
	case len(p.Options) > 0:
		return u.single(ctx, p)
	default:
		return u.typed(ctx, p)
	}
}

func (u *user) press(ctx context.Context, data string, in flows.Input) error {
	return u.do(ctx, act{press: data, in: &in, retap: true})
}

// valid reports whether the mirror accepts the inputs in order without complaint.
func (u *user) valid(ins ...flows.Input) bool {
	st := u.st
	var out flows.Output
	for _, in := range ins {
		st, out = u.p.eng.Step(st, in)
		if out.Error != "" || out.Stale {
			return false
		}
	}
	return true
}

// single answers a one-choice question: a button, or now and then its number typed.
func (u *user) single(ctx context.Context, p *flows.Prompt) error {
	order := u.rng.Perm(len(p.Options))
	if p.Key == "consent" {
		// Our users agree, so that they see the whole questionnaire.
		order = []int{slices.IndexFunc(p.Options, func(o flows.Option) bool { return o.ID == "yes" })}
	}
	scale := p.Type == flows.TypeRating || p.Type == flows.TypeMatrix
	// Checking a choice on the mirror costs a whole engine step; only a constraint
	// can refuse one of the options offered.
	q, _, _, _ := u.p.def.QuestionOf(p.Key)
	constrained := q == nil || q.Constraint != nil
	for _, i := range order {
		if i < 0 {
			break
		}
		in := flows.Input{Kind: flows.InChoose, Option: p.Options[i].ID, Token: p.Token}
		if constrained && !u.valid(in) {
			continue
		}
		if !scale && u.rng.IntN(5) == 0 {
			// The option's number, typed, means the same as its button.
			typed := flows.Input{Kind: flows.InText, Text: strconv.Itoa(i + 1)}
			return u.do(ctx, act{text: typed.Text, in: &typed})
		}
		return u.press(ctx, "c:"+strconv.Itoa(p.Token)+":"+strconv.Itoa(i), in)
	}
	return fmt.Errorf("user %d: no option of %s is accepted", u.tg.ID, p.Key)
}

// multi picks one to three options, toggling each and checking the ✅ marks, then
// presses Done; sometimes it types the numbers instead, as "1 3".
func (u *user) multi(ctx context.Context, p *flows.Prompt) error {
	for try := 0; try < 20; try++ {
		want := map[int]bool{}
		for range 1 + u.rng.IntN(3) {
			want[u.rng.IntN(len(p.Options))] = true
		}
		if try >= 10 {
			// Whatever the constraints, one ordinary option is accepted.
			want = map[int]bool{slices.IndexFunc(p.Options, func(o flows.Option) bool { return o.ID != flows.OtherChoice }): true}
		}
		var toggles []flows.Input
		var idx []int
		for i, o := range p.Options {
			if o.Picked != want[i] {
				toggles = append(toggles, flows.Input{Kind: flows.InToggle, Option: o.ID, Token: p.Token})
				idx = append(idx, i)
			}
		}
		done := flows.Input{Kind: flows.InDone, Token: p.Token}
		if !u.valid(append(slices.Clone(toggles), done)...) {
			continue
		}
		if u.rng.IntN(5) == 0 {
			var nums []string
			for i := range p.Options {
				if want[i] {
					nums = append(nums, strconv.Itoa(i+1))
				}
			}
			typed := flows.Input{Kind: flows.InText, Text: strings.Join(nums, " ")}
			if u.valid(typed) {
				return u.do(ctx, act{text: typed.Text, in: &typed})
			}
		}
		for k, in := range toggles {
			if k > 0 {
				if err := u.think(ctx); err != nil {
					return err
				}
			}
			data := fmt.Sprintf("t:%d:%d", p.Token, idx[k])
			if err := u.do(ctx, act{press: data, in: &in}); err != nil {
				return err
			}
		}
		return u.press(ctx, "d:"+strconv.Itoa(p.Token), done)
	}
	return fmt.Errorf("user %d: no accepted picks for %s", u.tg.ID, p.Key)
}

// typed answers a question without options: a number in range, a date, or text that
// carries the user's tag and plenty of characters HTML must escape.
func (u *user) typed(ctx context.Context, p *flows.Prompt) error {
	q, _, other, _ := u.p.def.QuestionOf(p.Key)
	var cands []string
	switch {
	case other || p.Type == flows.TypeText:
		cands = []string{fmt.Sprintf("%s: ответ <b>%d</b> & «кавычки» \"x\" 🙂", u.tag, u.rng.IntN(1000))}
	case p.Type == flows.TypeDate:
		cands = []string{"2021-03-25", "25.03.2021"}
	case p.Type == flows.TypeInteger || p.Type == flows.TypeDecimal:
		lo, hi := 0, 3000
		if q != nil && q.Min != nil {
			lo = int(*q.Min)
		}
		if q != nil && q.Max != nil {
			hi = min(int(*q.Max), lo+5000)
		}
		for range 5 {
			cands = append(cands, strconv.Itoa(lo+u.rng.IntN(hi-lo+1)))
		}
		// Constraints are mostly about years.
		cands = append(cands, strconv.Itoa(1950+u.rng.IntN(70)), "2001", "1", "0")
	default:
		cands = []string{"1"}
	}
	for _, text := range cands {
		in := flows.Input{Kind: flows.InText, Text: text}
		if u.valid(in) {
			return u.do(ctx, act{text: text, in: &in})
		}
	}
	return fmt.Errorf("user %d: no typed answer accepted for %s", u.tg.ID, p.Key)
}

// checkKeyboard compares the option buttons the bot showed with the mirror's options:
// the user reads what it presses.
func (u *user) checkKeyboard(p *flows.Prompt) {
	if len(p.Options) == 0 || p.Type == flows.TypeNote || p.Type == flows.TypeHotlines {
		return
	}
	kind := "c"
	if p.Multi {
		kind = "t"
	}
	seen := 0
	for _, b := range u.msg.Buttons() {
		k, tok, i, ok := promptButton(b.CallbackData)
		if !ok || k != kind || tok != p.Token {
			continue
		}
		seen++
		label := strings.TrimPrefix(b.Text, "✅ ")
		if i >= len(p.Options) || (label != p.Options[i].Label && label != p.Options[i].ID) {
			u.p.mismatch.Add(1)
		}
	}
	if seen != len(p.Options) {
		u.p.mismatch.Add(1)
	}
}

// do sends a and waits for its reply; when the reply does not come it re-sends the
// same press, then finds out with /resume whether a was applied, and sends it again
// only if it was not.
func (u *user) do(ctx context.Context, a act) error {
	began := time.Now()
	u.prev, u.prevO = u.st, u.out
	if a.in != nil {
		u.st, u.out = u.p.eng.Step(u.st, *a.in)
	}
	for attempt := 1; ; attempt++ {
		if attempt > maxAttempts {
			return fmt.Errorf("user %d: %s: no reply after %d attempts", u.tg.ID, a, maxAttempts)
		}
		want := u.expect(u.out, a)
		u.box.take() // whatever came before belongs to earlier actions
		if err := u.send(a); err == nil {
			since := u.last
			if m, ok := u.await(ctx, want, since); ok {
				u.done(m, began)
				return nil
			}
			if a.retap && ctx.Err() == nil {
				u.p.resends.Add(1)
				if u.send(a) == nil {
					if m, ok := u.await(ctx, want, since); ok {
						u.done(m, began)
						return nil
					}
				}
			}
		}
		if ctx.Err() != nil {
			return errStopped
		}
		applied, m, err := u.resync(ctx)
		if err != nil {
			return err
		}
		if applied {
			u.done(m, began)
			return nil
		}
		// The bot never applied a: send it again from where the bot stands.
		u.p.redone.Add(1)
		u.st, u.out = u.prev, u.prevO
		if a.in != nil {
			u.st, u.out = u.p.eng.Step(u.st, *a.in)
		}
		u.msg = m
	}
}

func (u *user) done(m telegramtest.Message, began time.Time) {
	u.msg = m
	u.p.actions.Add(1)
	u.p.settle.add(time.Since(began))
}

func (a act) String() string {
	if a.press != "" {
		return "press " + a.press
	}
	return fmt.Sprintf("send %q", a.text)
}

// send injects a as an update. A press fails when the message no longer carries the
// button (an edit after the commit removed it): the caller then resyncs.
func (u *user) send(a act) error {
	if a.press != "" {
		id, _, err := u.p.srv.PressButton(u.tg, u.msg.ID, a.press)
		if err != nil {
			u.p.unsent.Add(1)
			return err
		}
		u.last = id
	} else {
		u.last = u.p.srv.SendText(u.tg, a.text)
	}
	u.p.updates.Add(1)
	return nil
}

// await waits up to ReplyTimeout for a message produced after update since that
// satisfies want. When the message answers the very last update, its latency as the
// fake server measured it (update injected → message stored) is recorded.
func (u *user) await(ctx context.Context, want func(telegramtest.Message) bool, since int) (telegramtest.Message, bool) {
	t := time.NewTimer(u.p.cfg.ReplyTimeout)
	defer t.Stop()
	for {
		for _, m := range u.box.take() {
			if m.AfterUpdateID >= since && want(m) {
				if m.AfterUpdateID == u.last {
					u.p.latency.add(m.Latency)
					if u.p.window != nil {
						u.p.window.add(m.Latency)
					}
				}
				return m, true
			}
		}
		select {
		case <-u.box.wake:
		case <-t.C:
			return telegramtest.Message{}, false
		case <-ctx.Done():
			return telegramtest.Message{}, false
		}
	}
}

// resync sends /resume and reports whether the bot stands where the mirror stands
// after the last action (true) or before it (false), with the message showing it.
func (u *user) resync(ctx context.Context) (bool, telegramtest.Message, error) {
	after := u.expect(u.repeat(u.st), act{})
	before := u.expect(u.repeat(u.prev), act{})
	for range maxResyncs {
		if ctx.Err() != nil {
			return false, telegramtest.Message{}, errStopped
		}
		u.p.resyncs.Add(1)
		u.box.take()
		u.last = u.p.srv.SendText(u.tg, "/resume")
		u.p.updates.Add(1)
		var which bool
		m, ok := u.await(ctx, func(m telegramtest.Message) bool {
			switch {
			case after(m):
				which = true
				return true
			case before(m):
				which = false
				return true
			}
			return false
		}, u.last)
		if ok {
			return which, m, nil
		}
	}
	return false, telegramtest.Message{}, fmt.Errorf("user %d: dialogue lost: /resume %d times brought neither the question before nor after the last action", u.tg.ID, maxResyncs)
}

// repeat is what /resume shows for a mirror state.
func (u *user) repeat(st flows.State) flows.Output {
	if !st.Active() {
		return flows.Output{Idle: true}
	}
	_, out := u.p.eng.Step(st, flows.Input{Kind: flows.InRepeat})
	return out
}

// expect returns the test for the message that shows out: the prompt's buttons (by
// token, and the ✅ marks of a multiple choice), the closing message, or the menu.
func (u *user) expect(out flows.Output, a act) func(telegramtest.Message) bool {
	switch {
	case out.Done != nil:
		return func(m telegramtest.Message) bool { return hasButton(m, "menu") }
	case out.Prompt == nil:
		// No flow running: the menu.
		return func(m telegramtest.Message) bool { return hasButton(m, "m:"+flowID) }
	}
	p := out.Prompt
	if len(p.Options) == 0 && !p.CanBack && p.Required {
		line, _, _ := strings.Cut(strings.TrimSpace(p.Text), "\n")
		return func(m telegramtest.Message) bool { return len(m.Keyboard) == 0 && strings.Contains(m.Text, line) }
	}
	var marks []bool
	if p.Multi {
		for _, o := range p.Options {
			marks = append(marks, o.Picked)
		}
	}
	edited := 0
	if strings.HasPrefix(a.press, "t:") {
		edited = u.msg.ID // a toggle edits the question in place
	}
	return func(m telegramtest.Message) bool {
		if edited != 0 && m.ID != edited {
			return false
		}
		return showsPrompt(m, p.Token, marks)
	}
}

// showsPrompt reports whether m carries the buttons of the prompt with token tok and,
// for a multiple choice, exactly the given ✅ marks.
func showsPrompt(m telegramtest.Message, tok int, marks []bool) bool {
	found, toggles := false, 0
	for _, b := range m.Buttons() {
		k, t, i, ok := promptButton(b.CallbackData)
		if !ok || t != tok {
			continue
		}
		found = true
		if k == "t" && marks != nil {
			toggles++
			if i >= len(marks) || strings.HasPrefix(b.Text, "✅") != marks[i] {
				return false
			}
		}
	}
	return found && (marks == nil || toggles == len(marks))
}

// promptButton parses the callback data of a prompt's button: "c:7:2" → c, 7, 2.
func promptButton(data string) (kind string, tok, idx int, ok bool) {
	kind, rest, found := strings.Cut(data, ":")
	if !found || len(kind) != 1 || !strings.Contains("ctdbs", kind) {
		return "", 0, 0, false
	}
	t, i, _ := strings.Cut(rest, ":")
	tok, err := strconv.Atoi(t)
	if err != nil {
		return "", 0, 0, false
	}
	if i != "" {
		if idx, err = strconv.Atoi(i); err != nil {
			return "", 0, 0, false
		}
	}
	return kind, tok, idx, true
}

func hasButton(m telegramtest.Message, data string) bool {
	for _, b := range m.Buttons() {
		if b.CallbackData == data {
			return true
		}
	}
	return false
}

package flows_test

import (
	"math/rand/v2"
	"testing"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/locales"
)

// typed values tried in order until the engine accepts one; constraints such as a
// founding year or an e-mail address refuse some of them.
var candidates = map[flows.Type][]string{
	flows.TypeInteger: {"2001", "1", "0", "12"},
	flows.TypeDecimal: {"2.5", "1", "0"},
	flows.TypeDate:    {"25.03.2021", "2001-01-01"},
	flows.TypeText:    {"Ответ", "expert@example.org", "+994 12 555 01 01"},
}

// TestEveryPathOfEveryFlow walks every built-in flow through the branches of its skip
// logic, in every language. Where later questions depend on an answer, each walk
// takes the option least taken so far there (ties at random), so every option of
// every steering question is taken, and combinations of them are mixed across walks.
// Every walk must end in a completion with no empty text on the way, and every
// question must be reached by some walk.
func TestEveryPathOfEveryFlow(t *testing.T) {
	set, err := flows.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := locales.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	e := flows.NewEngine(set, cat)
	for _, d := range set.All() {
		for _, lang := range cat.Langs() {
			walks := 25
			if lang == locales.Fallback {
				walks = 400
			}
			t.Run(d.ID+"/"+lang, func(t *testing.T) {
				w := &walker{t: t, e: e, steer: d.Referenced(), seen: map[string]bool{},
					taken: map[string]int{}, rng: rand.New(rand.NewPCG(1, uint64(len(d.ID))))}
				for range walks {
					w.walk(e.Step(flows.State{}, flows.Input{Kind: flows.InStart, Flow: d.ID, Lang: lang}))
				}
				if lang != locales.Fallback {
					return
				}
				for _, k := range d.Keys() {
					if !w.seen[k] {
						t.Errorf("question %s is never reached in %d walks", k, walks)
					}
				}
			})
		}
	}
}

type walker struct {
	t     *testing.T
	e     *flows.Engine
	steer map[string]bool
	seen  map[string]bool
	taken map[string]int // "question=input" → times taken
	rng   *rand.Rand
}

func (w *walker) walk(st flows.State, out flows.Output) {
	for depth := 0; out.Done == nil; depth++ {
		p := out.Prompt
		if p == nil {
			w.t.Fatalf("step %d: no prompt and no completion (error %q)", depth, out.Error)
		}
		if p.Text == "" {
			w.t.Errorf("%s has no text", p.Key)
		}
		if depth > 500 {
			w.t.Fatalf("loop at %s", p.Key)
		}
		w.seen[p.Key] = true
		next, o, ok := w.answer(st, p)
		if !ok {
			w.t.Fatalf("%s (%s): no candidate answer accepted", p.Key, p.Type)
		}
		st, out = next, o
	}
}

// answer picks an input the engine accepts: the least taken one where the answer
// steers later questions, else the first that is accepted.
func (w *walker) answer(st flows.State, p *flows.Prompt) (flows.State, flows.Output, bool) {
	ins := inputs(p)
	if w.steers(p) {
		w.rng.Shuffle(len(ins), func(i, j int) { ins[i], ins[j] = ins[j], ins[i] })
		best := -1
		for i, in := range ins {
			if best < 0 || w.taken[p.Key+"="+label(in)] < w.taken[p.Key+"="+label(ins[best])] {
				best = i
			}
		}
		ins[0], ins[best] = ins[best], ins[0]
	}
	for _, in := range ins {
		if next, o := w.e.Step(st, in); o.Error == "" {
			w.taken[p.Key+"="+label(in)]++
			return next, o, true
		}
	}
	return st, flows.Output{}, false
}

func label(in flows.Input) string { return in.Text + in.Option + string(rune('0'+in.Kind)) }

// steers reports whether later questions depend on this answer: a condition reads it,
// or it offers "other", which opens a follow-up.
func (w *walker) steers(p *flows.Prompt) bool {
	if w.steer[p.Question] {
		return true
	}
	for _, o := range p.Options {
		if o.ID == flows.OtherChoice {
			return true
		}
	}
	return false
}

func inputs(p *flows.Prompt) []flows.Input {
	var ins []flows.Input
	switch {
	case p.Multi:
		for _, o := range p.Options {
			ins = append(ins, flows.Input{Kind: flows.InText, Text: o.ID})
		}
		if len(p.Options) > 1 { // lists with a minimum of two picks
			ins = append(ins, flows.Input{Kind: flows.InText, Text: p.Options[0].ID + " " + p.Options[1].ID})
		}
	case len(p.Options) > 0:
		for _, o := range p.Options {
			ins = append(ins, flows.Input{Kind: flows.InChoose, Option: o.ID, Token: p.Token})
		}
	default:
		for _, v := range candidates[p.Type] {
			ins = append(ins, flows.Input{Kind: flows.InText, Text: v})
		}
	}
	if !p.Required && p.Type != flows.TypeNote && p.Type != flows.TypeHotlines {
		ins = append(ins, flows.Input{Kind: flows.InSkip})
	}
	return ins
}

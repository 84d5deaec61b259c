package flows_test

import (
	"testing"
	"testing/fstest"

	"github.com/dialoq/dialoq/flows"
)

var fuzzKinds = []flows.InputKind{flows.InStart, flows.InText, flows.InChoose, flows.InToggle,
	flows.InDone, flows.InBack, flows.InSkip, flows.InRestart, flows.InCancel, flows.InRepeat, flows.InLang}

// FuzzEngine feeds random input sequences: the engine must never panic, every state
// it returns must pass Check and survive encoding, and tokens never go back.
func FuzzEngine(f *testing.F) {
	f.Add([]byte{0, 2, 1, 2, 3, 4, 5, 6}, "AZ", "1 3")
	f.Add([]byte{0, 1, 1, 3, 3, 4, 2, 2, 2, 5, 5, 6, 7, 8}, "other", "12")
	f.Add([]byte{0, 2, 2, 2, 3, 3, 4, 1, 1, 1, 1, 1, 10, 9}, "na", "25.03.2021")
	f.Add([]byte{0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, "4", "яблоко")
	e := testEngine(f)
	f.Fuzz(func(t *testing.T, script []byte, a, b string) {
		st := flows.State{Lang: "en"}
		for n, c := range script {
			kind := fuzzKinds[int(c)%len(fuzzKinds)]
			in := flows.Input{Kind: kind, Flow: "kitchen", Lang: "ru"}
			arg := a
			if n%2 == 1 {
				arg = b
			}
			in.Text, in.Option = arg, arg
			if c&0x80 != 0 {
				in.Token = int(c & 0x0f)
			}
			if kind == flows.InLang && c&0x40 != 0 {
				in.Lang = arg
			}
			next, _ := e.Step(st, in)
			if err := e.Check(next); err != nil {
				t.Fatalf("step %d (%+v) produced a bad state: %v\n%+v", n, in, err, next)
			}
			if next.Token < st.Token {
				t.Fatalf("token went back from %d to %d", st.Token, next.Token)
			}
			enc, err := flows.EncodeState(next)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := flows.DecodeState(enc); err != nil {
				t.Fatalf("state does not round-trip: %v", err)
			}
			st = next
		}
	})
}

// FuzzLoad feeds random definition files: Load must never panic, and must either
// return problems or a set whose every flow can be started.
func FuzzLoad(f *testing.F) {
	f.Add("id: f\nversion: 1\nkind: session\nquestions:\n  - id: a\n    type: note\n")
	f.Add("id: f\nversion: 1\nkind: questionnaire\nstakeholder: cso\nquestions:\n  - id: a\n    type: select_one\n    choices: yes_no\n    other: true\n  - id: b\n    type: text\n    relevant: \"selected(${a}, 'other')\"\n")
	f.Add("id: f\nversion: 2\nkind: questionnaire\nstakeholder: media\ncountry_field: c\nquestions:\n  - id: c\n    type: country\n  - id: g\n    type: group\n    relevant: \"${c} = 'AZ'\"\n    questions:\n      - id: m\n        type: matrix\n        items: yes_no\n        min: 1\n        max: 4\n        na: true\n")
	f.Add("id: f\nversion: 1\nkind: questionnaire\nstakeholder: cso\nquestions:\n  - id: n\n    type: integer\n    min: 0\n    max: 9\n    constraint: \". != 3 and string-length(.) < 2\"\n")
	f.Fuzz(func(t *testing.T, src string) {
		fsys := fstest.MapFS{
			"defs/_choices.yaml": {Data: []byte(shared)},
			"defs/f.yaml":        {Data: []byte(src)},
		}
		set, err := flows.Load(fsys, "defs")
		if err != nil {
			return
		}
		e := flows.NewEngine(set, nopTranslator{})
		for _, d := range set.All() {
			st, out := e.Step(flows.State{}, flows.Input{Kind: flows.InStart, Flow: d.ID})
			if out.Prompt == nil && out.Done == nil {
				t.Fatalf("flow %s starts with neither a prompt nor a completion", d.ID)
			}
			for i := 0; i < d.Steps()+2 && st.Active(); i++ {
				st, _ = e.Step(st, flows.Input{Kind: flows.InSkip})
				st, _ = e.Step(st, flows.Input{Kind: flows.InChoose, Option: "next"})
			}
		}
	})
}

type nopTranslator struct{}

func (nopTranslator) Text(string, string, map[string]any) string        { return "t" }
func (nopTranslator) Plural(string, string, int, map[string]any) string { return "p" }

// FuzzDecodeState feeds random bytes as a stored state: decoding never panics, and
// whatever decodes encodes back to the same state.
func FuzzDecodeState(f *testing.F) {
	full, _ := flows.EncodeState(flows.State{Flow: "cso", Version: 3, Hash: "abc", Lang: "ru", Cur: "x/y", Token: 9,
		Picks: []string{"a", "b"}, Answers: map[string]string{"m/t01": "4", "m/t02": "na", "name": "Юля"}})
	f.Add(full)
	f.Add([]byte(`j{"f":"cso","a":{"x":"1"},"t":3}`))
	f.Add([]byte{'b', 0, 0, 0, 0, 0, 0, 0, 1, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := flows.DecodeState(b)
		if err != nil {
			return
		}
		enc, err := flows.EncodeState(st)
		if err != nil {
			t.Fatal(err)
		}
		again, err := flows.DecodeState(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if again.Flow != st.Flow || again.Cur != st.Cur || again.Token != st.Token || len(again.Answers) != len(st.Answers) {
			t.Fatalf("round trip changed the state: %+v → %+v", st, again)
		}
		for k, v := range st.Answers {
			if again.Answers[k] != v {
				t.Fatalf("answer %s: %q → %q", k, v, again.Answers[k])
			}
		}
	})
}

func TestLegacyJSONStateStillReads(t *testing.T) {
	st, err := flows.DecodeState([]byte(`j{"f":"kitchen","v":1,"h":"x","l":"ru","c":"staff","a":{"country":"AZ"},"t":7}`))
	if err != nil || st.Flow != "kitchen" || st.Answers["country"] != "AZ" || st.Token != 7 || st.Lang != "ru" {
		t.Fatalf("legacy state: %+v, %v", st, err)
	}
}

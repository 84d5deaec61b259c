package flows_test

import (
	"testing"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/locales"
)

// csoAt walks the built-in CSO questionnaire in Russian, answering every question,
// until the prompt for key, so benchmarks see a state of realistic size.
func csoAt(tb testing.TB, key string) (*flows.Engine, flows.State, *flows.Prompt) {
	tb.Helper()
	set, err := flows.Builtin()
	if err != nil {
		tb.Fatal(err)
	}
	cat, err := locales.Embedded()
	if err != nil {
		tb.Fatal(err)
	}
	e := flows.NewEngine(set, cat)
	st, out := e.Step(flows.State{}, flows.Input{Kind: flows.InStart, Flow: "cso", Lang: "ru"})
	for i := 0; i < 200 && out.Prompt != nil && out.Prompt.Key != key; i++ {
		p := out.Prompt
		var in flows.Input
		switch {
		case p.Multi:
			in = flows.Input{Kind: flows.InText, Text: "1 2"}
		case len(p.Options) > 0:
			in = flows.Input{Kind: flows.InChoose, Option: p.Options[0].ID}
		case p.Type == flows.TypeInteger:
			in = flows.Input{Kind: flows.InText, Text: "2001"}
		default:
			in = flows.Input{Kind: flows.InText, Text: "Ответ"}
		}
		st, out = e.Step(st, in)
	}
	if out.Prompt == nil || out.Prompt.Key != key {
		tb.Fatalf("did not reach %s: %+v", key, out)
	}
	return e, st, out.Prompt
}

// BenchmarkStep is the engine's share of one button press: answer a matrix item
// late in the questionnaire and render the next prompt, in Russian.
func BenchmarkStep(b *testing.B) {
	e, st, p := csoAt(b, "training_needs/t22")
	in := flows.Input{Kind: flows.InChoose, Option: "3", Token: p.Token}
	b.ReportAllocs()
	for b.Loop() {
		if _, out := e.Step(st, in); out.Prompt == nil {
			b.Fatal("no next prompt")
		}
	}
}

func BenchmarkEncodeState(b *testing.B) {
	_, st, _ := csoAt(b, "comments")
	var enc []byte
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if enc, err = flows.EncodeState(st); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(enc)), "state-bytes")
}

func BenchmarkDecodeState(b *testing.B) {
	_, st, _ := csoAt(b, "comments")
	enc, _ := flows.EncodeState(st)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := flows.DecodeState(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStepRepeat shows the current prompt again, as the bot does before every
// button press to learn what the button's index means.
func BenchmarkStepRepeat(b *testing.B) {
	e, st, _ := csoAt(b, "training_needs/t22")
	in := flows.Input{Kind: flows.InRepeat}
	b.ReportAllocs()
	for b.Loop() {
		if _, out := e.Step(st, in); out.Prompt == nil {
			b.Fatal("no prompt")
		}
	}
}

// BenchmarkStepMulti answers a multiple-choice question by typing, which reads the
// labels of every option, then moves on.
func BenchmarkStepMulti(b *testing.B) {
	e, st, _ := csoAt(b, "training_formats")
	in := flows.Input{Kind: flows.InText, Text: "1 2"}
	b.ReportAllocs()
	for b.Loop() {
		if _, out := e.Step(st, in); out.Prompt == nil || out.Error != "" {
			b.Fatalf("no next prompt: %q", out.Error)
		}
	}
}

// BenchmarkCheck is the check of every state read back from storage.
func BenchmarkCheck(b *testing.B) {
	e, st, _ := csoAt(b, "comments")
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Check(st); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQuestionnaire walks the whole CSO questionnaire in Russian; ns/step is
// the mean cost of one step of a real dialogue.
func BenchmarkQuestionnaire(b *testing.B) {
	e, _, _ := csoAt(b, "intro")
	steps := 0
	b.ReportAllocs()
	for b.Loop() {
		st, out := e.Step(flows.State{}, flows.Input{Kind: flows.InStart, Flow: "cso", Lang: "ru"})
		steps++
		for out.Prompt != nil {
			p := out.Prompt
			var in flows.Input
			switch {
			case p.Multi:
				in = flows.Input{Kind: flows.InText, Text: "1 2"}
			case len(p.Options) > 0:
				in = flows.Input{Kind: flows.InChoose, Option: p.Options[0].ID, Token: p.Token}
			case p.Type == flows.TypeInteger:
				in = flows.Input{Kind: flows.InText, Text: "2001"}
			default:
				in = flows.Input{Kind: flows.InText, Text: "Ответ"}
			}
			st, out = e.Step(st, in)
			steps++
		}
		if out.Done == nil {
			b.Fatalf("walk ended without completion: %+v", out)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(steps), "ns/step")
}

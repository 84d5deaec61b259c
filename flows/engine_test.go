package flows_test

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/locales"
)

var update = flag.Bool("update", false, "rewrite golden files")

func testEngine(t testing.TB) *flows.Engine {
	t.Helper()
	set, err := flows.Load(os.DirFS("testdata"), "defs")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := locales.Load(os.DirFS("testdata"), "locales")
	if err != nil {
		t.Fatal(err)
	}
	return flows.NewEngine(set, cat)
}

// in is a compact way to write inputs in tables: "text:12", "choose:yes", "toggle:x",
// "done", "back", "skip", "cancel", "restart", "lang:ru", "start:kitchen", "repeat",
// "token:5:choose:yes" for a button press carrying a token.
func in(s string) flows.Input {
	var token int
	if rest, ok := strings.CutPrefix(s, "token:"); ok {
		n, after, _ := strings.Cut(rest, ":")
		fmt.Sscan(n, &token)
		s = after
	}
	kind, arg, _ := strings.Cut(s, ":")
	i := flows.Input{Token: token}
	switch kind {
	case "start":
		i.Kind, i.Flow = flows.InStart, arg
	case "text":
		i.Kind, i.Text = flows.InText, arg
	case "choose":
		i.Kind, i.Option = flows.InChoose, arg
	case "toggle":
		i.Kind, i.Option = flows.InToggle, arg
	case "done":
		i.Kind = flows.InDone
	case "back":
		i.Kind = flows.InBack
	case "skip":
		i.Kind = flows.InSkip
	case "cancel":
		i.Kind = flows.InCancel
	case "restart":
		i.Kind = flows.InRestart
	case "repeat":
		i.Kind = flows.InRepeat
	case "lang":
		i.Kind, i.Lang = flows.InLang, arg
	default:
		panic("unknown input " + s)
	}
	return i
}

// transcript renders outputs as text, for golden files and failure messages.
func transcript(b *strings.Builder, input string, out flows.Output) {
	fmt.Fprintf(b, "> %s\n", input)
	for _, n := range out.Notices {
		fmt.Fprintf(b, "  notice: %s\n", n)
	}
	if a := out.Answered; a != nil {
		fmt.Fprintf(b, "  answered[%d]: %s %q %q = %s\n", a.Token, a.Question, a.Text, a.Item, a.Answer)
	}
	if out.Error != "" {
		fmt.Fprintf(b, "  error: %s\n", out.Error)
	}
	if out.Stale {
		b.WriteString("  stale\n")
	}
	if out.Idle {
		b.WriteString("  idle\n")
	}
	if p := out.Prompt; p != nil {
		fmt.Fprintf(b, "  prompt[%d] %s (%s) %q", p.Token, p.Key, p.Type, p.Text)
		if p.Item != "" {
			fmt.Fprintf(b, " item=%q", p.Item)
		}
		if p.Progress.N > 0 {
			fmt.Fprintf(b, " %q", p.Progress.Text)
		}
		if p.Hint != "" {
			fmt.Fprintf(b, " hint=%q", p.Hint)
		}
		if p.Input != "" {
			fmt.Fprintf(b, " input=%q", p.Input)
		}
		if p.Current != "" {
			fmt.Fprintf(b, " current=%q", p.Current)
		}
		b.WriteString("\n")
		for _, o := range p.Options {
			mark := " "
			if o.Picked {
				mark = "x"
			}
			fmt.Fprintf(b, "    [%s] %s %q\n", mark, o.ID, o.Label)
		}
	}
	if d := out.Done; d != nil {
		fmt.Fprintf(b, "  done %s v%d lang=%s country=%s complete=%v\n", d.Flow, d.Version, d.Lang, d.Country, d.Complete)
		for _, k := range slices.Sorted(maps.Keys(d.Answers)) {
			fmt.Fprintf(b, "    %s = %q\n", k, d.Answers[k])
		}
	}
}

func run(t testing.TB, e *flows.Engine, st flows.State, inputs []string) (flows.State, []flows.Output, string) {
	t.Helper()
	var b strings.Builder
	var outs []flows.Output
	for _, s := range inputs {
		var out flows.Output
		st, out = e.Step(st, in(s))
		outs = append(outs, out)
		transcript(&b, s, out)
	}
	return st, outs, b.String()
}

// happy answers the kitchen flow end to end, touching every kind of question.
var happy = []string{
	"start:kitchen", "choose:next", "choose:AZ", "choose:ngo",
	"toggle:children", "toggle:other", "done", "text:street kids",
	"choose:next", "text:1 000", "text:2,5", "text:25.03.2021",
	"choose:yes", "choose:4", "text:good", "choose:3", "choose:na", "text:1", "choose:next",
}

func TestGoldenTranscripts(t *testing.T) {
	cases := map[string][]string{
		"happy": happy,
		"validation": {
			"start:kitchen", "text:", "choose:AZ", "skip", "text:4", "text:2", // "4" is no option; "2" picks the second
			"done", "toggle:migrants", "toggle:refugees", "toggle:children", "toggle:women", "done",
			"text:99999", "text:abc", "text:13", "text:12", "text:-1", "skip", "text:31.02.2021", "text:2021-02-28",
			"choose:maybe", "choose:yes", "choose:5", "choose:na", "text:this is far too long for twenty", "skip",
		},
		"navigation": {
			"start:kitchen", "back", "choose:next", "choose:RU", "back", "choose:AZ", "choose:clinic",
			"toggle:migrants", "done", "back", "back", "choose:ngo", "done", "skip", "skip", "skip",
			"choose:no", "back", "choose:yes", "skip", "cancel", "text:hello",
		},
		"hotlines": {
			"start:lines", "choose:AZ", "back", "choose:RU", "choose:next", "choose:yes",
			"start:lines", "choose:other", "choose:next", "skip",
		},
		"language": {
			"start:kitchen", "choose:next", "lang:ru", "choose:RU", "text:999999", "lang:en", "repeat",
		},
	}
	e := testEngine(t)
	for name, inputs := range cases {
		t.Run(name, func(t *testing.T) {
			_, _, got := run(t, e, flows.State{Lang: "en"}, inputs)
			file := filepath.Join("testdata", "golden", name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if got != string(want) {
				t.Errorf("transcript differs from %s (run with -update after checking):\n%s", file, got)
			}
		})
	}
}

func TestHappyPathAnswers(t *testing.T) {
	e := testEngine(t)
	st, outs, tr := run(t, e, flows.State{Lang: "en"}, happy)
	done := outs[len(outs)-1].Done
	if done == nil {
		t.Fatalf("no completion:\n%s", tr)
	}
	want := map[string]string{
		"country": "AZ", "org_type": "ngo", "groups": "children other", "groups_other": "street kids",
		"staff": "1000", "budget": "2.5", "founded": "2021-03-25", "coop": "yes", "coop_rating": "4",
		"coop_text": "good", "needs/law": "3", "needs/health": "na", "needs/media": "1",
	}
	if !maps.Equal(done.Answers, want) {
		t.Errorf("answers\n got %v\nwant %v", done.Answers, want)
	}
	if done.Country != "AZ" || done.Stakeholder != "cso" || !done.Complete {
		t.Errorf("completion meta = %+v", done)
	}
	if st.Active() {
		t.Error("state still active after completion")
	}
}

func TestSkipLogicDropsIrrelevantAnswers(t *testing.T) {
	e := testEngine(t)
	// Answer the group, then go back and say "no": the group's answers must not be
	// submitted, as XLSForm drops answers of questions that are not relevant.
	inputs := []string{
		"start:kitchen", "choose:next", "choose:AZ", "choose:ngo", "toggle:women", "done",
		"skip", "skip", "skip", "choose:yes", "choose:2", "text:fine", "back", "back", "back",
		"choose:no", "choose:1", "choose:1", "choose:1", "choose:next",
	}
	_, outs, tr := run(t, e, flows.State{Lang: "en"}, inputs)
	done := outs[len(outs)-1].Done
	if done == nil {
		t.Fatalf("no completion:\n%s", tr)
	}
	for _, k := range []string{"coop_rating", "coop_text", "groups_other"} {
		if _, ok := done.Answers[k]; ok {
			t.Errorf("answer %s submitted although not relevant:\n%s", k, tr)
		}
	}
	if done.Answers["coop"] != "no" {
		t.Errorf("coop = %q", done.Answers["coop"])
	}
}

func TestStaleAndForgedButtons(t *testing.T) {
	e := testEngine(t)
	st, outs, _ := run(t, e, flows.State{Lang: "en"}, []string{"start:kitchen", "choose:next"})
	countryToken := outs[1].Prompt.Token
	st, out := e.Step(st, flows.Input{Kind: flows.InChoose, Option: "AZ", Token: countryToken})
	if out.Answered == nil || out.Prompt == nil {
		t.Fatalf("current button refused: %+v", out)
	}
	// The same press again (a double tap) is stale: one answer is recorded.
	again, out := e.Step(st, flows.Input{Kind: flows.InChoose, Option: "RU", Token: countryToken})
	if !out.Stale || again.Answers["country"] != "AZ" || again.Cur != st.Cur {
		t.Errorf("stale press changed state: stale=%v answers=%v", out.Stale, again.Answers)
	}
	// A forged option on the current prompt is refused with a message and changes nothing.
	forged, out := e.Step(st, flows.Input{Kind: flows.InChoose, Option: "<script>", Token: st.Token})
	if out.Error == "" || forged.Cur != st.Cur || len(forged.Answers) != len(st.Answers) {
		t.Errorf("forged option: %+v", out)
	}
}

func TestPluralForms(t *testing.T) {
	e := testEngine(t)
	// Russian has three forms: 1 символа (one), 20 символов (many), 22 символа (few).
	st, _, _ := run(t, e, flows.State{Lang: "ru"}, []string{
		"start:kitchen", "choose:next", "choose:AZ", "choose:ngo", "toggle:women", "done",
		"skip", "skip", "skip", "choose:yes", "choose:2",
	})
	_, out := e.Step(st, in("text:"+strings.Repeat("я", 21)))
	if want := "Слишком длинно: не больше 20 символов."; out.Error != want {
		t.Errorf("error = %q, want %q", out.Error, want)
	}
}

func TestResumeFromSerialisedState(t *testing.T) {
	e := testEngine(t)
	for cut := 1; cut < len(happy); cut++ {
		st, _, _ := run(t, e, flows.State{Lang: "en"}, happy[:cut])
		b, err := flows.EncodeState(st)
		if err != nil {
			t.Fatal(err)
		}
		back, err := flows.DecodeState(b)
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		_, outs, tr := run(t, e, back, happy[cut:])
		if d := outs[len(outs)-1].Done; d == nil || d.Answers["needs/media"] != "1" || d.Answers["country"] != "AZ" {
			t.Fatalf("cut %d: resumed dialogue did not complete with every answer:\n%s", cut, tr)
		}
	}
}

func TestMissingTranslationFallsBackToEnglish(t *testing.T) {
	e := testEngine(t)
	_, outs, _ := run(t, e, flows.State{Lang: "ru"}, []string{"start:kitchen", "choose:next", "choose:AZ"})
	p := outs[2].Prompt
	if p.Text != "Type?" { // kitchen.org_type has no Russian text in testdata
		t.Errorf("text = %q, want the English fallback", p.Text)
	}
	for _, o := range p.Options {
		if strings.Contains(o.Label, "choice.") || o.Label == "" {
			t.Errorf("option label %q shows an id or nothing", o.Label)
		}
	}
}

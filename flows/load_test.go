package flows_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/locales"
)

const shared = "choices:\n  yes_no: [yes, no]\n  country: [AZ, other]\n"

func loadOne(t *testing.T, src string) (*flows.Set, flows.Problems) {
	t.Helper()
	fsys := fstest.MapFS{
		"defs/_choices.yaml": {Data: []byte(shared)},
		"defs/f.yaml":        {Data: []byte(src)},
	}
	set, err := flows.Load(fsys, "defs")
	if err == nil {
		return set, nil
	}
	var ps flows.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Load returned %T %v, want Problems", err, err)
	}
	return nil, ps
}

func TestLoadProblems(t *testing.T) {
	head := "id: f\nversion: 1\nkind: questionnaire\nstakeholder: cso\nquestions:\n"
	cases := []struct {
		name, src string
		want      string // "line: message fragment"
	}{
		{"unknown key", head + "  - id: a\n    type: text\n    requried: true\n", "8: unknown key \"requried\""},
		{"unknown type", head + "  - id: a\n    type: essay\n", "7: unknown type \"essay\""},
		{"bad id", head + "  - id: 1a\n    type: text\n", "6: question id \"1a\" is not a valid XLSForm name"},
		{"duplicate id", head + "  - id: a\n    type: text\n  - id: a\n    type: text\n", "8: duplicate question id \"a\" (first at line 6)"},
		{"unknown list", head + "  - id: a\n    type: select_one\n    choices: nope\n", "8: choices: no choice list named \"nope\""},
		{"unknown ref", head + "  - id: a\n    type: text\n    relevant: \"${b} = 'x'\"\n", "6: relevant of \"a\" refers to unknown field ${b}"},
		{"later ref", head + "  - id: a\n    type: text\n    relevant: \"${b} = 'x'\"\n  - id: b\n    type: text\n", "6: relevant of \"a\" refers to ${b}, which is asked later, so \"a\" is unreachable"},
		{"always false", head + "  - id: a\n    type: text\n    relevant: \"1 = 2\"\n", "is always false, so \"a\" is unreachable"},
		{"syntax", head + "  - id: a\n    type: text\n    constraint: \"string-length(. > 3\"\n", "8: constraint:"},
		{"dot in relevant", head + "  - id: a\n    type: text\n    relevant: \". = 'x'\"\n", "uses '.', which only a constraint may use"},
		{"min above max", head + "  - id: a\n    type: integer\n    min: 5\n    max: 1\n", "min 5 is above max 1"},
		{"matrix without scale", head + "  - id: a\n    type: matrix\n    items: yes_no\n", "matrix \"a\" needs min and max"},
		{"other collides", head + "  - id: a\n    type: select_one\n    choices: yes_no\n    other: true\n  - id: a_other\n    type: text\n", "duplicate question id \"a_other\""},
		{"id mismatch", "id: g\nversion: 1\nkind: session\nquestions:\n  - id: a\n    type: note\n", "1: id \"g\" does not match the file name \"f\""},
		{"no stakeholder", "id: f\nversion: 1\nkind: questionnaire\nquestions:\n  - id: a\n    type: note\n", "a questionnaire needs a stakeholder"},
		{"bad yaml", "id: f\nversion: [\n", "invalid YAML"},
		{"empty group", head + "  - id: g\n    type: group\n", "group \"g\" needs a non-empty questions list"},
		{"key on wrong type", head + "  - id: a\n    type: text\n    na: true\n", "8: na does not apply to a text question"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, ps := loadOne(t, c.src)
			if len(ps) == 0 {
				t.Fatalf("no problem reported, want %q", c.want)
			}
			all := ps.Error()
			line, msg, hasLine := strings.Cut(c.want, ": ")
			want := c.want
			if hasLine && !strings.ContainsAny(line, " \"") {
				want = "defs/f.yaml:" + line + ": " + msg
			}
			if !strings.Contains(all, want) {
				t.Errorf("problems:\n%s\nwant a line containing %q", all, want)
			}
		})
	}
}

func TestBuiltinDefinitionsLoad(t *testing.T) {
	set, err := flows.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	d, ok := set.Get("cso")
	if !ok {
		t.Fatal("no cso flow")
	}
	if got := len(d.Keys()); got < 40 {
		t.Errorf("cso has %d answer keys; expected the profile, cooperation and the 22-topic matrix", got)
	}
	for i := 1; i <= 22; i++ {
		key := "training_needs/t" + string(rune('0'+i/10)) + string(rune('0'+i%10))
		if _, _, _, ok := d.QuestionOf(key); !ok {
			t.Errorf("cso lacks matrix item %s", key)
		}
	}
}

// A definition edited under a running session: the session goes on when every answer
// still fits, and restarts with a notice when one does not.
func TestDefinitionChangeUnderSession(t *testing.T) {
	e := testEngine(t)
	st, _, _ := run(t, e, flows.State{Lang: "en"}, []string{"start:kitchen", "choose:next", "choose:AZ", "choose:ngo"})
	src, err := os.ReadFile("testdata/defs/kitchen.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		edit    func(string) string
		restart bool
	}{
		{"text-only edit keeps the session", func(s string) string { return s + "\n# a comment\n" }, false},
		{"new question later keeps the session", func(s string) string {
			return strings.Replace(s, "  - id: outro\n", "  - id: extra\n    type: text\n  - id: outro\n", 1)
		}, false},
		{"removed choice that was answered restarts", func(s string) string {
			return strings.Replace(s, "org_type: [ngo, association, clinic]", "org_type: [association, clinic]", 1)
		}, true},
		{"answered question given another list restarts", func(s string) string {
			return strings.Replace(s, "choices: org_type\n", "choices: yes_no\n", 1)
		}, true},
		{"current question removed restarts", func(s string) string {
			s = strings.Replace(s, "  - id: groups\n", "  - id: groups2\n", 1)
			return strings.ReplaceAll(s, "${groups}", "${groups2}")
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			changed := fstest.MapFS{}
			for _, f := range []string{"defs/_choices.yaml", "locales/kitchen.en.yaml", "locales/ui.en.yaml"} {
				b, err := os.ReadFile("testdata/" + f)
				if err != nil {
					t.Fatal(err)
				}
				changed[f] = &fstest.MapFile{Data: b}
			}
			changed["defs/kitchen.yaml"] = &fstest.MapFile{Data: []byte(c.edit(string(src)))}
			e2 := newEngine(t, changed)
			st2, out := e2.Step(st, flows.Input{Kind: flows.InRepeat})
			restarted := len(out.Notices) > 0
			if restarted != c.restart {
				t.Fatalf("restarted = %v, want %v (notices %v)", restarted, c.restart, out.Notices)
			}
			if c.restart {
				if len(st2.Answers) != 0 || out.Prompt == nil || out.Prompt.Key != "intro" {
					t.Errorf("restart did not begin afresh: answers %v prompt %+v", st2.Answers, out.Prompt)
				}
				if st2.Token <= st.Token {
					t.Errorf("token did not move on (%d → %d): old buttons would still work", st.Token, st2.Token)
				}
				return
			}
			if st2.Answers["org_type"] != "ngo" || st2.Cur != "groups" || out.Prompt.Key != "groups" {
				t.Errorf("session not kept: %+v", st2)
			}
		})
	}
}

func newEngine(t *testing.T, fsys fstest.MapFS) *flows.Engine {
	t.Helper()
	set, err := flows.Load(fsys, "defs")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := locales.Load(fsys, "locales")
	if err != nil {
		t.Fatal(err)
	}
	return flows.NewEngine(set, cat)
}

func TestHotlineEntriesNeedSourceAndDate(t *testing.T) {
	bad := "checked: \"2026-11\"\ncountries:\n  AZ:\n    - kinds: [emergency]\n      numbers: [\"112\"]\n      operator: \"x\"\n    - kinds: [sos]\n      numbers: [\"call me\"]\n      operator: \"y\"\n      source: \"s\"\n      checked: \"yesterday\"\n  XX: []\n"
	fsys := fstest.MapFS{
		"defs/_choices.yaml":  {Data: []byte(shared)},
		"defs/_hotlines.yaml": {Data: []byte(bad)},
	}
	_, err := flows.Load(fsys, "defs")
	if err == nil {
		t.Fatal("bad hotlines accepted")
	}
	for _, want := range []string{
		"defs/_hotlines.yaml:4: hotlines: AZ: every entry needs a source",
		"defs/_hotlines.yaml:7: hotlines: AZ: unknown kind \"sos\"",
		"\"call me\" is not a phone number",
		"defs/_hotlines.yaml:7: hotlines: AZ: every entry needs a check date",
		"XX is not in the country list",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
}

// Every hotline shipped has a source and a check date (the loader refuses others), and
// every country of the list has an entry list, possibly empty.
func TestBuiltinHotlines(t *testing.T) {
	set, err := flows.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	h := set.Hotlines()
	if h == nil {
		t.Skip("no hotlines data yet")
	}
	for _, c := range []string{"AZ", "BY", "GE", "IR", "KZ", "KG", "MD", "RU", "TJ", "TR", "TM", "UA", "UZ"} {
		entries, ok := h.Countries[c]
		if !ok {
			t.Errorf("no hotlines entry list for %s", c)
		}
		for _, e := range entries {
			if e.Source == "" || e.Checked == "" {
				t.Errorf("%s: %v lacks a source or check date", c, e.Numbers)
			}
		}
	}
}

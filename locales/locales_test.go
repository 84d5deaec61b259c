package locales_test

import (
	"testing"

	"github.com/dialoq/dialoq/locales"
)

func TestMatchClientLanguage(t *testing.T) {
	cat, err := locales.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"":               "en",
		"ru":             "ru",
		"ru-RU":          "ru",
		"az":             "az",
		"az-Latn-AZ":     "az",
		"en-GB":          "en",
		"zz":             "en",
		"not a tag!":     "en",
		"fr-CA,ru;q=0.8": "ru",
	}
	for in, want := range cases {
		if got := cat.Match(in); got != want {
			t.Errorf("Match(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNeverShowsAnID(t *testing.T) {
	cat, err := locales.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	if got := cat.Text("ru", "no.such.message", nil); got != "" {
		t.Errorf("missing message gave %q, want empty", got)
	}
	if got := cat.Text("xx", "ui.next", nil); got == "" || got == "ui.next" {
		t.Errorf("unknown language gave %q, want the English text", got)
	}
}

func TestRussianPluralsHaveThreeForms(t *testing.T) {
	cat, err := locales.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	// 1 → one, 3 → few, 5 → many, 21 → one, 22 → few, 11 → many.
	forms := map[int]string{}
	for _, n := range []int{1, 3, 5, 21, 22, 11} {
		forms[n] = cat.Plural("ru", "ui.error.max_picks", n, nil)
	}
	if forms[1] == forms[3] || forms[3] == forms[5] || forms[1] == forms[5] {
		t.Errorf("Russian forms not distinct: %v", forms)
	}
	if forms[21] != replaceNum(forms[1], "1", "21") || forms[22] != replaceNum(forms[3], "3", "22") || forms[11] != replaceNum(forms[5], "5", "11") {
		t.Errorf("CLDR categories wrong: %v", forms)
	}
}

func replaceNum(s, from, to string) string {
	for i := 0; i+len(from) <= len(s); i++ {
		if s[i:i+len(from)] == from {
			return s[:i] + to + s[i+len(from):]
		}
	}
	return s
}

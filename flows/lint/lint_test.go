package lint_test

import (
	"os"
	"strings"
	"testing"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/flows/lint"
	"github.com/dialoq/dialoq/locales"
)

// The built-in definitions and locales must be complete in every language: this is
// the test that fails when a translation is missing or its placeholders drift.
func TestBuiltinFlowsAndLocalesAreComplete(t *testing.T) {
	defs, dir := flows.Files()
	r := lint.Run(defs, dir, locales.Files(), ".")
	for _, p := range r.Problems {
		t.Error(p)
	}
	for _, c := range r.Coverage {
		if c.Have != c.Need {
			t.Errorf("%s: %d of %d messages", c.Lang, c.Have, c.Need)
		}
	}
	for _, want := range []string{"en", "az", "ru", "tr", "ka", "fa", "kk", "ky", "ro", "tg", "tk", "uk", "uz", "be"} {
		found := false
		for _, c := range r.Coverage {
			found = found || c.Lang == want
		}
		if !found {
			t.Errorf("no %s locale", want)
		}
	}
}

// The engine's testdata has a deliberately partial Russian translation: lint must name
// each gap with the file and line of the definition that needs it.
func TestMissingTranslationsNamed(t *testing.T) {
	r := lint.Run(os.DirFS("../testdata"), "defs", os.DirFS("../testdata"), "locales")
	text := flows.Problems(r.Problems).Error()
	for _, want := range []string{
		"defs/kitchen.yaml:16: kitchen.org_type: no ru translation",
		"locales/ui.en.yaml:2: ui.progress", // present in ru: must not be reported
	} {
		if strings.HasPrefix(want, "locales/ui.en.yaml:2") {
			if strings.Contains(text, "ui.progress: no ru") {
				t.Errorf("ui.progress reported missing although ui.ru.yaml has it")
			}
			continue
		}
		if !strings.Contains(text, want) {
			t.Errorf("lint output lacks %q:\n%s", want, text)
		}
	}
	for _, c := range r.Coverage {
		if c.Lang == "ru" && c.Have >= c.Need {
			t.Errorf("ru coverage %d/%d, want gaps", c.Have, c.Need)
		}
	}
}

func TestPlaceholderMismatch(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"ui.en.yaml"} {
		b, err := os.ReadFile("../testdata/locales/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir+"/"+f, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(dir+"/ui.ru.yaml", []byte("ui.progress: \"Вопрос {{.Number}} из {{.Total}}\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cat, err := locales.Load(os.DirFS(dir), ".")
	if err != nil {
		t.Fatal(err)
	}
	ps := lint.Messages(nil, cat, nil)
	if !strings.Contains(ps.Error(), "locales/ui.ru.yaml:1: ui.progress: placeholders [Number Total] differ from English [N Total]") {
		t.Errorf("placeholder drift not reported:\n%s", ps.Error())
	}
}

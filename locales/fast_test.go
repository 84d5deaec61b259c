package locales

import (
	"testing"

	"github.com/nicksnyder/go-i18n/v2/i18n"
)

// TestTextMatchesGoI18n holds the precomputed path of Text to go-i18n itself, for
// every message in every language, with no data, with strings, with ints and with
// a placeholder left out.
func TestTextMatchesGoI18n(t *testing.T) {
	c, err := Embedded()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, byID := range c.where {
		for _, src := range byID {
			for _, p := range src.Placeholders {
				names[p] = true
			}
		}
	}
	// A key no template can name must not leak into the text.
	strs, ints, partial := map[string]any{"": "!"}, map[string]any{}, map[string]any{}
	i := 0
	for n := range names {
		strs[n] = "«" + n + "»"
		ints[n] = 1000 + i
		if i%2 == 0 {
			partial[n] = "x"
		}
		i++
	}
	ids := []string{"no.such.message"}
	for id := range c.texts {
		ids = append(ids, id)
	}
	langs := append([]string{"", "xx", "ru-RU", "EN"}, c.langs...)
	checked := 0
	for _, lang := range langs {
		loc := i18n.NewLocalizer(c.bundle, lang, Fallback)
		for _, id := range ids {
			for _, data := range []map[string]any{nil, strs, ints, partial, {"Other": struct{}{}}} {
				want, _ := loc.Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
				if got := c.Text(lang, id, data); got != want {
					t.Fatalf("Text(%q, %q, %v) = %q, go-i18n says %q", lang, id, data, got, want)
				}
				checked++
			}
		}
	}
	t.Logf("%d texts checked", checked)
}

func TestSplit(t *testing.T) {
	for src, want := range map[string]int{
		"Question {{.N}} of {{.Total}}": 2,
		"{{.Count}}":                    1,
		"{{ .Count }} left":             2,
		"{{.Count | printf \"%d\"}}":    -1,
		"{{- .Count}}":                  -1,
		"a {{.N}} {{if .X}}b{{end}}":    -1,
	} {
		parts, ok := split(src)
		if !ok && want != -1 || ok && len(parts) != want {
			t.Errorf("split(%q) = %v, %v", src, parts, ok)
		}
	}
}

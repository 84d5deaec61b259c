package locales_test

import (
	"testing"

	"github.com/dialoq/dialoq/locales"
)

func benchCatalog(b *testing.B) *locales.Catalog {
	b.Helper()
	cat, err := locales.Embedded()
	if err != nil {
		b.Fatal(err)
	}
	return cat
}

// BenchmarkText is a question or label: a message without placeholders, the most
// common kind the engine asks for.
func BenchmarkText(b *testing.B) {
	cat := benchCatalog(b)
	b.ReportAllocs()
	for b.Loop() {
		if cat.Text("ru", "ui.next", nil) == "" {
			b.Fatal("empty")
		}
	}
}

// BenchmarkTextData is the progress line, asked for on every question.
func BenchmarkTextData(b *testing.B) {
	cat := benchCatalog(b)
	b.ReportAllocs()
	for b.Loop() {
		if cat.Text("ru", "ui.progress", map[string]any{"N": 17, "Total": 42}) == "" {
			b.Fatal("empty")
		}
	}
}

// BenchmarkTextMissing is an optional message no locale has, such as most hints.
func BenchmarkTextMissing(b *testing.B) {
	cat := benchCatalog(b)
	b.ReportAllocs()
	for b.Loop() {
		if cat.Text("ru", "cso.org_name.hint", nil) != "" {
			b.Fatal("not empty")
		}
	}
}

// BenchmarkTextFallback is a message the language lacks, served in English.
func BenchmarkTextFallback(b *testing.B) {
	cat := benchCatalog(b)
	b.ReportAllocs()
	for b.Loop() {
		if cat.Text("xx", "ui.next", nil) == "" {
			b.Fatal("empty")
		}
	}
}

func BenchmarkPlural(b *testing.B) {
	cat := benchCatalog(b)
	b.ReportAllocs()
	for b.Loop() {
		if cat.Plural("ru", "ui.input.text", 1000, map[string]any{"Count": 1000}) == "" {
			b.Fatal("empty")
		}
	}
}

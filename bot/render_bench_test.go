package bot

import (
	"encoding/json"
	"testing"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/locales"
)

// What one question costs the bot between the engine and the wire: its callback
// data, its HTML and keyboard, and the JSON of the sendMessage request.

func BenchmarkCallback(b *testing.B) {
	cases := []callback{
		{kind: cbChoose, token: 48213, index: 7},
		{kind: cbToggle, token: 48213, index: 11},
		{kind: cbFlow, arg: "migrant_association"},
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			_ = cases[i%len(cases)].String()
		}
	})
	data := make([]string, len(cases))
	for i, c := range cases {
		data[i] = c.String()
	}
	b.Run("parse", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, ok := parseCallback(data[i%len(data)]); !ok {
				b.Fatal("refused")
			}
		}
	})
}

// BenchmarkRender renders questions of the CSO questionnaire in Russian: a single
// choice, a multiple choice and an item of the training-needs matrix.
func BenchmarkRender(b *testing.B) {
	set, err := flows.Builtin()
	if err != nil {
		b.Fatal(err)
	}
	cat, err := locales.Embedded()
	if err != nil {
		b.Fatal(err)
	}
	bot := &Bot{cat: cat}
	eng := flows.NewEngine(set, cat)
	kinds := map[string]*flows.Prompt{}
	st, out := eng.Step(flows.State{}, flows.Input{Kind: flows.InStart, Flow: "cso", Lang: "ru"})
	for range 200 {
		p := out.Prompt
		if p == nil {
			break
		}
		kind := "single"
		switch {
		case p.Type == flows.TypeMatrix:
			kind = "matrix"
		case p.Multi:
			kind = "multi"
		case isCard(p) || len(p.Options) < 2:
			kind = ""
		}
		if kind != "" && kinds[kind] == nil {
			kinds[kind] = p
		}
		in := flows.Input{Kind: flows.InChoose, Token: p.Token}
		switch {
		case p.Multi:
			in = flows.Input{Kind: flows.InToggle, Token: p.Token, Option: p.Options[0].ID}
			st, _ = eng.Step(st, in)
			in = flows.Input{Kind: flows.InDone, Token: p.Token}
		case len(p.Options) > 0:
			in.Option = p.Options[0].ID
		case p.Type == flows.TypeText:
			in = flows.Input{Kind: flows.InText, Text: "ok"}
		default:
			in = flows.Input{Kind: flows.InText, Text: "2010"} // a count, or the year founded
		}
		st, out = eng.Step(st, in)
	}
	for _, kind := range []string{"single", "multi", "matrix"} {
		p := kinds[kind]
		if p == nil {
			b.Fatalf("no %s question met", kind)
		}
		b.Run("question="+kind, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				params := textParams{ChatID: 123456789, Text: bot.promptHTML("ru", p), ParseMode: "HTML", NoPreview: true, ReplyMarkup: bot.promptKeyboard("ru", p)}
				if _, err := json.Marshal(params); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

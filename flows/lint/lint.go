// Package lint checks flow definitions and locales together: what Load finds wrong in
// a definition, and every message a definition or the UI needs that a language lacks,
// or has with other placeholders than English.
package lint

import (
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/locales"
)

// Report is the result of a lint run.
type Report struct {
	Problems flows.Problems
	// Coverage is, per language, how many of the needed messages it has.
	Coverage []Coverage
}

// Coverage of one language.
type Coverage struct {
	Lang       string
	Have, Need int
}

func (c Coverage) Percent() float64 {
	if c.Need == 0 {
		return 100
	}
	return 100 * float64(c.Have) / float64(c.Need)
}

// Run lints the definitions in defsDir of defsFS against the locales in locDir of locFS.
func Run(defsFS fs.FS, defsDir string, locFS fs.FS, locDir string) Report {
	var r Report
	set, err := flows.Load(defsFS, defsDir)
	if err != nil {
		if ps, ok := err.(flows.Problems); ok {
			r.Problems = append(r.Problems, ps...)
		} else {
			r.Problems = append(r.Problems, flows.Problem{File: defsDir, Msg: err.Error()})
		}
	}
	cat, err := locales.Load(locFS, locDir)
	if err != nil {
		r.Problems = append(r.Problems, flows.Problem{File: locDir, Msg: err.Error()})
		return r
	}
	r.Problems = append(r.Problems, Messages(set, cat, &r.Coverage)...)
	return r
}

// Messages checks that every language has every message the definitions and the UI
// need, with the same placeholders as English. set may be nil when definitions failed
// to load; the UI is still checked.
func Messages(set *flows.Set, cat *locales.Catalog, cov *[]Coverage) flows.Problems {
	var ps flows.Problems
	type need struct {
		id, file string
		line     int
	}
	var needs []need
	seen := map[string]bool{}
	for _, id := range cat.IDs(locales.Fallback) {
		src, _ := cat.Where(locales.Fallback, id)
		if !strings.HasPrefix(src.File, "ui.") && !strings.HasPrefix(src.File, "bot.") {
			continue
		}
		needs = append(needs, need{id, "locales/" + src.File, src.Line})
		seen[id] = true
	}
	if set != nil {
		for _, d := range set.All() {
			for _, m := range d.Messages() {
				if m.Optional || seen[m.ID] {
					continue
				}
				seen[m.ID] = true
				needs = append(needs, need{m.ID, d.File, m.Line})
			}
		}
	}
	langs := cat.Langs()
	if !slices.Contains(langs, locales.Fallback) {
		ps = append(ps, flows.Problem{File: "locales", Msg: "no English message files: English is the fallback and must be complete"})
	}
	for _, lang := range langs {
		c := Coverage{Lang: lang, Need: len(needs)}
		for _, n := range needs {
			src, ok := cat.Where(lang, n.id)
			if !ok {
				ps = append(ps, flows.Problem{File: n.file, Line: n.line, Msg: fmt.Sprintf("%s: no %s translation", n.id, lang)})
				continue
			}
			c.Have++
			if en, ok := cat.Where(locales.Fallback, n.id); ok && lang != locales.Fallback && !slices.Equal(en.Placeholders, src.Placeholders) {
				ps = append(ps, flows.Problem{File: "locales/" + src.File, Line: src.Line,
					Msg: fmt.Sprintf("%s: placeholders %v differ from English %v", n.id, src.Placeholders, en.Placeholders)})
			}
		}
		if cov != nil {
			*cov = append(*cov, c)
		}
	}
	// A message nobody uses is usually a renamed question whose translation was left
	// behind; optional messages (hints) count as used.
	used := map[string]bool{}
	for id := range seen {
		used[id] = true
	}
	if set != nil {
		for _, d := range set.All() {
			for _, m := range d.Messages() {
				used[m.ID] = true
			}
		}
	}
	for _, lang := range langs {
		for _, id := range cat.IDs(lang) {
			if used[id] || (set == nil && !strings.HasPrefix(id, "ui.")) {
				continue
			}
			if isFlowMessage(set, id) {
				src, _ := cat.Where(lang, id)
				ps = append(ps, flows.Problem{File: "locales/" + src.File, Line: src.Line, Msg: fmt.Sprintf("%s: no definition uses this message", id)})
			}
		}
	}
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].File != ps[j].File {
			return ps[i].File < ps[j].File
		}
		return ps[i].Line < ps[j].Line
	})
	return ps
}

// isFlowMessage reports whether id belongs to a flow or a choice list, the messages
// whose use lint can see; other areas (bot texts) are checked by their own tests.
func isFlowMessage(set *flows.Set, id string) bool {
	if set == nil {
		return false
	}
	if list, name, ok := strings.Cut(strings.TrimPrefix(id, "choice."), "."); ok && strings.HasPrefix(id, "choice.") {
		// Shared lists may serve flows still to come; only a label of no choice is stale.
		c, ok := set.Choices(list)
		return !ok || !c.Has(name)
	}
	for _, d := range set.All() {
		if strings.HasPrefix(id, d.ID+".") {
			return true
		}
	}
	return false
}

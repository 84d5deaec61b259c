package flows

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// HotlinesFile is the data file of hotlines, kept apart from code so a coordinator
// can update numbers without touching a flow.
const HotlinesFile = "_hotlines.yaml"

// Hotline kinds, from the brief's categories.
var hotlineKinds = []string{"trafficking", "migration", "support", "emergency", "violence"}

// Hotline is one number (or group of numbers) a migrant can call.
type Hotline struct {
	Kinds         []string          `yaml:"kinds"`
	Numbers       []string          `yaml:"numbers"`
	AbroadNumbers []string          `yaml:"abroad_numbers"`
	Services      map[string]string `yaml:"services"`
	Operator      string            `yaml:"operator"`
	Hours         string            `yaml:"hours"`
	Free          *bool             `yaml:"free"`
	FreeNote      string            `yaml:"free_note"`
	FromAbroad    bool              `yaml:"from_abroad"`
	Languages     []string          `yaml:"languages"`
	Source        string            `yaml:"source"`
	OtherSources  []string          `yaml:"other_sources"`
	SourceYear    string            `yaml:"source_year"`
	Confirmed     bool              `yaml:"confirmed"`
	Doubt         string            `yaml:"doubt"`
	Old           bool              `yaml:"old"`
	Checked       string            `yaml:"checked"`
	Line          int               `yaml:"-"`
}

// Hotlines holds the hotlines of every country.
type Hotlines struct {
	Checked   string
	Countries map[string][]Hotline
}

type hotlinesFile struct {
	Checked   string               `yaml:"checked"`
	Countries map[string]yaml.Node `yaml:"countries"`
	Extra     map[string]yaml.Node `yaml:",inline"`
}

var (
	dialable  = regexp.MustCompile(`^[+(]{0,3}[0-9][0-9 ()\-/]*[0-9]$|^[0-9]$`)
	checkedRe = regexp.MustCompile(`^20[0-9]{2}-(0[1-9]|1[0-2])(-[0-3][0-9])?$`)
)

// hotlinesData parses and checks the hotlines file; countries must be names of the
// shared country list.
func (l *loader) hotlinesData(file string, root *yaml.Node) *Hotlines {
	var f hotlinesFile
	if err := root.Decode(&f); err != nil {
		l.add(file, root.Line, "hotlines: %v", err)
		return nil
	}
	for k, v := range f.Extra {
		l.add(file, v.Line, "hotlines: unknown key %q", k)
	}
	h := &Hotlines{Checked: f.Checked, Countries: map[string][]Hotline{}}
	if !checkedRe.MatchString(f.Checked) {
		l.add(file, root.Line, "hotlines: checked must be a date like 2026-11, got %q", f.Checked)
	}
	for country, node := range f.Countries {
		if country == OtherChoice || !validChoiceName(country) || strings.ToUpper(country) != country {
			l.add(file, node.Line, "hotlines: %q is not a country code", country)
			continue
		}
		var entries []Hotline
		if node.Kind != yaml.SequenceNode {
			l.add(file, node.Line, "hotlines: %s: expected a list of entries", country)
			continue
		}
		for _, n := range node.Content {
			var e Hotline
			if err := n.Decode(&e); err != nil {
				l.add(file, n.Line, "hotlines: %s: %v", country, err)
				continue
			}
			e.Line = n.Line
			if e.Checked == "" {
				e.Checked = f.Checked
			}
			l.checkHotline(file, country, &e, n)
			entries = append(entries, e)
		}
		h.Countries[country] = entries
	}
	return h
}

func (l *loader) checkHotline(file, country string, e *Hotline, n *yaml.Node) {
	known := map[string]bool{"kinds": true, "numbers": true, "abroad_numbers": true, "services": true, "operator": true,
		"hours": true, "free": true, "free_note": true, "from_abroad": true, "languages": true, "source": true,
		"other_sources": true, "source_year": true, "confirmed": true, "doubt": true, "old": true, "checked": true}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; !known[k.Value] {
			l.add(file, k.Line, "hotlines: %s: unknown key %q", country, k.Value)
		}
	}
	if len(e.Kinds) == 0 {
		l.add(file, e.Line, "hotlines: %s: an entry needs kinds", country)
	}
	for _, k := range e.Kinds {
		if !slices.Contains(hotlineKinds, k) {
			l.add(file, e.Line, "hotlines: %s: unknown kind %q (one of %s)", country, k, strings.Join(hotlineKinds, ", "))
		}
	}
	if len(e.Numbers)+len(e.AbroadNumbers) == 0 {
		l.add(file, e.Line, "hotlines: %s: an entry needs a number", country)
	}
	for _, num := range append(slices.Clone(e.Numbers), e.AbroadNumbers...) {
		if !dialable.MatchString(num) {
			l.add(file, e.Line, "hotlines: %s: %q is not a phone number (digits, spaces, + ( ) - /)", country, num)
		}
	}
	if strings.TrimSpace(e.Source) == "" {
		l.add(file, e.Line, "hotlines: %s: every entry needs a source", country)
	}
	if !checkedRe.MatchString(e.Checked) {
		l.add(file, e.Line, "hotlines: %s: every entry needs a check date like 2026-11", country)
	}
	if strings.TrimSpace(e.Operator) == "" {
		l.add(file, e.Line, "hotlines: %s: every entry needs an operator", country)
	}
}

// card renders the hotlines of a country as plain text in lang. A country without a
// confirmed entry says so and points to the emergency number and IOM, as the brief
// asks: an unverified number is shown only with a warning.
func (h *Hotlines) card(tr Translator, lang, country string) string {
	var b strings.Builder
	name := tr.Text(lang, ChoiceMessageID(CountryList, country), nil)
	entries := h.Countries[country]
	confirmed := slices.ContainsFunc(entries, func(e Hotline) bool { return e.Confirmed && !e.Old && e.Doubt == "" })
	if country == OtherChoice || country == "" {
		return tr.Text(lang, "ui.hotlines.other", nil)
	}
	if len(entries) == 0 {
		return tr.Text(lang, "ui.hotlines.none", map[string]any{"Country": name})
	}
	b.WriteString(tr.Text(lang, "ui.hotlines.title", map[string]any{"Country": name}))
	if !confirmed {
		b.WriteString("\n\n" + tr.Text(lang, "ui.hotlines.unconfirmed", map[string]any{"Country": name}))
	}
	for _, e := range entries {
		b.WriteString("\n\n")
		b.WriteString("☎ " + strings.Join(numbersWithServices(tr, lang, e), "; "))
		if len(e.AbroadNumbers) > 0 {
			b.WriteString("\n" + tr.Text(lang, "ui.hotlines.abroad", map[string]any{"Numbers": strings.Join(e.AbroadNumbers, "; ")}))
		}
		var kinds []string
		for _, k := range e.Kinds {
			kinds = append(kinds, tr.Text(lang, "ui.hotlines.kind."+k, nil))
		}
		b.WriteString("\n" + strings.Join(kinds, " · ") + " — " + e.Operator)
		var facts []string
		if e.Hours != "" {
			facts = append(facts, e.Hours)
		}
		if e.Free != nil && *e.Free {
			facts = append(facts, tr.Text(lang, "ui.hotlines.free", nil))
		}
		if e.FromAbroad {
			facts = append(facts, tr.Text(lang, "ui.hotlines.from_abroad", nil))
		}
		if len(e.Languages) > 0 {
			var names []string
			for _, code := range e.Languages {
				n := tr.Text(lang, ChoiceMessageID("language", code), nil)
				if n == "" {
					n = code
				}
				names = append(names, n)
			}
			facts = append(facts, strings.Join(names, ", "))
		}
		if len(facts) > 0 {
			b.WriteString("\n" + strings.Join(facts, " · "))
		}
		switch {
		case e.Old || e.Doubt != "":
			b.WriteString("\n⚠ " + tr.Text(lang, "ui.hotlines.old", nil))
		case !e.Confirmed:
			b.WriteString("\n⚠ " + tr.Text(lang, "ui.hotlines.secondary", nil))
		}
		b.WriteString("\n" + tr.Text(lang, "ui.hotlines.source", map[string]any{"Source": e.Source, "Checked": e.Checked}))
	}
	return b.String()
}

func numbersWithServices(tr Translator, lang string, e Hotline) []string {
	out := make([]string, len(e.Numbers))
	for i, n := range e.Numbers {
		out[i] = n
		if s := e.Services[n]; s != "" {
			label := tr.Text(lang, "ui.hotlines.service."+s, nil)
			if label == "" {
				label = s
			}
			out[i] = fmt.Sprintf("%s (%s)", n, label)
		}
	}
	return out
}

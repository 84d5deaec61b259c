package flows

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dialoq/dialoq/flows/expr"
)

// Problem is one thing wrong with a definition or a locale, with where it is.
type Problem struct {
	File string
	Line int
	Msg  string
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// Problems is the error Load returns: every problem found, not just the first, so an
// author fixes a file in one pass.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Set is every definition loaded from one directory, with their shared choice lists.
type Set struct {
	hotlines *Hotlines
	defs     map[string]*Definition
	order    []string
	choices  map[string]*ChoiceList
}

// Get returns the definition with that id.
func (s *Set) Get(id string) (*Definition, bool) {
	d, ok := s.defs[id]
	return d, ok
}

// All returns the definitions sorted by id.
func (s *Set) All() []*Definition {
	out := make([]*Definition, len(s.order))
	for i, id := range s.order {
		out[i] = s.defs[id]
	}
	return out
}

// Hotlines returns the hotlines data, or nil when the set has none.
func (s *Set) Hotlines() *Hotlines { return s.hotlines }

// Choices returns a choice list by name.
func (s *Set) Choices(name string) (*ChoiceList, bool) {
	c, ok := s.choices[name]
	return c, ok
}

// Load reads every *.yaml file in dir of fsys. Files whose name starts with "_" hold
// only shared choice lists. It returns Problems when anything is wrong.
func Load(fsys fs.FS, dir string) (*Set, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read definitions: %w", err)
	}
	l := &loader{set: &Set{defs: map[string]*Definition{}, choices: map[string]*ChoiceList{}}}
	type parsed struct {
		file string
		src  []byte
		root *yaml.Node
	}
	var flowsFiles []parsed
	var hotlinesRoot *yaml.Node
	var hotlinesFileName string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		file := path.Join(dir, e.Name())
		src, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		root, ok := l.parseYAML(file, src)
		if !ok {
			continue
		}
		if e.Name() == HotlinesFile {
			hotlinesRoot, hotlinesFileName = root, file
			continue
		}
		if strings.HasPrefix(e.Name(), "_") {
			l.sharedFile(file, root)
			continue
		}
		flowsFiles = append(flowsFiles, parsed{file, src, root})
	}
	if hotlinesRoot != nil {
		l.set.hotlines = l.hotlinesData(hotlinesFileName, hotlinesRoot)
		if c, ok := l.set.choices[CountryList]; ok && l.set.hotlines != nil {
			for country := range l.set.hotlines.Countries {
				if !c.Has(country) {
					l.add(hotlinesFileName, 0, "hotlines: %s is not in the country list", country)
				}
			}
		}
	}
	// Shared lists first, so a flow may use them whatever the file order.
	for _, f := range flowsFiles {
		l.flowChoices(f.file, f.root)
	}
	for _, f := range flowsFiles {
		if d := l.flow(f.file, f.src, f.root); d != nil {
			if _, dup := l.set.defs[d.ID]; dup {
				l.add(f.file, 0, "duplicate flow id %q", d.ID)
				continue
			}
			l.set.defs[d.ID] = d
			l.set.order = append(l.set.order, d.ID)
		}
	}
	sort.Strings(l.set.order)
	if len(l.problems) > 0 {
		return nil, l.problems
	}
	return l.set, nil
}

type loader struct {
	set      *Set
	problems Problems
}

func (l *loader) add(file string, line int, format string, args ...any) {
	l.problems = append(l.problems, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (l *loader) parseYAML(file string, src []byte) (*yaml.Node, bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		line := 0
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			// yaml.v3 puts the line in the text: "yaml: line 7: ...".
			msg := err.Error()
			if _, rest, ok := strings.Cut(msg, "line "); ok {
				n, _, _ := strings.Cut(rest, ":")
				line, _ = strconv.Atoi(n)
			}
		}
		l.add(file, line, "invalid YAML: %v", err)
		return nil, false
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		l.add(file, 1, "expected a mapping at the top")
		return nil, false
	}
	return doc.Content[0], true
}

// mapping is a YAML mapping node with its keys checked against what is allowed, so a
// typo such as "requried" is reported instead of silently ignored.
type mapping struct {
	file   string
	node   *yaml.Node
	values map[string]*yaml.Node
}

func (l *loader) mapping(file string, n *yaml.Node, allowed ...string) (*mapping, bool) {
	if n.Kind != yaml.MappingNode {
		l.add(file, n.Line, "expected a mapping")
		return nil, false
	}
	m := &mapping{file: file, node: n, values: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !slices.Contains(allowed, k.Value) {
			l.add(file, k.Line, "unknown key %q (allowed: %s)", k.Value, strings.Join(allowed, ", "))
			continue
		}
		if _, dup := m.values[k.Value]; dup {
			l.add(file, k.Line, "duplicate key %q", k.Value)
			continue
		}
		m.values[k.Value] = v
	}
	return m, true
}

func (l *loader) str(m *mapping, key string) (string, int) {
	v, ok := m.values[key]
	if !ok {
		return "", 0
	}
	if v.Kind != yaml.ScalarNode {
		l.add(m.file, v.Line, "%s: expected a single value", key)
		return "", v.Line
	}
	return v.Value, v.Line
}

func (l *loader) boolean(m *mapping, key string) bool {
	s, line := l.str(m, key)
	switch s {
	case "", "false":
		return false
	case "true":
		return true
	}
	l.add(m.file, line, "%s: expected true or false, got %q", key, s)
	return false
}

func (l *loader) number(m *mapping, key string) *float64 {
	s, line := l.str(m, key)
	if s == "" {
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		l.add(m.file, line, "%s: expected a number, got %q", key, s)
		return nil
	}
	return &f
}

func (l *loader) sharedFile(file string, root *yaml.Node) {
	m, ok := l.mapping(file, root, "choices")
	if !ok {
		return
	}
	if n, ok := m.values["choices"]; ok {
		l.choiceLists(file, n)
	}
}

func (l *loader) flowChoices(file string, root *yaml.Node) {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "choices" {
			l.choiceLists(file, root.Content[i+1])
		}
	}
}

func (l *loader) choiceLists(file string, n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		l.add(file, n.Line, "choices: expected a mapping of list name to choice names")
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !expr.ValidName(k.Value) {
			l.add(file, k.Line, "choice list name %q is not a valid XLSForm name", k.Value)
			continue
		}
		if prev, dup := l.set.choices[k.Value]; dup {
			l.add(file, k.Line, "choice list %q is already defined at %s:%d", k.Value, prev.File, prev.Line)
			continue
		}
		if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
			l.add(file, v.Line, "choice list %q: expected a non-empty list of names", k.Value)
			continue
		}
		c := &ChoiceList{Name: k.Value, File: file, Line: k.Line, set: map[string]bool{}}
		for _, item := range v.Content {
			name := item.Value
			switch {
			case item.Kind != yaml.ScalarNode || !validChoiceName(name):
				l.add(file, item.Line, "choice list %q: %q is not a valid choice name (letters, digits, _ . -, no spaces)", k.Value, name)
			case c.set[name]:
				l.add(file, item.Line, "choice list %q: duplicate choice %q", k.Value, name)
			default:
				c.set[name] = true
				c.Names = append(c.Names, name)
			}
		}
		l.set.choices[c.Name] = c
	}
}

// validChoiceName follows XLSForm: choice names may start with a digit (1, 2, 3 are
// common) but hold no spaces, since multiple-choice answers are space-separated.
func validChoiceName(s string) bool {
	if s == "" || len(s) > 64 || s == NA {
		return false
	}
	return expr.ValidName("x" + s)
}

var questionKeys = []string{"id", "type", "required", "relevant", "constraint", "choices", "items",
	"min", "max", "max_length", "na", "other", "questions", "country"}

func (l *loader) flow(file string, src []byte, root *yaml.Node) *Definition {
	m, ok := l.mapping(file, root, "id", "version", "kind", "stakeholder", "country_field", "choices", "questions")
	if !ok {
		return nil
	}
	before := len(l.problems)
	d := &Definition{File: file, index: map[string]int{}, fields: map[string]*Question{}, choices: l.set.choices, hotlines: l.set.hotlines}
	var line int
	d.ID, line = l.str(m, "id")
	if !expr.ValidName(d.ID) {
		l.add(file, line, "id %q is not a valid XLSForm name", d.ID)
	} else if want := strings.TrimSuffix(path.Base(file), ".yaml"); d.ID != want {
		l.add(file, line, "id %q does not match the file name %q", d.ID, want)
	}
	v, line := l.str(m, "version")
	if n, err := strconv.Atoi(v); err != nil || n < 1 {
		l.add(file, max(line, 1), "version: expected a whole number of at least 1, got %q", v)
	} else {
		d.Version = n
	}
	k, line := l.str(m, "kind")
	d.Kind = Kind(k)
	if d.Kind != KindQuestionnaire && d.Kind != KindSession {
		l.add(file, max(line, 1), "kind: expected questionnaire or session, got %q", k)
	}
	d.Stakeholder, line = l.str(m, "stakeholder")
	if d.Stakeholder != "" && !stakeholders[d.Stakeholder] {
		l.add(file, line, "stakeholder %q is not one of government, cso, media, migrant_association, expert, migrant", d.Stakeholder)
	}
	if d.Kind == KindQuestionnaire && d.Stakeholder == "" {
		l.add(file, 1, "a questionnaire needs a stakeholder")
	}
	qs, ok := m.values["questions"]
	if !ok || qs.Kind != yaml.SequenceNode || len(qs.Content) == 0 {
		l.add(file, root.Line, "questions: expected a non-empty list")
		return nil
	}
	seen := map[string]int{}
	d.Questions = l.questions(d, qs, nil, seen)
	var cfLine int
	d.CountryField, cfLine = l.str(m, "country_field")
	if d.CountryField != "" {
		if q, ok := d.fields[d.CountryField]; !ok || (q.Type != TypeCountry && q.Type != TypeSelectOne) {
			l.add(file, cfLine, "country_field %q is not a country or select_one question", d.CountryField)
		}
	}
	l.checkExpressions(d, seen)
	if len(l.problems) > before {
		return nil
	}
	d.Hash = l.hash(d, src)
	d.compile()
	return d
}

func (l *loader) questions(d *Definition, seq *yaml.Node, parents []*Question, seen map[string]int) []*Question {
	var out []*Question
	for _, n := range seq.Content {
		m, ok := l.mapping(d.File, n, questionKeys...)
		if !ok {
			continue
		}
		q := &Question{Line: n.Line, parents: parents}
		var line int
		q.ID, line = l.str(m, "id")
		if !expr.ValidName(q.ID) || strings.Contains(q.ID, "/") {
			l.add(d.File, max(line, n.Line), "question id %q is not a valid XLSForm name", q.ID)
			continue
		}
		if prev, dup := seen[q.ID]; dup {
			l.add(d.File, line, "duplicate question id %q (first at line %d)", q.ID, prev)
			continue
		}
		seen[q.ID] = line
		t, tline := l.str(m, "type")
		q.Type = Type(t)
		q.Required = l.boolean(m, "required")
		q.NA = l.boolean(m, "na")
		q.Other = l.boolean(m, "other")
		q.Min, q.Max = l.number(m, "min"), l.number(m, "max")
		if s, sline := l.str(m, "max_length"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 4000 {
				l.add(d.File, sline, "max_length: expected a whole number from 1 to 4000, got %q", s)
			}
			q.MaxLength = n
		}
		q.Relevant = l.expression(d, m, "relevant")
		q.Constraint = l.expression(d, m, "constraint")
		l.checkType(d, q, m, tline)
		if q.Type == TypeGroup {
			members, ok := m.values["questions"]
			if !ok || members.Kind != yaml.SequenceNode || len(members.Content) == 0 {
				l.add(d.File, q.Line, "group %q needs a non-empty questions list", q.ID)
			} else {
				q.Questions = l.questions(d, members, append(slices.Clip(parents), q), seen)
			}
		} else {
			l.addSteps(d, q, seen)
		}
		out = append(out, q)
	}
	return out
}

func (l *loader) addSteps(d *Definition, q *Question, seen map[string]int) {
	add := func(s step) {
		if _, dup := d.index[s.key]; dup {
			l.add(d.File, q.Line, "answer key %q of question %q collides with another question", s.key, q.ID)
			return
		}
		d.index[s.key] = len(d.steps)
		d.steps = append(d.steps, s)
	}
	if !q.card() {
		d.fields[q.ID] = q
	}
	if q.Type == TypeMatrix && q.Items != nil {
		for _, item := range q.Items.Names {
			add(step{key: itemKey(q.ID, item), q: q, item: item})
		}
		return
	}
	add(step{key: q.ID, q: q})
	if q.Other {
		key := otherKey(q.ID)
		if prev, dup := seen[key]; dup {
			l.add(d.File, q.Line, "the follow-up %q of question %q collides with the question at line %d", key, q.ID, prev)
			return
		}
		seen[key] = q.Line
		add(step{key: key, q: q, other: true})
	}
}

func (l *loader) expression(d *Definition, m *mapping, key string) *expr.Expr {
	s, line := l.str(m, key)
	if s == "" {
		return nil
	}
	e, err := expr.Parse(s)
	if err != nil {
		l.add(d.File, line, "%s: %v", key, err)
		return nil
	}
	return e
}

func (l *loader) choiceList(d *Definition, m *mapping, key string) *ChoiceList {
	name, line := l.str(m, key)
	if name == "" {
		return nil
	}
	c, ok := l.set.choices[name]
	if !ok {
		l.add(d.File, line, "%s: no choice list named %q", key, name)
		return nil
	}
	return c
}

// checkType checks the keys that only some kinds take, and what each kind needs.
func (l *loader) checkType(d *Definition, q *Question, m *mapping, line int) {
	has := func(k string) bool { _, ok := m.values[k]; return ok }
	only := func(key string, kinds ...Type) {
		if has(key) && !slices.Contains(kinds, q.Type) {
			l.add(d.File, m.values[key].Line, "%s does not apply to a %s question", key, q.Type)
		}
	}
	only("choices", TypeSelectOne, TypeSelectMultiple)
	only("items", TypeMatrix)
	only("min", TypeSelectMultiple, TypeInteger, TypeDecimal, TypeRating, TypeMatrix)
	only("max", TypeSelectMultiple, TypeInteger, TypeDecimal, TypeRating, TypeMatrix)
	only("max_length", TypeText)
	only("na", TypeRating, TypeMatrix)
	only("other", TypeSelectOne, TypeSelectMultiple)
	only("questions", TypeGroup)
	only("country", TypeHotlines)
	only("constraint", TypeSelectOne, TypeSelectMultiple, TypeText, TypeInteger, TypeDecimal, TypeDate, TypeCountry, TypeRating)
	only("required", TypeSelectOne, TypeSelectMultiple, TypeText, TypeInteger, TypeDecimal, TypeDate, TypeCountry, TypeRating, TypeMatrix)
	switch q.Type {
	case TypeSelectOne, TypeSelectMultiple:
		q.Choices = l.choiceList(d, m, "choices")
		if q.Choices == nil && !has("choices") {
			l.add(d.File, q.Line, "%s question %q needs choices", q.Type, q.ID)
		}
		if q.Choices != nil && q.Other && q.Choices.Has(OtherChoice) {
			l.add(d.File, q.Line, "question %q has other: true, so its list %q must not define %q itself", q.ID, q.Choices.Name, OtherChoice)
		}
	case TypeCountry:
		c, ok := l.set.choices[CountryList]
		if !ok {
			l.add(d.File, q.Line, "country question %q needs the shared choice list %q", q.ID, CountryList)
		}
		q.Choices = c
	case TypeMatrix:
		q.Items = l.choiceList(d, m, "items")
		if q.Items == nil && !has("items") {
			l.add(d.File, q.Line, "matrix %q needs items", q.ID)
		}
		l.scale(d, q)
	case TypeRating:
		l.scale(d, q)
	case TypeHotlines:
		var line int
		q.Country, line = l.str(m, "country")
		if f, ok := d.fields[q.Country]; !ok || f.Type != TypeCountry {
			l.add(d.File, max(line, q.Line), "hotlines card %q needs country: the id of an earlier country question", q.ID)
		}
		if l.set.hotlines == nil {
			l.add(d.File, q.Line, "hotlines card %q needs the data file %s", q.ID, HotlinesFile)
		}
	case TypeNote, TypeText, TypeInteger, TypeDecimal, TypeDate, TypeGroup:
	default:
		l.add(d.File, max(line, q.Line), "unknown type %q (one of note, select_one, select_multiple, text, integer, decimal, date, country, rating, matrix, group, hotlines)", q.Type)
	}
	if q.Min != nil && q.Max != nil && *q.Min > *q.Max {
		l.add(d.File, q.Line, "question %q: min %g is above max %g", q.ID, *q.Min, *q.Max)
	}
	if q.Type == TypeSelectMultiple && q.Choices != nil {
		n := float64(len(q.Choices.Names))
		if q.Other {
			n++
		}
		if q.Min != nil && (*q.Min < 0 || *q.Min > n || *q.Min != math.Trunc(*q.Min)) {
			l.add(d.File, q.Line, "question %q: min picks %g must be a whole number from 0 to %g", q.ID, *q.Min, n)
		}
		if q.Max != nil && (*q.Max < 1 || *q.Max != math.Trunc(*q.Max)) {
			l.add(d.File, q.Line, "question %q: max picks %g must be a whole number of at least 1", q.ID, *q.Max)
		}
	}
}

// scale checks a rating or matrix scale: whole numbers, small enough for one row of
// buttons.
func (l *loader) scale(d *Definition, q *Question) {
	if q.Min == nil || q.Max == nil {
		l.add(d.File, q.Line, "%s %q needs min and max", q.Type, q.ID)
		return
	}
	if *q.Min != math.Trunc(*q.Min) || *q.Max != math.Trunc(*q.Max) || *q.Max-*q.Min > 10 {
		l.add(d.File, q.Line, "%s %q: the scale must be whole numbers with at most 11 points", q.Type, q.ID)
	}
}

// checkExpressions checks references in conditions: they must name a field asked
// before the question (a later answer is always empty in a chat, so such a condition
// would hide the question for good), and must not make a question unreachable.
func (l *loader) checkExpressions(d *Definition, seen map[string]int) {
	pos := map[string]int{}
	for i, s := range d.steps {
		if _, ok := pos[s.q.ID]; !ok {
			pos[s.q.ID] = i
		}
	}
	var walk func(qs []*Question)
	walk = func(qs []*Question) {
		for _, q := range qs {
			at := l.firstStep(d, q, pos)
			check := func(e *expr.Expr, what string, self bool) {
				if e == nil {
					return
				}
				if e.UsesCurrent() && !self {
					l.add(d.File, q.Line, "%s of %q uses '.', which only a constraint may use", what, q.ID)
				}
				for _, ref := range e.Refs() {
					f, ok := d.fields[ref]
					switch {
					case !ok && seen[ref] > 0:
						l.add(d.File, q.Line, "%s of %q refers to ${%s}, which holds no answer", what, q.ID, ref)
					case !ok:
						l.add(d.File, q.Line, "%s of %q refers to unknown field ${%s}", what, q.ID, ref)
					case self && ref == q.ID:
					case pos[f.ID] >= at:
						l.add(d.File, q.Line, "%s of %q refers to ${%s}, which is asked later, so %q is unreachable", what, q.ID, ref, q.ID)
					}
				}
				if !self && len(e.Refs()) == 0 && !e.True(emptyEnv{}) {
					l.add(d.File, q.Line, "%s of %q is always false, so %q is unreachable", what, q.ID, q.ID)
				}
			}
			check(q.Relevant, "relevant", false)
			check(q.Constraint, "constraint", true)
			walk(q.Questions)
		}
	}
	walk(d.Questions)
}

func (l *loader) firstStep(d *Definition, q *Question, pos map[string]int) int {
	if q.Type != TypeGroup {
		return pos[q.ID]
	}
	if len(q.Questions) == 0 {
		return len(d.steps)
	}
	return l.firstStep(d, q.Questions[0], pos)
}

type emptyEnv struct{}

func (emptyEnv) Value(string) (string, bool) { return "", false }
func (emptyEnv) Current() string             { return "" }

// hash covers the file and the shared choice lists it uses, since changing either
// changes what a running session may have answered.
func (l *loader) hash(d *Definition, src []byte) string {
	h := sha256.New()
	h.Write(src)
	used := map[string]bool{}
	for _, s := range d.steps {
		for _, c := range []*ChoiceList{s.q.Choices, s.q.Items} {
			if c != nil {
				used[c.Name] = true
			}
		}
	}
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(h, "\x00%s:%s", n, strings.Join(l.set.choices[n].Names, " "))
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

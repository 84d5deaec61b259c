// Package flows holds questionnaire and info-session definitions and the engine that
// steps through them. Definitions are data (YAML embedded from defs/); the engine is a
// pure function of a definition, a state and an input, so it has no Telegram, Redis or
// clock inside and can be tested and fuzzed on its own.
package flows

import (
	"fmt"

	"github.com/dialoq/dialoq/flows/expr"
)

// Type is the kind of a question.
type Type string

// Question kinds. They follow XLSForm where XLSForm has a name for the kind.
const (
	TypeNote           Type = "note"
	TypeSelectOne      Type = "select_one"
	TypeSelectMultiple Type = "select_multiple"
	TypeText           Type = "text"
	TypeInteger        Type = "integer"
	TypeDecimal        Type = "decimal"
	TypeDate           Type = "date"
	TypeCountry        Type = "country"
	TypeRating         Type = "rating"
	TypeMatrix         Type = "matrix"
	TypeGroup          Type = "group"
	// TypeHotlines is a card listing the hotlines of the country answered in the
	// field named by its country key.
	TypeHotlines Type = "hotlines"
)

// Kind tells questionnaires (answers are submitted) from info sessions (cards to read).
type Kind string

// Flow kinds.
const (
	KindQuestionnaire Kind = "questionnaire"
	KindSession       Kind = "session"
)

// NA is the stored value of "not applicable" on rating and matrix questions.
const NA = "na"

// OtherChoice is the choice name that triggers the "please specify" follow-up.
const OtherChoice = "other"

// CountryList is the shared choice list that country questions use.
const CountryList = "country"

// Stakeholder types a flow may record with its submissions.
var stakeholders = map[string]bool{
	"government": true, "cso": true, "media": true, "migrant_association": true,
	"expert": true, "migrant": true,
}

// Definition is a loaded, validated flow.
type Definition struct {
	ID           string
	Version      int
	Kind         Kind
	Stakeholder  string
	CountryField string
	// Hash is a short content hash of the definition file, recorded in every state so
	// that a session started under another text of the flow is noticed.
	Hash      string
	File      string
	Questions []*Question // top level, groups nest
	steps     []step
	index     map[string]int // step key → position in steps
	fields    map[string]*Question
	choices   map[string]*ChoiceList
	hotlines  *Hotlines
}

// Question is one node of a definition: a question, a note or a group.
type Question struct {
	ID         string
	Type       Type
	Required   bool
	Relevant   *expr.Expr
	Constraint *expr.Expr
	Choices    *ChoiceList // select_*, country; items of a matrix
	Items      *ChoiceList
	Min, Max   *float64 // numeric range, or picks for select_multiple
	MaxLength  int
	NA         bool
	Other      bool
	Questions  []*Question // group members
	Country    string      // hotlines: the field holding the country
	Line       int
	parents    []*Question // enclosing groups, outermost first
}

// card reports whether the question shows something to read rather than asks.
func (q *Question) card() bool { return q.Type == TypeNote || q.Type == TypeHotlines }

// ChoiceList is an ordered XLSForm choice list.
type ChoiceList struct {
	Name  string
	Names []string
	File  string
	Line  int
	set   map[string]bool
}

// Has reports whether name is one of the list's choices.
func (c *ChoiceList) Has(name string) bool { return c.set[name] }

// step is one thing the engine asks: a question, a matrix item or an "other" follow-up.
type step struct {
	key   string // answer key: id, id/item or id_other
	q     *Question
	item  string // matrix item name
	other bool   // the free-text follow-up of a choice question

	// The rest is derived by compile, once per definition: the engine would otherwise
	// rebuild it (and allocate it) for every step of every user.
	opts []string // option ids, in order; nil for a typed answer
	// labels[k] is the message id of the label of opts[k]; "" when the label is the
	// id itself (a point of a scale).
	labels []string
	// Message ids of the question's text, hint, "please specify" text, constraint
	// message and matrix item label.
	textID, hintID, otherID, constraintID, itemID string
	// conds are the conditions the step's relevance depends on: those of the
	// enclosing groups, outermost first, then the question's own.
	conds []cond
}

// cond is a relevance condition with its references resolved to step positions.
type cond struct {
	e    *expr.Expr
	refs []ref
	// id is the same for conditions of the same source text, which have the same
	// value on the same answers (relevance cannot read the current answer).
	id int
}

type ref struct {
	field string
	pos   int // d.index[field], 0 for a field that is no step
}

// compile derives what the engine needs of every step from the loaded questions.
func (d *Definition) compile() {
	ids := map[string]int{}
	for i := range d.steps {
		s := &d.steps[i]
		q := s.q
		s.opts = s.buildOptions()
		if s.opts != nil {
			s.labels = make([]string, len(s.opts))
			for k, id := range s.opts {
				s.labels[k] = labelID(s, id)
			}
		}
		s.textID = d.MessageID(q.ID)
		s.hintID = d.MessageID(q.ID, "hint")
		s.otherID = d.MessageID(q.ID, "other")
		s.constraintID = d.MessageID(q.ID, "constraint")
		if s.item != "" {
			s.itemID = ChoiceMessageID(q.Items.Name, s.item)
		}
		for _, e := range append(conditions(q.parents), q.Relevant) {
			if e == nil {
				continue
			}
			id, ok := ids[e.String()]
			if !ok {
				id = len(ids)
				ids[e.String()] = id
			}
			c := cond{e: e, id: id}
			for _, f := range e.Refs() {
				c.refs = append(c.refs, ref{field: f, pos: d.index[f]})
			}
			s.conds = append(s.conds, c)
		}
	}
}

// labelID is the message id of the label of option id of s, or "" when the id is
// its own label.
func labelID(s *step, id string) string {
	switch {
	case s.q.card():
		return "ui.next"
	case id == NA:
		return "ui.na"
	case id == OtherChoice && s.q.Other:
		return "ui.other"
	case isScale(s.q):
		return ""
	}
	return ChoiceMessageID(s.q.Choices.Name, id)
}

// Step keys are also answer keys; XLSForm names cannot hold "/", so item keys never
// collide with question ids.
func itemKey(q, item string) string { return q + "/" + item }
func otherKey(q string) string      { return q + "_other" }

// MessageID returns the message id of a question's text, or of a suffix such as "hint".
func (d *Definition) MessageID(q string, suffix ...string) string {
	id := d.ID + "." + q
	for _, s := range suffix {
		id += "." + s
	}
	return id
}

// ChoiceMessageID is the message id of a choice's label.
func ChoiceMessageID(list, name string) string { return "choice." + list + "." + name }

// Field returns the question that answers are stored under id (not a group or note).
func (d *Definition) Field(id string) (*Question, bool) {
	q, ok := d.fields[id]
	return q, ok
}

// Steps returns the number of steps when every question is relevant (for docs and tests).
func (d *Definition) Steps() int { return len(d.steps) }

// Keys returns every answer key in questionnaire order: the export columns.
func (d *Definition) Keys() []string {
	var keys []string
	for _, s := range d.steps {
		if !s.q.card() {
			keys = append(keys, s.key)
		}
	}
	return keys
}

// QuestionOf returns the question behind an answer key and the matrix item, if any.
func (d *Definition) QuestionOf(key string) (q *Question, item string, other bool, ok bool) {
	i, found := d.index[key]
	if !found {
		return nil, "", false, false
	}
	s := d.steps[i]
	return s.q, s.item, s.other, !s.q.card()
}

func (d *Definition) String() string { return fmt.Sprintf("%s v%d (%s)", d.ID, d.Version, d.Hash) }

// MessageRef is a message a definition uses and the line that uses it.
type MessageRef struct {
	ID       string
	Line     int
	Optional bool
}

// Messages lists every message id the definition needs, for lint.
func (d *Definition) Messages() []MessageRef {
	refs := []MessageRef{{ID: d.ID + ".title", Line: 1}, {ID: d.ID + ".description", Line: 1}}
	lists := map[string]int{}
	var walk func(qs []*Question)
	walk = func(qs []*Question) {
		for _, q := range qs {
			if q.Type == TypeGroup {
				walk(q.Questions)
				continue
			}
			refs = append(refs, MessageRef{ID: d.MessageID(q.ID), Line: q.Line},
				MessageRef{ID: d.MessageID(q.ID, "hint"), Line: q.Line, Optional: true})
			if q.Constraint != nil {
				refs = append(refs, MessageRef{ID: d.MessageID(q.ID, "constraint"), Line: q.Line})
			}
			if q.Other {
				refs = append(refs, MessageRef{ID: d.MessageID(q.ID, "other"), Line: q.Line, Optional: true})
			}
			for _, c := range []*ChoiceList{q.Choices, q.Items} {
				if c != nil {
					if _, ok := lists[c.Name]; !ok {
						lists[c.Name] = q.Line
						for _, n := range c.Names {
							refs = append(refs, MessageRef{ID: ChoiceMessageID(c.Name, n), Line: q.Line})
						}
					}
				}
			}
		}
	}
	walk(d.Questions)
	return refs
}

// Referenced returns the fields that relevance conditions read: the answers that
// steer the skip logic.
func (d *Definition) Referenced() map[string]bool {
	refs := map[string]bool{}
	var walk func(qs []*Question)
	walk = func(qs []*Question) {
		for _, q := range qs {
			if q.Relevant != nil {
				for _, r := range q.Relevant.Refs() {
					refs[r] = true
				}
			}
			walk(q.Questions)
		}
	}
	walk(d.Questions)
	return refs
}

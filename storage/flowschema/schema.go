// Package flowschema joins the flow definitions to the central store: it tells the
// store which answers a flow accepts and how to label them in exports, and turns an
// engine completion into a submission.
package flowschema

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/storage/central"
)

// Schema implements central.Schema over a set of definitions.
type Schema struct {
	set *flows.Set
	tr  flows.Translator
}

var _ central.Schema = (*Schema)(nil)

// New returns the schema of set, labelled through tr.
func New(set *flows.Set, tr flows.Translator) *Schema { return &Schema{set: set, tr: tr} }

// Validate checks answers against the flow. A submission made under another version
// (queued before a deploy) cannot be checked against a definition it was not made
// with, so only its keys' shape is checked by the store.
func (s *Schema) Validate(flow string, version int, answers map[string]string) error {
	d, ok := s.set.Get(flow)
	if !ok {
		return &central.ValidationError{Field: "flow", Msg: fmt.Sprintf("unknown flow %q", flow)}
	}
	if d.Kind != flows.KindQuestionnaire {
		if len(answers) > 0 && d.Version == version {
			for k, v := range answers {
				if err := d.CheckAnswer(k, v); err != nil {
					return &central.ValidationError{Field: "answers." + k, Msg: err.Error()}
				}
			}
		}
		return nil
	}
	if version != d.Version {
		return nil
	}
	for k, v := range answers {
		if err := d.CheckAnswer(k, v); err != nil {
			return &central.ValidationError{Field: "answers." + k, Msg: err.Error()}
		}
	}
	return nil
}

// Columns lists the flow's answer keys in questionnaire order.
func (s *Schema) Columns(flow, lang string) ([]central.Column, error) {
	d, ok := s.set.Get(flow)
	if !ok {
		return nil, fmt.Errorf("unknown flow %q", flow)
	}
	var cols []central.Column
	for _, key := range d.Keys() {
		cols = append(cols, central.Column{Key: key, Header: s.header(d, key, lang)})
	}
	return cols, nil
}

func (s *Schema) header(d *flows.Definition, key, lang string) string {
	q, item, other, _ := d.QuestionOf(key)
	text := s.tr.Text(lang, d.MessageID(q.ID), nil)
	switch {
	case item != "":
		text = short(text, 40) + ": " + s.tr.Text(lang, flows.ChoiceMessageID(q.Items.Name, item), nil)
	case other:
		text = short(text, 60) + ": " + s.tr.Text(lang, "ui.other", nil)
	default:
		text = short(text, 80)
	}
	return fmt.Sprintf("%s (%s)", text, key)
}

// short keeps headers readable: question texts can run to a paragraph.
func short(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// Label turns stored choice names into labels in lang.
func (s *Schema) Label(flow, key, value, lang string) string {
	d, ok := s.set.Get(flow)
	if !ok {
		return value
	}
	q, item, other, ok := d.QuestionOf(key)
	if !ok || other || item != "" {
		if item != "" && value == flows.NA {
			return s.tr.Text(lang, "ui.na", nil)
		}
		return value
	}
	switch q.Type {
	case flows.TypeSelectOne, flows.TypeSelectMultiple, flows.TypeCountry:
	case flows.TypeRating:
		if value == flows.NA {
			return s.tr.Text(lang, "ui.na", nil)
		}
		return value
	default:
		return value
	}
	var labels []string
	for _, name := range strings.Fields(value) {
		label := ""
		if name == flows.OtherChoice && q.Other {
			label = s.tr.Text(lang, "ui.other", nil)
		} else if q.Choices != nil && q.Choices.Has(name) {
			label = s.tr.Text(lang, flows.ChoiceMessageID(q.Choices.Name, name), nil)
		}
		if label == "" {
			label = name
		}
		labels = append(labels, label)
	}
	return strings.Join(labels, "; ")
}

// Meta is what the channel knows about a dialogue that the engine does not: when it
// started and finished (the engine has no clock) and the campaign code it came with.
type Meta struct {
	ID         string // submission id; a new UUID when empty
	Code       string
	StartedAt  time.Time
	FinishedAt time.Time
}

// Submission builds the submission of a completion. It carries no user identity.
func Submission(c *flows.Completion, m Meta) central.Submission {
	id := m.ID
	if id == "" {
		id = uuid.NewString()
	}
	return central.Submission{
		ID: id, Flow: c.Flow, FlowVersion: c.Version, FlowHash: c.Hash, Lang: c.Lang,
		Country: c.Country, Stakeholder: c.Stakeholder, Code: m.Code,
		StartedAt: m.StartedAt.UTC(), FinishedAt: m.FinishedAt.UTC(), Complete: c.Complete,
		Answers: c.Answers,
	}
}

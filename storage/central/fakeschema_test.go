package central

import (
	"fmt"
	"strconv"
	"strings"
)

// fakeSchema is a tiny "cso"-like flow: a single choice, an integer, a
// multiple choice, a 3-item rating matrix and a free text. Its errors use
// the "field: message" convention (not *ValidationError) so the tests also
// cover the parsing of that convention.
type fakeSchema struct{}

type fakeQuestion struct {
	key     string
	kind    string // select_one, integer, select_multiple, rating, text
	label   map[string]string
	choices []fakeChoice
}

type fakeChoice struct {
	name  string
	label map[string]string
}

func en(en, ru string) map[string]string { return map[string]string{"en": en, "ru": ru} }

var fakeRatings = []fakeChoice{
	{"1", en("1", "1")}, {"2", en("2", "2")}, {"3", en("3", "3")}, {"4", en("4", "4")},
	{"na", en("Not applicable", "Неприменимо")},
}

func fakeQuestions() []fakeQuestion {
	return []fakeQuestion{
		{key: "org_type", kind: "select_one", label: en("Organisation type", "Тип организации"), choices: []fakeChoice{
			{"ngo", en("NGO", "НКО")},
			{"migrant_association", en("Migrant association", "Ассоциация мигрантов")},
			{"legal_clinic", en("Legal clinic", "Юридическая клиника")},
		}},
		{key: "staff_count", kind: "integer", label: en("Staff count", "Число сотрудников")},
		{key: "target_groups", kind: "select_multiple", label: en("Target groups", "Целевые группы"), choices: []fakeChoice{
			{"labour", en("Labour migrants", "Трудовые мигранты")},
			{"refugees", en("Refugees", "Беженцы")},
			{"returnees", en("Returnees", "Возвращающиеся мигранты")},
		}},
		{key: "training_needs/t01", kind: "rating", label: en("Global context of international migration", "Глобальный контекст международной миграции"), choices: fakeRatings},
		{key: "training_needs/t02", kind: "rating", label: en("International cooperation on migration", "Международное сотрудничество в области миграции"), choices: fakeRatings},
		{key: "training_needs/t03", kind: "rating", label: en("International migration law", "Международное миграционное право"), choices: fakeRatings},
		{key: "comments", kind: "text", label: en("Comments", "Комментарии")},
	}
}

func (fakeSchema) question(key string) (fakeQuestion, bool) {
	for _, q := range fakeQuestions() {
		if q.key == key {
			return q, true
		}
	}
	return fakeQuestion{}, false
}

func (q fakeQuestion) choice(name string) (fakeChoice, bool) {
	for _, c := range q.choices {
		if c.name == name {
			return c, true
		}
	}
	return fakeChoice{}, false
}

func (f fakeSchema) Validate(flow string, version int, answers map[string]string) error {
	if flow != "cso" {
		return fmt.Errorf("flow: unknown flow %q", flow)
	}
	if version != 1 {
		return fmt.Errorf("flow_version: unknown version %d of flow %q", version, flow)
	}
	for _, k := range sortedKeys(answers) {
		v := answers[k]
		q, ok := f.question(k)
		if !ok {
			return fmt.Errorf("answers.%s: unknown question", k)
		}
		switch q.kind {
		case "integer":
			if _, err := strconv.Atoi(v); err != nil {
				return fmt.Errorf("answers.%s: not an integer", k)
			}
		case "select_one", "rating":
			if _, ok := q.choice(v); !ok {
				return fmt.Errorf("answers.%s: invalid choice %q", k, v)
			}
		case "select_multiple":
			for _, p := range strings.Fields(v) {
				if _, ok := q.choice(p); !ok {
					return fmt.Errorf("answers.%s: invalid choice %q", k, p)
				}
			}
		}
	}
	return nil
}

func (fakeSchema) Columns(flow, lang string) ([]Column, error) {
	if flow != "cso" {
		return nil, fmt.Errorf("unknown flow %q", flow)
	}
	var cols []Column
	for _, q := range fakeQuestions() {
		cols = append(cols, Column{Key: q.key, Header: fmt.Sprintf("%s (%s)", tr(q.label, lang), q.key)})
	}
	return cols, nil
}

func (f fakeSchema) Label(flow, key, value, lang string) string {
	q, ok := f.question(key)
	if flow != "cso" || !ok {
		return value
	}
	switch q.kind {
	case "select_one", "rating":
		if c, ok := q.choice(value); ok {
			return tr(c.label, lang)
		}
	case "select_multiple":
		var labels []string
		for _, p := range strings.Fields(value) {
			if c, ok := q.choice(p); ok {
				labels = append(labels, tr(c.label, lang))
			} else {
				labels = append(labels, p)
			}
		}
		return strings.Join(labels, "; ")
	}
	return value
}

func tr(m map[string]string, lang string) string {
	if s, ok := m[lang]; ok {
		return s
	}
	return m["en"]
}

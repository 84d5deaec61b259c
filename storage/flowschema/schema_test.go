package flowschema_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/locales"
	"github.com/dialoq/dialoq/storage/central"
	"github.com/dialoq/dialoq/storage/flowschema"
)

func schema(t *testing.T) (*flowschema.Schema, *flows.Definition) {
	t.Helper()
	set, err := flows.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	cat, err := locales.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	d, _ := set.Get("cso")
	return flowschema.New(set, cat), d
}

func TestValidate(t *testing.T) {
	s, d := schema(t)
	cases := []struct {
		name    string
		flow    string
		version int
		answers map[string]string
		field   string // "" = valid
	}{
		{"valid", "cso", d.Version, map[string]string{"consent": "yes", "country": "AZ", "staff": "12", "training_needs/t04": "na", "target_groups": "refugees_asylum stateless"}, ""},
		{"unknown flow", "nope", 1, nil, "flow"},
		{"unknown question", "cso", d.Version, map[string]string{"shoe_size": "42"}, "answers.shoe_size"},
		{"not an integer", "cso", d.Version, map[string]string{"staff": "many"}, "answers.staff"},
		{"unknown choice", "cso", d.Version, map[string]string{"country": "FR"}, "answers.country"},
		{"unknown matrix item", "cso", d.Version, map[string]string{"training_needs/t99": "4"}, "answers.training_needs/t99"},
		{"out of scale", "cso", d.Version, map[string]string{"training_needs/t01": "5"}, "answers.training_needs/t01"},
		{"a card holds no answer", "cso", d.Version, map[string]string{"intro": "x"}, "answers.intro"},
		{"older version is not checked against the new text", "cso", d.Version + 7, map[string]string{"shoe_size": "42"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := s.Validate(c.flow, c.version, c.answers)
			if c.field == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var ve *central.ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Fatalf("error %v, want a validation error on %s", err, c.field)
			}
		})
	}
}

func TestColumnsAndLabels(t *testing.T) {
	s, d := schema(t)
	cols, err := s.Columns("cso", "ru")
	if err != nil {
		t.Fatal(err)
	}
	if len(cols) != len(d.Keys()) {
		t.Fatalf("%d columns for %d keys", len(cols), len(d.Keys()))
	}
	byKey := map[string]string{}
	for _, c := range cols {
		byKey[c.Key] = c.Header
		if !strings.HasSuffix(c.Header, "("+c.Key+")") {
			t.Errorf("header %q does not end with its key", c.Header)
		}
	}
	if h := byKey["training_needs/t04"]; !strings.Contains(h, "Права человека") {
		t.Errorf("matrix header %q lacks the item label", h)
	}
	if got := s.Label("cso", "country", "AZ", "ru"); got != "Азербайджан" {
		t.Errorf("country label %q", got)
	}
	if got := s.Label("cso", "target_groups", "refugees_asylum stateless", "en"); !strings.Contains(got, "; ") {
		t.Errorf("multiple choice label %q, want labels joined by '; '", got)
	}
	if got := s.Label("cso", "training_needs/t01", "na", "en"); got != "Not applicable" {
		t.Errorf("na label %q", got)
	}
	if got := s.Label("cso", "staff", "12", "en"); got != "12" {
		t.Errorf("number label %q", got)
	}
}

func TestSubmissionCarriesNoIdentity(t *testing.T) {
	c := &flows.Completion{Flow: "cso", Version: 1, Hash: "abc", Lang: "ru", Stakeholder: "cso", Country: "AZ",
		Complete: true, Answers: map[string]string{"consent": "yes"}}
	start := time.Date(2026, 11, 1, 10, 0, 0, 0, time.FixedZone("AZT", 4*3600))
	sub := flowschema.Submission(c, flowschema.Meta{Code: "az", StartedAt: start, FinishedAt: start.Add(time.Minute)})
	if err := sub.Validate(); err != nil {
		t.Fatalf("built submission is invalid: %v", err)
	}
	if sub.StartedAt.Location() != time.UTC || sub.Code != "az" || sub.ID == "" {
		t.Errorf("submission = %+v", sub)
	}
}

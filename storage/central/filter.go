package central

import (
	"strconv"
	"strings"
	"time"
)

// Filter selects submissions for reports and exports. Zero fields select
// everything. Times compare with finished_at (when the respondent sent the
// last answer): From is inclusive, To exclusive.
type Filter struct {
	Flow           string    `json:"flow,omitempty"`
	Countries      []string  `json:"countries,omitempty"`    // "" selects unknown country
	Stakeholders   []string  `json:"stakeholders,omitempty"` // values of Stakeholders()
	From           time.Time `json:"from,omitzero"`
	To             time.Time `json:"to,omitzero"`
	Code           string    `json:"code,omitempty"`
	IncludePartial bool      `json:"include_partial,omitempty"` // TrainingNeeds and exports; Responses always counts both
}

// Validate returns a *ValidationError naming the first bad field.
func (f Filter) Validate() error {
	if f.Flow != "" && !validName(f.Flow) {
		return invalid("flow", "not a valid flow name")
	}
	for _, c := range f.Countries {
		if !validCountry(c) {
			return invalid("country", "unknown country %q", c)
		}
	}
	for _, s := range f.Stakeholders {
		if !validStakeholder(s) {
			return invalid("stakeholder", "unknown stakeholder type %q", s)
		}
	}
	if f.Code != "" && !codeRe.MatchString(f.Code) {
		return invalid("code", "must be 1-64 characters of A-Z a-z 0-9 _ -")
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return invalid("to", "before from")
	}
	return nil
}

// where accumulates SQL conditions and their positional arguments. $n
// placeholders work on both databases, so one builder serves both.
type where struct {
	d     *dialect
	conds []string
	args  []any
}

func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *where) add(cond string) { w.conds = append(w.conds, cond) }

func (w *where) in(col string, vals []string) {
	ps := make([]string, len(vals))
	for i, v := range vals {
		ps[i] = w.arg(v)
	}
	w.add(col + " IN (" + strings.Join(ps, ", ") + ")")
}

// filter adds the conditions of f on the submissions table aliased "s".
func (w *where) filter(f Filter, completeOnly bool) {
	if f.Flow != "" {
		w.add("s.flow = " + w.arg(f.Flow))
	}
	if len(f.Countries) > 0 {
		w.in("s.country", f.Countries)
	}
	if len(f.Stakeholders) > 0 {
		w.in("s.stakeholder", f.Stakeholders)
	}
	if !f.From.IsZero() {
		w.add("s.finished_at >= " + w.arg(w.d.timeArg(f.From)))
	}
	if !f.To.IsZero() {
		w.add("s.finished_at < " + w.arg(w.d.timeArg(f.To)))
	}
	if f.Code != "" {
		w.add("s.code = " + w.arg(f.Code))
	}
	if completeOnly {
		w.add("s.complete")
	}
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// countryOrder returns the report position of a country: the thirteen in
// the report's order, then "other", then unknown.
func countryOrder(c string) int {
	for i, v := range countryCodes {
		if v == c {
			return i
		}
	}
	if c == CountryOther {
		return len(countryCodes)
	}
	return len(countryCodes) + 1
}

func stakeholderOrder(s string) int {
	for i, v := range stakeholderTypes {
		if v == s {
			return i
		}
	}
	return len(stakeholderTypes)
}

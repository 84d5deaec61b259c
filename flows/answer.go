package flows

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// DefaultMaxLength bounds free text when a definition sets no max_length.
const DefaultMaxLength = 1000

// invalid is an answer the user must correct; it carries the message to show.
type invalid struct {
	id    string
	data  map[string]any
	count int // plural count when ≥ 0
}

// Error describes the problem in English for logs and API errors; users get the
// localised message of id instead.
func (e *invalid) Error() string {
	if d, ok := problemText[e.id]; ok {
		return d
	}
	return "invalid value"
}

var problemText = map[string]string{
	"ui.error.empty":        "empty",
	"ui.error.integer":      "not a whole number",
	"ui.error.decimal":      "not a number",
	"ui.error.range":        "out of range",
	"ui.error.min":          "below the minimum",
	"ui.error.max":          "above the maximum",
	"ui.error.date":         "not a date (YYYY-MM-DD)",
	"ui.error.text_invalid": "not valid UTF-8 text",
	"ui.error.text_long":    "too long",
	"ui.error.choice":       "not one of the choices",
}

func bad(id string) *invalid { return &invalid{id: id, count: -1} }

func badN(id string, n int) *invalid {
	return &invalid{id: id, count: n, data: map[string]any{"Count": n}}
}

func badRange(q *Question) *invalid {
	switch {
	case q.Min != nil && q.Max != nil:
		return &invalid{id: "ui.error.range", count: -1, data: map[string]any{"Min": fmtNum(*q.Min), "Max": fmtNum(*q.Max)}}
	case q.Min != nil:
		return &invalid{id: "ui.error.min", count: -1, data: map[string]any{"Min": fmtNum(*q.Min)}}
	default:
		return &invalid{id: "ui.error.max", count: -1, data: map[string]any{"Max": fmtNum(*q.Max)}}
	}
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// parseText turns what a user typed into the stored form of the answer to step s, or
// says what is wrong. Choices may be typed as their number in the list or their name;
// labels are matched by the engine, which knows the language.
func parseText(s *step, text string) (string, error) {
	q := s.q
	text = strings.TrimSpace(text)
	if text == "" {
		return "", bad("ui.error.empty")
	}
	if s.other {
		return cleanText(text, DefaultMaxLength)
	}
	switch q.Type {
	case TypeText:
		limit := q.MaxLength
		if limit == 0 {
			limit = DefaultMaxLength
		}
		return cleanText(text, limit)
	case TypeInteger:
		n, ok := parseInteger(text)
		if !ok {
			return "", bad("ui.error.integer")
		}
		if !inRange(q, float64(n)) {
			return "", badRange(q)
		}
		return strconv.FormatInt(n, 10), nil
	case TypeDecimal:
		f, ok := parseDecimal(text)
		if !ok {
			return "", bad("ui.error.decimal")
		}
		if !inRange(q, f) {
			return "", badRange(q)
		}
		return fmtNum(f), nil
	case TypeDate:
		d, ok := parseDate(text)
		if !ok {
			return "", bad("ui.error.date")
		}
		return d, nil
	}
	return "", bad("ui.error.choice")
}

// cleanText keeps what a person typed, minus what breaks storage or display: control
// characters and invalid UTF-8. It normalises to NFC so that the same word typed on
// two keyboards is stored the same.
func cleanText(text string, limit int) (string, error) {
	if !utf8.ValidString(text) {
		return "", bad("ui.error.text_invalid")
	}
	text = norm.NFC.String(text)
	// Almost every answer holds nothing to drop, and is then kept as it is rather
	// than copied rune by rune.
	if strings.IndexFunc(text, dropped) >= 0 {
		var b strings.Builder
		for _, r := range text {
			if dropped(r) {
				continue
			}
			b.WriteRune(r)
		}
		text = b.String()
	}
	text = strings.TrimSpace(text)
	if text == "" {
		return "", bad("ui.error.empty")
	}
	if utf8.RuneCountInString(text) > limit {
		return "", badN("ui.error.text_long", limit)
	}
	return text, nil
}

// dropped reports whether cleanText removes r.
func dropped(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }

// parseInteger accepts thousands separators people type in the region's languages
// ("1 000", "1 000", "1.000" is ambiguous and refused).
func parseInteger(s string) (int64, bool) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\u00a0' || r == '\u202f' || r == '\'' || r == '_' {
			return -1
		}
		return r
	}, s)
	s = strings.TrimPrefix(s, "+")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > 1<<53 || n < -(1<<53) {
		return 0, false
	}
	return n, true
}

// parseDecimal accepts a decimal comma, which Russian and Azerbaijani use.
func parseDecimal(s string) (float64, bool) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\u00a0' || r == '\u202f' {
			return -1
		}
		return r
	}, s)
	if strings.Count(s, ",") == 1 && !strings.Contains(s, ".") {
		s = strings.Replace(s, ",", ".", 1)
	}
	s = strings.TrimPrefix(s, "+")
	if s == "" || strings.ContainsAny(s, "eExXpPnN") {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

var dateLayouts = []string{"2006-01-02", "02.01.2006", "2.1.2006", "02/01/2006", "2/1/2006", "02-01-2006"}

// parseDate takes the day-first forms used across the 13 countries and ISO; the stored
// form is ISO, as XLSForm stores dates.
func parseDate(s string) (string, bool) {
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1900 || t.Year() > 2200 {
				return "", false
			}
			return t.Format("2006-01-02"), true
		}
	}
	return "", false
}

func inRange(q *Question, f float64) bool {
	return (q.Min == nil || f >= *q.Min) && (q.Max == nil || f <= *q.Max)
}

// options returns the option ids a step offers, in order. The slice is shared: never
// modify it.
func (s *step) options() []string { return s.opts }

// buildOptions works out what options returns, for compile.
func (s *step) buildOptions() []string {
	q := s.q
	switch {
	case s.other:
		return nil
	case q.card():
		return []string{"next"}
	case q.Type == TypeSelectOne || q.Type == TypeSelectMultiple || q.Type == TypeCountry:
		if q.Choices == nil {
			return nil
		}
		ids := slices.Clone(q.Choices.Names)
		if q.Other {
			ids = append(ids, OtherChoice)
		}
		return ids
	case q.Type == TypeRating || q.Type == TypeMatrix:
		var ids []string
		// Highest first: the report's scale reads 4 (highest priority) to 1.
		for v := *q.Max; v >= *q.Min; v-- {
			ids = append(ids, fmtNum(v))
		}
		if q.NA {
			ids = append(ids, NA)
		}
		return ids
	}
	return nil
}

func (s *step) multi() bool { return s.q.Type == TypeSelectMultiple && !s.other }

// checkPicks validates a multiple-choice answer against min and max picks.
func checkPicks(s *step, picks []string) error {
	q := s.q
	if len(picks) == 0 {
		return bad("ui.error.no_picks")
	}
	if q.Min != nil && len(picks) < int(*q.Min) {
		return badN("ui.error.min_picks", int(*q.Min))
	}
	if q.Max != nil && len(picks) > int(*q.Max) {
		return badN("ui.error.max_picks", int(*q.Max))
	}
	return nil
}

// errBadValue is what CheckAnswer returns for a stored value that does not fit.
var errBadValue = errors.New("not one of the choices, or not in stored form")

// CheckAnswer reports whether value is a valid stored answer for key. The central store
// uses it to refuse submissions that do not fit the definition, and the engine uses it
// to decide whether a session survives a change of definition.
func (d *Definition) CheckAnswer(key, value string) error {
	i, ok := d.index[key]
	if !ok || d.steps[i].q.card() {
		return errors.New("no such question in this flow")
	}
	s := &d.steps[i]
	if opts := s.options(); opts != nil {
		if s.multi() {
			picks := 0
			for p := range strings.FieldsSeq(value) {
				if !slices.Contains(opts, p) {
					return errBadValue
				}
				picks++
			}
			if picks == 0 {
				return errBadValue
			}
			return nil
		}
		if !slices.Contains(opts, value) {
			return errBadValue
		}
		return nil
	}
	got, err := parseText(s, value)
	if err != nil {
		return err
	}
	if got != value {
		return errBadValue
	}
	return nil
}

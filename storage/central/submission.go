package central

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Submission is one questionnaire or info-session dialogue as it leaves the
// bot. It is the wire contract of POST /v1/submissions and of the direct
// store; it deliberately has no field that could identify a person
// (no Telegram id, name, username or phone number).
type Submission struct {
	ID          string            `json:"id"`             // client-generated UUID (any version; validate format)
	Flow        string            `json:"flow"`           // flow id, e.g. "cso"
	FlowVersion int               `json:"flow_version"`   // version of the flow definition
	FlowHash    string            `json:"flow_hash"`      // content hash of the definition, hex
	Lang        string            `json:"lang"`           // BCP-47 base, e.g. "ru", "az", "en"
	Country     string            `json:"country"`        // ISO 3166-1 alpha-2 of the 13 countries, "other" or "" when unknown
	Stakeholder string            `json:"stakeholder"`    // government | cso | media | migrant_association | expert | migrant
	Code        string            `json:"code,omitempty"` // organisation or campaign code, e.g. "AZ-ngo-042"
	StartedAt   time.Time         `json:"started_at"`
	FinishedAt  time.Time         `json:"finished_at"`
	Complete    bool              `json:"complete"` // false = partial (abandoned dialogue)
	Answers     map[string]string `json:"answers"`  // XLSForm-style strings keyed by question id or "matrix/item"
}

// countryCodes are the ISO 3166-1 alpha-2 codes of the thirteen countries of
// the needs assessment, in the report's order (which reports keep). Never
// modified; exported through Countries as a copy.
var countryCodes = []string{"AZ", "BY", "GE", "IR", "KZ", "KG", "MD", "RU", "TJ", "TR", "TM", "UA", "UZ"}

// Countries returns the thirteen country codes in the report's order.
func Countries() []string { return append([]string(nil), countryCodes...) }

// CountryOther is the country value for respondents outside the thirteen
// countries; the empty string means the respondent did not say.
const CountryOther = "other"

// stakeholderTypes are the stakeholder types in the column order of the
// report's Table 1 (government first, then civil society, then the rest).
var stakeholderTypes = []string{"government", "cso", "media", "migrant_association", "expert", "migrant"}

// Stakeholders returns the stakeholder types in report column order.
func Stakeholders() []string { return append([]string(nil), stakeholderTypes...) }

// Limits on a submission. They are generous for a questionnaire (the largest
// annex has a few hundred fields) yet keep one request far below MaxBody.
const (
	MaxAnswers     = 1000
	MaxAnswerBytes = 4000
)

// ErrConflict is returned when a submission id is already stored with a
// different payload. The first payload wins; the HTTP service maps this to 409.
var ErrConflict = errors.New("submission id already stored with a different payload")

// ErrInvalid matches (via errors.Is) every *ValidationError.
var ErrInvalid = errors.New("invalid submission")

// ValidationError names the first field of a submission that is wrong, in the
// JSON path form used by the HTTP error body, e.g. "answers.staff_count".
// Schema implementations may return it too; other errors from Schema.Validate
// are parsed for a "field: message" prefix.
type ValidationError struct {
	Field string
	Msg   string
}

func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

// Is makes errors.Is(err, ErrInvalid) true for validation errors.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

var (
	// nameRe follows XLSForm's rule for names (letter or underscore first),
	// capped in length so that keys stay readable column headers.
	nameRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,63}$`)
	codeRe  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	langRe  = regexp.MustCompile(`^[a-z]{2,3}$`)
	hexRe   = regexp.MustCompile(`^[0-9a-fA-F]{1,128}$`)
	fieldRe = regexp.MustCompile(`^[a-z_]+(\.[A-Za-z0-9_./-]+)?$`)
)

// validName reports whether s is a valid flow or question id.
func validName(s string) bool { return nameRe.MatchString(s) }

// validCountry reports whether c is one of the accepted country values.
func validCountry(c string) bool {
	return c == "" || c == CountryOther || contains(countryCodes, c)
}

// validStakeholder reports whether s is one of the stakeholder types.
func validStakeholder(s string) bool { return contains(stakeholderTypes, s) }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// splitKey splits an answer key into question and matrix item ("" if none).
func splitKey(key string) (question, item string) {
	question, item, _ = strings.Cut(key, "/")
	return question, item
}

func validUUID(id string) bool {
	_, err := uuid.Parse(id)
	return len(id) == 36 && err == nil
}

// Validate checks the structure of s (not its content against the flow
// definition, which is Schema's job) and returns the first problem as a
// *ValidationError. Answers are checked in key order so the error is stable.
func (s *Submission) Validate() error {
	if !validUUID(s.ID) {
		return invalid("id", "not a UUID in canonical 8-4-4-4-12 form")
	}
	if !validName(s.Flow) {
		return invalid("flow", "must be a name of letters, digits, '_', '.', '-' starting with a letter or '_'")
	}
	if s.FlowVersion < 1 {
		return invalid("flow_version", "must be >= 1")
	}
	if !hexRe.MatchString(s.FlowHash) {
		return invalid("flow_hash", "must be 1-128 hex digits")
	}
	if !langRe.MatchString(s.Lang) {
		return invalid("lang", "must be a lower-case BCP-47 base language tag such as \"ru\"")
	}
	if !validCountry(s.Country) {
		return invalid("country", "must be one of %s, %q or empty", strings.Join(countryCodes, " "), CountryOther)
	}
	if !validStakeholder(s.Stakeholder) {
		return invalid("stakeholder", "must be one of %s", strings.Join(stakeholderTypes, " "))
	}
	if s.Code != "" && !codeRe.MatchString(s.Code) {
		return invalid("code", "must be 1-64 characters of A-Z a-z 0-9 _ -")
	}
	if s.StartedAt.IsZero() {
		return invalid("started_at", "missing")
	}
	if s.FinishedAt.IsZero() {
		return invalid("finished_at", "missing")
	}
	if s.FinishedAt.Before(s.StartedAt) {
		return invalid("finished_at", "before started_at")
	}
	if len(s.Answers) > MaxAnswers {
		return invalid("answers", "more than %d answers", MaxAnswers)
	}
	for _, k := range sortedKeys(s.Answers) {
		q, item := splitKey(k)
		if !validName(q) || (strings.Contains(k, "/") && !validName(item)) {
			return invalid("answers", "invalid key %q: want name or name/name", k)
		}
		if err := validValue(s.Answers[k]); err != "" {
			return invalid("answers."+k, "%s", err)
		}
	}
	return nil
}

// validValue returns why v is not acceptable as an answer, or "".
// Control characters are refused because PostgreSQL text cannot hold NUL and
// XML (hence XLSX) cannot hold most C0 controls; a chat message never needs
// them.
func validValue(v string) string {
	if len(v) > MaxAnswerBytes {
		return fmt.Sprintf("longer than %d bytes", MaxAnswerBytes)
	}
	if !utf8.ValidString(v) {
		return "not valid UTF-8"
	}
	for _, r := range v {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' {
			return "contains control characters"
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// normalize returns the form of s that is stored and hashed: the id in lower
// case (UUIDs are case-insensitive, so "ABC…" and "abc…" must be one
// submission), times in UTC truncated to the microsecond PostgreSQL keeps (so
// a re-post of the same value compares equal after a round trip), and a
// non-nil answers map.
func normalize(s Submission) Submission {
	s.ID = strings.ToLower(s.ID)
	s.StartedAt = s.StartedAt.UTC().Truncate(time.Microsecond)
	s.FinishedAt = s.FinishedAt.UTC().Truncate(time.Microsecond)
	if s.Answers == nil {
		s.Answers = map[string]string{}
	}
	return s
}

// payloadHash fingerprints a normalized submission for duplicate detection.
// encoding/json writes struct fields in declaration order and map keys
// sorted, so the encoding is canonical for our purposes.
func payloadHash(s Submission) (string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return "", fmt.Errorf("hash submission: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// validateContent runs schema validation and converts its error into a
// *ValidationError that names the field.
func validateContent(schema Schema, s Submission) error {
	if schema == nil {
		return nil
	}
	err := schema.Validate(s.Flow, s.FlowVersion, s.Answers)
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve
	}
	msg := err.Error()
	if field, rest, ok := strings.Cut(msg, ": "); ok && fieldRe.MatchString(field) {
		return &ValidationError{Field: field, Msg: rest}
	}
	return &ValidationError{Field: "answers", Msg: msg}
}

// Sink stores a submission and reports whether it was new. *Store and
// *Client both implement it.
type Sink interface {
	Put(ctx context.Context, s Submission) (created bool, err error)
}

// Poster delivers a submission; a duplicate delivery is a success. *Store
// and *Client both implement it, so the bot can write directly or through
// the outbox to `dialoq central` without knowing which.
type Poster interface {
	Post(ctx context.Context, s Submission) error
}

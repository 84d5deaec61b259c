// Package expr implements the subset of the XLSForm / ODK XPath expression
// language that real questionnaires use for relevance (skip logic) and
// constraints, so that forms authored as XLSForm can be imported without
// rewriting their logic.
//
// An expression is parsed once, when a questionnaire definition is loaded,
// and evaluated many times, once per answer. Everything that can be checked
// without answers is checked by Parse — syntax, function names, arity, field
// name rules and literal regular expressions — so that a definition that
// loads cannot fail at runtime for those reasons.
//
// Values follow XPath 1.0 as implemented by ODK JavaRosa, minus node-sets:
// a field reference ${name} evaluates directly to the answer's string value,
// which is everything an expression can observe in a form without repeats.
// Comparisons, boolean and number conversions therefore behave as they do in
// ODK Collect, including the treatment of unanswered fields as "" (NaN as a
// number).
//
// A parsed *Expr is immutable and safe for concurrent use.
package expr

import (
	"fmt"
	"unicode/utf8"
)

// Limits on untrusted expression sources. Definitions may come from outside
// the team (imported XLSForms), so a hostile expression must not be able to
// exhaust the stack or memory.
const (
	// MaxLen is the maximum length of an expression source, in bytes.
	MaxLen = 4096
	// MaxDepth is the maximum nesting depth of parentheses, function calls
	// and unary minus.
	MaxDepth = 100
)

// Expr is a parsed expression.
type Expr struct {
	src         string
	root        *node
	refs        []string
	usesCurrent bool
}

// Env supplies answers the way XLSForm stores them: every answer is a string,
// a multiple-choice answer is the space-separated list of choice names, and a
// missing, unanswered or non-relevant field is "" with ok=false.
//
// XPath cannot tell a missing field from an empty one, so evaluation only
// uses v; ok is there for Env implementations that wrap other lookups.
type Env interface {
	Value(field string) (v string, ok bool)
	// Current returns the value of "." — the answer being validated.
	Current() string
}

// MapEnv is an Env backed by a map, for tests and tools such as linters.
type MapEnv struct {
	Values map[string]string
	Cur    string
}

// Value implements Env.
func (m MapEnv) Value(field string) (string, bool) {
	v, ok := m.Values[field]
	return v, ok
}

// Current implements Env.
func (m MapEnv) Current() string { return m.Cur }

// SyntaxError reports a problem found by Parse.
type SyntaxError struct {
	Col int // 1-based column, counted in characters (runes), not bytes
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("col %d: %s", e.Col, e.Msg) }

// EvalError reports a problem found while evaluating. The only source is
// regex() with a pattern computed at runtime: every other problem is caught
// by Parse.
type EvalError struct {
	Col int // 1-based column of the offending sub-expression
	Msg string
}

func (e *EvalError) Error() string { return fmt.Sprintf("col %d: %s", e.Col, e.Msg) }

// Parse parses src. Errors are of type *SyntaxError.
//
// An empty (or all-blank) src is an error: callers treat an absent condition
// as "always relevant" / "no constraint" before calling Parse.
func Parse(src string) (*Expr, error) {
	if len(src) > MaxLen {
		return nil, &SyntaxError{Col: 1, Msg: fmt.Sprintf("expression is too long (%d bytes, limit %d)", len(src), MaxLen)}
	}
	return parse(src)
}

// String returns the source text the expression was parsed from.
func (e *Expr) String() string { return e.src }

// Refs returns the distinct field names referenced as ${name}, in order of
// first appearance. The slice is a copy the caller may modify.
func (e *Expr) Refs() []string {
	if len(e.refs) == 0 {
		return nil
	}
	return append([]string(nil), e.refs...)
}

// UsesCurrent reports whether the expression reads the current answer,
// either explicitly with "." or implicitly through a function that defaults
// to it when called without arguments, such as string-length().
func (e *Expr) UsesCurrent() bool { return e.usesCurrent }

// Eval evaluates the expression. A nil env behaves as one with no answers.
func (e *Expr) Eval(env Env) (Value, error) {
	if env == nil {
		env = MapEnv{}
	}
	return e.root.eval(env)
}

// True evaluates the expression as a boolean. A runtime error counts as
// false, so a broken condition hides a question or rejects an answer rather
// than silently letting it through.
func (e *Expr) True(env Env) bool {
	v, err := e.Eval(env)
	return err == nil && v.Bool()
}

// ValidName reports whether name is a valid XLSForm field or choice name:
// an XML NCName (XML 1.0 fifth edition, without colons), which is what
// pyxform enforces. It starts with a letter or underscore, continues with
// letters, digits, underscores, hyphens and periods, and allows the Unicode
// letters XML allows (e.g. Azerbaijani ə, Cyrillic). There is no length
// limit: XLSForm has none.
func ValidName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); {
		r, size := utf8.DecodeRuneInString(name[i:])
		if r == utf8.RuneError && size <= 1 {
			return false
		}
		if i == 0 && !isNameStart(r) || i > 0 && !isNameChar(r) {
			return false
		}
		i += size
	}
	return true
}

// isNameStart implements NameStartChar of XML 1.0 fifth edition, minus ':'.
func isNameStart(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', r == '_':
		return true
	case r < 0xC0:
		return false
	}
	return 0xC0 <= r && r <= 0xD6 ||
		0xD8 <= r && r <= 0xF6 ||
		0xF8 <= r && r <= 0x2FF ||
		0x370 <= r && r <= 0x37D ||
		0x37F <= r && r <= 0x1FFF ||
		0x200C <= r && r <= 0x200D ||
		0x2070 <= r && r <= 0x218F ||
		0x2C00 <= r && r <= 0x2FEF ||
		0x3001 <= r && r <= 0xD7FF ||
		0xF900 <= r && r <= 0xFDCF ||
		0xFDF0 <= r && r <= 0xFFFD ||
		0x10000 <= r && r <= 0xEFFFF
}

// isNameChar implements NameChar of XML 1.0 fifth edition, minus ':'.
func isNameChar(r rune) bool {
	return isNameStart(r) ||
		'0' <= r && r <= '9' || r == '-' || r == '.' ||
		r == 0xB7 ||
		0x300 <= r && r <= 0x36F ||
		0x203F <= r && r <= 0x2040
}

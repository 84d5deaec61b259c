package expr

import (
	"math"
	"strconv"
)

// Kind is the XPath type of a Value. There is no node-set kind: a field
// reference evaluates straight to the answer's string value.
type Kind uint8

// The kinds of Value.
const (
	KindString Kind = iota
	KindNumber
	KindBool
)

func (k Kind) String() string {
	switch k {
	case KindNumber:
		return "number"
	case KindBool:
		return "boolean"
	}
	return "string"
}

// Value is the result of evaluating an expression: a string, a number or a
// boolean, convertible to the others with XPath 1.0 rules. The zero Value is
// the empty string. Values are small and passed by value so that evaluation
// does not allocate.
type Value struct {
	kind Kind
	num  float64 // the number, or 1/0 for a boolean
	str  string
}

// StringValue returns a string Value.
func StringValue(s string) Value { return Value{kind: KindString, str: s} }

// NumberValue returns a number Value.
func NumberValue(f float64) Value { return Value{kind: KindNumber, num: f} }

// BoolValue returns a boolean Value.
func BoolValue(b bool) Value {
	if b {
		return Value{kind: KindBool, num: 1}
	}
	return Value{kind: KindBool}
}

// Kind returns the type of v.
func (v Value) Kind() Kind { return v.kind }

// Bool converts v as XPath boolean() does: a number is true when non-zero
// and not NaN, a string when non-empty.
func (v Value) Bool() bool {
	switch v.kind {
	case KindBool:
		return v.num != 0
	case KindNumber:
		return v.num != 0 && !math.IsNaN(v.num)
	}
	return v.str != ""
}

// Number converts v as XPath number() does; see ParseNumber.
func (v Value) Number() float64 {
	if v.kind == KindString {
		return ParseNumber(v.str)
	}
	return v.num
}

// String converts v as XPath string() does; see FormatNumber.
func (v Value) String() string {
	switch v.kind {
	case KindNumber:
		return FormatNumber(v.num)
	case KindBool:
		if v.num != 0 {
			return "true"
		}
		return "false"
	}
	return v.str
}

// ParseNumber converts s as XPath 1.0 number() does: optional whitespace, an
// optional minus sign, digits with an optional decimal point, optional
// whitespace. Anything else — including "", "+1", "1e3", "1,5", "Infinity" —
// is NaN, which is what makes comparisons with unanswered fields false.
func ParseNumber(s string) float64 {
	s = trimSpace(s)
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := 0
	for i < len(s) && isDigit(s[i]) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
			digits++
		}
	}
	if digits == 0 || i != len(s) {
		return math.NaN()
	}
	// The syntax is checked above, so the only possible error is a range
	// error, for which ParseFloat still returns the right answer (±Inf or 0).
	f, _ := strconv.ParseFloat(s, 64)
	return f
}

// FormatNumber converts f as XPath string() does: integers without a decimal
// point, other numbers in the shortest form that reads back as the same
// number, never with an exponent; NaN, Infinity and -Infinity by name.
func FormatNumber(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0" // also for -0, as XPath requires
	case f == math.Trunc(f) && math.Abs(f) < 1e15:
		// Fast path for the common case; FormatInt does not allocate for
		// small numbers.
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// isSpace matches XPath whitespace, which is narrower than Unicode's.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func trimSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

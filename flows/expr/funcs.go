package expr

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

type funcDef struct {
	min, max int  // number of arguments; max < 0 means no upper bound
	current  bool // called without arguments, the function applies to "."
	eval     func(n *node, env Env) (Value, error)
}

func (f *funcDef) arity() string {
	plural := func(n int) string {
		if n == 1 {
			return "1 argument"
		}
		return fmt.Sprintf("%d arguments", n)
	}
	switch {
	case f.max < 0:
		return "at least " + plural(f.min)
	case f.min == f.max && f.min == 0:
		return "no arguments"
	case f.min == f.max:
		return plural(f.min)
	}
	return fmt.Sprintf("%d or %d arguments", f.min, f.max)
}

// funcs is the read-only table of supported functions. Semantics follow ODK
// JavaRosa where it defines them and XPath 1.0 otherwise.
var funcs = map[string]*funcDef{
	"true":                {0, 0, false, func(*node, Env) (Value, error) { return BoolValue(true), nil }},
	"false":               {0, 0, false, func(*node, Env) (Value, error) { return BoolValue(false), nil }},
	"not":                 {1, 1, false, fnNot},
	"boolean":             {1, 1, false, fnBoolean},
	"boolean-from-string": {1, 1, false, fnBooleanFromString},
	"number":              {1, 1, false, fnNumber},
	"int":                 {1, 1, false, fnInt},
	"string":              {1, 1, false, fnString},
	"string-length":       {0, 1, true, fnStringLength},
	"selected":            {2, 2, false, fnSelected},
	"count-selected":      {1, 1, false, fnCountSelected},
	"regex":               {2, 2, false, fnRegex},
	"if":                  {3, 3, false, fnIf},
	"coalesce":            {2, 2, false, fnCoalesce},
	"concat":              {0, -1, false, fnConcat},
	"round":               {1, 2, false, fnRound},
	"min":                 {1, -1, false, fnMin},
	"max":                 {1, -1, false, fnMax},
	"contains":            {2, 2, false, fnContains},
	"starts-with":         {2, 2, false, fnStartsWith},
	"ends-with":           {2, 2, false, fnEndsWith},
	"substr":              {2, 3, false, fnSubstr},
}

// unsupported lists functions that XLSForm authors use but this engine
// deliberately lacks, with the reason where there is a principled one, so
// that importing such a form fails with a clear message instead of
// "unknown function".
var unsupported = map[string]string{
	"today": noClock, "now": noClock, "date": noClock, "date-time": noClock,
	"decimal-date": noClock, "decimal-date-time": noClock, "decimal-time": noClock,
	"format-date": noClock, "format-date-time": noClock,

	"random": noRandom, "randomize": noRandom, "uuid": noRandom, "once": noRandom,

	"indexed-repeat": noRepeats, "position": noRepeats, "count": noRepeats,
	"count-non-empty": noRepeats, "sum": noRepeats, "last": noRepeats,
	"current": noRepeats, "instance": noRepeats, "join": noRepeats,

	"pulldata": noExternal, "property": noExternal, "version": noExternal,
	"jr:choice-name": "choice labels are not visible to expressions",
	"jr:itext":       "labels are not visible to expressions",

	"area": noGeo, "enclosed-area": noGeo, "distance": noGeo, "geofence": noGeo,

	"selected-at": "", "is-selected": "", "checklist": "", "weighted-checklist": "",
	"substring": "", "substring-before": "", "substring-after": "",
	"translate": "", "normalize-space": "", "digest": "", "base64-decode": "",
	"extract-signed": "", "abs": "", "floor": "", "ceiling": "", "pow": "",
	"log": "", "log10": "", "exp": "", "exp10": "", "sqrt": "", "pi": "",
	"sin": "", "cos": "", "tan": "", "asin": "", "acos": "", "atan": "",
	"atan2": "", "depend": "", "lang": "", "id": "", "name": "",
	"local-name": "", "namespace-uri": "",
}

const (
	noClock    = "the engine has no clock"
	noRandom   = "expressions must be deterministic"
	noRepeats  = "the engine has no repeats or node-sets"
	noExternal = "the engine has no external data"
	noGeo      = "the engine has no geodata"
)

func fnNot(n *node, env Env) (Value, error) {
	v, err := n.args[0].eval(env)
	return BoolValue(!v.Bool()), err
}

func fnBoolean(n *node, env Env) (Value, error) {
	v, err := n.args[0].eval(env)
	return BoolValue(v.Bool()), err
}

// fnBooleanFromString follows XForms: "true" (any case) or "1" is true,
// anything else false.
func fnBooleanFromString(n *node, env Env) (Value, error) {
	v, err := n.args[0].eval(env)
	s := v.String()
	return BoolValue(s == "1" || strings.EqualFold(s, "true")), err
}

func fnNumber(n *node, env Env) (Value, error) {
	v, err := n.args[0].eval(env)
	return NumberValue(v.Number()), err
}

func fnInt(n *node, env Env) (Value, error) {
	v, err := n.args[0].eval(env)
	return NumberValue(math.Trunc(v.Number())), err
}

func fnString(n *node, env Env) (Value, error) {
	v, err := n.args[0].eval(env)
	return StringValue(v.String()), err
}

// arg0OrCurrent evaluates the first argument, or "." when there is none.
func arg0OrCurrent(n *node, env Env) (Value, error) {
	if len(n.args) == 0 {
		return StringValue(env.Current()), nil
	}
	return n.args[0].eval(env)
}

// fnStringLength counts characters (code points), so that ə or д count as
// one, as the person typing them expects.
func fnStringLength(n *node, env Env) (Value, error) {
	v, err := arg0OrCurrent(n, env)
	return NumberValue(float64(utf8.RuneCountInString(v.String()))), err
}

// fnSelected reports whether a space-separated multiple-choice answer
// contains a choice. It scans in place rather than splitting so that the
// most common relevance condition does not allocate.
func fnSelected(n *node, env Env) (Value, error) {
	list, err := n.args[0].eval(env)
	if err != nil {
		return Value{}, err
	}
	choice, err := n.args[1].eval(env)
	if err != nil {
		return Value{}, err
	}
	want := trimSpace(choice.String())
	if want == "" {
		return BoolValue(false), nil
	}
	s := list.String()
	for s != "" {
		var tok string
		tok, s = nextChoice(s)
		if tok == want {
			return BoolValue(true), nil
		}
	}
	return BoolValue(false), nil
}

func fnCountSelected(n *node, env Env) (Value, error) {
	list, err := n.args[0].eval(env)
	count := 0
	for s := list.String(); s != ""; {
		var tok string
		tok, s = nextChoice(s)
		if tok != "" {
			count++
		}
	}
	return NumberValue(float64(count)), err
}

// nextChoice splits off the first choice of a multiple-choice answer. Like
// JavaRosa, only spaces separate choices.
func nextChoice(s string) (tok, rest string) {
	s = strings.TrimLeft(s, " ")
	if i := strings.IndexByte(s, ' '); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func fnRegex(n *node, env Env) (Value, error) {
	s, err := n.args[0].eval(env)
	if err != nil {
		return Value{}, err
	}
	re := n.re
	if re == nil {
		// A computed pattern (e.g. from a calculate field) cannot be checked
		// by Parse. Compiling on every evaluation is acceptable because such
		// patterns are rare; caching would need shared mutable state.
		p, err := n.args[1].eval(env)
		if err != nil {
			return Value{}, err
		}
		re, err = compileRegex(p.String())
		if err != nil {
			return Value{}, &EvalError{Col: n.args[1].col, Msg: regexError(err)}
		}
	}
	return BoolValue(re.MatchString(s.String())), nil
}

func fnIf(n *node, env Env) (Value, error) {
	c, err := n.args[0].eval(env)
	if err != nil {
		return Value{}, err
	}
	// Only the chosen branch is evaluated, as in JavaRosa.
	if c.Bool() {
		return n.args[1].eval(env)
	}
	return n.args[2].eval(env)
}

// fnCoalesce returns the first argument unless it is empty ("" or NaN, as in
// JavaRosa), in which case the second is evaluated and returned.
func fnCoalesce(n *node, env Env) (Value, error) {
	v, err := n.args[0].eval(env)
	if err != nil {
		return Value{}, err
	}
	if v.kind == KindString && v.str == "" || v.kind == KindNumber && math.IsNaN(v.num) {
		return n.args[1].eval(env)
	}
	return v, nil
}

func fnConcat(n *node, env Env) (Value, error) {
	var b strings.Builder
	for _, a := range n.args {
		v, err := a.eval(env)
		if err != nil {
			return Value{}, err
		}
		b.WriteString(v.String())
	}
	return StringValue(b.String()), nil
}

// fnMin and fnMax skip arguments that are not numbers, as JavaRosa does, so
// that max(${a}, ${b}) with one of them unanswered gives the other. The
// result is NaN only when no argument is a number.
func fnMin(n *node, env Env) (Value, error) { return extremum(n, env, math.Min) }
func fnMax(n *node, env Env) (Value, error) { return extremum(n, env, math.Max) }

func extremum(n *node, env Env, pick func(a, b float64) float64) (Value, error) {
	res := math.NaN()
	for _, a := range n.args {
		v, err := a.eval(env)
		if err != nil {
			return Value{}, err
		}
		switch f := v.Number(); {
		case math.IsNaN(f):
		case math.IsNaN(res):
			res = f
		default:
			res = pick(res, f)
		}
	}
	return NumberValue(res), nil
}

func fnContains(n *node, env Env) (Value, error) { return strPred(n, env, strings.Contains) }

func fnStartsWith(n *node, env Env) (Value, error) { return strPred(n, env, strings.HasPrefix) }

func fnEndsWith(n *node, env Env) (Value, error) { return strPred(n, env, strings.HasSuffix) }

func strPred(n *node, env Env, pred func(s, t string) bool) (Value, error) {
	s, err := n.args[0].eval(env)
	if err != nil {
		return Value{}, err
	}
	t, err := n.args[1].eval(env)
	return BoolValue(pred(s.String(), t.String())), err
}

// fnSubstr is ODK's substr(s, start[, end]): 0-based, end exclusive, and a
// negative index counts from the end. Indices are in characters.
func fnSubstr(n *node, env Env) (Value, error) {
	sv, err := n.args[0].eval(env)
	if err != nil {
		return Value{}, err
	}
	s := sv.String()
	length := utf8.RuneCountInString(s)
	sv, err = n.args[1].eval(env)
	if err != nil {
		return Value{}, err
	}
	start, end := substrIndex(sv.Number(), length), length
	if len(n.args) == 3 {
		ev, err := n.args[2].eval(env)
		if err != nil {
			return Value{}, err
		}
		end = substrIndex(ev.Number(), length)
	}
	if start >= end {
		return StringValue(""), nil
	}
	return StringValue(s[runeOffset(s, start):runeOffset(s, end)]), nil
}

// substrIndex converts a substr() index to a character index in [0, length],
// truncating fractions, counting negative indices from the end and treating
// NaN as 0, as JavaRosa does.
func substrIndex(f float64, length int) int {
	if math.IsNaN(f) {
		return 0
	}
	f = math.Trunc(f)
	if f < 0 {
		f += float64(length)
	}
	switch {
	case f < 0:
		return 0
	case f > float64(length):
		return length
	}
	return int(f)
}

// runeOffset returns the byte offset of the i-th character of s. Slicing at
// character boundaries, rather than converting to []rune, keeps invalid
// UTF-8 bytes intact.
func runeOffset(s string, i int) int {
	off := 0
	for ; i > 0 && off < len(s); i-- {
		_, size := utf8.DecodeRuneInString(s[off:])
		off += size
	}
	return off
}

// maxRoundDigits bounds round()'s second argument; JavaRosa returns NaN
// beyond it.
const maxRoundDigits = 30

func fnRound(n *node, env Env) (Value, error) {
	x, err := n.args[0].eval(env)
	if err != nil {
		return Value{}, err
	}
	digits := 0.0
	if len(n.args) == 2 {
		d, err := n.args[1].eval(env)
		if err != nil {
			return Value{}, err
		}
		digits = math.Trunc(d.Number())
		if math.IsNaN(digits) {
			digits = 0 // as Java's (int) NaN
		}
	}
	if math.Abs(digits) > maxRoundDigits {
		return NumberValue(math.NaN()), nil
	}
	return NumberValue(roundDecimal(x.Number(), int(digits))), nil
}

// roundDecimal rounds f to digits decimal places (negative digits round to
// tens, hundreds, ...), with ties going towards positive infinity as XPath
// round() does. It rounds the shortest decimal representation of f rather
// than its binary value, as JavaRosa does, so that round(2.675, 2) is 2.68,
// as the person who typed 2.675 expects, and not 2.67.
func roundDecimal(f float64, digits int) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) || f == 0 {
		return f
	}
	neg := f < 0
	intPart, frac, _ := strings.Cut(strconv.FormatFloat(math.Abs(f), 'f', -1, 64), ".")
	all := intPart + frac
	point := len(intPart) // digits before the decimal point
	keep := point + digits
	if keep >= len(all) {
		return f // already has no more than digits decimals
	}
	if keep < 0 {
		return 0
	}
	// Ties round away from zero for positive numbers and towards zero for
	// negative ones: towards positive infinity either way.
	up := all[keep] > '5' ||
		all[keep] == '5' && (!neg || strings.TrimRight(all[keep+1:], "0") != "")
	kept := []byte(all[:keep])
	if up {
		i := len(kept) - 1
		for ; i >= 0 && kept[i] == '9'; i-- {
			kept[i] = '0'
		}
		if i >= 0 {
			kept[i]++
		} else {
			kept = append([]byte{'1'}, kept...)
			point++
		}
	}
	for len(kept) < point {
		kept = append(kept, '0')
	}
	s := string(kept[:point])
	if len(kept) > point {
		s += "." + string(kept[point:])
	}
	r, _ := strconv.ParseFloat(s, 64)
	if neg {
		r = -r
	}
	return r
}

// compileRegex anchors the pattern at both ends: ODK Collect matches regex() against
// the whole answer (Java's Pattern.matches), and forms imported from XLSForm rely on
// that, e.g. regex(., '[0-9]{5}') for a five-digit code.
func compileRegex(pattern string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(pattern); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + pattern + `)$`)
}

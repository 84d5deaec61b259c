package expr

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// Shorthands for expected values.
func S(s string) Value  { return StringValue(s) }
func N(f float64) Value { return NumberValue(f) }
func B(b bool) Value    { return BoolValue(b) }

var nan = math.NaN()

func sameValue(a, b Value) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case KindNumber:
		return a.num == b.num || math.IsNaN(a.num) && math.IsNaN(b.num)
	case KindBool:
		return a.num == b.num
	}
	return a.str == b.str
}

func show(v Value) string { return v.Kind().String() + " " + v.String() }

// vals builds an env from name/value pairs; "." sets the current answer.
func vals(kv ...string) MapEnv {
	e := MapEnv{Values: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == "." {
			e.Cur = kv[i+1]
		} else {
			e.Values[kv[i]] = kv[i+1]
		}
	}
	return e
}

func TestEval(t *testing.T) {
	none := vals()
	tests := []struct {
		src  string
		env  MapEnv
		want Value
	}{
		// Literals.
		{"3", none, N(3)},
		{"2.5", none, N(2.5)},
		{"-1", none, N(-1)},
		{".5", none, N(0.5)},
		{"5.", none, N(5)},
		{"007", none, N(7)},
		{"'abc'", none, S("abc")},
		{`"it's"`, none, S("it's")},
		{`'say "hi"'`, none, S(`say "hi"`)},
		{"''", none, S("")},
		{"true()", none, B(true)},
		{"false()", none, B(false)},
		{"  ( 42 )  ", none, N(42)},
		{"\t1\n+\r\n2", none, N(3)},

		// Arithmetic.
		{"1 + 2", none, N(3)},
		{"1+2", none, N(3)},
		{"5 - 7", none, N(-2)},
		{"1-1", none, N(0)},
		{"3 * 4", none, N(12)},
		{"10 div 4", none, N(2.5)},
		{"7 mod 3", none, N(1)},
		{"-7 mod 3", none, N(-1)},
		{"7 mod -3", none, N(1)},
		{"5.5 mod 2", none, N(1.5)},
		{"1 div 0", none, N(math.Inf(1))},
		{"-1 div 0", none, N(math.Inf(-1))},
		{"0 div 0", none, N(nan)},
		{"5 mod 0", none, N(nan)},
		{"2 - -3", none, N(5)},
		{"2*-3", none, N(-6)},
		{"- - 3", none, N(3)},
		{"--3", none, N(3)},
		{"-(2 + 3)", none, N(-5)},
		{"-${a}", vals("a", "4"), N(-4)},
		{"- -${a}", vals("a", "4"), N(4)},
		{"-${a}", none, N(nan)},
		{"${a}-1", vals("a", "4"), N(3)},
		{"${a} * ${b}", vals("a", "2.5", "b", "4"), N(10)},
		{"'3' + '4'", none, N(7)},
		{"'abc' + 1", none, N(nan)},
		{"true() + 1", none, N(2)},
		{"${a} + 1", none, N(nan)},

		// Precedence and associativity.
		{"1 + 2 * 3", none, N(7)},
		{"(1 + 2) * 3", none, N(9)},
		{"10 - 4 - 3", none, N(3)},
		{"10 - (4 - 3)", none, N(9)},
		{"2 * 3 div 4", none, N(1.5)},
		{"12 div 3 div 2", none, N(2)},
		{"7 - 2 mod 3", none, N(5)},
		{"- 2 mod 3", none, N(-2)},
		{"-2 * 3 = -6", none, B(true)},
		{"1 + 2 = 3", none, B(true)},
		{"1 < 2 = true()", none, B(true)},
		{"3 > 2 > 1", none, B(false)},
		{"1 = 1 and 2 = 3 or 1", none, B(true)},
		{"false() and false() or true()", none, B(true)},
		{"true() or false() and false()", none, B(true)},
		{"(true() or false()) and false()", none, B(false)},
		{"not(true()) or true()", none, B(true)},
		{"1 < 2 and 2 < 3", none, B(true)},
		{"1 = 2 = false()", none, B(true)},
		{"1 + 1 < 3 - 0.5", none, B(true)},

		// Comparisons: numeric when a number is involved.
		{"${age} > 18", vals("age", "20"), B(true)},
		{"${age} > 18", vals("age", "18"), B(false)},
		{"${age} > 18", none, B(false)},
		{"${age} > 18", vals("age", ""), B(false)},
		{"${age} < 18", none, B(false)},
		{"${age} <= 18", none, B(false)},
		{"${age} >= 18", none, B(false)},
		{"${age} = 18", none, B(false)},
		{"${age} != 18", none, B(true)},
		{"${age} = 18", vals("age", "18"), B(true)},
		{"${age} = 18", vals("age", "018"), B(true)},
		{"${age} = 18", vals("age", " 18 "), B(true)},
		{"${age} = 18", vals("age", "18.0"), B(true)},
		{"18 = ${age}", vals("age", "18.0"), B(true)},
		{"${age} >= 18", vals("age", "abc"), B(false)},
		{"${age} < 18", vals("age", "abc"), B(false)},
		{"${age} <= 5", vals("age", "5"), B(true)},
		{"${t} > -1", vals("t", "-0.5"), B(true)},
		{"${staff} >= 5", vals("staff", "1,000"), B(false)},
		{"'10' < '9'", none, B(false)},
		{"'10' > '9'", none, B(true)},
		{"'b' > 'a'", none, B(false)},
		{"0.1 + 0.2 = 0.3", none, B(true)},
		{"0.1 + 0.2 != 0.3", none, B(false)},
		{"1 div 0 = 1 div 0", none, B(true)},
		{"0 div 0 = 0 div 0", none, B(false)},
		{"0 div 0 != 0 div 0", none, B(true)},
		{"${a} = 1 div 0", vals("a", "Infinity"), B(false)},
		// String comparisons when no number or boolean is involved.
		{"${age} = '18'", vals("age", "018"), B(false)},
		{"${a} = ${b}", vals("a", "1", "b", "1.0"), B(false)},
		{"${a} = ${b}", vals("a", "x", "b", "x"), B(true)},
		{"${a} = ${b}", none, B(true)},
		{"'a' = 'a'", none, B(true)},
		{"'a' != 'b'", none, B(true)},
		{"'a' = 'A'", none, B(false)},
		{"${a} = ''", none, B(true)},
		{"${a} != ''", none, B(false)},
		{"${a} != ''", vals("a", "x"), B(true)},
		{"${a} = 'yes'", vals("a", "yes"), B(true)},
		// Boolean comparisons when a boolean is involved.
		{"${a} = true()", vals("a", "no"), B(true)},
		{"${a} = false()", none, B(true)},
		{"1 = true()", none, B(true)},
		{"0 = false()", none, B(true)},
		{"'0' = false()", none, B(false)},
		{"'false' = true()", none, B(true)},
		{"true() != false()", none, B(true)},

		// Boolean conversion.
		{"boolean(0)", none, B(false)},
		{"boolean(-1)", none, B(true)},
		{"boolean(0.001)", none, B(true)},
		{"boolean(0 div 0)", none, B(false)},
		{"boolean('')", none, B(false)},
		{"boolean('false')", none, B(true)},
		{"boolean(' ')", none, B(true)},
		{"boolean(${missing})", none, B(false)},
		{"boolean(${a})", vals("a", "0"), B(true)},
		{"not('')", none, B(true)},
		{"not(0)", none, B(true)},
		{"'x' and 1", none, B(true)},
		{"'' or 0", none, B(false)},

		// not
		{"not(${a} = 'x')", vals("a", "x"), B(false)},
		{"not(${a} = 'x')", none, B(true)},
		{"not(not(1))", none, B(true)},

		// selected / count-selected
		{"selected(${g}, 'refugees')", vals("g", "refugees idps"), B(true)},
		{"selected(${g}, 'idps')", vals("g", "refugees idps"), B(true)},
		{"selected(${g}, 'idp')", vals("g", "refugees idps"), B(false)},
		{"selected(${g}, 'refugees idps')", vals("g", "refugees idps"), B(false)},
		{"selected(${g}, ' idps ')", vals("g", "refugees idps"), B(true)},
		{"selected(${g}, 'b')", vals("g", "  a   b  "), B(true)},
		{"selected(${g}, 'a')", none, B(false)},
		{"selected(${g}, '')", vals("g", "a b"), B(false)},
		{"selected(${g}, '')", none, B(false)},
		{"selected(${g}, ${c})", vals("g", "x y", "c", "y"), B(true)},
		{"selected(${g}, 'qaçqın')", vals("g", "qaçqın məcburi_köçkün"), B(true)},
		{"selected(${g}, 'беженцы')", vals("g", "мигранты беженцы"), B(true)},
		{"selected(., 'a')", vals(".", "a"), B(true)},
		{"selected('1 2 3', '2')", none, B(true)},
		{"not(selected(${g}, 'none'))", vals("g", "a"), B(true)},
		{"count-selected(${g})", vals("g", "a b c"), N(3)},
		{"count-selected(${g})", vals("g", "  a  "), N(1)},
		{"count-selected(${g})", vals("g", "a  b "), N(2)},
		{"count-selected(${g})", none, N(0)},
		{"count-selected(${g}) >= 2", vals("g", "a b"), B(true)},
		{"count-selected(.) <= 3", vals(".", "a b c d"), B(false)},

		// string-length
		{"string-length('abc')", none, N(3)},
		{"string-length('')", none, N(0)},
		{"string-length('ə')", none, N(1)},
		{"string-length('Azərbaycan')", none, N(10)},
		{"string-length('Привет')", none, N(6)},
		{"string-length(${missing})", none, N(0)},
		{"string-length()", vals(".", "hello"), N(5)},
		{"string-length() > 2", vals(".", "şəh"), B(true)},
		{"string-length(.) <= 10", vals(".", "Müəllim"), B(true)},
		{"string-length(12.50)", none, N(4)},
		{"string-length(true())", none, N(4)},

		// regex: the whole answer must match, as in ODK Collect
		{"regex('12345', '^[0-9]{5}$')", none, B(true)},
		{"regex('123456', '^[0-9]{5}$')", none, B(false)},
		{"regex('abc123', '[0-9]')", none, B(false)}, // whole-answer match, as ODK Collect
		{"regex('abc123', '[a-z]+[0-9]+')", none, B(true)},
		{"regex('12345', '[0-9]{5}')", none, B(true)},
		{"regex('123456', '[0-9]{5}')", none, B(false)},
		{"regex('abc', '[0-9]')", none, B(false)},
		{"regex(., '^\\+994[0-9]{9}$')", vals(".", "+994501234567"), B(true)},
		{"regex(., '^\\+994[0-9]{9}$')", vals(".", "0501234567"), B(false)},
		{"regex('Əli', '^\\p{Lu}\\p{Ll}+$')", none, B(true)},
		{"regex('Иван', '^[А-Яа-я]+$')", none, B(true)},
		{"regex('', '^$')", none, B(true)},
		{"regex(${missing}, '.')", none, B(false)},
		{"regex('abc', ${p})", vals("p", "^a.*"), B(true)},
		{"regex('abc', ${p})", vals("p", "^b"), B(false)},
		{"regex(12, '^1')", none, B(false)},
		{"regex(12, '^1.')", none, B(true)},
		{"regex('a5', 5)", none, B(false)},
		{"regex('5', 5)", none, B(true)},

		// if
		{"if(${a} = 'x', 'yes', 'no')", vals("a", "x"), S("yes")},
		{"if(${a} = 'x', 'yes', 'no')", none, S("no")},
		{"if(true(), 1, 2)", none, N(1)},
		{"if('', 1, 2)", none, N(2)},
		{"if(${a} > 5, ${a}, 0) + 1", vals("a", "7"), N(8)},
		{"if(true(), 1, regex('a', ${bad}))", vals("bad", "["), N(1)},
		{"if(false(), regex('a', ${bad}), 2)", vals("bad", "["), N(2)},

		// coalesce
		{"coalesce(${a}, 'def')", none, S("def")},
		{"coalesce(${a}, 'def')", vals("a", "x"), S("x")},
		{"coalesce(${a}, ${b})", vals("b", "y"), S("y")},
		{"coalesce(number(''), 5)", none, N(5)},
		{"coalesce(0, 5)", none, N(0)},
		{"coalesce(false(), 5)", none, B(false)},
		{"coalesce(${a}, ${b})", none, S("")},

		// concat and number formatting
		{"concat('a', 1, true(), ${x})", vals("x", "x"), S("a1truex")},
		{"concat()", none, S("")},
		{"concat('only')", none, S("only")},
		{"concat('ə', 'д', '✓')", none, S("əд✓")},
		{"concat(${a}, '-', ${b})", vals("a", "Bakı"), S("Bakı-")},
		{"concat(2.50)", none, S("2.5")},
		{"concat(3.0)", none, S("3")},
		{"concat(-0)", none, S("0")},
		{"concat(1 div 3)", none, S("0.3333333333333333")},
		{"concat(0.1 + 0.2)", none, S("0.30000000000000004")},
		{"concat(1000000)", none, S("1000000")},
		{"concat(10000000000000000000000)", none, S("10000000000000000000000")},
		{"concat(0.000001)", none, S("0.000001")},
		{"concat(0 div 0, 1 div 0, -1 div 0)", none, S("NaNInfinity-Infinity")},
		{"concat(false())", none, S("false")},

		// number / int / string / boolean-from-string
		{"number(' 12 ')", none, N(12)},
		{"number('007')", none, N(7)},
		{"number('-.5')", none, N(-0.5)},
		{"number('5.')", none, N(5)},
		{"number('1e3')", none, N(nan)},
		{"number('1,5')", none, N(nan)},
		{"number('+1')", none, N(nan)},
		{"number('-')", none, N(nan)},
		{"number('.')", none, N(nan)},
		{"number('- 1')", none, N(nan)},
		{"number('Infinity')", none, N(nan)},
		{"number('')", none, N(nan)},
		{"number('\t3\n')", none, N(3)},
		{"number(true())", none, N(1)},
		{"number(false())", none, N(0)},
		{"number(${a})", vals("a", "42"), N(42)},
		{"int(3.7)", none, N(3)},
		{"int(-3.7)", none, N(-3)},
		{"int('12')", none, N(12)},
		{"int('12abc')", none, N(nan)},
		{"int('')", none, N(nan)},
		{"int(${a} div 12)", vals("a", "30"), N(2)},
		{"string(3)", none, S("3")},
		{"string(-2.50)", none, S("-2.5")},
		{"string(true())", none, S("true")},
		{"string(0 div 0)", none, S("NaN")},
		{"string(123456789012345678)", none, S("123456789012345680")},
		{"string(${a})", vals("a", " x "), S(" x ")},
		{"boolean-from-string('true')", none, B(true)},
		{"boolean-from-string('TRUE')", none, B(true)},
		{"boolean-from-string('1')", none, B(true)},
		{"boolean-from-string('yes')", none, B(false)},
		{"boolean-from-string('0')", none, B(false)},
		{"boolean-from-string('false')", none, B(false)},
		{"boolean-from-string('')", none, B(false)},
		{"boolean-from-string(1)", none, B(true)},
		{"boolean-from-string(${a})", vals("a", "true"), B(true)},

		// round: ties towards +Inf, on the decimal representation
		{"round(2.5)", none, N(3)},
		{"round(-2.5)", none, N(-2)},
		{"round(2.4)", none, N(2)},
		{"round(-2.6)", none, N(-3)},
		{"round(2.675, 2)", none, N(2.68)},
		{"round(-2.675, 2)", none, N(-2.67)},
		{"round(-2.6751, 2)", none, N(-2.68)},
		{"round(1.005, 2)", none, N(1.01)},
		{"round(1234.5678, 2)", none, N(1234.57)},
		{"round(1234.5678, 0)", none, N(1235)},
		{"round(1234, -2)", none, N(1200)},
		{"round(1250, -2)", none, N(1300)},
		{"round(-1250, -2)", none, N(-1200)},
		{"round(49, -2)", none, N(0)},
		{"round(50, -2)", none, N(100)},
		{"round(5, -3)", none, N(0)},
		{"round(9.99, 1)", none, N(10)},
		{"round(99.96, 1)", none, N(100)},
		{"round(0.05, 1)", none, N(0.1)},
		{"round(0.04, 1)", none, N(0)},
		{"round(3.14159, 3)", none, N(3.142)},
		{"round(3.1, 5)", none, N(3.1)},
		{"round(1.5, 'x')", none, N(2)},
		{"round(2.7, 0.9)", none, N(3)},
		{"round('', 2)", none, N(nan)},
		{"round(1 div 0)", none, N(math.Inf(1))},
		{"round(5, 40)", none, N(nan)},
		{"string(round(-0.4))", none, S("0")},
		{"round(${a} div 3, 2)", vals("a", "10"), N(3.33)},

		// min / max: non-numbers are skipped
		{"max(1, 5, 3)", none, N(5)},
		{"min(4, 2, 8)", none, N(2)},
		{"min(-1, -5)", none, N(-5)},
		{"max(-5, -3)", none, N(-3)},
		{"max(7)", none, N(7)},
		{"max(${a}, ${b})", vals("b", "7"), N(7)},
		{"min(${a}, ${b})", vals("a", "3", "b", "x"), N(3)},
		{"max('', '')", none, N(nan)},
		{"max(${a}, ${b}) > 5", none, B(false)},

		// contains / starts-with / ends-with
		{"contains('Bakı şəhəri', 'şəhər')", none, B(true)},
		{"contains('Москва', 'сква')", none, B(true)},
		{"contains('abc', 'd')", none, B(false)},
		{"contains('abc', '')", none, B(true)},
		{"contains(${a}, 'x')", none, B(false)},
		{"starts-with('+994 50', '+994')", none, B(true)},
		{"starts-with('', 'a')", none, B(false)},
		{"starts-with(${phone}, '+7')", vals("phone", "+79991234567"), B(true)},
		{"ends-with('file.pdf', '.pdf')", none, B(true)},
		{"ends-with('Əliyev', 'yev')", none, B(true)},
		{"ends-with('abc', 'b')", none, B(false)},

		// substr: 0-based, end exclusive, negative from the end
		{"substr('hello', 1, 3)", none, S("el")},
		{"substr('hello', 2)", none, S("llo")},
		{"substr('hello', 0)", none, S("hello")},
		{"substr('hello', -3)", none, S("llo")},
		{"substr('hello', 0, -1)", none, S("hell")},
		{"substr('hello', 3, 1)", none, S("")},
		{"substr('hello', 10)", none, S("")},
		{"substr('hello', -10, 2)", none, S("he")},
		{"substr('hello', 1, 100)", none, S("ello")},
		{"substr('hello', 1.9, 3.9)", none, S("el")},
		{"substr('hello', '', 2)", none, S("he")},
		{"substr('Gəncə', 1, 3)", none, S("ən")},
		{"substr('Привет', 0, 3)", none, S("При")},
		{"substr(${a}, 0, 3)", none, S("")},
		{"substr(12345, 1, 3)", none, S("23")},

		// The current answer.
		{". > 0", vals(".", "5"), B(true)},
		{". > 0", vals(".", ""), B(false)},
		{". = 'x'", vals(".", "x"), B(true)},
		{". >= 18 and . <= 120", vals(".", "45"), B(true)},
		{". != ${other}", vals(".", "a", "other", "b"), B(true)},

		// Unicode field names and values.
		{"${şəhər} = 'Bakı'", vals("şəhər", "Bakı"), B(true)},
		{"${город} = 'Москва'", vals("город", "Москва"), B(true)},
		{"${город} != 'Москва'", vals("город", "Баку"), B(true)},
		{"${a} = 'ə'", vals("a", "ə"), B(true)},

		// Realistic relevance conditions and constraints.
		{"selected(${target_groups}, 'refugees') and ${staff} >= 5", vals("target_groups", "idps refugees", "staff", "12"), B(true)},
		{"selected(${target_groups}, 'refugees') and ${staff} >= 5", vals("target_groups", "idps refugees", "staff", "3"), B(false)},
		{"selected(${target_groups}, 'refugees') and ${staff} >= 5", vals("target_groups", "idps", "staff", "12"), B(false)},
		{"selected(${target_groups}, 'refugees') and ${staff} >= 5", none, B(false)},
		{"${consent} = 'yes' and (${age} >= 18 or ${guardian} = 'yes')", vals("consent", "yes", "age", "16", "guardian", "yes"), B(true)},
		{"${consent} = 'yes' and (${age} >= 18 or ${guardian} = 'yes')", vals("consent", "yes", "age", "16"), B(false)},
		{"${services} != '' and not(selected(${services}, 'none'))", vals("services", "legal health"), B(true)},
		{"count-selected(.) <= 3 and not(selected(., 'none') and count-selected(.) > 1)", vals(".", "none legal"), B(false)},
		{"${hh_size} > 0 and ${hh_size} < 30", vals("hh_size", "4"), B(true)},
		{"string-length(.) = 0 or regex(., '^[0-9]{7,15}$')", vals(".", ""), B(true)},
		{"if(${country} = 'AZ', 'manat', 'other') = 'manat'", vals("country", "AZ"), B(true)},
	}
	for _, tt := range tests {
		e, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		got, err := e.Eval(tt.env)
		if err != nil {
			t.Errorf("%q: Eval error: %v", tt.src, err)
			continue
		}
		if !sameValue(got, tt.want) {
			t.Errorf("%q with %v = %s, want %s", tt.src, tt.env, show(got), show(tt.want))
		}
		if e.True(tt.env) != tt.want.Bool() {
			t.Errorf("%q: True = %v, want %v", tt.src, !tt.want.Bool(), tt.want.Bool())
		}
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		src string
		col int
		msg string
	}{
		{"", 1, "empty expression"},
		{"   ", 1, "empty expression"},
		{"foo(1)", 1, `unknown function "foo"`},
		{"1 + foo(1)", 5, `unknown function "foo"`},
		{"f(", 1, `unknown function "f"`},
		{"today()", 1, `function "today" is not supported`},
		{"${a} > today()", 8, `function "today" is not supported (the engine has no clock)`},
		{"now()", 1, `function "now" is not supported`},
		{"random()", 1, `function "random" is not supported`},
		{"jr:choice-name(${a}, '${a}')", 1, `function "jr:choice-name" is not supported`},
		{"indexed-repeat(${a}, ${g}, 1)", 1, `function "indexed-repeat" is not supported`},
		{"pulldata('f', 'c', 'k', ${a})", 1, `function "pulldata" is not supported`},
		{"substring-before('a', 'b')", 1, `function "substring-before" is not supported`},
		{"'abc", 1, "unterminated string"},
		{"${a} = 'abc", 8, "unterminated string"},
		{`${a} = "abc'`, 8, "unterminated string"},
		{"(1 + 2", 7, `expected ")"`},
		{"((1 + 2)", 9, `expected ")" to close "(" at col 1`},
		{"(1 2)", 4, `expected ")"`},
		{"selected(${a})", 1, "selected() takes 2 arguments, got 1"},
		{"selected(${a}, 'x', 'y')", 1, "selected() takes 2 arguments, got 3"},
		{"${b} and selected()", 10, "selected() takes 2 arguments, got 0"},
		{"not()", 1, "not() takes 1 argument, got 0"},
		{"not(1, 2)", 1, "not() takes 1 argument, got 2"},
		{"true(1)", 1, "true() takes no arguments, got 1"},
		{"round(1, 2, 3)", 1, "round() takes 1 or 2 arguments, got 3"},
		{"substr('a')", 1, "substr() takes 2 or 3 arguments, got 1"},
		{"min()", 1, "min() takes at least 1 argument, got 0"},
		{"if(1, 2)", 1, "if() takes 3 arguments, got 2"},
		{"string-length(1, 2)", 1, "string-length() takes 0 or 1 arguments, got 2"},
		{"number()", 1, "number() takes 1 argument, got 0"},
		{"regex(., '[')", 10, "invalid regex pattern"},
		{"regex(., '(?=a)')", 10, "invalid regex pattern"},
		{"regex(., 'a{2,1}')", 10, "invalid regex pattern"},
		{"selected(${a}, 1)", 16, "the choice must be quoted, like '1'"},
		{"${1abc} = 1", 3, `invalid field name "1abc"`},
		{"${a b} = 1", 3, `invalid field name "a b"`},
		{"${ a } = 1", 3, `invalid field name " a "`},
		{"${a:b}", 3, `invalid field name "a:b"`},
		{"${} = 1", 1, "empty field reference"},
		{"${a = 1", 1, `unterminated field reference: missing "}"`},
		{"${a = ${b}", 1, "unterminated field reference"},
		{"$a = 1", 1, "variables are not supported"},
		{"age > 18", 1, `unexpected name "age"; refer to fields as ${age}`},
		{"true or false", 1, "true must be written true()"},
		{"and 1", 1, `missing operand before "and"`},
		{"${a} AND ${b}", 6, `unknown operator "AND"; XPath operators are lowercase: "and"`},
		{"(${a} Or ${b})", 7, `unknown operator "Or"`},
		{"${a} == 1", 6, `"==" is not an XPath operator; use "="`},
		{"${a} && ${b}", 6, `use "and"`},
		{"${a} || ${b}", 6, `use "or"`},
		{"${a} <> 1", 6, `use "!="`},
		{"!${a}", 1, "use not(...)"},
		{"${a} / 2", 6, `divide with "div"`},
		{"/data/age > 1", 1, `"/" is not supported`},
		{"${a} % 2", 6, `use "mod"`},
		{"..", 1, "parent references"},
		{"${a}[1]", 5, "predicates"},
		{"@id", 1, "attributes"},
		{"${a} >", 7, "unexpected end of expression"},
		{"1 +", 4, "unexpected end of expression"},
		{"not(", 5, "unexpected end of expression"},
		{"1 2", 3, `expected an operator or the end of the expression, found "2"`},
		{"${a} = 'x' ${b}", 12, `expected an operator or the end of the expression, found "${b}"`},
		{"${a} = 1e3", 9, `found "e3"`},
		{"(1))", 4, `unexpected ")" without matching "("`},
		{")", 1, `unexpected ")"`},
		{",", 1, `unexpected ","`},
		{"concat('a' 'b')", 12, `expected ")" or "," after argument 1 of concat()`},
		{"concat('a',)", 12, `unexpected ")"`},
		{"‘yes’", 1, "straight quotes"},
		{"${a} = “yes”", 8, "straight quotes"},
		{"#", 1, "unexpected character '#'"},
		{"\u00a0${a}", 1, `unexpected character '\u00a0'`},
		{"\xff", 1, "invalid UTF-8"},
		{"1 = \x00", 5, "unexpected character"},
		// Columns count characters, not bytes.
		{"'ə' = foo()", 7, `unknown function "foo"`},
		{"${şəhər} = 'Bakı' and bar()", 23, `unknown function "bar"`},
		// Limits.
		{strings.Repeat("(", MaxDepth) + "1" + strings.Repeat(")", MaxDepth), MaxDepth, "nested too deeply"},
		{strings.Repeat("not(", MaxDepth) + "1" + strings.Repeat(")", MaxDepth), 4*MaxDepth - 3, "nested too deeply"},
		{strings.Repeat("-", 2*MaxDepth) + "1", MaxDepth, "nested too deeply"},
		{strings.Repeat("1+", MaxLen/2) + "1", 1, "expression is too long (4097 bytes, limit 4096)"},
	}
	for _, tt := range tests {
		e, err := Parse(tt.src)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want error", tt.src, e)
			continue
		}
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) error %T %v, want *SyntaxError", tt.src, err, err)
			continue
		}
		if se.Col != tt.col || !strings.Contains(se.Msg, tt.msg) {
			t.Errorf("Parse(%.60q) = col %d %q, want col %d containing %q", tt.src, se.Col, se.Msg, tt.col, tt.msg)
		}
		if want := "col "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("Error() = %q, want prefix %q", err.Error(), want)
		}
	}
}

func TestSyntaxErrorFormat(t *testing.T) {
	_, err := Parse("${a} = foo()")
	if got, want := err.Error(), `col 8: unknown function "foo"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestLimitsAccepted(t *testing.T) {
	// Just under the limits parses and evaluates.
	deep := strings.Repeat("(", MaxDepth-1) + "1" + strings.Repeat(")", MaxDepth-1)
	long := "1" + strings.Repeat("+1", (MaxLen-1)/2) // 4095 bytes
	chain := strings.Repeat("${a} = 'x' or ", 250) + "${b} = 'y'"
	for _, src := range []string{deep, long, chain} {
		e, err := Parse(src)
		if err != nil {
			t.Errorf("Parse(%.40q...): %v", src, err)
			continue
		}
		if _, err := e.Eval(nil); err != nil {
			t.Errorf("Eval(%.40q...): %v", src, err)
		}
	}
	e, _ := Parse(long)
	if v, _ := e.Eval(nil); v.Number() != float64(MaxLen/2) {
		t.Errorf("long sum = %v", v)
	}
	e, _ = Parse(chain)
	if !e.True(vals("b", "y")) || e.True(vals("b", "n")) {
		t.Errorf("long or-chain evaluated wrongly")
	}
}

func TestEvalError(t *testing.T) {
	e, err := Parse("regex(., ${pattern})")
	if err != nil {
		t.Fatal(err)
	}
	env := vals(".", "abc", "pattern", "(")
	_, err = e.Eval(env)
	var ee *EvalError
	if !errors.As(err, &ee) || ee.Col != 10 || !strings.Contains(ee.Msg, "invalid regex pattern") {
		t.Fatalf("Eval error = %v, want *EvalError at col 10", err)
	}
	if !strings.HasPrefix(err.Error(), "col 10: invalid regex pattern") {
		t.Errorf("Error() = %q", err.Error())
	}
	if e.True(env) {
		t.Error("True with a runtime error = true, want false")
	}
	// The error propagates through every construct that evaluates it.
	for _, src := range []string{
		"not(regex(., ${p}))", "regex(., ${p}) or true()", "true() and regex(., ${p})",
		"regex(., ${p}) = 1", "1 + regex(., ${p})", "-regex(., ${p})", "concat('a', regex(., ${p}))",
		"if(regex(., ${p}), 1, 2)", "coalesce(regex(., ${p}), 1)", "max(1, regex(., ${p}))",
		"substr('abc', regex(., ${p}))", "round(1, regex(., ${p}))", "selected(regex(., ${p}), 'a')",
		"contains('a', regex(., ${p}))", "string-length(regex(., ${p}))",
	} {
		e, err := Parse(src)
		if err != nil {
			t.Errorf("Parse(%q): %v", src, err)
			continue
		}
		if _, err := e.Eval(vals("p", "[")); err == nil {
			t.Errorf("%q: no error", src)
		}
	}
}

func TestNilEnv(t *testing.T) {
	e, err := Parse("${a} = '' and . = '' and string-length() = 0")
	if err != nil {
		t.Fatal(err)
	}
	if !e.True(nil) {
		t.Error("True(nil) = false")
	}
}

func TestRefs(t *testing.T) {
	tests := []struct {
		src  string
		refs []string
		cur  bool
	}{
		{"1 = 1", nil, false},
		{"${a}", []string{"a"}, false},
		{"${b} = 1 and ${a} = 2 or ${b} = 3", []string{"b", "a"}, false},
		{"selected(${x}, 'a') and string-length(.) > 2", []string{"x"}, true},
		{"concat(${c}, ${b}, ${a}, ${c}, ${b})", []string{"c", "b", "a"}, false},
		{". > ${min} and . < ${max}", []string{"min", "max"}, true},
		{"string-length() > 1", nil, true},
		{"string-length(${a}) > 1", []string{"a"}, false},
		{"regex(., 'x')", nil, true},
		{"'.' = '${a}'", nil, false},
		{"${şəhər} = ${город}", []string{"şəhər", "город"}, false},
		{".5 = 0.5", nil, false},
	}
	for _, tt := range tests {
		e, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		if got := e.Refs(); strings.Join(got, ",") != strings.Join(tt.refs, ",") {
			t.Errorf("%q: Refs = %q, want %q", tt.src, got, tt.refs)
		}
		if got := e.UsesCurrent(); got != tt.cur {
			t.Errorf("%q: UsesCurrent = %v, want %v", tt.src, got, tt.cur)
		}
	}
	// Refs returns a copy.
	e, _ := Parse("${a} = ${b}")
	e.Refs()[0] = "x"
	if e.Refs()[0] != "a" {
		t.Error("Refs shares its slice with the Expr")
	}
}

func TestString(t *testing.T) {
	for _, src := range []string{"${a}=1", "  selected( ${g} , 'x' )  ", "-(1)", "'ə'"} {
		e, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		if e.String() != src {
			t.Errorf("String() = %q, want %q", e.String(), src)
		}
	}
}

func TestValidName(t *testing.T) {
	valid := []string{
		"a", "_", "_a", "age", "first_name", "q1", "q1.2", "q-1", "A1", "a.b-c_d",
		"ə", "şəhər", "Azərbaycan", "Имя", "имя_2", "é", "x·y", "a\u0301", "ünvan",
		"日本", "a\u203fb", strings.Repeat("long_name_", 30),
		// XML 1.0 fifth edition allows all supplementary planes, and so
		// does pyxform; odd but valid.
		"😀",
	}
	invalid := []string{
		"", "1a", "-a", ".a", "a b", " a", "a ", "a:b", ":a", "a$", "a/b", "a\tb",
		"\xff", "a\xff", "${a}", "·a", "\u0301a", "a'", "a,b", "a(b)", "×", "a×b",
		"a\u00a0b", "a\nb", "a\u2028b",
	}
	for _, s := range valid {
		if !ValidName(s) {
			t.Errorf("ValidName(%q) = false, want true", s)
		}
	}
	for _, s := range invalid {
		if ValidName(s) {
			t.Errorf("ValidName(%q) = true, want false", s)
		}
	}
}

func TestNumbers(t *testing.T) {
	parse := []struct {
		s    string
		want float64
	}{
		{"0", 0}, {"12", 12}, {"007", 7}, {" 12 ", 12}, {"\t-3.5\n", -3.5}, {"-0", 0},
		{".5", 0.5}, {"5.", 5}, {"-.5", -0.5}, {"1.25", 1.25},
		{"", nan}, {" ", nan}, {"-", nan}, {".", nan}, {"-.", nan}, {"+1", nan},
		{"1e3", nan}, {"1,5", nan}, {"1.2.3", nan}, {"--1", nan}, {"1-", nan},
		{"Infinity", nan}, {"NaN", nan}, {"0x10", nan}, {"1_000", nan}, {"١٢", nan},
		{"\u00a012", nan}, {strings.Repeat("9", 400), math.Inf(1)},
	}
	for _, tt := range parse {
		got := ParseNumber(tt.s)
		if got != tt.want && !(math.IsNaN(got) && math.IsNaN(tt.want)) {
			t.Errorf("ParseNumber(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
	format := []struct {
		f    float64
		want string
	}{
		{0, "0"}, {math.Copysign(0, -1), "0"}, {1, "1"}, {-1, "-1"}, {2.5, "2.5"},
		{1e15, "1000000000000000"}, {1e21, "1000000000000000000000"}, {0.1, "0.1"},
		{1e-7, "0.0000001"}, {-123.456, "-123.456"}, {1.0 / 3, "0.3333333333333333"},
		{nan, "NaN"}, {math.Inf(1), "Infinity"}, {math.Inf(-1), "-Infinity"},
		{9007199254740993, "9007199254740992"},
	}
	for _, tt := range format {
		if got := FormatNumber(tt.f); got != tt.want {
			t.Errorf("FormatNumber(%v) = %q, want %q", tt.f, got, tt.want)
		}
		// Whatever string() produces, number() reads back.
		if f := ParseNumber(FormatNumber(tt.f)); !math.IsInf(tt.f, 0) && !math.IsNaN(tt.f) && f != tt.f {
			t.Errorf("ParseNumber(FormatNumber(%v)) = %v", tt.f, f)
		}
	}
}

func TestValueConversions(t *testing.T) {
	var zero Value
	if zero.Kind() != KindString || zero.String() != "" || zero.Bool() || !math.IsNaN(zero.Number()) {
		t.Errorf("zero Value = %s", show(zero))
	}
	if B(true).Number() != 1 || B(false).Number() != 0 || B(true).String() != "true" {
		t.Error("boolean conversions")
	}
	if N(0).Bool() || N(nan).Bool() || !N(-0.5).Bool() || !N(math.Inf(-1)).Bool() {
		t.Error("number to boolean")
	}
	if KindString.String() != "string" || KindNumber.String() != "number" || KindBool.String() != "boolean" {
		t.Error("Kind.String")
	}
}

// TestConcurrent checks that one Expr can be evaluated from many goroutines,
// as the bot does for many users; run with -race to make it meaningful.
func TestConcurrent(t *testing.T) {
	e, err := Parse("selected(${g}, 'a') and regex(${p}, '^[0-9]+$') and round(${n}, 1) = 1.5")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan bool)
	for range 8 {
		go func() {
			ok := true
			for range 200 {
				ok = ok && e.True(vals("g", "a b", "p", "123", "n", "1.46")) == true
				ok = ok && e.True(vals("g", "b", "p", "123", "n", "1.46")) == false
			}
			done <- ok
		}()
	}
	for range 8 {
		if !<-done {
			t.Error("wrong result under concurrency")
		}
	}
}

// TestZeroAlloc guards the promise that comparison-only conditions evaluate
// without allocating, since they run for every question of every user.
func TestZeroAlloc(t *testing.T) {
	var env Env = vals("target_groups", "idps refugees", "staff", "12", "age", "", "sex", "f", ".", "42")
	for _, src := range []string{
		"selected(${target_groups}, 'refugees') and ${staff} >= 5",
		"${age} > 18 or ${sex} = 'f'",
		"not(${age} != '') and count-selected(${target_groups}) = 2",
		". >= 18 and . <= 120 and string-length(.) < 4",
		"if(${sex} = 'f', ${staff}, 0) > 10",
		"coalesce(${age}, ${staff}) - 1 = 11",
		"regex(${sex}, '^[fm]$') and contains(${target_groups}, 'ref')",
	} {
		e, err := Parse(src)
		if err != nil {
			t.Fatal(err)
		}
		if !e.True(env) {
			t.Errorf("%q is false", src)
		}
		if n := testing.AllocsPerRun(100, func() { e.True(env) }); n != 0 {
			t.Errorf("%q: %v allocations per evaluation, want 0", src, n)
		}
	}
}

func BenchmarkEval(b *testing.B) {
	e, err := Parse("selected(${target_groups}, 'refugees') and ${staff} >= 5")
	if err != nil {
		b.Fatal(err)
	}
	var env Env = vals("target_groups", "host_community idps refugees", "staff", "12")
	b.ReportAllocs()
	for b.Loop() {
		if !e.True(env) {
			b.Fatal("false")
		}
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("selected(${target_groups}, 'refugees') and ${staff} >= 5"); err != nil {
			b.Fatal(err)
		}
	}
}

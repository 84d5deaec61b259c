package expr

import (
	"errors"
	"strings"
	"testing"
)

// canon prints an AST with the fewest parentheses that preserve its shape.
// Re-parsing the result must give the same tree, which checks precedence,
// associativity and literal handling far more thoroughly than comparing
// String() with the source (which is just the source).
func canon(n *node) string {
	switch n.op {
	case opLit:
		if n.val.kind == KindNumber {
			return n.raw
		}
		// XPath has no escapes; a literal can contain one kind of quote only.
		if strings.Contains(n.val.str, "'") {
			return `"` + n.val.str + `"`
		}
		return "'" + n.val.str + "'"
	case opField:
		return "${" + n.name + "}"
	case opCurrent:
		return "."
	case opNeg:
		return "-" + wrap(n.x, prec(n.x) < prec(n))
	case opCall:
		args := make([]string, len(n.args))
		for i, a := range n.args {
			args[i] = canon(a)
		}
		return n.name + "(" + strings.Join(args, ", ") + ")"
	}
	// Binary operators are left-associative: a right operand of the same
	// precedence needs parentheses, a left one does not.
	return wrap(n.x, prec(n.x) < prec(n)) + " " + opText[n.op] + " " + wrap(n.y, prec(n.y) <= prec(n))
}

func wrap(n *node, paren bool) string {
	if paren {
		return "(" + canon(n) + ")"
	}
	return canon(n)
}

var opText = map[opcode]string{
	opOr: "or", opAnd: "and", opEq: "=", opNe: "!=", opLt: "<", opLe: "<=", opGt: ">", opGe: ">=",
	opAdd: "+", opSub: "-", opMul: "*", opDiv: "div", opMod: "mod",
}

func prec(n *node) int {
	switch n.op {
	case opOr:
		return 0
	case opAnd:
		return 1
	case opEq, opNe:
		return 2
	case opLt, opLe, opGt, opGe:
		return 3
	case opAdd, opSub:
		return 4
	case opMul, opDiv, opMod:
		return 5
	case opNeg:
		return 6
	}
	return 7
}

func TestCanon(t *testing.T) {
	tests := []struct{ src, want string }{
		{"1+2*3", "1 + 2 * 3"},
		{"(1+2)*3", "(1 + 2) * 3"},
		{"1-(2-3)", "1 - (2 - 3)"},
		{"(1-2)-3", "1 - 2 - 3"},
		{"-(1)", "-1"},
		{"- -1", "--1"},
		{"-(${a}+1)", "-(${a} + 1)"},
		{"2 - -${a}", "2 - -${a}"},
		{"a or b", ""},
		{"(${a} or ${b}) and ${c}", "(${a} or ${b}) and ${c}"},
		{"${a} or (${b} and ${c})", "${a} or ${b} and ${c}"},
		{"selected( ${g},'x' )", "selected(${g}, 'x')"},
		{`concat("it's", 'a "b"')`, `concat("it's", 'a "b"')`},
		{"((.))", "."},
	}
	for _, tt := range tests {
		e, err := Parse(tt.src)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Parse(%q) succeeded", tt.src)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.src, err)
			continue
		}
		if got := canon(e.root); got != tt.want {
			t.Errorf("canon(%q) = %q, want %q", tt.src, got, tt.want)
		}
	}
}

// FuzzParseEval checks that no source and no answers make the package panic
// or hang, that an accepted expression re-parses from its String() and from
// its canonical form to the same tree, and that both trees evaluate alike.
func FuzzParseEval(f *testing.F) {
	for _, src := range []string{
		"selected(${target_groups}, 'refugees') and ${staff} >= 5",
		"${age} >= 18 and ${age} < 120",
		"${consent} = 'yes' and (${age} >= 18 or ${guardian} = 'yes')",
		"not(selected(${services}, 'none')) or count-selected(${services}) = 1",
		"regex(., '^\\+994[0-9]{9}$')",
		"string-length(.) <= 200",
		"string-length() > 0 and string-length() < 10",
		". >= 0 and . <= ${hh_size}",
		"if(${country} = 'AZ', 'manat', concat('x', ${currency}))",
		"coalesce(${a}, ${b}) != ''",
		"round(${income} div ${hh_size}, 2) > 100.5",
		"int(${months} div 12) mod 2 = 1",
		"min(${a}, ${b}, 3) < max(-1, ${c})",
		"contains(${name}, 'ə') or starts-with(${name}, 'Ə') or ends-with(${name}, 'ов')",
		"substr(${phone}, 0, 4) = '+994'",
		"boolean-from-string(${flag}) and boolean(${x}) and number(${y}) = 2",
		"string(${n}) = '5' and true() != false()",
		"-(-${a} - -1) * 2 div 3",
		"regex(${code}, ${pattern})",
		"${şəhər} = 'Bakı' or ${город} = 'Москва'",
		"((((1))))",
		"1 div 0 = 0 div 0",
		"today()",
		"${a} AND ${b}",
		"'unterminated",
		"${bad name} = 1",
	} {
		f.Add(src, "refugees idps", "12", "+994501234567")
	}
	f.Add("${a} = ${b}", "", "", "")
	f.Add("round(${a}, ${b})", "2.675", "2", "")
	f.Add("substr(${a}, ${b}, .)", "Gəncə", "-3", "1.5")
	f.Add("concat(${a}, ${b}) = .", "\xff", " ", "\xff ")

	f.Fuzz(func(t *testing.T, src, a, b, cur string) {
		e, err := Parse(src)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Col < 1 || se.Msg == "" {
				t.Fatalf("Parse(%q): bad error %#v", src, err)
			}
			return
		}
		// Give references alternating answers, leaving every third one
		// unanswered.
		env := MapEnv{Values: map[string]string{}, Cur: cur}
		for i, r := range e.Refs() {
			switch i % 3 {
			case 0:
				env.Values[r] = a
			case 1:
				env.Values[r] = b
			}
		}
		v1, err1 := e.Eval(env)
		_ = e.True(env)
		_ = v1.String()

		e2, err := Parse(e.String())
		if err != nil {
			t.Fatalf("String() %q does not re-parse: %v", e.String(), err)
		}
		c1 := canon(e.root)
		if c2 := canon(e2.root); c1 != c2 {
			t.Fatalf("re-parse changed the tree: %q vs %q", c1, c2)
		}
		// The canonical form may be longer than the source (it adds
		// spaces), so bypass the length limit; its nesting is never deeper.
		e3, err := parse(c1)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", c1, src, err)
		}
		if c3 := canon(e3.root); c3 != c1 {
			t.Fatalf("canonical form is not stable: %q -> %q", c1, c3)
		}
		if strings.Join(e3.Refs(), ",") != strings.Join(e.Refs(), ",") || e3.UsesCurrent() != e.UsesCurrent() {
			t.Fatalf("canonical form %q changed Refs or UsesCurrent of %q", c1, src)
		}
		v3, err3 := e3.Eval(env)
		if (err1 == nil) != (err3 == nil) || err1 == nil && !sameValue(v1, v3) {
			t.Fatalf("%q = %s, %v but canonical %q = %s, %v", src, show(v1), err1, c1, show(v3), err3)
		}
	})
}

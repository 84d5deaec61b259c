package expr

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

type opcode uint8

const (
	opLit opcode = iota
	opField
	opCurrent
	opNeg
	opOr
	opAnd
	opEq
	opNe
	opLt
	opLe
	opGt
	opGe
	opAdd
	opSub
	opMul
	opDiv
	opMod
	opCall
)

// node is one AST node. A single struct with an opcode, rather than an
// interface per node type, keeps evaluation a plain switch without dynamic
// dispatch or allocation.
type node struct {
	op   opcode
	col  int    // 1-based column, for runtime errors
	val  Value  // opLit
	raw  string // opLit: number literal as written (with folded minus signs)
	name string // opField: field name; opCall: function name
	x, y *node  // operands of opNeg and binary operators
	fn   *funcDef
	args []*node
	re   *regexp.Regexp // regex() with a literal pattern, compiled by Parse
}

// Binary operators by XPath precedence level, lowest first.
var levels = [...][]struct {
	tok  tokKind
	name string // for operators spelled as names
	op   opcode
}{
	{{tName, "or", opOr}},
	{{tName, "and", opAnd}},
	{{tEq, "", opEq}, {tNe, "", opNe}},
	{{tLt, "", opLt}, {tLe, "", opLe}, {tGt, "", opGt}, {tGe, "", opGe}},
	{{tPlus, "", opAdd}, {tMinus, "", opSub}},
	{{tStar, "", opMul}, {tName, "div", opDiv}, {tName, "mod", opMod}},
}

type parser struct {
	lx          lexer
	tok         token
	depth       int
	refs        []string
	seen        map[string]bool
	usesCurrent bool
}

func parse(src string) (*Expr, error) {
	p := &parser{lx: lexer{src: src}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tEOF {
		return nil, p.errAt(0, "empty expression")
	}
	if err := p.enter(); err != nil {
		return nil, err
	}
	root, err := p.expr()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		if p.tok.kind == tRParen {
			return nil, p.errAt(p.tok.pos, `unexpected ")" without matching "("`)
		}
		return nil, p.errExpected("an operator or the end of the expression")
	}
	return &Expr{src: src, root: root, refs: p.refs, usesCurrent: p.usesCurrent}, nil
}

func (p *parser) advance() error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) errAt(pos int, format string, args ...any) error {
	return p.lx.errAt(pos, format, args...)
}

// describe quotes the current token as written, for error messages.
func (p *parser) describe() string {
	if p.tok.kind == tEOF {
		return "the end of the expression"
	}
	return fmt.Sprintf("%q", p.lx.src[p.tok.pos:p.tok.end])
}

func (p *parser) errExpected(what string) error {
	if p.tok.kind == tName {
		// AND / Or are common in forms written by people used to
		// spreadsheets or SQL; XPath operator names are case-sensitive.
		for _, op := range [...]string{"and", "or", "div", "mod"} {
			if strings.EqualFold(p.tok.text, op) && p.tok.text != op {
				return p.errAt(p.tok.pos, "unknown operator %q; XPath operators are lowercase: %q", p.tok.text, op)
			}
		}
	}
	return p.errAt(p.tok.pos, "expected %s, found %s", what, p.describe())
}

// expr parses a full expression. Callers that nest (parentheses, function
// arguments, unary minus) go through enter first, which is where depth is
// limited.
func (p *parser) expr() (*node, error) { return p.binary(0) }

// enter counts one level of nesting at the current token, so that a too-deep
// expression is reported at the parenthesis, function or minus sign that
// crosses the limit.
func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxDepth {
		return p.errAt(p.tok.pos, "expression is nested too deeply (limit %d levels)", MaxDepth)
	}
	return nil
}

func (p *parser) leave() { p.depth-- }

// binary parses the left-associative operators of precedence level and
// above. Chains of operators are handled by the loop, not by recursion, so a
// long "a or b or c ..." does not count against the depth limit.
func (p *parser) binary(level int) (*node, error) {
	if level == len(levels) {
		return p.unary()
	}
	left, err := p.binary(level + 1)
	if err != nil {
		return nil, err
	}
	for {
		op, ok := p.operator(level)
		if !ok {
			return left, nil
		}
		pos := p.tok.pos
		if err := p.advance(); err != nil {
			return nil, err
		}
		right, err := p.binary(level + 1)
		if err != nil {
			return nil, err
		}
		left = &node{op: op, col: column(p.lx.src, pos), x: left, y: right}
	}
}

func (p *parser) operator(level int) (opcode, bool) {
	for _, o := range levels[level] {
		if p.tok.kind == o.tok && (o.tok != tName || p.tok.text == o.name) {
			return o.op, true
		}
	}
	return 0, false
}

func (p *parser) unary() (*node, error) {
	if p.tok.kind != tMinus {
		return p.primary()
	}
	pos := p.tok.pos
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	if err := p.advance(); err != nil {
		return nil, err
	}
	x, err := p.unary()
	if err != nil {
		return nil, err
	}
	col := column(p.lx.src, pos)
	if x.op == opLit && x.val.kind == KindNumber {
		// Fold negative literals such as -1 so they cost nothing at runtime.
		x.val.num = -x.val.num
		x.raw = "-" + x.raw
		x.col = col
		return x, nil
	}
	return &node{op: opNeg, col: col, x: x}, nil
}

func (p *parser) primary() (*node, error) {
	t := p.tok
	col := column(p.lx.src, t.pos)
	var n *node
	switch t.kind {
	case tNum:
		n = &node{op: opLit, col: col, val: NumberValue(t.num), raw: t.text}
	case tStr:
		n = &node{op: opLit, col: col, val: StringValue(t.text)}
	case tField:
		n = &node{op: opField, col: col, name: t.text}
		if !p.seen[t.text] {
			if p.seen == nil {
				p.seen = map[string]bool{}
			}
			p.seen[t.text] = true
			p.refs = append(p.refs, t.text)
		}
	case tDot:
		n = &node{op: opCurrent, col: col}
		p.usesCurrent = true
	case tLParen:
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer p.leave()
		if err := p.advance(); err != nil {
			return nil, err
		}
		inner, err := p.expr()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, p.errExpected(fmt.Sprintf(`")" to close "(" at col %d`, col))
		}
		return inner, p.advance()
	case tName:
		return p.call()
	case tEOF:
		return nil, p.errAt(t.pos, "unexpected end of expression")
	default:
		return nil, p.errAt(t.pos, "unexpected %s", p.describe())
	}
	return n, p.advance()
}

func (p *parser) call() (*node, error) {
	name, pos := p.tok.text, p.tok.pos
	col := column(p.lx.src, pos)
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer p.leave()
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind != tLParen {
		switch name {
		case "and", "or", "div", "mod":
			return nil, p.errAt(pos, "missing operand before %q", name)
		case "true", "false":
			return nil, p.errAt(pos, "%s must be written %s()", name, name)
		}
		return nil, p.errAt(pos, "unexpected name %q; refer to fields as ${%s}", name, name)
	}
	fn := funcs[name]
	if fn == nil {
		if why, ok := unsupported[name]; ok {
			if why != "" {
				why = " (" + why + ")"
			}
			return nil, p.errAt(pos, "function %q is not supported%s", name, why)
		}
		return nil, p.errAt(pos, "unknown function %q", name)
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	var args []*node
	if p.tok.kind != tRParen {
		for {
			a, err := p.expr()
			if err != nil {
				return nil, err
			}
			args = append(args, a)
			if p.tok.kind != tComma {
				break
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
		}
		if p.tok.kind != tRParen {
			return nil, p.errExpected(fmt.Sprintf(`")" or "," after argument %d of %s()`, len(args), name))
		}
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if len(args) < fn.min || fn.max >= 0 && len(args) > fn.max {
		return nil, p.errAt(pos, "%s() takes %s, got %d", name, fn.arity(), len(args))
	}
	if len(args) == 0 && fn.current {
		p.usesCurrent = true
	}
	n := &node{op: opCall, col: col, name: name, fn: fn, args: args}
	if name == "selected" && args[1].op == opLit && args[1].val.kind == KindNumber {
		// ODK Collect rejects this at runtime; catching it here saves a
		// broken form in the field.
		return nil, &SyntaxError{Col: args[1].col, Msg: fmt.Sprintf("selected(): the choice must be quoted, like '%s'", args[1].raw)}
	}
	if name == "regex" && args[1].op == opLit {
		re, err := compileRegex(args[1].val.String())
		if err != nil {
			return nil, &SyntaxError{Col: args[1].col, Msg: regexError(err)}
		}
		n.re = re
	}
	return n, nil
}

// regexError words a regexp compile error for form authors. The usual cause
// is Java-only syntax such as lookahead or backreferences, which RE2 lacks.
func regexError(err error) string {
	var se *syntax.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("invalid regex pattern: %s: `%s`", se.Code, se.Expr)
	}
	return "invalid regex pattern: " + err.Error()
}

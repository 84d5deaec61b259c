package expr

import "math"

func (n *node) eval(env Env) (Value, error) {
	switch n.op {
	case opLit:
		return n.val, nil
	case opField:
		v, _ := env.Value(n.name)
		return StringValue(v), nil
	case opCurrent:
		return StringValue(env.Current()), nil
	case opNeg:
		x, err := n.x.eval(env)
		return NumberValue(-x.Number()), err
	case opOr, opAnd:
		// XPath evaluates the right operand only when the left one does not
		// decide the result; this also keeps runtime errors in a skipped
		// branch from mattering.
		x, err := n.x.eval(env)
		if err != nil {
			return Value{}, err
		}
		if x.Bool() == (n.op == opOr) {
			return BoolValue(n.op == opOr), nil
		}
		y, err := n.y.eval(env)
		return BoolValue(y.Bool()), err
	case opCall:
		return n.fn.eval(n, env)
	}
	x, err := n.x.eval(env)
	if err != nil {
		return Value{}, err
	}
	y, err := n.y.eval(env)
	if err != nil {
		return Value{}, err
	}
	switch n.op {
	case opEq:
		return BoolValue(equal(x, y)), nil
	case opNe:
		// NaN is unequal to everything, so with ${age} unanswered
		// ${age} != 18 is true, as in XPath.
		return BoolValue(!equal(x, y)), nil
	case opLt:
		return BoolValue(x.Number() < y.Number()), nil
	case opLe:
		return BoolValue(x.Number() <= y.Number()), nil
	case opGt:
		return BoolValue(x.Number() > y.Number()), nil
	case opGe:
		return BoolValue(x.Number() >= y.Number()), nil
	case opAdd:
		return NumberValue(x.Number() + y.Number()), nil
	case opSub:
		return NumberValue(x.Number() - y.Number()), nil
	case opMul:
		return NumberValue(x.Number() * y.Number()), nil
	case opDiv:
		return NumberValue(x.Number() / y.Number()), nil
	case opMod:
		// math.Mod truncates like XPath mod: the result has the sign of the
		// dividend.
		return NumberValue(math.Mod(x.Number(), y.Number())), nil
	}
	// Unreachable: the parser builds only the opcodes above. An error rather
	// than a panic keeps a future mistake from taking the bot down.
	return Value{}, &EvalError{Col: n.col, Msg: "internal error: unknown operator"}
}

// equal implements XPath "=" without node-sets: booleans win, then numbers,
// then strings compare exactly.
//
// Numbers compare with JavaRosa's absolute tolerance of 1e-12, so that
// ${a} + ${b} = 0.3 holds for answers 0.1 and 0.2 as it does in ODK Collect.
func equal(x, y Value) bool {
	switch {
	case x.kind == KindBool || y.kind == KindBool:
		return x.Bool() == y.Bool()
	case x.kind == KindNumber || y.kind == KindNumber:
		a, b := x.Number(), y.Number()
		return a == b || math.Abs(a-b) < 1e-12
	}
	return x.str == y.str
}

package expr

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tNum
	tStr
	tField
	tDot
	tName
	tLParen
	tRParen
	tComma
	tEq
	tNe
	tLt
	tLe
	tGt
	tGe
	tPlus
	tMinus
	tStar
)

type token struct {
	kind     tokKind
	pos, end int    // byte offsets into the source
	text     string // string contents, field or function name, number literal
	num      float64
}

// lexer produces tokens on demand; the parser never needs to look more than
// one token ahead.
type lexer struct {
	src string
	pos int
}

func (lx *lexer) errAt(pos int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Col: column(lx.src, pos), Msg: fmt.Sprintf(format, args...)}
}

// column converts a byte offset into the 1-based character column that
// people see in an editor, so that errors point at the right place in
// Azerbaijani or Russian text too.
func column(src string, pos int) int {
	if pos > len(src) {
		pos = len(src)
	}
	return utf8.RuneCountInString(src[:pos]) + 1
}

func (lx *lexer) next() (token, error) {
	src := lx.src
	for lx.pos < len(src) && isSpace(src[lx.pos]) {
		lx.pos++
	}
	start := lx.pos
	if start >= len(src) {
		return token{kind: tEOF, pos: start, end: start}, nil
	}
	tok := func(k tokKind, n int) (token, error) {
		lx.pos = start + n
		return token{kind: k, pos: start, end: lx.pos}, nil
	}
	peek := byte(0)
	if start+1 < len(src) {
		peek = src[start+1]
	}
	c := src[start]
	switch c {
	case '(':
		return tok(tLParen, 1)
	case ')':
		return tok(tRParen, 1)
	case ',':
		return tok(tComma, 1)
	case '+':
		return tok(tPlus, 1)
	case '-':
		return tok(tMinus, 1)
	case '*':
		return tok(tStar, 1)
	case '=':
		if peek == '=' {
			return token{}, lx.errAt(start, `"==" is not an XPath operator; use "="`)
		}
		return tok(tEq, 1)
	case '!':
		if peek == '=' {
			return tok(tNe, 2)
		}
		return token{}, lx.errAt(start, `"!" is not an XPath operator; use not(...) or "!="`)
	case '<':
		switch peek {
		case '=':
			return tok(tLe, 2)
		case '>':
			return token{}, lx.errAt(start, `"<>" is not an XPath operator; use "!="`)
		}
		return tok(tLt, 1)
	case '>':
		if peek == '=' {
			return tok(tGe, 2)
		}
		return tok(tGt, 1)
	case '\'', '"':
		end := strings.IndexByte(src[start+1:], c)
		if end < 0 {
			return token{}, lx.errAt(start, "unterminated string")
		}
		lx.pos = start + 1 + end + 1
		// XPath 1.0 has no escapes: a quote is written by using the other
		// kind of quote around the string.
		return token{kind: tStr, pos: start, end: lx.pos, text: src[start+1 : start+1+end]}, nil
	case '$':
		return lx.field(start)
	case '.':
		if isDigit(peek) {
			return lx.number(start)
		}
		if peek == '.' {
			return token{}, lx.errAt(start, `parent references ("..") are not supported; refer to fields as ${name}`)
		}
		return tok(tDot, 1)
	case '&':
		return token{}, lx.errAt(start, `"&" is not an XPath operator; use "and"`)
	case '|':
		return token{}, lx.errAt(start, `"|" is not supported; use "or"`)
	case '/':
		return token{}, lx.errAt(start, `"/" is not supported: divide with "div", and refer to fields as ${name} rather than by path`)
	case '%':
		return token{}, lx.errAt(start, `"%%" is not an XPath operator; use "mod"`)
	case '[', ']':
		return token{}, lx.errAt(start, "predicates ([...]) are not supported")
	case '@':
		return token{}, lx.errAt(start, "attributes (@name) are not supported")
	}
	if isDigit(c) {
		return lx.number(start)
	}
	r, size := utf8.DecodeRuneInString(src[start:])
	invalid := r == utf8.RuneError && size <= 1
	if isNameStart(r) && !invalid {
		end := start + size
		for end < len(src) {
			r, size := utf8.DecodeRuneInString(src[end:])
			// Colons are accepted so that prefixed names such as
			// jr:choice-name get a precise "not supported" message.
			if !isNameChar(r) && r != ':' || r == utf8.RuneError && size <= 1 {
				break
			}
			end += size
		}
		lx.pos = end
		return token{kind: tName, pos: start, end: end, text: src[start:end]}, nil
	}
	switch r {
	case '‘', '’', '‚', '‛', '“', '”', '„', '‟', '«', '»':
		// Spreadsheets and word processors "smart"-quote what users type.
		return token{}, lx.errAt(start, `unexpected character %q; strings must be quoted with straight quotes ' or "`, r)
	}
	if invalid {
		return token{}, lx.errAt(start, "invalid UTF-8 byte %#x", c)
	}
	return token{}, lx.errAt(start, "unexpected character %q", r)
}

// number scans an XPath number literal: digits with an optional decimal
// point, or a point followed by digits. There is no exponent syntax.
func (lx *lexer) number(start int) (token, error) {
	src := lx.src
	end := start
	for end < len(src) && isDigit(src[end]) {
		end++
	}
	if end < len(src) && src[end] == '.' {
		end++
		for end < len(src) && isDigit(src[end]) {
			end++
		}
	}
	lx.pos = end
	text := src[start:end]
	return token{kind: tNum, pos: start, end: end, text: text, num: ParseNumber(text)}, nil
}

// field scans ${name}.
func (lx *lexer) field(start int) (token, error) {
	src := lx.src
	if start+1 >= len(src) || src[start+1] != '{' {
		return token{}, lx.errAt(start, `"$" must start a field reference ${name}; XPath variables are not supported`)
	}
	nameStart := start + 2
	end := nameStart
	// Stop at characters that cannot be part of a reference either, so that
	// a missing "}" is reported here rather than at a later reference.
	for end < len(src) && !strings.ContainsRune("}${'\"(),", rune(src[end])) {
		end++
	}
	if end >= len(src) || src[end] != '}' {
		return token{}, lx.errAt(start, `unterminated field reference: missing "}"`)
	}
	name := src[nameStart:end]
	if name == "" {
		return token{}, lx.errAt(start, "empty field reference ${}")
	}
	if !ValidName(name) {
		return token{}, lx.errAt(nameStart, "invalid field name %q", name)
	}
	lx.pos = end + 1
	return token{kind: tField, pos: start, end: lx.pos, text: name}, nil
}

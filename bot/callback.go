package bot

import (
	"strconv"
	"strings"
)

// Callback data is at most 64 bytes (Telegram's limit) and names what was pressed
// without trusting anything else in it: a token says which prompt the button belongs
// to, an index which of that prompt's options. Anything that does not parse, or names
// an option, flow or language that does not exist, is forged and only counted.
//
//	c:<token>:<index>  choose an option          t:<token>:<index>  toggle a multiple-choice option
//	d:<token>          done picking               b:<token>          back
//	s:<token>          skip                       m:<flow>           start a flow from the menu
//	l:<lang>           switch language            f:yes / f:no       confirm or refuse /forget
//	menu               show the menu              lang               show the language picker
//	resume             repeat the current question
//	rm:off / rm:on     no more reminders and broadcasts / again
const maxCallbackData = 64

type cbKind uint8

const (
	cbChoose cbKind = iota + 1
	cbToggle
	cbDone
	cbBack
	cbSkip
	cbFlow
	cbLang
	cbForgetYes
	cbForgetNo
	cbMenu
	cbLangMenu
	cbResume
	cbOptOut // "rm:off": no more reminders or broadcasts
	cbOptIn  // "rm:on": reminders and broadcasts again
)

type callback struct {
	kind  cbKind
	token int
	index int
	arg   string // flow id or language
}

func (c callback) String() string {
	tok := strconv.Itoa(c.token)
	switch c.kind {
	case cbChoose:
		return "c:" + tok + ":" + strconv.Itoa(c.index)
	case cbToggle:
		return "t:" + tok + ":" + strconv.Itoa(c.index)
	case cbDone:
		return "d:" + tok
	case cbBack:
		return "b:" + tok
	case cbSkip:
		return "s:" + tok
	case cbFlow:
		return "m:" + c.arg
	case cbLang:
		return "l:" + c.arg
	case cbForgetYes:
		return "f:yes"
	case cbForgetNo:
		return "f:no"
	case cbMenu:
		return "menu"
	case cbLangMenu:
		return "lang"
	case cbResume:
		return "resume"
	case cbOptOut:
		return "rm:off"
	case cbOptIn:
		return "rm:on"
	}
	return ""
}

// Bounds that keep parsing cheap and numbers small: tokens count prompts of one
// user, indexes options of one question.
const (
	maxTokenDigits = 9
	maxIndexDigits = 4
)

func parseCallback(data string) (callback, bool) {
	if data == "" || len(data) > maxCallbackData {
		return callback{}, false
	}
	switch data {
	case "f:yes":
		return callback{kind: cbForgetYes}, true
	case "f:no":
		return callback{kind: cbForgetNo}, true
	case "menu":
		return callback{kind: cbMenu}, true
	case "lang":
		return callback{kind: cbLangMenu}, true
	case "resume":
		return callback{kind: cbResume}, true
	case "rm:off":
		return callback{kind: cbOptOut}, true
	case "rm:on":
		return callback{kind: cbOptIn}, true
	}
	kind, rest, ok := strings.Cut(data, ":")
	if !ok || len(kind) != 1 {
		return callback{}, false
	}
	switch kind[0] {
	case 'c', 't':
		tok, idx, ok := strings.Cut(rest, ":")
		if !ok {
			return callback{}, false
		}
		t, ok1 := number(tok, maxTokenDigits)
		i, ok2 := number(idx, maxIndexDigits)
		if !ok1 || !ok2 || t == 0 {
			return callback{}, false
		}
		k := cbChoose
		if kind[0] == 't' {
			k = cbToggle
		}
		return callback{kind: k, token: t, index: i}, true
	case 'd', 'b', 's':
		t, ok := number(rest, maxTokenDigits)
		if !ok || t == 0 {
			return callback{}, false
		}
		k := map[byte]cbKind{'d': cbDone, 'b': cbBack, 's': cbSkip}[kind[0]]
		return callback{kind: k, token: t}, true
	case 'm':
		if !validFlowArg(rest) {
			return callback{}, false
		}
		return callback{kind: cbFlow, arg: rest}, true
	case 'l':
		if !validLangArg(rest) {
			return callback{}, false
		}
		return callback{kind: cbLang, arg: rest}, true
	}
	return callback{}, false
}

// number parses plain decimal digits only: no sign, no spaces, no leading zeros,
// bounded length, so "+1", "01", "1e3" and 200-digit numbers are all malformed
// rather than surprising, and every callback has exactly one spelling.
func number(s string, maxDigits int) (int, bool) {
	if s == "" || len(s) > maxDigits || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func validFlowArg(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func validLangArg(s string) bool {
	if len(s) < 2 || len(s) > 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

package bot

import (
	"strings"
	"testing"
)

func TestCallbackRoundTrip(t *testing.T) {
	for _, c := range []callback{
		{kind: cbChoose, token: 1, index: 0}, {kind: cbChoose, token: 987654321, index: 9999},
		{kind: cbToggle, token: 12, index: 3}, {kind: cbDone, token: 5}, {kind: cbBack, token: 5},
		{kind: cbSkip, token: 5}, {kind: cbFlow, arg: "migrant_association"}, {kind: cbLang, arg: "ru"},
		{kind: cbForgetYes}, {kind: cbForgetNo}, {kind: cbMenu}, {kind: cbLangMenu}, {kind: cbResume},
	} {
		s := c.String()
		got, ok := parseCallback(s)
		if !ok || got != c || len(s) > maxCallbackData {
			t.Errorf("%+v → %q → %+v, %v", c, s, got, ok)
		}
	}
}

func TestCallbackMalformed(t *testing.T) {
	for _, s := range []string{
		"", "c", "c:", "c:1", "c:1:", "c::1", "c:0:1", "c:-1:1", "c:+1:1", "c:1:+1", "c:1:-1",
		"c:1:1:1", "c:01:1", "c:1:00", "c: 1:1", "c:1234567890:1", "c:1:12345", "d:", "d:0", "d:x", "b:1:2",
		"m:", "m:a b", "m:ä", "l:", "l:x", "l:RU", "l:abcd", "f:", "f:maybe", "menux", "zz:1",
		strings.Repeat("m", 65), "m:" + strings.Repeat("a", 63),
	} {
		if c, ok := parseCallback(s); ok {
			t.Errorf("%q parsed as %+v", s, c)
		}
	}
}

func FuzzParseCallback(f *testing.F) {
	for _, s := range []string{"c:01:2", "c:1:2", "t:3:4", "d:5", "m:cso", "l:ru", "f:yes", "menu", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := parseCallback(s)
		if !ok {
			return
		}
		if back := c.String(); back != s || len(back) > maxCallbackData {
			t.Errorf("%q parsed to %+v, which prints as %q", s, c, back)
		}
	})
}

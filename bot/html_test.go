package bot

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// wellFormed checks what Telegram's HTML parser needs: known tags, properly nested
// and closed, no stray "&" or "<".
func wellFormed(t *testing.T, s string) {
	t.Helper()
	var stack []string
	for i := 0; i < len(s); {
		switch s[i] {
		case '<':
			j := strings.IndexByte(s[i:], '>')
			if j < 0 {
				t.Fatalf("unclosed tag in %q", s)
			}
			tag := s[i+1 : i+j]
			if strings.HasPrefix(tag, "/") {
				if len(stack) == 0 || stack[len(stack)-1] != tag[1:] {
					t.Fatalf("unmatched </%s> in %q", tag[1:], s)
				}
				stack = stack[:len(stack)-1]
			} else {
				if tag != "b" && tag != "i" {
					t.Fatalf("unexpected tag <%s>", tag)
				}
				stack = append(stack, tag)
			}
			i += j + 1
		case '&':
			j := strings.IndexByte(s[i:], ';')
			if j < 0 || j > 10 {
				t.Fatalf("stray & in %q", s)
			}
			i += j + 1
		default:
			i++
		}
	}
	if len(stack) > 0 {
		t.Fatalf("unclosed %v in %q", stack, s)
	}
}

func TestEscapeEverything(t *testing.T) {
	s := lines(bold("<b>x</b> & y"), italic("a\n\nb & <c>"), esc(`"q" 'q'`))
	wellFormed(t, s)
	if strings.Contains(stripTags(s), "<") {
		t.Errorf("unescaped text: %q", s)
	}
}

func TestSplitHTML(t *testing.T) {
	word := "слово&amp; "
	para := strings.Repeat(word, 300)             // ~3300 units: fits alone
	huge := bold(strings.Repeat("дл🙂инно", 2000)) // one line, no spaces, tags around
	long := strings.Repeat("a ", 3000)            // one line with spaces
	cases := map[string]string{
		"paragraphs": paragraphs(para, italic(para), para),
		"one line":   "<i>" + long + "</i>",
		"one word":   huge,
		"lines":      strings.Repeat(bold("line & more")+"\n", 800),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			parts := splitHTML(in, maxMessageUnits)
			if len(parts) < 2 {
				t.Fatalf("%d parts", len(parts))
			}
			total := 0
			for _, p := range parts {
				if n := visibleUnits(p); n > maxMessageUnits || n == 0 {
					t.Errorf("part of %d units", n)
				}
				if !utf8.ValidString(p) {
					t.Error("part is not UTF-8")
				}
				wellFormed(t, p)
				total += len(strings.Fields(stripTags(p)))
			}
			if want := len(strings.Fields(stripTags(in))); name != "one word" && total != want {
				t.Errorf("%d words after splitting, %d before", total, want)
			}
		})
	}
	if got := splitHTML("short", maxMessageUnits); len(got) != 1 || got[0] != "short" {
		t.Errorf("short text split: %q", got)
	}
}

func TestTruncate(t *testing.T) {
	s := truncateHTML(bold(strings.Repeat("x ", 5000)), maxMessageUnits)
	wellFormed(t, strings.TrimSuffix(s, "…"))
	if visibleUnits(s) > maxMessageUnits {
		t.Errorf("%d units", visibleUnits(s))
	}
	if got := truncateUnits(strings.Repeat("🙂", 300), maxCallbackUnits); visibleUnits(got) > maxCallbackUnits {
		t.Errorf("callback text %d units", visibleUnits(got))
	}
}

func TestVisibleUnits(t *testing.T) {
	for in, want := range map[string]int{"<b>ab</b>": 2, "a&amp;b": 3, "🙂": 2, "&#39;": 1, "": 0} {
		if got := visibleUnits(in); got != want {
			t.Errorf("visibleUnits(%q) = %d, want %d", in, got, want)
		}
	}
}

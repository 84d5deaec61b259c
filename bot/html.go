package bot

import (
	"html"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Telegram measures texts in UTF-16 code units after entity parsing.
const (
	maxMessageUnits  = 4096
	maxCallbackUnits = 200
)

// rtlMark starts every message in a right-to-left language: Telegram picks a
// message's direction from its first strong character, which in a mixed message
// ("Question 3 of 9" with digits, a Latin brand name) is often the wrong one.
const rtlMark = "\u200f"

var rtlLangs = map[string]bool{"fa": true, "ar": true, "he": true, "ur": true, "ps": true, "ckb": true, "dv": true, "yi": true}

func isRTL(lang string) bool { return rtlLangs[lang] }

// The builders below wrap escaped text in tags line by line, so that no tag ever
// spans a newline. splitHTML relies on that: any newline is a safe place to cut.

func esc(s string) string { return html.EscapeString(s) }

func wrap(tag, s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) != "" {
			lines[i] = "<" + tag + ">" + esc(l) + "</" + tag + ">"
		} else {
			lines[i] = esc(l)
		}
	}
	return strings.Join(lines, "\n")
}

func bold(s string) string   { return wrap("b", s) }
func italic(s string) string { return wrap("i", s) }

// paragraphs joins non-empty HTML blocks with a blank line.
func paragraphs(blocks ...string) string {
	var keep []string
	for _, b := range blocks {
		if strings.TrimSpace(b) != "" {
			keep = append(keep, b)
		}
	}
	return strings.Join(keep, "\n\n")
}

// lines joins non-empty HTML lines.
func lines(ls ...string) string {
	var keep []string
	for _, l := range ls {
		if strings.TrimSpace(l) != "" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func units(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// visibleUnits is the length Telegram will count: tags removed, entities decoded.
func visibleUnits(s string) int {
	n := 0
	for i := 0; i < len(s); {
		switch s[i] {
		case '<':
			if j := strings.IndexByte(s[i:], '>'); j >= 0 {
				i += j + 1
				continue
			}
		case '&':
			if j := strings.IndexByte(s[i:], ';'); j > 0 && j <= 10 {
				n++
				i += j + 1
				continue
			}
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		n += units(r)
		i += size
	}
	return n
}

// splitHTML cuts s into pieces of at most limit visible units, preferring paragraph
// breaks, then line breaks, then spaces, and reopening tags cut in the middle.
func splitHTML(s string, limit int) []string {
	if visibleUnits(s) <= limit {
		return nonBlank([]string{s})
	}
	var out []string
	for _, part := range pack(strings.Split(s, "\n\n"), "\n\n", limit) {
		if visibleUnits(part) <= limit {
			out = append(out, part)
			continue
		}
		for _, line := range pack(strings.Split(part, "\n"), "\n", limit) {
			if visibleUnits(line) <= limit {
				out = append(out, line)
				continue
			}
			out = append(out, cutLine(line, limit)...)
		}
	}
	return nonBlank(out)
}

// pack joins consecutive pieces with sep while they fit in limit. A piece that does not
// fit on its own is returned alone, for the caller to cut further.
func pack(pieces []string, sep string, limit int) []string {
	var out []string
	cur, curN := "", 0
	sepN := visibleUnits(sep)
	for _, p := range pieces {
		n := visibleUnits(p)
		switch {
		case cur == "":
			cur, curN = p, n
		case curN+sepN+n <= limit:
			cur, curN = cur+sep+p, curN+sepN+n
		default:
			out = append(out, cur)
			cur, curN = p, n
		}
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

// cutLine cuts one line (no newlines) at spaces, or anywhere when a word is longer
// than limit, closing open tags at each cut and reopening them after it.
func cutLine(s string, limit int) []string {
	var (
		out   []string
		open  []string // open tags, outermost first, as written ("<b>")
		cur   strings.Builder
		n     int
		space = -1 // byte offset in cur just after the last space, or -1
		spN   int  // visible units up to that space
		spOp  []string
	)
	closeTags := func(tags []string) string {
		var b strings.Builder
		for i := len(tags) - 1; i >= 0; i-- {
			name := strings.Fields(strings.Trim(tags[i], "<>"))[0]
			b.WriteString("</" + name + ">")
		}
		return b.String()
	}
	flush := func(at int, atOpen []string) {
		text := cur.String()
		head, tail := text[:at], text[at:]
		out = append(out, head+closeTags(atOpen))
		cur.Reset()
		cur.WriteString(strings.Join(atOpen, ""))
		cur.WriteString(tail)
		n = visibleUnits(cur.String())
		space = -1
	}
	for i := 0; i < len(s); {
		if s[i] == '<' {
			j := strings.IndexByte(s[i:], '>')
			if j < 0 {
				j = len(s) - i - 1
			}
			tag := s[i : i+j+1]
			if strings.HasPrefix(tag, "</") {
				if len(open) > 0 {
					open = open[:len(open)-1]
				}
			} else {
				open = append(open, tag)
			}
			cur.WriteString(tag)
			i += j + 1
			continue
		}
		var tok string
		var w int
		if s[i] == '&' {
			if j := strings.IndexByte(s[i:], ';'); j > 0 && j <= 10 {
				tok, w = s[i:i+j+1], 1
			}
		}
		if tok == "" {
			r, size := utf8.DecodeRuneInString(s[i:])
			tok, w = s[i:i+size], units(r)
		}
		if n+w > limit {
			if space > 0 && spN > 0 {
				flush(space, spOp)
			} else {
				flush(cur.Len(), open)
			}
		}
		cur.WriteString(tok)
		n += w
		i += len(tok)
		if r, _ := utf8.DecodeRuneInString(tok); unicode.IsSpace(r) {
			space, spN, spOp = cur.Len(), n, append([]string(nil), open...)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

func nonBlank(parts []string) []string {
	out := parts[:0]
	for _, p := range parts {
		if strings.TrimSpace(stripTags(p)) != "" {
			out = append(out, p)
		}
	}
	return out
}

func stripTags(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '<' {
			if j := strings.IndexByte(s[i:], '>'); j >= 0 {
				i += j + 1
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// truncateHTML keeps the first piece of s that fits, marking the cut: an edited
// message can only be one message.
func truncateHTML(s string, limit int) string {
	parts := splitHTML(s, limit-1)
	if len(parts) <= 1 {
		if len(parts) == 0 {
			return ""
		}
		return parts[0]
	}
	return parts[0] + "…"
}

// truncateUnits shortens plain text to limit UTF-16 units (callback answers).
func truncateUnits(s string, limit int) string {
	n := 0
	for i, r := range s {
		if n+units(r) > limit-1 {
			return s[:i] + "…"
		}
		n += units(r)
	}
	return s
}

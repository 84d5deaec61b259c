package telegramtest

import (
	"strings"
)

// mdEntityNames are the names Telegram uses in "Can't find end of ..."
// errors.
var mdEntityNames = map[string]string{
	"bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
	"spoiler": "Spoiler", "text_link": "TextUrl", "code": "Code", "pre": "Pre", "blockquote": "BlockQuote",
}

// parseMarkdownV2 implements the MarkdownV2 rules from the Bot API
// documentation, including the one bots trip over most: every reserved
// character outside an entity marker must be escaped.
func parseMarkdownV2(src string) (string, []apiEntity, error) {
	type open struct {
		typ     string
		start   int // UTF-16 offset
		byteOff int
		arg     string
	}
	var (
		out        strings.Builder
		off16      int
		stack      []open
		ents       []apiEntity
		quoteStart = -1 // UTF-16 offset of the running blockquote
	)
	n := len(src)
	emit := func(s string) {
		out.WriteString(s)
		off16 += UTF16Len(s)
	}
	inCode := func() bool {
		return len(stack) > 0 && (stack[len(stack)-1].typ == "code" || stack[len(stack)-1].typ == "pre")
	}
	for i := 0; i < n; {
		c := src[i]
		lineStart := i == 0 || src[i-1] == '\n'
		if lineStart && !inCode() {
			if c == '>' {
				if quoteStart < 0 {
					quoteStart = off16
				}
				i++
				continue
			}
			if quoteStart >= 0 {
				ents = append(ents, apiEntity{Type: "blockquote", Offset: quoteStart, Length: off16 - quoteStart})
				quoteStart = -1
			}
		}
		if c == '\\' && i+1 < n && src[i+1] > 0 && src[i+1] <= 126 {
			emit(src[i+1 : i+2])
			i += 2
			continue
		}
		if inCode() {
			top := stack[len(stack)-1]
			closing := top.typ == "code" && c == '`' || top.typ == "pre" && strings.HasPrefix(src[i:], "```")
			if !closing {
				_, size := decodeRune(src[i:])
				emit(src[i : i+size])
				i += size
				continue
			}
		}
		if !strings.ContainsRune("_*[]()~`>#+-=|{}.!", rune(c)) {
			_, size := decodeRune(src[i:])
			emit(src[i : i+size])
			i += size
			continue
		}
		// Does c close the innermost entity?
		closes := false
		if k := len(stack); k > 0 {
			switch stack[k-1].typ {
			case "bold":
				closes = c == '*'
			case "italic":
				closes = c == '_' && !strings.HasPrefix(src[i:], "__")
			case "underline":
				closes = strings.HasPrefix(src[i:], "__")
			case "strikethrough":
				closes = c == '~'
			case "spoiler":
				closes = strings.HasPrefix(src[i:], "||")
			case "text_link":
				closes = c == ']'
			case "code":
				closes = c == '`'
			case "pre":
				closes = strings.HasPrefix(src[i:], "```")
			}
		}
		if !closes {
			o := open{start: off16, byteOff: i}
			switch c {
			case '_':
				if strings.HasPrefix(src[i:], "__") {
					o.typ = "underline"
					i++
				} else {
					o.typ = "italic"
				}
			case '*':
				o.typ = "bold"
			case '~':
				o.typ = "strikethrough"
			case '|':
				if !strings.HasPrefix(src[i:], "||") {
					return "", nil, entErr("Character '|' is reserved and must be escaped with the preceding '\\'")
				}
				o.typ = "spoiler"
				i++
			case '[':
				o.typ = "text_link"
			case '`':
				if strings.HasPrefix(src[i:], "```") {
					o.typ = "pre"
					i += 3
					j := i
					for j < n && !isHTMLSpace(src[j]) && src[j] != '`' {
						j++
					}
					if j > i && j < n && src[j] != '`' {
						o.arg = src[i:j]
						i = j
					}
					if i < n && (src[i] == '\n' || src[i] == '\r') {
						i++
					}
					stack = append(stack, o)
					continue
				}
				o.typ = "code"
			default:
				return "", nil, entErr("Character '%c' is reserved and must be escaped with the preceding '\\'", c)
			}
			i++
			stack = append(stack, o)
			continue
		}
		top := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch top.typ {
		case "underline", "spoiler":
			i += 2
		case "pre":
			i += 3
		default:
			i++
		}
		e := apiEntity{Type: top.typ, Offset: top.start, Length: off16 - top.start, Language: top.arg}
		if top.typ == "text_link" {
			if i >= n || src[i] != '(' {
				return "", nil, entErr("Can't find end of a URL at byte offset %d", i)
			}
			i++
			var u strings.Builder
			for i < n && src[i] != ')' {
				if src[i] == '\\' && i+1 < n {
					i++
				}
				u.WriteByte(src[i])
				i++
			}
			if i >= n {
				return "", nil, entErr("Can't find end of a URL at byte offset %d", top.byteOff)
			}
			i++
			e.URL = u.String()
		}
		if e.Length > 0 && (e.Type != "text_link" || e.URL != "") {
			ents = append(ents, e)
		}
	}
	if len(stack) > 0 {
		top := stack[len(stack)-1]
		return "", nil, entErr("Can't find end of %s entity at byte offset %d", mdEntityNames[top.typ], top.byteOff)
	}
	if quoteStart >= 0 && off16 > quoteStart {
		ents = append(ents, apiEntity{Type: "blockquote", Offset: quoteStart, Length: off16 - quoteStart})
	}
	sortEntities(ents)
	return out.String(), ents, nil
}

// parseMarkdownLegacy implements the old "Markdown" mode: *bold*, _italic_,
// `code`, ```pre```, [text](url); no nesting, and an unclosed marker is an
// error.
func parseMarkdownLegacy(src string) (string, []apiEntity, error) {
	var (
		out   strings.Builder
		off16 int
		ents  []apiEntity
	)
	n := len(src)
	for i := 0; i < n; {
		c := src[i]
		if c == '\\' && i+1 < n && strings.IndexByte("_*`[", src[i+1]) >= 0 {
			out.WriteByte(src[i+1])
			off16++
			i += 2
			continue
		}
		if strings.IndexByte("_*`[", c) < 0 {
			r, size := decodeRune(src[i:])
			out.WriteString(src[i : i+size])
			off16 += utf16Len(r)
			i += size
			continue
		}
		begin := i
		end := c
		if c == '[' {
			end = ']'
		}
		i++
		pre, lang := false, ""
		if c == '`' && strings.HasPrefix(src[i:], "``") {
			pre = true
			i += 2
			if nl := strings.IndexByte(src[i:], '\n'); nl > 0 && !strings.ContainsAny(src[i:i+nl], " `") {
				lang = src[i : i+nl]
				i += nl + 1
			}
		}
		start := off16
		for i < n && (src[i] != end || pre && !strings.HasPrefix(src[i:], "```")) {
			r, size := decodeRune(src[i:])
			out.WriteString(src[i : i+size])
			off16 += utf16Len(r)
			i += size
		}
		if i >= n {
			return "", nil, entErr("Can't find end of the entity starting at byte offset %d", begin)
		}
		if pre {
			i += 3
		} else {
			i++
		}
		e := apiEntity{Offset: start, Length: off16 - start}
		switch {
		case pre:
			e.Type, e.Language = "pre", lang
		case c == '*':
			e.Type = "bold"
		case c == '_':
			e.Type = "italic"
		case c == '`':
			e.Type = "code"
		case c == '[':
			e.Type = "text_link"
			if i < n && src[i] == '(' {
				if j := strings.IndexByte(src[i:], ')'); j > 0 {
					e.URL = src[i+1 : i+j]
					i += j + 1
				}
			}
			if e.URL == "" {
				continue
			}
		}
		if e.Length > 0 {
			ents = append(ents, e)
		}
	}
	sortEntities(ents)
	return out.String(), ents, nil
}

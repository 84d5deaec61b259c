package telegramtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

func decodeRune(s string) (rune, int) { return utf8.DecodeRuneInString(s) }

// utf16Len is how many UTF-16 code units a rune takes: Telegram measures
// lengths and entity offsets in those, so an emoji outside the BMP counts 2.
func utf16Len(r rune) int {
	if r >= 0x10000 {
		return 2
	}
	return 1
}

// UTF16Len returns the length of s as Telegram counts it.
func UTF16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16Len(r)
	}
	return n
}

// formatted is a text after parse_mode processing.
type formatted struct {
	text     string
	entities []apiEntity
}

// formatText applies parse_mode (or explicit entities) and the length limit.
// limit is 4096 for texts and 1024 for captions; tooLong is the matching
// Telegram description.
func formatText(raw, parseMode, entitiesJSON string, limit int, tooLong string) (formatted, *apiError) {
	if !utf8.ValidString(raw) {
		return formatted{}, badRequest("text must be encoded in UTF-8")
	}
	var f formatted
	switch strings.ToLower(parseMode) {
	case "":
		f.text = raw
		if entitiesJSON != "" {
			if err := json.Unmarshal([]byte(entitiesJSON), &f.entities); err != nil {
				return formatted{}, badRequest("can't parse entities JSON object")
			}
		}
	case "html":
		text, ents, err := parseHTML(raw)
		if err != nil {
			return formatted{}, badRequest("can't parse entities: %s", err.Error())
		}
		f = formatted{text, ents}
	case "markdownv2":
		text, ents, err := parseMarkdownV2(raw)
		if err != nil {
			return formatted{}, badRequest("can't parse entities: %s", err.Error())
		}
		f = formatted{text, ents}
	case "markdown":
		text, ents, err := parseMarkdownLegacy(raw)
		if err != nil {
			return formatted{}, badRequest("can't parse entities: %s", err.Error())
		}
		f = formatted{text, ents}
	default:
		return formatted{}, badRequest("unsupported parse_mode")
	}
	if UTF16Len(f.text) > limit {
		return formatted{}, badRequest("%s", tooLong)
	}
	return f, nil
}

func isBlank(s string) bool {
	return strings.TrimFunc(s, unicode.IsSpace) == ""
}

// htmlTags maps the tags Telegram's HTML mode supports to entity types.
var htmlTags = map[string]string{
	"b": "bold", "strong": "bold",
	"i": "italic", "em": "italic",
	"u": "underline", "ins": "underline",
	"s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
	"tg-spoiler": "spoiler", "span": "spoiler",
	"a":          "text_link",
	"code":       "code",
	"pre":        "pre",
	"blockquote": "blockquote",
	"tg-emoji":   "custom_emoji",
}

func isHTMLSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// parseHTML follows the algorithm of Telegram's own parser closely enough to
// reject what Telegram rejects, with one deliberate addition: a "&" that
// does not start an entity is an error here, since the Bot API documents
// that it must be escaped and a bot that forgets it will also mangle user
// text that happens to contain "&lt;".
func parseHTML(src string) (string, []apiEntity, error) {
	type open struct {
		tag, arg string
		start    int // UTF-16 offset
		byteOff  int
	}
	var (
		out   strings.Builder
		off16 int
		stack []open
		ents  []apiEntity
	)
	out.Grow(len(src))
	n := len(src)
	for i := 0; i < n; {
		c := src[i]
		switch c {
		case '&':
			r, size := decodeHTMLEntity(src[i:])
			if size == 0 {
				return "", nil, entErr("unescaped \"&\" at byte offset %d; the Bot API requires &amp;", i)
			}
			out.WriteRune(r)
			off16 += utf16Len(r)
			i += size
			continue
		case '<':
		default:
			r, size := decodeRune(src[i:])
			out.WriteString(src[i : i+size])
			off16 += utf16Len(r)
			i += size
			continue
		}
		begin := i
		i++
		if i < n && src[i] == '/' {
			if len(stack) == 0 {
				return "", nil, entErr("Unexpected end tag at byte offset %d", begin)
			}
			j := i + 1
			for j < n && !isHTMLSpace(src[j]) && src[j] != '>' {
				j++
			}
			name := strings.ToLower(src[i+1 : j])
			for j < n && isHTMLSpace(src[j]) {
				j++
			}
			if j >= n || src[j] != '>' {
				return "", nil, entErr("Unclosed end tag at byte offset %d", begin)
			}
			top := stack[len(stack)-1]
			if name != "" && name != top.tag {
				return "", nil, entErr("Unmatched end tag at byte offset %d, expected \"</%s>\", found \"</%s>\"", begin, top.tag, name)
			}
			stack = stack[:len(stack)-1]
			i = j + 1
			if off16 == top.start {
				continue // empty entities are dropped, as Telegram does
			}
			e := apiEntity{Type: htmlTags[top.tag], Offset: top.start, Length: off16 - top.start}
			switch top.tag {
			case "a":
				if top.arg == "" {
					continue
				}
				e.URL = top.arg
			case "code":
				if top.arg != "" && len(stack) > 0 && stack[len(stack)-1].tag == "pre" && stack[len(stack)-1].start == top.start {
					// <pre><code class="language-x"> is a pre entity with a language.
					stack[len(stack)-1].arg = top.arg
				}
			case "pre":
				if k := len(ents) - 1; k >= 0 && ents[k].Type == "code" && ents[k].Offset == e.Offset && ents[k].Length == e.Length {
					ents = ents[:k]
				}
				e.Language = top.arg
			case "blockquote":
				if top.arg == "1" {
					e.Type = "expandable_blockquote"
				}
			case "tg-emoji":
				if id, err := strconv.ParseInt(top.arg, 10, 64); err != nil || id == 0 {
					return "", nil, entErr("invalid custom emoji identifier specified")
				}
				e.CustomEmojiID = top.arg
			}
			ents = append(ents, e)
			continue
		}
		// Start tag.
		j := i
		for j < n && !isHTMLSpace(src[j]) && src[j] != '>' {
			j++
		}
		if j >= n {
			return "", nil, entErr("Unclosed start tag at byte offset %d", begin)
		}
		tag := strings.ToLower(src[i:j])
		if _, ok := htmlTags[tag]; !ok {
			return "", nil, entErr("Unsupported start tag \"%s\" at byte offset %d", tag, begin)
		}
		arg := ""
		for {
			for j < n && isHTMLSpace(src[j]) {
				j++
			}
			if j >= n {
				return "", nil, entErr("Unclosed start tag at byte offset %d", begin)
			}
			if src[j] == '>' {
				break
			}
			k := j
			for k < n && !isHTMLSpace(src[k]) && src[k] != '=' && src[k] != '>' {
				k++
			}
			attr := strings.ToLower(src[j:k])
			if attr == "" {
				return "", nil, entErr("Empty attribute name in the tag \"%s\" at byte offset %d", tag, begin)
			}
			for k < n && isHTMLSpace(src[k]) {
				k++
			}
			if k >= n || src[k] != '=' {
				if tag == "blockquote" && attr == "expandable" {
					arg, j = "1", k
					continue
				}
				return "", nil, entErr("Expected equal sign in declaration of an attribute of the tag \"%s\" at byte offset %d", tag, begin)
			}
			k++
			for k < n && isHTMLSpace(src[k]) {
				k++
			}
			if k >= n {
				return "", nil, entErr("Unclosed start tag \"%s\" at byte offset %d", tag, begin)
			}
			var val strings.Builder
			if q := src[k]; q == '"' || q == '\'' {
				k++
				for k < n && src[k] != q {
					if src[k] == '&' {
						if r, size := decodeHTMLEntity(src[k:]); size > 0 {
							val.WriteRune(r)
							k += size
							continue
						}
					}
					val.WriteByte(src[k])
					k++
				}
				if k >= n {
					return "", nil, entErr("Unclosed start tag at byte offset %d", begin)
				}
				k++
			} else {
				t := k
				for k < n && (isCmdChar(src[k]) && src[k] != '_' || src[k] == '.' || src[k] == '-') {
					k++
				}
				if k >= n || !isHTMLSpace(src[k]) && src[k] != '>' {
					return "", nil, entErr("Unexpected end of name token at byte offset %d", t)
				}
				val.WriteString(strings.ToLower(src[t:k]))
			}
			v := val.String()
			switch {
			case tag == "a" && attr == "href":
				arg = v
			case tag == "code" && attr == "class" && strings.HasPrefix(v, "language-"):
				arg = v[len("language-"):]
			case tag == "span" && attr == "class" && strings.HasPrefix(v, "tg-"):
				arg = v[len("tg-"):]
			case tag == "tg-emoji" && attr == "emoji-id":
				arg = v
			case tag == "blockquote" && attr == "expandable":
				arg = "1"
			}
			j = k
		}
		if tag == "span" && arg != "spoiler" {
			return "", nil, entErr("Tag \"span\" must have class \"tg-spoiler\" at byte offset %d", begin)
		}
		stack = append(stack, open{tag: tag, arg: arg, start: off16, byteOff: begin})
		i = j + 1
	}
	if len(stack) > 0 {
		return "", nil, entErr("Can't find end tag corresponding to start tag \"%s\"", stack[len(stack)-1].tag)
	}
	sortEntities(ents)
	return out.String(), ents, nil
}

// sortEntities orders entities as Telegram returns them: by offset, outer
// (longer) first.
func sortEntities(ents []apiEntity) {
	slices.SortStableFunc(ents, func(a, b apiEntity) int {
		if a.Offset != b.Offset {
			return a.Offset - b.Offset
		}
		return b.Length - a.Length
	})
}

// decodeHTMLEntity decodes the entity at the start of s (which begins with
// '&') and reports how many bytes it took; 0 means it is not an entity.
func decodeHTMLEntity(s string) (rune, int) {
	end := strings.IndexByte(s, ';')
	if end < 2 || end > 12 {
		return 0, 0
	}
	name := s[1:end]
	switch name {
	case "lt":
		return '<', end + 1
	case "gt":
		return '>', end + 1
	case "amp":
		return '&', end + 1
	case "quot":
		return '"', end + 1
	}
	if name[0] != '#' || len(name) < 2 {
		return 0, 0
	}
	var (
		v   uint64
		err error
	)
	if name[1] == 'x' || name[1] == 'X' {
		v, err = strconv.ParseUint(name[2:], 16, 32)
	} else {
		v, err = strconv.ParseUint(name[1:], 10, 32)
	}
	if err != nil || v == 0 || v > utf8.MaxRune || (v >= 0xD800 && v <= 0xDFFF) {
		return 0, 0
	}
	return rune(v), end + 1
}

// markup is a parsed reply_markup.
type markup struct {
	inline     json.RawMessage // canonical {"inline_keyboard":...}, nil if none
	keyboard   [][]Button
	reply      [][]string
	remove     bool
	forceReply bool
}

// parseReplyMarkup validates reply_markup the way Telegram does for the
// cases bots get wrong. inlineOnly is for edits, which only take inline
// keyboards.
func parseReplyMarkup(raw string, inlineOnly bool) (markup, *apiError) {
	var mk markup
	if strings.TrimSpace(raw) == "" {
		return mk, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &obj); err != nil {
		return mk, badRequest("can't parse reply keyboard markup JSON object")
	}
	if ik, ok := obj["inline_keyboard"]; ok {
		var rows [][]apiInlineButton
		if err := json.Unmarshal(ik, &rows); err != nil {
			return mk, badRequest("can't parse inline keyboard button: %v", "field \"inline_keyboard\" must be an Array of Arrays")
		}
		mk.keyboard = make([][]Button, len(rows))
		for i, row := range rows {
			mk.keyboard[i] = make([]Button, 0, len(row))
			for _, b := range row {
				pb, aerr := checkInlineButton(b)
				if aerr != nil {
					return markup{}, aerr
				}
				mk.keyboard[i] = append(mk.keyboard[i], pb)
			}
		}
		// Re-marshalling gives a canonical form, so that "not modified"
		// compares meaning rather than the bot's JSON whitespace.
		canon, _ := json.Marshal(apiInlineMarkup{InlineKeyboard: rows})
		mk.inline = canon
		return mk, nil
	}
	if inlineOnly {
		return mk, badRequest("inline keyboard expected")
	}
	switch {
	case obj["keyboard"] != nil:
		var rows [][]json.RawMessage
		if err := json.Unmarshal(obj["keyboard"], &rows); err != nil {
			return mk, badRequest("can't parse reply keyboard markup JSON object")
		}
		for _, row := range rows {
			var texts []string
			for _, b := range row {
				var t string
				if json.Unmarshal(b, &t) != nil {
					var kb struct {
						Text *string `json:"text"`
					}
					if json.Unmarshal(b, &kb) != nil || kb.Text == nil {
						return mk, badRequest("can't parse keyboard button: Can't find field \"text\"")
					}
					t = *kb.Text
				}
				if t == "" {
					return mk, badRequest("keyboard button text must be non-empty")
				}
				texts = append(texts, t)
			}
			mk.reply = append(mk.reply, texts)
		}
	case obj["remove_keyboard"] != nil:
		mk.remove = true
	case obj["force_reply"] != nil:
		mk.forceReply = true
	default:
		return mk, badRequest("can't parse reply keyboard markup JSON object")
	}
	return mk, nil
}

func checkInlineButton(b apiInlineButton) (Button, *apiError) {
	if b.Text == nil {
		return Button{}, badRequest("can't parse inline keyboard button: Can't find field \"text\"")
	}
	if *b.Text == "" {
		return Button{}, badRequest("inline keyboard button text must be non-empty")
	}
	pb := Button{Text: *b.Text}
	actions := 0
	if b.CallbackData != nil {
		actions++
		// Telegram answers an empty callback_data with the confusing
		// "text buttons" error; keep it, bots log exactly that.
		if *b.CallbackData == "" {
			return Button{}, badRequest("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
		}
		if len(*b.CallbackData) > 64 {
			return Button{}, badRequest("BUTTON_DATA_INVALID")
		}
		pb.CallbackData = *b.CallbackData
	}
	if b.URL != nil {
		actions++
		u, err := url.Parse(*b.URL)
		if *b.URL == "" || err != nil || strings.ContainsAny(*b.URL, " \n") ||
			(u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "tg") ||
			((u.Scheme == "http" || u.Scheme == "https") && u.Host == "") {
			return Button{}, badRequest("BUTTON_URL_INVALID")
		}
		pb.URL = *b.URL
	}
	for _, present := range []bool{b.SwitchInlineQuery != nil, b.SwitchInlineQueryCurrentChat != nil, b.LoginURL != nil, b.WebApp != nil, b.CallbackGame != nil, b.CopyText != nil, b.Pay} {
		if present {
			actions++
		}
	}
	if actions == 0 {
		return Button{}, badRequest("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
	}
	return pb, nil
}

func sameMarkup(a, b json.RawMessage) bool { return bytes.Equal(a, b) }

// entityError carries Telegram's own wording of a parse failure (which is
// capitalised, unlike Go error strings) to the "can't parse entities: "
// description.
type entityError string

func (e entityError) Error() string { return string(e) }

func entErr(format string, a ...any) error { return entityError(fmt.Sprintf(format, a...)) }

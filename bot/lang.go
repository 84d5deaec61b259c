package bot

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// languageName is a language's name in itself, for the language picker: a user who
// cannot read the current language must still find their own. The catalog's
// ui.language_name wins; CLDR's self-name covers languages not translated yet.
func (b *Bot) languageName(lang string) string {
	if b.cat.Has(lang, "ui.language_name") {
		return b.cat.Text(lang, "ui.language_name", nil)
	}
	name := display.Self.Name(language.Make(lang))
	if name == "" {
		return lang
	}
	r, size := utf8.DecodeRuneInString(name)
	return string(unicode.ToTitle(r)) + name[size:]
}

// clientLang is the first contact's language: the closest supported language to
// what the Telegram client says it speaks.
func (b *Bot) clientLang(code string) string {
	return b.cat.Match(strings.TrimSpace(code))
}

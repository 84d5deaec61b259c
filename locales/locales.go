// Package locales holds every user-facing text as go-i18n message files, one file per
// area and language (cso.ru.yaml, ui.az.yaml), and the Catalog that serves them.
package locales

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"
	"gopkg.in/yaml.v3"
)

//go:embed *.yaml
var embedded embed.FS

// Fallback is the language used when a user's language is unknown or lacks a message.
const Fallback = "en"

// Catalog serves localised messages. It is read-only after Load and safe for
// concurrent use.
type Catalog struct {
	bundle  *i18n.Bundle
	langs   []string
	matcher language.Matcher
	// where[lang][id] is the file and line that defines the message, for lint.
	where      map[string]map[string]Source
	localizers map[string]*i18n.Localizer
	// texts[id][k] is what Text returns for id in langs[k], resolved at load for every
	// id some locale defines, so that the hot path is one map lookup instead of
	// go-i18n's language matching and template execution. An id missing here is in
	// no locale, and Text returns "" for it.
	texts map[string][]text
}

// text is a message resolved for one language: the final string, or, for a message
// with {{.Name}} placeholders, the pieces to join with the data. slow marks a message
// whose template only go-i18n can run.
type text struct {
	s     string
	parts []part
	slow  bool
}

// part is literal text followed by the placeholder name (empty at the end).
type part struct {
	lit, name string
}

// Source is where a message is defined.
type Source struct {
	File         string
	Line         int
	Placeholders []string
	Plural       bool
}

// Embedded loads the message files built into the binary.
func Embedded() (*Catalog, error) { return Load(embedded, ".") }

// Load reads every *.yaml message file in dir of fsys.
func Load(fsys fs.FS, dir string) (*Catalog, error) {
	c := &Catalog{bundle: i18n.NewBundle(language.English), where: map[string]map[string]Source{}}
	sources := map[string]map[string]*i18n.Message{} // lang → id → message
	c.bundle.RegisterUnmarshalFunc("yaml", yaml.Unmarshal)
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read locales: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".yaml") {
			continue
		}
		file := path.Join(dir, name)
		src, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		mf, err := c.bundle.ParseMessageFileBytes(src, file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		lang := mf.Tag.String()
		if err := c.index(lang, name, src); err != nil {
			return nil, err
		}
		if sources[lang] == nil {
			sources[lang] = map[string]*i18n.Message{}
		}
		for _, m := range mf.Messages {
			sources[lang][m.ID] = m
		}
	}
	for lang := range c.where {
		c.langs = append(c.langs, lang)
	}
	sort.Strings(c.langs)
	tags := []language.Tag{language.English} // the matcher's first tag is its default
	for _, l := range c.langs {
		if l != Fallback {
			tags = append(tags, language.Make(l))
		}
	}
	c.matcher = language.NewMatcher(tags)
	c.resolve(sources)
	return c, nil
}

// resolve fills localizers and texts. Which language serves a message is left
// to go-i18n itself (the tag Localize reports), so the fallback rules cannot drift
// from those of the slow path.
func (c *Catalog) resolve(sources map[string]map[string]*i18n.Message) {
	c.localizers = make(map[string]*i18n.Localizer, len(c.langs))
	c.texts = map[string][]text{}
	for _, ids := range sources {
		for id := range ids {
			c.texts[id] = make([]text, len(c.langs))
		}
	}
	for k, lang := range c.langs {
		loc := i18n.NewLocalizer(c.bundle, lang, Fallback)
		c.localizers[lang] = loc
		var lc i18n.LocalizeConfig
		for id, texts := range c.texts {
			lc.MessageID = id
			s, tag, _ := loc.LocalizeWithTag(&lc)
			m := sources[tag.String()][id]
			if m == nil || !strings.Contains(m.Other, "{{") {
				texts[k] = text{s: s}
				continue
			}
			parts, ok := split(m.Other)
			if m.LeftDelim != "" || m.RightDelim != "" || !ok {
				texts[k] = text{slow: true}
				continue
			}
			texts[k] = text{parts: parts}
		}
	}
}

// lang returns the position of lang in c.langs, or -1. A scan beats a map here: there
// are a dozen or so codes of two or three letters.
func (c *Catalog) lang(lang string) int {
	for k, l := range c.langs {
		if l == lang {
			return k
		}
	}
	return -1
}

// split cuts a template made of text and {{.Name}} actions only into parts; false
// for anything else (pipelines, functions, trim markers), which go-i18n renders.
func split(src string) ([]part, bool) {
	var parts []part
	for src != "" {
		loc := placeholder.FindStringSubmatchIndex(src)
		if loc == nil {
			if strings.Contains(src, "{{") {
				return nil, false
			}
			parts = append(parts, part{lit: src})
			break
		}
		lit := src[:loc[0]]
		if strings.Contains(lit, "{{") {
			return nil, false
		}
		parts = append(parts, part{lit: lit, name: src[loc[2]:loc[3]]})
		src = src[loc[1]:]
	}
	return parts, true
}

// fill joins parts with data the way text/template prints strings and ints; false
// when a value is missing or of another type, left to go-i18n.
func fill(parts []part, data map[string]any) (string, bool) {
	n := 0
	for _, p := range parts {
		n += len(p.lit)
		if p.name == "" {
			continue
		}
		switch v := data[p.name].(type) {
		case string:
			n += len(v)
		case int:
			n += 20
		default:
			return "", false
		}
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p.lit...)
		if p.name == "" {
			continue
		}
		switch v := data[p.name].(type) {
		case string:
			b = append(b, v...)
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		}
	}
	return string(b), true
}

var placeholder = regexp.MustCompile(`\{\{\s*\.(\w+)\s*\}\}`)

// index records where each message is and what it needs, reading the YAML nodes since
// go-i18n keeps no line numbers.
func (c *Catalog) index(lang, file string, src []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if c.where[lang] == nil {
		c.where[lang] = map[string]Source{}
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if prev, dup := c.where[lang][k.Value]; dup {
			return fmt.Errorf("%s:%d: message %q is already defined in %s:%d", file, k.Line, k.Value, prev.File, prev.Line)
		}
		src := Source{File: file, Line: k.Line, Plural: v.Kind == yaml.MappingNode}
		seen := map[string]bool{}
		var texts []string
		if v.Kind == yaml.MappingNode {
			for j := 1; j < len(v.Content); j += 2 {
				texts = append(texts, v.Content[j].Value)
			}
		} else {
			texts = []string{v.Value}
		}
		for _, t := range texts {
			for _, m := range placeholder.FindAllStringSubmatch(t, -1) {
				if !seen[m[1]] {
					seen[m[1]] = true
					src.Placeholders = append(src.Placeholders, m[1])
				}
			}
		}
		sort.Strings(src.Placeholders)
		c.where[lang][k.Value] = src
	}
	return nil
}

// Langs returns the languages that have at least one message file, sorted.
func (c *Catalog) Langs() []string { return c.langs }

// Has reports whether lang itself defines id (no fallback).
func (c *Catalog) Has(lang, id string) bool {
	_, ok := c.where[lang][id]
	return ok
}

// Where returns where lang defines id.
func (c *Catalog) Where(lang, id string) (Source, bool) {
	s, ok := c.where[lang][id]
	return s, ok
}

// IDs returns every message id lang defines.
func (c *Catalog) IDs(lang string) []string {
	ids := make([]string, 0, len(c.where[lang]))
	for id := range c.where[lang] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Match picks the supported language closest to what a client says it speaks
// (Telegram's language_code, an Accept-Language value), falling back to English.
func (c *Catalog) Match(client string) string {
	if client == "" {
		return Fallback
	}
	tags, _, err := language.ParseAcceptLanguage(client)
	if err != nil || len(tags) == 0 {
		return Fallback
	}
	_, i, conf := c.matcher.Match(tags...)
	if conf == language.No || i == 0 {
		return Fallback
	}
	return c.langs[c.langIndex(i)]
}

// langIndex maps a matcher index back to c.langs, which also holds English.
func (c *Catalog) langIndex(i int) int {
	n := 0
	for j, l := range c.langs {
		if l == Fallback {
			continue
		}
		n++
		if n == i {
			return j
		}
	}
	return 0
}

// Supported reports whether lang has message files.
func (c *Catalog) Supported(lang string) bool {
	_, ok := c.where[lang]
	return ok
}

func (c *Catalog) localizer(lang string) *i18n.Localizer {
	if l, ok := c.localizers[lang]; ok {
		return l
	}
	// A language without message files (a test, a client's raw code): rare enough
	// that a localizer per call costs nothing worth keeping one for.
	return i18n.NewLocalizer(c.bundle, lang, Fallback)
}

// Text returns the message in lang, else in English, else "": a user never sees a
// message id.
func (c *Catalog) Text(lang, id string, data map[string]any) string {
	texts, ok := c.texts[id]
	if !ok {
		return "" // in no locale at all, whatever the language
	}
	if k := c.lang(lang); k >= 0 {
		switch t := &texts[k]; {
		case t.parts != nil:
			if s, ok := fill(t.parts, data); ok {
				return s
			}
		case !t.slow:
			return t.s
		}
	}
	// On a fallback go-i18n returns the English text together with an error; the text
	// is what we want, and a message missing everywhere comes back as "".
	s, _ := c.localizer(lang).Localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data})
	return s
}

// Plural returns the plural form for count, chosen by the CLDR rules of lang.
func (c *Catalog) Plural(lang, id string, count int, data map[string]any) string {
	if data == nil {
		data = map[string]any{"Count": count}
	}
	s, _ := c.localizer(lang).Localize(&i18n.LocalizeConfig{MessageID: id, PluralCount: count, TemplateData: data})
	return s
}

// Files returns the embedded message files.
func Files() embed.FS { return embedded }

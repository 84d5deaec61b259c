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
	"strings"
	"sync"

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
	localizers sync.Map // lang → *i18n.Localizer
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
	return c, nil
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
	if l, ok := c.localizers.Load(lang); ok {
		return l.(*i18n.Localizer)
	}
	l, _ := c.localizers.LoadOrStore(lang, i18n.NewLocalizer(c.bundle, lang, Fallback))
	return l.(*i18n.Localizer)
}

// Text returns the message in lang, else in English, else "": a user never sees a
// message id.
func (c *Catalog) Text(lang, id string, data map[string]any) string {
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

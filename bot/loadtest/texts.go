package loadtest

import (
	"sync"

	"github.com/dialoq/dialoq/locales"
)

// textCache is the users' translator: the catalog, remembering every text asked for
// without template data. A thousand mirrors ask for the same question texts and
// labels over and over, and go-i18n renders each from scratch; the harness shares
// the CPU with the bots it measures, so it must not spend it on that. The bots keep
// the plain catalog, as in production.
type textCache struct {
	cat   *locales.Catalog
	texts sync.Map // lang + "\x00" + id → string
}

func (c *textCache) Text(lang, id string, data map[string]any) string {
	if data != nil {
		return c.cat.Text(lang, id, data)
	}
	k := lang + "\x00" + id
	if s, ok := c.texts.Load(k); ok {
		return s.(string)
	}
	s := c.cat.Text(lang, id, nil)
	c.texts.Store(k, s)
	return s
}

func (c *textCache) Plural(lang, id string, count int, data map[string]any) string {
	return c.cat.Plural(lang, id, count, data)
}

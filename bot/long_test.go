package bot_test

import (
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/dialoq/dialoq/bot"
	"github.com/dialoq/dialoq/bot/telegramtest"
	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/locales"
	"github.com/dialoq/dialoq/storage/redisstate/redistest"
)

// A card far longer than a Telegram message, full of characters HTML must escape and
// of emoji (two UTF-16 units each), is split at paragraph and line breaks into
// messages Telegram accepts, the Next button under the last.
func TestLongCardIsSplit(t *testing.T) {
	para := strings.Repeat("Права & обязанности <мигранта> «важно» 🙂 ", 40) // ~1700 units
	card := strings.Join([]string{para, para, para, strings.Repeat("строка без пробелов", 300), para}, "\\n\\n")
	defs := fstest.MapFS{
		"defs/_choices.yaml": {Data: []byte("choices:\n  yes_no: [\"yes\", \"no\"]\n")},
		"defs/long.yaml": {Data: []byte("id: long\nversion: 1\nkind: session\nstakeholder: migrant\nquestions:\n" +
			"  - id: card\n    type: note\n  - id: useful\n    type: select_one\n    choices: yes_no\n")},
	}
	set, err := flows.Load(defs, "defs")
	if err != nil {
		t.Fatal(err)
	}
	locs := fstest.MapFS{}
	if err := fs.WalkDir(locales.Files(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") || (!strings.HasPrefix(path, "ui.") && !strings.HasPrefix(path, "bot.") && !strings.HasPrefix(path, "choices.")) {
			return err
		}
		b, err := fs.ReadFile(locales.Files(), path)
		locs[path] = &fstest.MapFile{Data: b}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	locs["long.en.yaml"] = &fstest.MapFile{Data: []byte(`long.title: "Long"
long.description: "A long card"
long.card: "` + card + `"
long.useful: "Was it useful?"
`)}
	cat, err := locales.Load(locs, ".")
	if err != nil {
		t.Fatal(err)
	}
	rdb, prefix := redistest.Client(t)
	h := newHarnessWith(t, telegramtest.Options{}, rdb, prefix, set, cat)
	ctx := ctxT(t, 30*time.Second)
	h.start(h.config(bot.ModePolling))
	u := h.user(19001, "en")
	u.start(ctx, "long", "")
	want := u.answerAll(ctx)
	u.finish(ctx)
	checkSubmission(t, h.submissions(ctx, 1)[0], want, "")

	var parts []telegramtest.Message
	for _, m := range h.srv.Messages(u.tg.ID) {
		if strings.Contains(m.Text, "Права & обязанности <мигранта>") || strings.Contains(m.Text, "строка без пробелов") {
			parts = append(parts, m)
		}
		if n := telegramtest.UTF16Len(m.Text); n > 4096 {
			t.Errorf("message %d has %d units", m.ID, n)
		}
	}
	if len(parts) < 3 {
		t.Fatalf("the card came in %d messages", len(parts))
	}
	var got strings.Builder
	for _, m := range parts {
		got.WriteString(m.Text)
	}
	if strings.Count(got.String(), "🙂") != strings.Count(card, "🙂") {
		t.Error("text lost in splitting")
	}
	h.checkClean()
}

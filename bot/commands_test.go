package bot_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dialoq/dialoq/bot"
	"github.com/dialoq/dialoq/bot/telegramtest"
	"github.com/dialoq/dialoq/flows"
)

// /start cso-az opens the CSO questionnaire tagged with the code az. A user who had
// another questionnaire open leaves it as a partial submission.
func TestDeepLinkCode(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 60*time.Second)
	h.start(h.config(bot.ModePolling))
	u := h.user(11001, "az")
	u.start(ctx, "cso", "")
	u.answerN(ctx, 6)
	partial, ok := u.eng.Partial(u.st)
	if !ok {
		t.Fatal("no answers yet")
	}
	u.start(ctx, "cso", "az")
	want := u.answerAll(ctx)
	u.finish(ctx)
	subs := h.submissions(ctx, 2)
	for _, s := range subs {
		if s.Complete {
			checkSubmission(t, s, want, "az")
			if s.Code != "az" || s.Lang != "az" {
				t.Errorf("code %q lang %q, want az az", s.Code, s.Lang)
			}
		} else {
			checkSubmission(t, s, partial, "")
		}
	}
	// A link to nothing gets the menu with a note, not silence.
	u.say("/start nosuchflow-x")
	note := h.cat.Text("az", "bot.start.unknown_link", nil)
	u.waitReply(ctx, "menu", func(m telegramtest.Message) bool {
		return hasData(m, "m:cso") && strings.Contains(m.Text, note)
	})
	h.checkClean()
}

// Unknown commands, free text outside a dialogue and non-text messages all get a
// helpful reply with the menu.
func TestMenuForUnexpectedInput(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 30*time.Second)
	h.start(h.config(bot.ModePolling))
	u := h.user(12001, "ru")
	cases := []struct {
		send func()
		note string
	}{
		{func() { u.say("/nonsense") }, h.cat.Text("ru", "bot.unknown_command", map[string]any{"Command": "/nonsense"})},
		{func() { u.say("привет, что это?") }, h.cat.Text("ru", "bot.free_text", nil)},
		{func() {
			u.last = h.srv.SendMessageWith(u.tg, "", map[string]any{"sticker": map[string]any{"file_id": "x"}})
		}, h.cat.Text("ru", "bot.text_only", nil)},
		{func() { u.say("/cancel") }, h.cat.Text("ru", "bot.idle", nil)},
		{func() { u.say("/resume") }, h.cat.Text("ru", "bot.nothing_to_resume", nil)},
	}
	for i, c := range cases {
		c.send()
		u.waitReply(ctx, "menu "+strconv.Itoa(i), func(m telegramtest.Message) bool {
			return hasData(m, "m:cso") && strings.Contains(m.Text, c.note)
		})
	}
	u.say("/help")
	u.waitReply(ctx, "help", func(m telegramtest.Message) bool { return strings.Contains(m.Text, "/forget") })
	h.checkClean()
}

// Forged callback data never crashes the bot, is counted, and still gets an answer.
func TestForgedCallbacks(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 60*time.Second)
	r := h.start(h.config(bot.ModePolling))
	u := h.user(13001, "ru")
	u.start(ctx, "cso", "")
	u.answerN(ctx, 3)
	msg := u.untilChoice(ctx)
	tok := u.out.Prompt.Token
	forged := []string{
		"c:" + strconv.Itoa(tok) + ":9999", // no such option
		"c:" + strconv.Itoa(tok+50) + ":0", // a token not handed out yet (another user's?)
		"t:" + strconv.Itoa(tok) + ":-1",
		"c:99999999999999999999:1",
		"m:nosuchflow",
		"l:xx",
		"x:1",
		"\x00\xff\xfe garbage",
		"",
		strings.Repeat("c", 200),
		"c:1",
		"d:",
		"f:maybe",
	}
	var queries []string
	for i, data := range forged {
		qid := "forged-" + strconv.Itoa(i)
		queries = append(queries, qid)
		raw, _ := json.Marshal(map[string]any{
			"id":            qid,
			"from":          map[string]any{"id": u.tg.ID, "is_bot": false, "first_name": "U", "language_code": "ru"},
			"message":       map[string]any{"message_id": msg.ID, "date": 1, "chat": map[string]any{"id": u.tg.ID, "type": "private"}, "text": "x"},
			"chat_instance": "1",
			"data":          data,
		})
		var body map[string]any
		_ = json.Unmarshal(raw, &body)
		u.last = h.srv.InjectUpdate("callback_query", body)
	}
	h.waitFor(ctx, "forged callbacks handled", func() bool { return r.b.ForgedCallbacks() >= int64(len(forged)) })
	// Every forged query gets an answer (the fake refuses them, not knowing these
	// ids; the call is what counts).
	answered := func() map[string]bool {
		seen := map[string]bool{}
		for _, c := range h.srv.CallLog() {
			if c.Method == "answerCallbackQuery" {
				seen[c.Params["callback_query_id"]] = true
			}
		}
		return seen
	}
	h.waitFor(ctx, "answers to forged queries", func() bool {
		seen := answered()
		for _, q := range queries {
			if !seen[q] {
				return false
			}
		}
		return true
	})
	if got := r.b.ForgedCallbacks(); got != int64(len(forged)) {
		t.Errorf("%d forged callbacks counted, want %d", got, len(forged))
	}
	// The dialogue is untouched and goes on.
	u.refused = true
	want := u.answerAll(ctx)
	u.finish(ctx)
	checkSubmission(t, h.submissions(ctx, 1)[0], want, "")
	h.checkClean()
}

// /forget asks first; "no" keeps everything, "yes" deletes the state, and says that
// submitted answers cannot be traced back.
func TestForget(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 30*time.Second)
	r := h.start(h.config(bot.ModePolling))
	u := h.user(14001, "ru")
	u.start(ctx, "cso", "")
	u.answerN(ctx, 3)

	u.say("/forget")
	ask := u.waitReply(ctx, "confirmation", func(m telegramtest.Message) bool { return hasData(m, "f:yes") })
	u.press(ask.ID, "f:no")
	u.waitReply(ctx, "kept", func(m telegramtest.Message) bool {
		return m.ID == ask.ID && strings.Contains(m.Text, h.cat.Text("ru", "bot.forget.kept", nil))
	})
	if d, _ := r.b.Inspect(ctx, u.tg.ID, u.tg.ID); d.Flow != "cso" {
		t.Fatalf("state lost after refusing: %+v", d)
	}
	u.say("/forget")
	ask = u.waitReply(ctx, "confirmation", func(m telegramtest.Message) bool { return hasData(m, "f:yes") })
	u.press(ask.ID, "f:yes")
	u.waitReply(ctx, "deleted", func(m telegramtest.Message) bool {
		return m.ID == ask.ID && strings.Contains(m.Text, h.cat.Text("ru", "bot.forget.done", nil))
	})
	if d, _ := r.b.Inspect(ctx, u.tg.ID, u.tg.ID); d.Exists {
		t.Errorf("state still stored: %+v", d)
	}
	keys, _ := h.rdb.Keys(ctx, h.prefix+"*:"+strconv.FormatInt(u.tg.ID, 10)+"*").Result()
	if len(keys) > 0 {
		t.Errorf("keys left under the user's id: %v", keys)
	}
	h.checkClean()
}

// The language is taken from the client at first contact and can be switched in
// the middle of a questionnaire without losing an answer.
func TestLanguageSwitchKeepsAnswers(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 60*time.Second)
	h.start(h.config(bot.ModePolling))
	u := h.user(15001, "ru-RU")
	u.start(ctx, "cso", "")
	u.answerN(ctx, 5)
	before := len(u.st.Answers)

	u.say("/language")
	picker := u.waitReply(ctx, "picker", func(m telegramtest.Message) bool { return hasData(m, "l:az") })
	if b, ok := picker.FindButton("✅ " + h.cat.Text("ru", "ui.language_name", nil)); !ok || b.CallbackData != "l:ru" {
		t.Errorf("current language not ticked: %v", picker.Keyboard)
	}
	u.press(picker.ID, "l:az")
	u.mirror(flows.Input{Kind: flows.InLang, Lang: "az"})
	u.lang = "az"
	if len(u.st.Answers) != before {
		t.Fatal("mirror lost answers")
	}
	p := u.out.Prompt
	u.waitReply(ctx, "question in Azerbaijani", func(m telegramtest.Message) bool {
		return hasToken(m, p.Token) && strings.Contains(m.Text, firstLine(p.Text))
	})
	u.refused = false
	want := u.answerAll(ctx)
	u.finish(ctx)
	sub := h.submissions(ctx, 1)[0]
	checkSubmission(t, sub, want, "")
	if sub.Lang != "az" {
		t.Errorf("lang %q, want az", sub.Lang)
	}
	h.checkClean()
}

// Each supported language gets its own command menu, plus a default.
func TestCommandsRegistered(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 30*time.Second)
	b := h.newBot(ctx)
	if err := b.RegisterCommands(ctx); err != nil {
		t.Fatal(err)
	}
	def := h.srv.Commands("")
	ru := h.srv.Commands("ru")
	if len(def) == 0 || len(ru) != len(def) {
		t.Fatalf("default %d commands, ru %d", len(def), len(ru))
	}
	for i, c := range ru {
		if c.Command != def[i].Command {
			t.Errorf("command %d: %s vs %s", i, c.Command, def[i].Command)
		}
		if want := h.cat.Text("ru", "bot.cmd."+c.Command, nil); c.Description != want {
			t.Errorf("/%s: %q, want %q", c.Command, c.Description, want)
		}
	}
	for _, l := range h.cat.Langs() {
		if len(h.srv.Commands(l)) == 0 {
			t.Errorf("no commands for %s", l)
		}
	}
}

// Messages in a right-to-left language start with a right-to-left mark.
func TestRightToLeft(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	if !h.cat.Supported("fa") {
		t.Skip("no Persian texts")
	}
	ctx := ctxT(t, 30*time.Second)
	h.start(h.config(bot.ModePolling))
	u := h.user(16001, "fa")
	u.start(ctx, "cso", "")
	u.answerN(ctx, 4)
	u.waitPrompt(ctx)
	for _, m := range h.srv.Messages(u.tg.ID) {
		if !strings.HasPrefix(m.Text, "\u200f") {
			t.Errorf("message %d does not start with U+200F: %q", m.ID, m.Text)
		}
	}
	h.checkClean()
}

// A questionnaire left alone for PartialAfter is posted once as a partial
// submission; the user hears about it at the next contact.
func TestSweeperPostsAbandonedQuestionnaire(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 60*time.Second)
	var now atomic.Int64
	now.Store(time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC).UnixNano())
	cfg := h.config(bot.ModePolling)
	cfg.Clock = func() time.Time { return time.Unix(0, now.Load()) }
	r := h.start(cfg)
	u := h.user(17001, "ru")
	u.start(ctx, "cso", "az")
	u.answerN(ctx, 8)
	u.shown = u.waitPrompt(ctx)

	if n, err := r.b.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("swept a fresh dialogue: %d, %v", n, err)
	}
	now.Add(int64(bot.DefaultPartialAfter + time.Hour))
	if n, err := r.b.Sweep(ctx); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	if n, err := r.b.Sweep(ctx); err != nil || n != 0 {
		t.Fatalf("second Sweep = %d, %v; want 0", n, err)
	}
	want, ok := u.eng.Partial(u.st)
	if !ok {
		t.Fatal("mirror has no partial")
	}
	sub := h.submissions(ctx, 1)[0]
	checkSubmission(t, sub, want, "az")
	if sub.Complete {
		t.Error("a partial submission marked complete")
	}
	// The old question is closed; the user is told when they come back.
	u.say("/start")
	closed := h.cat.Plural("ru", "bot.closed", int(bot.DefaultPartialAfter/(24*time.Hour)), nil)
	u.waitReply(ctx, "closed note", func(m telegramtest.Message) bool { return strings.Contains(m.Text, closed) })
	h.checkClean()
}

var _ = context.Background

// /forget withdraws what the user sent: the submissions leave the central store, by
// way of the outbox, and nothing that links them to the user stays behind.
func TestForgetWithdrawsSubmissions(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 60*time.Second)
	h.start(h.config(bot.ModePolling))
	u := h.user(14101, "en")
	u.start(ctx, "hotlines", "")
	u.answerAll(ctx)
	u.finish(ctx)
	h.submissions(ctx, 1)
	other := h.user(14102, "en") // someone else's answers must stay
	other.start(ctx, "hotlines", "")
	other.answerAll(ctx)
	other.finish(ctx)
	h.submissions(ctx, 2)

	u.say("/forget")
	ask := u.waitReply(ctx, "confirmation", func(m telegramtest.Message) bool { return hasData(m, "f:yes") })
	u.press(ask.ID, "f:yes")
	u.waitReply(ctx, "withdrawn", func(m telegramtest.Message) bool {
		return m.ID == ask.ID && strings.Contains(m.Text, h.cat.Plural("en", "bot.forget.withdrawn", 1, map[string]any{"Count": 1}))
	})
	h.waitFor(ctx, "the withdrawal to reach the store", func() bool {
		n, err := h.store.Count(ctx)
		return err == nil && n == 1
	})
	h.checkClean()
}

package bot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"

	"github.com/dialoq/dialoq/bot"
	"github.com/dialoq/dialoq/bot/telegramtest"
	"github.com/dialoq/dialoq/flows"
)

// The bot process stops mid-questionnaire; a new one on the same Redis continues
// where the user was, whether the user presses a button of the old question, sends
// /resume, or answered while no bot was running.
func TestResumeAfterRestart(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 60*time.Second)
	first := h.start(h.config(bot.ModePolling))
	u := h.user(2001, "ru")
	u.start(ctx, "cso", "")
	u.answerN(ctx, 6)
	old := u.untilChoice(ctx) // shown by the first bot, not yet answered
	first.stop(t)

	second := h.start(h.config(bot.ModePolling))
	u.answer(ctx, old) // a button of a message the first process sent
	u.answerN(ctx, 3)

	// While no bot runs, the user sends /resume; the next bot answers it.
	second.stop(t)
	u.say("/resume")
	u.mirror(flows.Input{Kind: flows.InRepeat})
	h.start(h.config(bot.ModePolling))
	want := u.answerAll(ctx)
	u.finish(ctx)
	checkSubmission(t, h.submissions(ctx, 1)[0], want, "")
	h.checkClean()
}

// Two presses of one button, handled at the same moment by two replicas, record
// one answer; both presses get an answer (the loser hears the question was already
// answered or nothing at all).
func TestDoublePressRecordsOneAnswer(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 60*time.Second)
	r := h.start(h.config(bot.ModePolling))
	u := h.user(3001, "ru")
	u.start(ctx, "cso", "")
	msg := u.untilChoice(ctx)
	r.stop(t)

	p := u.out.Prompt
	data := "c:" + strconv.Itoa(p.Token) + ":1"
	u.press(msg.ID, data)
	u.press(msg.ID, data)
	u.mirror(flows.Input{Kind: flows.InChoose, Option: p.Options[1].ID, Token: p.Token})

	// Fetch both updates without confirming them, and hand one to each replica.
	b1, b2 := h.newBot(ctx), h.newBot(ctx)
	updates := h.fetch(ctx, 2)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, b := range []*bot.Bot{b1, b2} {
		wg.Go(func() {
			<-gate
			if err := b.HandleUpdate(ctx, updates[i]); err != nil {
				t.Errorf("HandleUpdate: %v", err)
			}
		})
	}
	close(gate)
	wg.Wait()
	answered := 0
	for _, up := range updates {
		a, _ := h.srv.CallbackAnswer(up.CallbackQuery.ID)
		if a.Answered {
			answered++
		}
	}
	if answered != 2 {
		t.Errorf("%d of 2 presses answered", answered)
	}
	if d, _ := b1.Inspect(ctx, u.tg.ID, u.tg.ID); d.Answers != len(u.st.Answers) {
		t.Errorf("stored %d answers, the user gave %d", d.Answers, len(u.st.Answers))
	}

	// The running bot gets both updates again (never confirmed): both duplicates.
	h.start(h.config(bot.ModePolling))
	want := u.answerAll(ctx)
	u.finish(ctx)
	checkSubmission(t, h.submissions(ctx, 1)[0], want, "")
	h.checkClean()
}

// newBot is a Bot that is not Run: tests call HandleUpdate on it directly.
func (h *harness) newBot(ctx context.Context) *bot.Bot {
	h.t.Helper()
	cfg := h.config(bot.ModePolling)
	b, err := bot.New(ctx, cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// fetch reads n pending updates from the fake without confirming them.
func (h *harness) fetch(ctx context.Context, n int) []bot.Update {
	h.t.Helper()
	api, err := tgbotapi.NewBotAPIWithAPIEndpoint(h.srv.Token(), h.srv.Endpoint())
	if err != nil {
		h.t.Fatal(err)
	}
	var got []tgbotapi.Update
	h.waitFor(ctx, "updates", func() bool {
		got, err = api.GetUpdates(tgbotapi.UpdateConfig{Timeout: 0})
		return err == nil && len(got) >= n
	})
	out := make([]bot.Update, 0, n)
	for _, u := range got[len(got)-n:] {
		out = append(out, asUpdate(h.t, u))
	}
	return out
}

// asUpdate reads what tgbotapi, a client independent of the bot, got from the fake.
func asUpdate(t testing.TB, u tgbotapi.Update) bot.Update {
	t.Helper()
	data, err := json.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	var out bot.Update
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// A press on a question answered before (here by typing) changes nothing and is
// answered politely.
func TestStalePressRefusedPolitely(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 60*time.Second)
	h.start(h.config(bot.ModePolling))
	u := h.user(4001, "ru")
	u.start(ctx, "cso", "")
	msg := u.untilChoice(ctx)
	p := u.out.Prompt
	u.say("1") // answered by typing: the buttons stay on the old message
	u.mirror(flows.Input{Kind: flows.InText, Text: "1"})
	u.shown = u.waitPrompt(ctx)
	qid := u.press(msg.ID, "c:"+strconv.Itoa(p.Token)+":1")
	u.waitAnswer(ctx, qid, h.cat.Text("ru", "bot.stale", nil))
	u.refused = true // the question on screen is still the one shown before the press
	want := u.answerAll(ctx)
	u.finish(ctx)
	checkSubmission(t, h.submissions(ctx, 1)[0], want, "")
	h.checkClean()
}

// Telegram delivers every update twice; each is applied once (a second copy of a
// typed answer would otherwise answer the next question too).
func TestRedeliveredUpdatesAppliedOnce(t *testing.T) {
	h := newHarness(t, telegramtest.Options{DeliverTwice: true})
	ctx := ctxT(t, 60*time.Second)
	r := h.start(h.config(bot.ModeWebhook))
	u := h.user(5001, "ru")
	u.start(ctx, "cso", "")
	want := u.answerAll(ctx)
	u.finish(ctx)
	checkSubmission(t, h.submissions(ctx, 1)[0], want, "")
	if len(h.srv.Deliveries()) < 2*h.srv.Stats().Delivered {
		t.Errorf("expected every update to be delivered twice")
	}
	h.checkClean()
	if got := r.b.ForgedCallbacks(); got != 0 {
		t.Errorf("%d forged callbacks", got)
	}
	m := metrics(t, r.b)
	for _, want := range []string{`dialoq_bot_updates_total{kind="callback",result="duplicate"}`, "dialoq_bot_outbox_dead 0", `dialoq_bot_submissions_enqueued_total{complete="true"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// A webhook call without the right secret is refused and not processed.
func TestWebhookSecret(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 30*time.Second)
	r := h.start(h.config(bot.ModeWebhook))
	h.srv.AddUser(telegramtest.User{ID: 6001})
	body, _ := json.Marshal(map[string]any{"update_id": 1, "message": map[string]any{
		"message_id": 1, "date": 1, "text": "/start",
		"chat":     map[string]any{"id": 6001, "type": "private"},
		"from":     map[string]any{"id": 6001, "first_name": "X", "is_bot": false},
		"entities": []map[string]any{{"type": "bot_command", "offset": 0, "length": 6}},
	}})
	for name, secret := range map[string]string{"wrong": "test-secret_124", "none": "", "prefix": "test-secret"} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
		if secret != "" {
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s secret: status %d, want 401", name, resp.StatusCode)
		}
	}
	if d, _ := r.b.Inspect(ctx, 6001, 6001); d.Exists || len(h.srv.Messages(6001)) > 0 {
		t.Error("an unauthenticated update was processed")
	}
	// The same update with the secret is processed.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	req.Header.Set("X-Telegram-Bot-Api-Secret-Token", "test-secret_123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(h.srv.Messages(6001)) == 0 {
		t.Errorf("status %d, %d messages", resp.StatusCode, len(h.srv.Messages(6001)))
	}
	// An oversized body is refused before it is read whole.
	big := bytes.Repeat([]byte(" "), 2<<20)
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(big))
	req.Header.Set("X-Telegram-Bot-Api-Secret-Token", "test-secret_123")
	if resp, err = http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized body: status %d", resp.StatusCode)
		}
	}
}

// An update being handled when the process is told to stop is finished (committed
// and answered) and confirmed, so the next process does not see it again.
func TestShutdownFinishesInFlightUpdate(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 30*time.Second)
	r := h.start(h.config(bot.ModePolling))
	u := h.user(18001, "en")
	h.srv.InjectFault("sendMessage", telegramtest.Delay(300*time.Millisecond), 1)
	u.say("/start cso")
	u.mirror(flows.Input{Kind: flows.InStart, Flow: "cso", Lang: "en"})
	h.waitFor(ctx, "commit", func() bool {
		d, err := r.b.Inspect(ctx, u.tg.ID, u.tg.ID)
		return err == nil && d.Flow == "cso"
	})
	r.stop(t) // the reply is still held up by the delay
	if _, err := h.srv.WaitMessages(ctx, u.tg.ID, telegramtest.HasMessages(1)); err != nil || len(h.srv.Messages(u.tg.ID)) != 1 {
		t.Fatalf("the in-flight update was not finished: %v", h.srv.Messages(u.tg.ID))
	}
	if n := h.srv.Stats().Pending; n != 0 {
		t.Errorf("%d updates left unconfirmed", n)
	}
	next := h.start(h.config(bot.ModePolling))
	want := u.answerAll(ctx)
	u.finish(ctx)
	checkSubmission(t, h.submissions(ctx, 1)[0], want, "")
	if m := metrics(t, next.b); strings.Contains(m, `result="duplicate"`) {
		t.Error("the successor saw an update its predecessor had handled")
	}
}

// In webhook mode a pressed button is answered in the webhook's reply, without a
// request of its own, and no query is left unanswered.
func TestWebhookReplyAnswersButtons(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 60*time.Second)
	h.start(h.config(bot.ModeWebhook))
	u := h.user(8201, "en")
	u.say("/start")
	menu := u.waitReply(ctx, "menu", func(m telegramtest.Message) bool { return hasData(m, "m:cso") })
	u.press(menu.ID, "m:cso")
	u.mirror(flows.Input{Kind: flows.InStart, Flow: "cso", Lang: u.lang})
	u.answerN(ctx, 8)
	h.checkClean()
	answers := 0
	for _, c := range h.srv.CallLog() {
		if c.Method != "answerCallbackQuery" {
			continue
		}
		answers++
		if !c.WebhookReply {
			t.Errorf("answerCallbackQuery made by a request of its own: %+v", c)
		}
	}
	if answers < 2 {
		t.Fatalf("%d buttons answered, want at least the menu's and a question's", answers)
	}
}

package bot_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dialoq/dialoq/bot"
	"github.com/dialoq/dialoq/bot/telegramtest"
	"github.com/dialoq/dialoq/flows"
)

// A CSO staff member answers the whole questionnaire in Russian, by buttons and by
// typing, going back once and fixing refused answers; the submission reaches the
// central store once, with every answer as given.
func TestCSOQuestionnaireInRussian(t *testing.T) {
	for _, mode := range []bot.Mode{bot.ModePolling, bot.ModeWebhook} {
		t.Run(string(mode), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, telegramtest.Options{})
			h.start(h.config(mode))
			ctx := ctxT(t, 60*time.Second)
			u := h.user(1001, "ru")
			u.start(ctx, "cso", "")
			want := u.answerAll(ctx)
			u.finish(ctx)
			subs := h.submissions(ctx, 1)
			checkSubmission(t, subs[0], want, "")
			if subs[0].Lang != "ru" || !subs[0].Complete {
				t.Errorf("lang %q complete %v", subs[0].Lang, subs[0].Complete)
			}
			// The questions were asked in Russian.
			found := false
			for _, m := range h.srv.Messages(u.tg.ID) {
				if strings.Contains(m.Text, h.cat.Text("ru", "cso.consent", nil)) {
					found = true
				}
			}
			if !found {
				t.Error("the consent question was never shown in Russian")
			}
			h.checkClean()
			if n := h.rec.posts[subs[0].ID]; n < 1 {
				t.Errorf("posted %d times", n)
			}
		})
	}
}

// Every built-in flow, questionnaires and sessions alike, can be taken to the end
// through the bot, and its submission arrives as answered.
func TestEveryFlow(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 60*time.Second)
	h.start(h.config(bot.ModePolling))
	defs := h.set.All()
	want := map[string]*flows.Completion{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, d := range defs {
		wg.Go(func() {
			u := h.user(int64(20000+i), []string{"ru", "az", "en", "fa"}[i%4])
			u.start(ctx, d.ID, "")
			c := u.answerAll(ctx)
			u.finish(ctx)
			mu.Lock()
			want[d.ID] = c
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, s := range h.submissions(ctx, len(defs)) {
		checkSubmission(t, s, want[s.Flow], "")
	}
	h.checkClean()
}

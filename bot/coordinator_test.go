package bot_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dialoq/dialoq/bot"
	"github.com/dialoq/dialoq/bot/telegramtest"
)

const adminID = 39999

// Someone who is neither admin nor coordinator gets the ordinary menu for every
// coordinator command: no stats, no export, no invite, no job. A coordinator added
// by the admin gets them, within their countries.
func TestCoordinatorCommandsNeedTheRole(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 40*time.Second)
	cfg := h.config(bot.ModePolling)
	cfg.Admins = []int64{adminID}
	cfg.Reports = bot.StoreReports{Store: h.store}
	h.start(cfg)

	u := h.user(31001, "en")
	for _, cmd := range []string{
		"/coord add 31001 AZ", "/coord list", "/coord invite AZ", "/invite cso AZ-ngo-1", "/invites",
		"/stats", "/stats cso", "/export cso csv", "/export cso xlsx", "/remind cso", "/broadcast all Hello",
	} {
		u.say(cmd)
		u.waitReply(ctx, "menu after "+cmd, func(m telegramtest.Message) bool { return hasData(m, "m:cso") })
	}
	for _, m := range h.srv.Messages(u.tg.ID) {
		if strings.Contains(m.Text, "Responses") || strings.Contains(m.Text, "t.me/") || len(m.Buttons()) > 0 && strings.HasPrefix(m.Buttons()[0].CallbackData, "j:") {
			t.Errorf("non-coordinator got %q", m.Text)
		}
	}
	if d := h.srv.Documents(u.tg.ID); len(d) != 0 {
		t.Errorf("non-coordinator got %d documents", len(d))
	}
	if n, _ := h.rdb.HLen(ctx, h.prefix+":coord").Result(); n != 0 {
		t.Errorf("%d coordinators after the attempts", n)
	}
	if n, _ := h.rdb.Exists(ctx, h.prefix+":jobs").Result(); n != 0 {
		t.Error("a job was queued")
	}

	// The admin adds a coordinator for Azerbaijan.
	admin := h.user(adminID, "en")
	admin.say("/coord add 31002 AZ")
	admin.waitReply(ctx, "added", func(m telegramtest.Message) bool { return strings.Contains(m.Text, "31002") })
	c := h.user(31002, "en")
	c.say("/stats cso")
	c.waitReply(ctx, "stats", func(m telegramtest.Message) bool { return strings.Contains(m.Text, "Responses") })
	c.say("/export cso csv")
	if err := h.srv.WaitFor(ctx, func() bool { return len(h.srv.Documents(c.tg.ID)) == 1 }); err != nil {
		t.Fatal("no export document")
	}
	c.say("/broadcast GE hello")
	c.waitReply(ctx, "scope", func(m telegramtest.Message) bool { return strings.Contains(m.Text, "only AZ") })
	c.say("/invite cso AZ-ngo-042")
	c.waitReply(ctx, "link", func(m telegramtest.Message) bool { return strings.Contains(m.Text, "?start=cso-AZ-ngo-042") })

	// A respondent follows the link and finishes: /invites counts both.
	r := h.user(31003, "en")
	r.start(ctx, "cso", "AZ-ngo-042")
	r.answerAll(ctx)
	r.finish(ctx)
	c.say("/invites")
	c.waitReply(ctx, "invites", func(m telegramtest.Message) bool {
		for _, line := range strings.Split(m.Text, "\n") {
			if strings.Join(strings.Fields(line), " ") == "cso-AZ-ngo-042 AZ 1 1" {
				return true
			}
		}
		return false
	})

	// The admin broadcasts to everyone: preview, confirm, progress, delivery.
	admin.say("/broadcast all Meeting on Friday")
	prev := admin.waitReply(ctx, "preview", func(m telegramtest.Message) bool { return strings.Contains(m.Text, "Meeting on Friday") })
	var goData string
	for _, btn := range prev.Buttons() {
		if strings.HasPrefix(btn.CallbackData, "j:go:") {
			goData = btn.CallbackData
		}
	}
	admin.press(prev.ID, goData)
	for _, id := range []int64{u.tg.ID, r.tg.ID} {
		if _, err := h.srv.WaitMessage(ctx, id, func(m telegramtest.Message) bool { return strings.Contains(m.Text, "Meeting on Friday") }); err != nil {
			t.Fatalf("chat %d: no broadcast: %v", id, err)
		}
	}
	if _, err := h.srv.WaitMessage(ctx, adminID, func(m telegramtest.Message) bool { return m.ID == prev.ID && strings.Contains(m.Text, "Finished") }); err != nil {
		t.Fatal("progress never showed the end")
	}
	h.checkClean()
}

// testClock is a settable clock for the bot.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// Reminders go to the users with an unfinished questionnaire once each is due:
// after 2 days, then 7 days, 3 at most; never at night in the user's time zone
// (Baku for Azerbaijani speakers), never after /stop, and answering again does not
// undo /stop.
func TestReminders(t *testing.T) {
	h := newHarness(t, telegramtest.Options{})
	ctx := ctxT(t, 40*time.Second)
	// 16:00 UTC is 20:00 in Baku.
	base := time.Date(2025, 3, 10, 16, 0, 0, 0, time.UTC)
	clock := &testClock{t: base}
	cfg := h.config(bot.ModePolling)
	cfg.Clock = clock.now
	cfg.Reminders = bot.Reminders{Disabled: true} // driven by the test
	cfg.PartialAfter = 60 * 24 * time.Hour
	r := h.start(cfg)

	az := h.user(32001, "az")
	az.start(ctx, "cso", "")
	az.answerN(ctx, 2)
	stopper := h.user(32002, "az")
	stopper.start(ctx, "cso", "")
	stopper.answerN(ctx, 2)
	stopper.say("/stop")
	stopper.waitReply(ctx, "stopped", func(m telegramtest.Message) bool { return hasData(m, "rm:on") })
	stopper.answerN(ctx, 1) // answering again keeps the opt-out
	session := h.user(32003, "az")
	session.start(ctx, "rights", "")

	reminders := func(u *user) int {
		n := 0
		for _, m := range h.srv.Messages(u.tg.ID) {
			if hasData(m, "rm:off") {
				n++
			}
		}
		return n
	}
	step := func(at time.Time, want int) {
		t.Helper()
		clock.set(at)
		n, err := r.b.Remind(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("at %v: %d reminders sent, want %d", at, n, want)
		}
	}
	step(base.Add(47*time.Hour), 0) // not due yet
	step(base.Add(49*time.Hour), 0) // due, but 21:00 in Baku
	step(base.Add(61*time.Hour), 1) // 09:00 in Baku
	step(base.Add(61*time.Hour), 0) // not twice
	step(base.Add(61*time.Hour+6*24*time.Hour), 0)
	step(base.Add(61*time.Hour+7*24*time.Hour), 1)
	step(base.Add(61*time.Hour+14*24*time.Hour), 1)
	step(base.Add(61*time.Hour+21*24*time.Hour), 0) // three in all
	if got := reminders(az); got != 3 {
		t.Errorf("az got %d reminders, want 3", got)
	}
	if got := reminders(stopper) + reminders(session); got != 0 {
		t.Errorf("opted-out user and session user got %d reminders", got)
	}
	h.checkClean()
}

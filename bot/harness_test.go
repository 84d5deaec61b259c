package bot_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/bot"
	"github.com/dialoq/dialoq/bot/telegramtest"
	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/locales"
	"github.com/dialoq/dialoq/storage/central"
	"github.com/dialoq/dialoq/storage/flowschema"
	"github.com/dialoq/dialoq/storage/redisstate/redistest"
)

// Shared, read-only after loading.
var (
	loadOnce sync.Once
	testSet  *flows.Set
	testCat  *locales.Catalog
	loadErr  error
)

func runtimeT(t testing.TB) (*flows.Set, *locales.Catalog) {
	t.Helper()
	loadOnce.Do(func() {
		testSet, loadErr = flows.Builtin()
		if loadErr == nil {
			testCat, loadErr = locales.Embedded()
		}
	})
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return testSet, testCat
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("DIALOQ_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// recorder is the central store as the outbox worker sees it, counting every post.
type recorder struct {
	store *central.Store
	mu    sync.Mutex
	posts map[string]int // submission id → posts
}

func (r *recorder) Post(ctx context.Context, s central.Submission) error {
	if err := r.store.Post(ctx, s); err != nil {
		return err
	}
	r.mu.Lock()
	r.posts[s.ID]++
	r.mu.Unlock()
	return nil
}

// Withdraw passes /forget's withdrawals on to the store.
func (r *recorder) Withdraw(ctx context.Context, id string) (bool, error) {
	return r.store.Withdraw(ctx, id)
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for id := range r.posts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// harness is one test's world: a fake Telegram, a Redis prefix, a central store.
type harness struct {
	t      *testing.T
	srv    *telegramtest.Server
	rdb    redis.UniversalClient
	prefix string
	store  *central.Store
	rec    *recorder
	set    *flows.Set
	cat    *locales.Catalog
}

func newHarness(t *testing.T, opts telegramtest.Options) *harness {
	t.Helper()
	set, cat := runtimeT(t)
	rdb, prefix := redistest.Client(t)
	return newHarnessWith(t, opts, rdb, prefix, set, cat)
}

func newHarnessWith(t *testing.T, opts telegramtest.Options, rdb redis.UniversalClient, prefix string, set *flows.Set, cat *locales.Catalog) *harness {
	t.Helper()
	srv := telegramtest.Start(t, opts)
	st, err := central.Open(context.Background(), filepath.Join(t.TempDir(), "central.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st = st.WithSchema(flowschema.New(set, cat))
	return &harness{t: t, srv: srv, rdb: rdb, prefix: prefix, store: st,
		rec: &recorder{store: st, posts: map[string]int{}}, set: set, cat: cat}
}

func (h *harness) config(mode bot.Mode) bot.Config {
	return bot.Config{
		Token:       h.srv.Token(),
		Endpoint:    h.srv.Endpoint(),
		Redis:       h.rdb,
		Prefix:      h.prefix,
		Shards:      8,
		Engine:      flows.NewEngine(h.set, h.cat),
		Catalog:     h.cat,
		Poster:      h.rec,
		OutboxPoll:  20 * time.Millisecond,
		Mode:        mode,
		Workers:     8,
		PollTimeout: 5 * time.Second,
		RetryMin:    10 * time.Millisecond,
		RetryMax:    200 * time.Millisecond,
		Logger:      testLogger(h.t),
	}
}

// running is a Bot being Run, stoppable by the test.
type running struct {
	b      *bot.Bot
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned, with err set
	err    error
	url    string // webhook URL when serving HTTP
}

func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	<-r.done
	if r.err != nil {
		t.Errorf("Run: %v", r.err)
	}
}

// start runs a bot. In webhook mode it listens on a loopback port and registers it.
func (h *harness) start(cfg bot.Config) *running {
	h.t.Helper()
	return h.run(cfg, true)
}

// run runs a bot; a webhook replica registers its own URL only when asked to.
func (h *harness) run(cfg bot.Config, register bool) *running {
	h.t.Helper()
	url := ""
	if cfg.Mode == bot.ModeWebhook {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			h.t.Fatal(err)
		}
		cfg.Listener = ln
		if cfg.WebhookSecret == "" {
			cfg.WebhookSecret = "test-secret_123"
		}
		url = "http://" + ln.Addr().String() + "/telegram"
		cfg.WebhookURL = ""
		if register {
			cfg.WebhookURL = url
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	b, err := bot.New(ctx, cfg)
	if err != nil {
		cancel()
		h.t.Fatal(err)
	}
	r := &running{b: b, cancel: cancel, done: make(chan struct{}), url: url}
	go func() {
		r.err = b.Run(ctx)
		close(r.done)
	}()
	h.t.Cleanup(func() {
		cancel()
		<-r.done
	})
	if cfg.WebhookURL != "" {
		// Run sets the webhook itself; wait until it has.
		h.waitFor(ctxT(h.t, 10*time.Second), "webhook set", func() bool { return h.srv.Calls("setWebhook") > 0 })
	}
	return r
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds (the store and Redis have no change feed).
func (h *harness) waitFor(ctx context.Context, what string, cond func() bool) {
	h.t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			h.t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// submissions waits until the store holds n submissions and returns them.
func (h *harness) submissions(ctx context.Context, n int) []central.Submission {
	h.t.Helper()
	h.waitFor(ctx, fmt.Sprintf("%d submissions", n), func() bool {
		c, err := h.store.Count(ctx)
		return err == nil && c >= n && len(h.rec.ids()) >= n
	})
	var subs []central.Submission
	for _, id := range h.rec.ids() {
		s, err := h.store.Get(ctx, id)
		if err != nil {
			h.t.Fatal(err)
		}
		subs = append(subs, s)
	}
	if c, _ := h.store.Count(ctx); c != n || len(subs) != n {
		h.t.Fatalf("store holds %d submissions (%d posted ids), want %d", c, len(subs), n)
	}
	return subs
}

// checkClean asserts what every test must leave behind: no callback query left
// unanswered, no message refused by Telegram for its text (too long, bad HTML).
func (h *harness) checkClean() {
	h.t.Helper()
	ctx := ctxT(h.t, 10*time.Second)
	// The last answers may still be on their way.
	_ = h.srv.WaitFor(ctx, func() bool { return len(h.srv.UnansweredCallbacks()) == 0 })
	if u := h.srv.UnansweredCallbacks(); len(u) > 0 {
		h.t.Errorf("%d callback queries never answered", len(u))
	}
	for _, c := range h.srv.CallLog() {
		if c.Status == 400 && (c.Method == "sendMessage" || c.Method == "editMessageText") &&
			!strings.Contains(c.Description, "message is not modified") && !strings.Contains(c.Description, "chat not found") {
			h.t.Errorf("%s refused: %s", c.Method, c.Description)
		}
	}
}

// webhookLB spreads webhook deliveries over several replicas, like a load balancer.
func webhookLB(t *testing.T, backends []string) string {
	var n int
	var mu sync.Mutex
	lb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		target := backends[n%len(backends)]
		n++
		mu.Unlock()
		req, err := http.NewRequestWithContext(r.Context(), r.Method, target, r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		// The body may carry a webhook reply, which needs its Content-Type.
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	t.Cleanup(lb.Close)
	return lb.URL + "/telegram"
}

// user plays one Telegram user. It keeps a mirror of the dialogue, stepping its own
// engine with exactly the inputs it sends, so what the bot must have stored is known
// independently of the bot.
type user struct {
	h      *harness
	tg     telegramtest.User
	lang   string
	eng    *flows.Engine
	st     flows.State
	out    flows.Output
	last   int // newest update id this user caused
	rng    *rand.Rand
	backed bool
	// shown is the message of the current prompt; refused is set when a press on it
	// was refused, so the same message is answered again.
	shown   telegramtest.Message
	refused bool
	lastQID string
	retries int
}

func (h *harness) user(id int64, langCode string) *user {
	return &user{h: h, tg: telegramtest.User{ID: id, FirstName: "U" + strconv.FormatInt(id, 10), LanguageCode: langCode},
		lang: h.cat.Match(langCode), eng: flows.NewEngine(h.set, h.cat), rng: rand.New(rand.NewPCG(uint64(id), 7))}
}

func (u *user) fatalf(format string, args ...any) {
	u.h.t.Helper()
	if testing.Verbose() {
		for _, m := range u.h.srv.History(u.tg.ID) {
			u.h.t.Logf("#%d bot=%v after=%d %q %v", m.ID, m.FromBot, m.AfterUpdateID, m.Text, m.Keyboard)
		}
	}
	u.h.t.Fatalf("user %d: "+format, append([]any{u.tg.ID}, args...)...)
}

func (u *user) say(text string) {
	u.last = u.h.srv.SendText(u.tg, text)
}

// mirror steps the user's own engine.
func (u *user) mirror(in flows.Input) {
	u.st, u.out = u.eng.Step(u.st, in)
}

// press presses the button with data on msgID and returns the query id.
func (u *user) press(msgID int, data string) string {
	u.h.t.Helper()
	id, qid, err := u.h.srv.PressButton(u.tg, msgID, data)
	if err != nil {
		u.fatalf("%v", err)
	}
	u.last = id
	u.lastQID = qid
	return qid
}

// waitReply waits for a bot message produced after the user's last update that
// satisfies pred, and returns it.
func (u *user) waitReply(ctx context.Context, what string, pred func(telegramtest.Message) bool) telegramtest.Message {
	u.h.t.Helper()
	m, err := u.h.srv.WaitMessage(ctx, u.tg.ID, func(m telegramtest.Message) bool {
		return m.AfterUpdateID >= u.last && pred(m)
	})
	if err != nil {
		u.fatalf("waiting for %s: %v", what, err)
	}
	return m
}

func hasData(m telegramtest.Message, data string) bool {
	for _, b := range m.Buttons() {
		if b.CallbackData == data {
			return true
		}
	}
	return false
}

// hasToken reports whether m carries buttons of the prompt with that token.
func hasToken(m telegramtest.Message, tok int) bool {
	for _, b := range m.Buttons() {
		parts := strings.Split(b.CallbackData, ":")
		if len(parts) >= 2 && strings.Contains("ctdbs", parts[0]) && len(parts[0]) == 1 && parts[1] == strconv.Itoa(tok) {
			return true
		}
	}
	return false
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// waitPrompt waits for the message showing the mirror's current prompt.
func (u *user) waitPrompt(ctx context.Context) telegramtest.Message {
	u.h.t.Helper()
	p := u.out.Prompt
	buttons := len(p.Options) > 0 || p.CanBack || !p.Required
	return u.waitReply(ctx, "prompt "+p.Key, func(m telegramtest.Message) bool {
		if buttons {
			return hasToken(m, p.Token)
		}
		return len(m.Keyboard) == 0 && strings.Contains(m.Text, firstLine(p.Text))
	})
}

// start opens flow by the menu (code == "") or by a deep link.
func (u *user) start(ctx context.Context, flow, code string) {
	u.h.t.Helper()
	if code == "" {
		u.say("/start")
		menu := u.waitReply(ctx, "menu", func(m telegramtest.Message) bool { return hasData(m, "m:"+flow) })
		u.press(menu.ID, "m:"+flow)
	} else {
		u.say("/start " + flow + "-" + code)
	}
	u.mirror(flows.Input{Kind: flows.InStart, Flow: flow, Lang: u.lang})
}

// answerAll answers every question the way a varied user would, until the flow is
// done, and returns the completion the bot must have submitted.
func (u *user) answerAll(ctx context.Context) *flows.Completion {
	u.h.t.Helper()
	for steps := 0; u.out.Done == nil; steps++ {
		if steps > 500 || u.out.Prompt == nil {
			u.fatalf("dialogue stuck: %+v", u.out)
		}
		if u.refused {
			u.refused = false
		} else {
			u.shown = u.waitPrompt(ctx)
		}
		u.answer(ctx, u.shown)
	}
	return u.out.Done
}

// answer answers the current prompt shown in msg.
func (u *user) answer(ctx context.Context, msg telegramtest.Message) {
	u.h.t.Helper()
	p := u.out.Prompt
	tok := strconv.Itoa(p.Token)
	u.lastQID = ""
	switch {
	case p.Type == flows.TypeNote || p.Type == flows.TypeHotlines:
		u.press(msg.ID, "c:"+tok+":0")
		u.mirror(flows.Input{Kind: flows.InChoose, Option: p.Options[0].ID, Token: p.Token})
	case p.CanBack && !u.backed && p.Progress.N >= 3:
		// Once per dialogue: go back, then answer the previous question again.
		u.backed = true
		u.press(msg.ID, "b:"+tok)
		u.mirror(flows.Input{Kind: flows.InBack, Token: p.Token})
	case !p.Required && u.rng.IntN(10) == 0:
		u.press(msg.ID, "s:"+tok)
		u.mirror(flows.Input{Kind: flows.InSkip, Token: p.Token})
	case p.Multi:
		u.multi(ctx, msg)
	case len(p.Options) > 0:
		i := u.rng.IntN(len(p.Options))
		if strings.Contains(p.Key, "consent") {
			i = 0 // our users agree, so that they see the whole questionnaire
		}
		if p.Type != flows.TypeRating && p.Type != flows.TypeMatrix && u.rng.IntN(4) == 0 {
			// Typed by its number, as people do.
			u.say(strconv.Itoa(i + 1))
			u.mirror(flows.Input{Kind: flows.InText, Text: strconv.Itoa(i + 1)})
			return
		}
		u.press(msg.ID, "c:"+tok+":"+strconv.Itoa(i))
		u.mirror(flows.Input{Kind: flows.InChoose, Option: p.Options[i].ID, Token: p.Token})
	default:
		text := u.typed(p)
		u.say(text)
		u.mirror(flows.Input{Kind: flows.InText, Text: text})
	}
	if u.out.Error != "" && u.out.Prompt != nil && u.out.Prompt.Token == p.Token && !p.Multi {
		// Refused: the bot must say why; the next answer() tries again.
		want := u.out.Error
		if u.lastQID == "" {
			u.waitReply(ctx, "error", func(m telegramtest.Message) bool { return strings.Contains(m.Text, want) })
			return
		}
		u.waitAnswer(ctx, u.lastQID, want)
		u.refused = true
	}
}

// waitAnswer waits for the bot's answer to a callback query and checks its text.
func (u *user) waitAnswer(ctx context.Context, qid, want string) {
	u.h.t.Helper()
	var got telegramtest.CallbackAnswer
	err := u.h.srv.WaitFor(ctx, func() bool {
		var ok bool
		got, ok = u.h.srv.CallbackAnswer(qid)
		return ok && got.Answered
	})
	if err != nil {
		u.fatalf("callback %s never answered", qid)
	}
	if !strings.Contains(got.Text, want) {
		u.fatalf("callback answer %q, want %q", got.Text, want)
	}
}

// typed is a typed answer: numbers within bounds (with a space as thousands
// separator now and then), dates, and text full of HTML's special characters.
func (u *user) typed(p *flows.Prompt) string {
	d, _ := u.h.set.Get(u.st.Flow)
	q, _, other, _ := d.QuestionOf(p.Key)
	switch {
	case other || p.Type == flows.TypeText:
		if u.out.Error != "" {
			// A constraint wants a particular shape: try the usual ones in turn.
			u.retries++
			return []string{"name@example.org", "+994 12 345 67 89", "2010", "yes"}[(u.retries-1)%4]
		}
		return fmt.Sprintf("Ответ <b>%d</b> & «кавычки» \"x\" <i> 🙂", u.tg.ID)
	case p.Type == flows.TypeDate:
		return "25.03.2021"
	case p.Type == flows.TypeInteger || p.Type == flows.TypeDecimal:
		lo, hi := 0.0, 3000.0
		if q.Min != nil {
			lo = *q.Min
		}
		if q.Max != nil {
			hi = *q.Max
		}
		if u.out.Error != "" {
			// A constraint refused the last try: years are the usual suspects.
			return strconv.Itoa(2000 + u.rng.IntN(20))
		}
		n := int(lo) + u.rng.IntN(int(min(hi-lo, 5000))+1)
		if n >= 1000 && u.rng.IntN(2) == 0 {
			return strconv.Itoa(n/1000) + " " + fmt.Sprintf("%03d", n%1000)
		}
		return strconv.Itoa(n)
	}
	return "?"
}

// multi toggles one or two options (checking the ✅ marks after each), then Done;
// when the answer is refused it goes down to a single pick.
func (u *user) multi(ctx context.Context, msg telegramtest.Message) {
	u.h.t.Helper()
	p := u.out.Prompt
	want := map[int]bool{u.rng.IntN(len(p.Options)): true}
	if u.rng.IntN(2) == 0 {
		want[u.rng.IntN(len(p.Options))] = true
	}
	for attempt := 0; ; attempt++ {
		u.toggleTo(ctx, msg, want)
		tok := strconv.Itoa(p.Token)
		u.press(msg.ID, "d:"+tok)
		u.mirror(flows.Input{Kind: flows.InDone, Token: p.Token})
		if u.out.Error == "" || u.out.Prompt == nil || u.out.Prompt.Token != p.Token {
			return
		}
		if attempt > 0 {
			u.fatalf("multiple choice %s refused twice: %s", p.Key, u.out.Error)
		}
		p = u.out.Prompt
		for i := range want {
			delete(want, i)
		}
		for i, o := range p.Options {
			if o.ID != flows.OtherChoice {
				want[i] = true
				break
			}
		}
	}
}

func (u *user) toggleTo(ctx context.Context, msg telegramtest.Message, want map[int]bool) {
	u.h.t.Helper()
	p := u.out.Prompt
	for i, o := range p.Options {
		if o.Picked == want[i] {
			continue
		}
		u.press(msg.ID, fmt.Sprintf("t:%d:%d", p.Token, i))
		u.mirror(flows.Input{Kind: flows.InToggle, Option: o.ID, Token: p.Token})
		picked := u.out.Prompt.Options[i].Picked
		data := fmt.Sprintf("t:%d:%d", p.Token, i)
		u.waitReply(ctx, "toggle mark", func(m telegramtest.Message) bool {
			if m.ID != msg.ID {
				return false
			}
			for _, b := range m.Buttons() {
				if b.CallbackData == data {
					return strings.HasPrefix(b.Text, "✅") == picked
				}
			}
			return false
		})
	}
}

// finish waits for the closing message of a completed flow.
func (u *user) finish(ctx context.Context) {
	u.h.t.Helper()
	u.waitReply(ctx, "closing message", func(m telegramtest.Message) bool { return hasData(m, "menu") || hasData(m, "lang") })
}

// checkSubmission compares a stored submission with the mirror's completion.
func checkSubmission(t *testing.T, got central.Submission, want *flows.Completion, code string) {
	t.Helper()
	if got.Flow != want.Flow || got.Lang != want.Lang || got.Complete != want.Complete || got.Code != code ||
		got.Country != want.Country || got.Stakeholder != want.Stakeholder || got.FlowVersion != want.Version {
		t.Errorf("submission %s: flow=%s lang=%s complete=%v code=%q country=%q; want %s %s %v %q %q",
			got.ID, got.Flow, got.Lang, got.Complete, got.Code, got.Country, want.Flow, want.Lang, want.Complete, code, want.Country)
	}
	if len(got.Answers) != len(want.Answers) {
		t.Errorf("submission %s has %d answers, want %d", got.ID, len(got.Answers), len(want.Answers))
	}
	for k, v := range want.Answers {
		if got.Answers[k] != v {
			t.Errorf("submission %s: answer %s = %q, want %q", got.ID, k, got.Answers[k], v)
		}
	}
	if got.FinishedAt.Before(got.StartedAt) || got.StartedAt.IsZero() {
		t.Errorf("submission %s: started %v, finished %v", got.ID, got.StartedAt, got.FinishedAt)
	}
}

// answerN answers n prompts (or until the flow is done).
func (u *user) answerN(ctx context.Context, n int) {
	u.h.t.Helper()
	for i := 0; i < n && u.out.Done == nil; i++ {
		if u.refused {
			u.refused = false
		} else {
			u.shown = u.waitPrompt(ctx)
		}
		u.answer(ctx, u.shown)
	}
}

// untilChoice answers prompts until the current one is a single choice question.
func (u *user) untilChoice(ctx context.Context) telegramtest.Message {
	u.h.t.Helper()
	for i := 0; i < 100; i++ {
		u.shown = u.waitPrompt(ctx)
		if p := u.out.Prompt; len(p.Options) > 1 && !p.Multi && p.Type != flows.TypeNote {
			return u.shown
		}
		u.answer(ctx, u.shown)
	}
	u.fatalf("no single choice question")
	return telegramtest.Message{}
}

// metrics scrapes the bot's /metrics.
func metrics(t *testing.T, b *bot.Bot) string {
	t.Helper()
	rec := httptest.NewRecorder()
	b.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

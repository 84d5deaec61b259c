package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/bot"
	"github.com/dialoq/dialoq/bot/telegramtest"
)

const botUsage = `Usage: dialoq bot [flags]

Runs the Telegram bot. Settings come from the environment; the flags override some.

Environment:
  TELEGRAM_BOT_TOKEN     the bot's token (required unless --fake)
  TELEGRAM_API_ENDPOINT  Bot API URL format, e.g. http://localhost:8081/bot%s/%s
  BOT_MODE               polling (default) or webhook
  WEBHOOK_URL            public URL Telegram posts updates to (webhook mode)
  WEBHOOK_SECRET         secret_token of the webhook; default derived from the token
  LISTEN_ADDR            HTTP address for the webhook, /healthz and /metrics (default :8080)
  REDIS_URL              redis://… (redis+cluster://… for a cluster); default: in-process
                         Redis, whose state is lost when the process ends
  CENTRAL_URL            post submissions to this central store …
  CENTRAL_TOKEN          … with this token; default: SQLite under DIALOQ_DATA (./data)
  STATE_TTL              how long an untouched dialogue is kept (default 720h)
  PARTIAL_AFTER          idle time after which an unfinished questionnaire is posted as
                         a partial submission (default 504h, after the reminders)
  ADMIN_IDS              Telegram user ids of the admins, comma separated (they manage
                         coordinators with /coord)
  BROADCAST_RATE         broadcast and reminder messages per second overall (default 30)
  PAID_BROADCAST         true: send with allow_paid_broadcast (Stars), rate up to 1000/s
  SEND_CONCURRENCY       throttled sends in flight (default 8)
  REMINDERS              off disables automatic reminders (default on)
  REMIND_AFTER           idle time before the 1st reminder, then between reminders; the
                         last repeats (default 48h,168h)
  REMIND_MAX             reminders per unfinished questionnaire (default 3)
  QUIET_HOURS            local hours without reminders, FROM-TO (default 21-9)
  LOG_LEVEL              debug, info, warn or error

Flags:
`

// runBot is "dialoq bot".
func runBot(ctx context.Context, args []string, stdout, stderr io.Writer, log *slog.Logger) int {
	fl := flag.NewFlagSet("bot", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		io.WriteString(stderr, botUsage) //nolint:errcheck // usage text to a terminal
		fl.PrintDefaults()
	}
	fake := fl.Bool("fake", false, "talk to an in-process fake Telegram from this terminal; no token needed")
	mode := fl.String("mode", botEnv("BOT_MODE", string(bot.ModePolling)), "polling or webhook")
	listen := fl.String("listen", os.Getenv("LISTEN_ADDR"), "HTTP listen address (default :8080; none with --fake)")
	webhookURL := fl.String("webhook-url", os.Getenv("WEBHOOK_URL"), "public webhook URL")
	stateTTL := fl.String("state-ttl", botEnv("STATE_TTL", "720h"), "lifetime of an untouched dialogue state")
	partialAfter := fl.String("partial-after", botEnv("PARTIAL_AFTER", "504h"), "idle time before a partial submission")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	extra, err := coordEnv()
	if err != nil {
		fmt.Fprintln(stderr, "dialoq bot:", err)
		return 2
	}
	if lvl := os.Getenv("LOG_LEVEL"); lvl != "" {
		var l slog.Level
		if err := l.UnmarshalText([]byte(lvl)); err != nil {
			fmt.Fprintf(stderr, "dialoq bot: LOG_LEVEL %q: %v\n", lvl, err)
			return 2
		}
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: l}))
	}
	ttl, err1 := time.ParseDuration(*stateTTL)
	partial, err2 := time.ParseDuration(*partialAfter)
	if err := errors.Join(err1, err2); err != nil || ttl <= 0 || partial <= 0 {
		fmt.Fprintf(stderr, "dialoq bot: STATE_TTL and PARTIAL_AFTER must be positive durations such as 720h: %v\n", err)
		return 2
	}
	if *listen == "" && !*fake {
		*listen = ":8080"
	}
	token, endpoint := os.Getenv("TELEGRAM_BOT_TOKEN"), os.Getenv("TELEGRAM_API_ENDPOINT")
	var srv *telegramtest.Server
	var term *fakeTerminal
	if *fake {
		term = &fakeTerminal{out: stdout}
		srv = telegramtest.New(telegramtest.Options{OnSend: term.show})
		defer srv.Close()
		term.srv = srv
		token, endpoint, *mode = srv.Token(), srv.Endpoint(), string(bot.ModePolling)
	}
	if token == "" {
		fmt.Fprintln(stderr, "dialoq bot: TELEGRAM_BOT_TOKEN is not set (or try --fake)")
		return 2
	}
	rt, err := loadRuntime()
	if err != nil {
		fmt.Fprintln(stderr, "dialoq bot:", err)
		return 1
	}
	rdb, closeRedis, err := openRedis(os.Getenv("REDIS_URL"), log)
	if err != nil {
		fmt.Fprintln(stderr, "dialoq bot:", err)
		return 1
	}
	defer closeRedis()
	sink, closeSink, err := rt.openSink(ctx, dataDir())
	if err != nil {
		fmt.Fprintln(stderr, "dialoq bot:", err)
		return 1
	}
	defer closeSink()
	secret := os.Getenv("WEBHOOK_SECRET")
	if secret == "" {
		secret = bot.DeriveWebhookSecret(token)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	b, err := bot.New(ctx, bot.Config{
		Token: token, Endpoint: endpoint,
		Redis: rdb, StateTTL: ttl,
		Engine: rt.engine, Catalog: rt.cat, Poster: sink,
		Mode: bot.Mode(*mode), WebhookURL: *webhookURL, WebhookSecret: secret, ListenAddr: *listen,
		PartialAfter: partial,
		Admins:       extra.admins, Throttle: extra.throttle, Reminders: extra.reminders, Reports: reportsFromEnv(),
		Registry: reg, Logger: log,
	})
	if err != nil {
		fmt.Fprintln(stderr, "dialoq bot:", err)
		return 1
	}
	if *mode == string(bot.ModeWebhook) && *webhookURL == "" {
		log.Warn("bot: webhook mode without WEBHOOK_URL: the webhook must be registered by someone else")
	}
	fmt.Fprintf(stdout, "dialoq bot: @%s, %s mode", b.Username(), *mode)
	if *listen != "" {
		fmt.Fprintf(stdout, ", HTTP on %s (/healthz, /metrics)", *listen)
	}
	fmt.Fprintln(stdout)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if addr := os.Getenv("PPROF_ADDR"); addr != "" {
		go servePprof(runCtx, addr, log)
	}
	if term != nil {
		go term.run(runCtx, stop, os.Stdin)
	}
	if err := b.Run(runCtx); err != nil {
		fmt.Fprintln(stderr, "dialoq bot:", err)
		return 1
	}
	return 0
}

// botEnv is an environment variable with a default (own copy: central.go has one
// too, and the two commands are owned separately).
func botEnv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// openRedis connects to REDIS_URL, or starts an in-process Redis when it is empty.
// The URL is never logged: it may hold a password.
func openRedis(url string, log *slog.Logger) (redis.UniversalClient, func(), error) {
	if url == "" {
		mr, err := miniredis.Run()
		if err != nil {
			return nil, nil, fmt.Errorf("start in-process redis: %w", err)
		}
		log.Warn("bot: REDIS_URL is not set; using an in-process Redis. All dialogue state and undelivered submissions are LOST when this process stops. Set REDIS_URL for anything but a trial.")
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		return rdb, func() { _ = rdb.Close(); mr.Close() }, nil
	}
	for _, scheme := range []string{"redis", "rediss"} {
		if rest, ok := strings.CutPrefix(url, scheme+"+cluster://"); ok {
			opt, err := redis.ParseClusterURL(scheme + "://" + rest)
			if err != nil {
				return nil, nil, errors.New("REDIS_URL is not a valid cluster URL")
			}
			rdb := redis.NewClusterClient(opt)
			return rdb, func() { _ = rdb.Close() }, nil
		}
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		// The parse error quotes the URL; say what is wrong without it.
		return nil, nil, errors.New("REDIS_URL is not a valid redis:// or rediss:// URL")
	}
	rdb := redis.NewClient(opt)
	return rdb, func() { _ = rdb.Close() }, nil
}

// fakeTerminal lets a person play a Telegram user against the fake server: lines
// typed are messages, "#N" presses the N-th button of the newest keyboard.
type fakeTerminal struct {
	out  io.Writer
	srv  *telegramtest.Server
	mu   sync.Mutex
	last telegramtest.Message // newest bot message with a keyboard
}

const fakeUser = 1001

func (f *fakeTerminal) show(m telegramtest.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(m.Keyboard) > 0 || m.ID == f.last.ID {
		f.last = m
	}
	edited := ""
	if m.Edits > 0 {
		edited = " (edited)"
	}
	fmt.Fprintf(f.out, "\n── bot #%d%s ──\n%s\n", m.ID, edited, m.Text)
	n := 0
	for _, row := range m.Keyboard {
		var cells []string
		for _, b := range row {
			n++
			cells = append(cells, "#"+strconv.Itoa(n)+" "+b.Text)
		}
		fmt.Fprintf(f.out, "  %s\n", strings.Join(cells, "   "))
	}
}

func (f *fakeTerminal) run(ctx context.Context, stop func(), in io.Reader) {
	lang, _, _ := strings.Cut(langFromEnv(), "-")
	user := telegramtest.User{ID: fakeUser, FirstName: "You", LanguageCode: lang}
	fmt.Fprintf(f.out, "Fake Telegram: you are user %d (language %q). Type messages, e.g. /start;\n"+
		"press a button by its number, e.g. #2. Ctrl-D or Ctrl-C ends.\n", fakeUser, lang)
	sc := bufio.NewScanner(in)
	for sc.Scan() && ctx.Err() == nil {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimPrefix(line, "#")); err == nil && strings.HasPrefix(line, "#") {
			f.mu.Lock()
			msg := f.last
			f.mu.Unlock()
			btns := msg.Buttons()
			if n < 1 || n > len(btns) {
				fmt.Fprintf(f.out, "(no button #%d)\n", n)
				continue
			}
			if _, _, err := f.srv.PressButton(user, msg.ID, btns[n-1].CallbackData); err != nil {
				fmt.Fprintf(f.out, "(%v)\n", err)
			}
			continue
		}
		f.srv.SendText(user, line)
	}
	// Let the last replies arrive before stopping.
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	stop()
}

// coordSettings are the coordinator, broadcast and reminder settings.
type coordSettings struct {
	admins    []int64
	throttle  bot.Throttle
	reminders bot.Reminders
}

// coordEnv reads ADMIN_IDS, the broadcast rate and the reminder settings.
func coordEnv() (coordSettings, error) {
	var c coordSettings
	for _, f := range strings.Split(os.Getenv("ADMIN_IDS"), ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil || id <= 0 {
			return c, fmt.Errorf("ADMIN_IDS: %q is not a Telegram user id", f)
		}
		c.admins = append(c.admins, id)
	}
	var err error
	if c.throttle.PerSecond, err = envInt("BROADCAST_RATE"); err != nil {
		return c, err
	}
	if c.throttle.Concurrency, err = envInt("SEND_CONCURRENCY"); err != nil {
		return c, err
	}
	if v := os.Getenv("PAID_BROADCAST"); v != "" {
		if c.throttle.PaidBroadcast, err = strconv.ParseBool(v); err != nil {
			return c, fmt.Errorf("PAID_BROADCAST: %w", err)
		}
	}
	if c.throttle.PerSecond > bot.DefaultPerSecond && !c.throttle.PaidBroadcast {
		return c, fmt.Errorf("BROADCAST_RATE above %d needs PAID_BROADCAST=true", bot.DefaultPerSecond)
	}
	c.reminders.Disabled = strings.EqualFold(os.Getenv("REMINDERS"), "off")
	for _, f := range strings.Split(os.Getenv("REMIND_AFTER"), ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("REMIND_AFTER: %q is not a positive duration", f)
		}
		c.reminders.After = append(c.reminders.After, d)
	}
	if c.reminders.Max, err = envInt("REMIND_MAX"); err != nil {
		return c, err
	}
	if v := os.Getenv("QUIET_HOURS"); v != "" {
		from, to, ok := strings.Cut(v, "-")
		f, err1 := strconv.Atoi(from)
		t, err2 := strconv.Atoi(to)
		if !ok || err1 != nil || err2 != nil || f < 0 || f > 23 || t < 0 || t > 23 {
			return c, fmt.Errorf("QUIET_HOURS: want FROM-TO in hours, e.g. 21-9")
		}
		c.reminders.QuietFrom, c.reminders.QuietTo = f, t
	}
	return c, nil
}

func envInt(key string) (int, error) {
	v := os.Getenv(key)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: %q is not a non-negative number", key, v)
	}
	return n, nil
}

// reportsFromEnv is the central service's reports when CENTRAL_URL is set; nil
// lets the bot read the embedded store it posts to.
func reportsFromEnv() bot.Reports {
	if url := os.Getenv("CENTRAL_URL"); url != "" {
		return bot.NewHTTPReports(url, os.Getenv("CENTRAL_TOKEN"), nil)
	}
	return nil
}

// servePprof serves Go's profiler on its own listener, never the public one: it
// shows the process's memory. For loopback use (PPROF_ADDR=127.0.0.1:6060).
func servePprof(ctx context.Context, addr string, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("dialoq bot: pprof", "addr", addr, "err", err)
	}
}

package bot

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	tgbotapi "github.com/go-telegram-bot-api/telegram-bot-api/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/locales"
	"github.com/dialoq/dialoq/storage/central"
	"github.com/dialoq/dialoq/storage/outbox"
	"github.com/dialoq/dialoq/storage/redisstate"
)

// Mode is how updates arrive.
type Mode string

// Modes.
const (
	ModePolling Mode = "polling"
	ModeWebhook Mode = "webhook"
)

// Defaults for zero Config fields.
const (
	DefaultWorkers         = 16
	DefaultPollTimeout     = 30 * time.Second
	DefaultShutdownTimeout = 15 * time.Second
	DefaultHandleTimeout   = 60 * time.Second
	// DefaultPartialAfter leaves room for the reminders (after 2 days, then 7 more,
	// then 7 more) before an unfinished questionnaire is closed as partial.
	DefaultPartialAfter = 21 * 24 * time.Hour
	DefaultSweepEvery   = time.Minute
	DefaultRetryMin     = 200 * time.Millisecond
	DefaultRetryMax     = 10 * time.Second
	DefaultWebhookPath  = "/telegram"
	// Delivery: see setDefaults.
	DefaultOutboxClaimIdle  = 30 * time.Second
	DefaultOutboxMaxBackoff = 10 * time.Second
)

// Config configures a Bot. Token, Redis, Engine and Catalog are required.
type Config struct {
	Token string
	// Endpoint is the Bot API URL format, "http://host:port/bot%s/%s"; default
	// Telegram's own.
	Endpoint string
	// HTTPClient makes the API calls other than long polls; nil gets one with
	// connect, TLS, header and overall timeouts.
	HTTPClient *http.Client

	// Redis holds the dialogue states and the outbox. Prefix and Shards are the
	// redisstate layout (defaults "dq", 64); StateTTL defaults to 30 days.
	Redis    redis.UniversalClient
	Prefix   string
	Shards   int
	StateTTL time.Duration

	Engine  *flows.Engine
	Catalog *locales.Catalog
	// Poster receives the outbox's submissions; nil runs no delivery worker (another
	// process delivers them).
	Poster central.Poster
	// OutboxPoll is the delivery worker's pause when the outbox is empty.
	OutboxPoll time.Duration
	// OutboxMaxBackoff caps the pause between delivery attempts while the central
	// store is unreachable; OutboxClaimIdle is how long an entry read by a replica
	// that died stays pending before another replica takes it over. Zero: the
	// outbox package's defaults.
	OutboxMaxBackoff, OutboxClaimIdle time.Duration

	Mode Mode
	// WebhookURL is registered with setWebhook when Run starts in webhook mode; empty
	// leaves the registration to someone else (another replica, a deploy step).
	WebhookURL string
	// WebhookSecret is the secret_token every webhook request must carry. Required in
	// webhook mode.
	WebhookSecret string
	// WebhookPath is where WebhookHandler is mounted by Run; default the path of
	// WebhookURL, else DefaultWebhookPath.
	WebhookPath string
	// ListenAddr (or Listener, which wins) is where Run serves the webhook, /healthz
	// and /metrics. Empty serves nothing in polling mode.
	ListenAddr string
	Listener   net.Listener

	// Workers is the size of the polling worker pool (chats are hashed onto it).
	Workers int
	// PollTimeout is the long-poll timeout of getUpdates.
	PollTimeout time.Duration
	// ShutdownTimeout bounds how long in-flight updates may take to finish once the
	// context passed to Run or Poll ends.
	ShutdownTimeout time.Duration
	// HandleTimeout bounds one webhook update.
	HandleTimeout time.Duration
	// PartialAfter is the idle time after which an unfinished questionnaire is posted
	// as a partial submission; SweepEvery how often that is checked.
	PartialAfter time.Duration
	SweepEvery   time.Duration
	// RetryMin and RetryMax bound the backoff of retried Telegram calls, getUpdates
	// and updates waiting for Redis.
	RetryMin, RetryMax time.Duration

	// Admins are the Telegram user ids that may add and remove coordinators (and do
	// everything a coordinator may, in every country).
	Admins []int64
	// Reports is where /stats and /export read from: the central store the bot
	// posts to. Nil uses Poster when it is an embedded *central.Store, else the
	// commands answer that reports are not configured.
	Reports Reports
	// CoordInviteTTL is how long a coordinator invite link works; default 72h.
	CoordInviteTTL time.Duration
	// Throttle limits broadcasts and reminders (see Throttle).
	Throttle Throttle
	// Reminders configures the automatic reminders (see Reminders).
	Reminders Reminders

	// Registry receives the bot's metrics and is served on /metrics; nil gets a new
	// one.
	Registry *prometheus.Registry
	Logger   *slog.Logger
	// Clock and Sleep are injectable for tests. Sleep must return ctx.Err() when ctx
	// ends first.
	Clock func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Bot is a Telegram channel of the flow engine. Create it with New. Dialogues live
// in Redis only, so any number of replicas can share one Redis; Run it once.
type Bot struct {
	cfg      Config
	log      *slog.Logger
	tg       *telegram
	pollHC   *http.Client
	engine   *flows.Engine
	set      *flows.Set
	cat      *locales.Catalog
	store    *redisstate.Store
	rdb      redis.UniversalClient
	reg      *prometheus.Registry
	m        *metrics
	told     *notifier
	now      func() time.Time
	sleep    func(context.Context, time.Duration) error
	username string
	menu     []string // flow ids offered in the menu, in order
	langs    []string // languages offered in the picker
	admins   map[int64]bool
	reports  Reports
	snd      *sender  // the throttled sender of broadcasts and reminders
	later    *backlog // calls waiting out a 429, per chat
}

// New checks cfg, fills defaults and asks Telegram who the bot is (getMe), so a wrong
// token or endpoint fails here rather than at the first update.
func New(ctx context.Context, cfg Config) (*Bot, error) {
	if cfg.Token == "" {
		return nil, errors.New("bot: no Telegram token")
	}
	if cfg.Redis == nil || cfg.Engine == nil || cfg.Catalog == nil {
		return nil, errors.New("bot: Redis, Engine and Catalog are required")
	}
	if cfg.Mode == "" {
		cfg.Mode = ModePolling
	}
	if cfg.Mode != ModePolling && cfg.Mode != ModeWebhook {
		return nil, fmt.Errorf("bot: unknown mode %q (want polling or webhook)", cfg.Mode)
	}
	if cfg.Mode == ModeWebhook && cfg.WebhookSecret == "" {
		return nil, errors.New("bot: webhook mode needs a secret")
	}
	if cfg.WebhookSecret != "" && !validSecret(cfg.WebhookSecret) {
		return nil, errors.New("bot: the webhook secret must be 1-256 characters of A-Z a-z 0-9 _ -")
	}
	setDefaults(&cfg)
	b := &Bot{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "bot"),
		engine: cfg.Engine,
		set:    cfg.Engine.Set(),
		cat:    cfg.Catalog,
		rdb:    cfg.Redis,
		reg:    cfg.Registry,
		now:    cfg.Clock,
		sleep:  cfg.Sleep,
		store: redisstate.New(cfg.Redis, redisstate.Config{
			Prefix: cfg.Prefix, Shards: cfg.Shards, TTL: cfg.StateTTL,
		}),
	}
	b.m = newMetrics(cfg.Registry)
	b.told = newNotifier(cfg.Clock)
	hc := cfg.HTTPClient
	if hc == nil {
		hc = newHTTPClient(30 * time.Second)
	}
	// A long poll holds its request open for PollTimeout; its client must wait longer.
	b.pollHC = newHTTPClient(cfg.PollTimeout + 15*time.Second)
	b.tg = &telegram{hc: hc, token: cfg.Token, endpoint: cfg.Endpoint, log: b.log, sleep: cfg.Sleep,
		retryMin: cfg.RetryMin, retryMax: cfg.RetryMax, m: b.m}
	api, err := tgbotapi.NewBotAPIWithClient(cfg.Token, cfg.Endpoint, ctxDoer{ctx: ctx, hc: hc})
	if err != nil {
		return nil, fmt.Errorf("bot: getMe: %w", b.tg.redact(err))
	}
	b.tg.api = api
	b.username = api.Self.UserName
	b.admins = map[int64]bool{}
	for _, id := range cfg.Admins {
		b.admins[id] = true
	}
	b.reports = cfg.Reports
	if st, ok := cfg.Poster.(*central.Store); ok && b.reports == nil {
		b.reports = StoreReports{Store: st}
	}
	b.snd = b.newSender()
	b.later = newBacklog(b.log, b.sleep, b.markInactive, b.m.waiting)
	b.menu = b.menuFlows()
	for _, l := range b.cat.Langs() {
		if validLangArg(l) {
			b.langs = append(b.langs, l)
		}
	}
	return b, nil
}

func setDefaults(cfg *Config) {
	if cfg.Endpoint == "" {
		cfg.Endpoint = tgbotapi.APIEndpoint
	}
	// A replica killed mid-delivery leaves entries pending under its consumer name;
	// the others take them over after OutboxClaimIdle. The load test measured two
	// minutes of delay with the outbox package's defaults, so the bot claims sooner
	// and keeps its retry pauses below the claim timeout.
	if cfg.OutboxClaimIdle <= 0 {
		cfg.OutboxClaimIdle = DefaultOutboxClaimIdle
	}
	if cfg.OutboxMaxBackoff <= 0 {
		cfg.OutboxMaxBackoff = DefaultOutboxMaxBackoff
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = DefaultPollTimeout
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.HandleTimeout <= 0 {
		cfg.HandleTimeout = DefaultHandleTimeout
	}
	if cfg.PartialAfter <= 0 {
		cfg.PartialAfter = DefaultPartialAfter
	}
	if cfg.SweepEvery <= 0 {
		cfg.SweepEvery = DefaultSweepEvery
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = cfg.RetryMin
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = outbox.Sleep
	}
	if cfg.CoordInviteTTL <= 0 {
		cfg.CoordInviteTTL = DefaultCoordInviteTTL
	}
	cfg.Throttle.defaults()
	cfg.Reminders.defaults()
	if cfg.Prefix == "" {
		cfg.Prefix = redisstate.DefaultPrefix
	}
	if cfg.Shards <= 0 {
		cfg.Shards = redisstate.DefaultShards
	}
}

// newHTTPClient has a timeout at every stage, so a stalled Telegram (or a proxy in
// front of it) cannot hold a worker forever.
func newHTTPClient(total time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSHandshakeTimeout = 10 * time.Second
	tr.ResponseHeaderTimeout = total
	tr.ExpectContinueTimeout = time.Second
	tr.IdleConnTimeout = 90 * time.Second
	// Every call goes to one host. Webhook deliveries (up to 100 at once, Telegram's
	// max_connections) each make calls; with fewer idle connections kept, busy
	// moments close and reopen connections for nothing.
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 128
	return &http.Client{Timeout: total, Transport: tr}
}

// menuFlows lists the flows whose id fits into callback data; a longer id could not
// be started from a button (deep links still work).
func (b *Bot) menuFlows() []string {
	var ids []string
	// Info sessions first: migrants, the widest audience, should not have to read
	// past five questionnaires meant for organisations.
	all := b.set.All()
	slices.SortStableFunc(all, func(x, y *flows.Definition) int {
		return cmp.Compare(kindRank(x.Kind), kindRank(y.Kind))
	})
	for _, d := range all {
		data := callback{kind: cbFlow, arg: d.ID}.String()
		if c, ok := parseCallback(data); ok && c.arg == d.ID {
			ids = append(ids, d.ID)
			continue
		}
		b.log.Warn("bot: flow id too long or not ASCII for a menu button; reachable by deep link only", "flow", d.ID)
	}
	return ids
}

func kindRank(k flows.Kind) int {
	if k == flows.KindSession {
		return 0
	}
	return 1
}

// Username is the bot's Telegram username (from getMe).
func (b *Bot) Username() string { return b.username }

// ForgedCallbacks is how many callback queries carried malformed or impossible data.
func (b *Bot) ForgedCallbacks() int64 { return b.m.forgedN.Load() }

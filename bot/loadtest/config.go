package loadtest

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/dialoq/dialoq/bot"
)

// DefaultRedisURL keeps load tests in database 14, away from the default database
// and from the unit tests' database 15.
const DefaultRedisURL = "redis://127.0.0.1:6379/14"

// Config describes one run. Zero fields get the defaults noted.
type Config struct {
	// Users is how many simulated users run at once (default 1000). Without
	// Duration each completes the questionnaire once; with it, each starts another
	// (as a new Telegram user) until Duration has passed.
	Users int
	// ThinkMin and ThinkMax bound the pause before each action, uniformly random
	// (default 100ms–500ms). ThinkMax 0 with ThinkMin 0 sends as fast as replies come.
	ThinkMin, ThinkMax time.Duration
	// NoThink forces ThinkMin = ThinkMax = 0 (zero values would get the defaults).
	NoThink bool
	// Ramp spreads the users' first actions over this long (default 2s).
	Ramp time.Duration
	// Langs are the languages users pick from (default every supported one).
	Langs []string
	// Seed makes the users' choices reproducible (default 1).
	Seed uint64

	// Mode is polling (default) or webhook.
	Mode bot.Mode
	// Replicas is the number of bots (default 1). Telegram has one getUpdates
	// consumer per bot, so more than one replica needs webhook mode; a round-robin
	// balancer then stands in front of them.
	Replicas int
	// External starts no bot: one started by hand answers, pointed at TelegramAddr
	// (in polling mode; it must share RedisURL and use the default key prefix).
	External bool
	// Exec runs the bots as `dialoq bot` processes of Binary instead of in this
	// process.
	Exec bool
	// Binary is the dialoq executable for Exec and for a central store process.
	Binary string
	// Workers is the polling worker pool of an in-process bot (bot default when 0).
	Workers int

	// RedisURL is the Redis the bots use (default DefaultRedisURL, or an OwnRedis
	// when Exec). In-process bots get a key prefix unique to the run; `dialoq bot`
	// processes always use the default prefix "dq", so an Exec run on RedisURL
	// deletes the dq:* keys of that database before and after, and its command counts
	// (INFO commandstats) include every other client of the server.
	RedisURL string
	// OwnRedis starts a private redis-server (AOF on, fsync every second) on a free
	// loopback port instead of using RedisURL.
	OwnRedis bool
	// RedisServer is the redis-server executable for OwnRedis (default "redis-server").
	RedisServer string
	// RedisArgs are extra redis-server arguments for OwnRedis, e.g.
	// ["--hash-max-listpack-value", "1024"].
	RedisArgs []string

	// Central is where submissions are stored: "" for an SQLite file in Dir, or a
	// postgres:// URL, in which a schema is made for the run (and dropped unless
	// Keep).
	Central string
	// CentralProcess serves the central store by a `dialoq central` process of
	// Binary that the bots post to over HTTP, so that it can be stopped.
	CentralProcess bool

	// ReplyTimeout is how long a user waits for a reply before tapping again
	// (default 5s).
	ReplyTimeout time.Duration
	// Timeout bounds the load (default 15m): users still busy then are stopped and
	// count as failed. Setup and the drain have their own limits.
	Timeout time.Duration
	// Drain bounds the wait for the outbox to deliver every submission after the
	// load (default 30s; 4m when bots are killed, since a killed worker's entries are
	// only claimed after the outbox's 2-minute ClaimIdle).
	Drain time.Duration
	// Duration keeps the load on for this long; 0: one questionnaire per user.
	Duration time.Duration
	// Soak samples memory and goroutines every Sample (default 10s) while Duration
	// runs, and judges whether they stay flat.
	Soak   bool
	Sample time.Duration

	// TelegramAddr also serves the fake Bot API on this fixed loopback address, so a
	// bot started by hand can be pointed at it (with Replicas 0).
	TelegramAddr string
	// PerChatLimit is the fake Telegram's flood limit of sends per chat per second
	// (Telegram's is about 1); 0 is unlimited.
	PerChatLimit int

	// Faults to inject during the load.
	Faults Faults

	// SleepScale divides the retry waits of in-process bots (a 429's retry_after,
	// backoffs) so that short tests can inject slow faults; default 1 (real time).
	SleepScale float64

	// Dir holds logs, databases and AOF files (default a new temporary directory,
	// removed afterwards unless Keep).
	Dir  string
	Keep bool
	// Logger receives the harness's own log; nil discards it.
	Logger *slog.Logger
	// Progress receives a line per second of load; nil prints none.
	Progress io.Writer
}

// Faults are injected while the users run.
type Faults struct {
	// KillEvery sends SIGKILL to a random bot process this often; it is started
	// again after KillDown (default 500ms). Needs Exec.
	KillEvery, KillDown time.Duration
	// RedisRestartEvery stops Redis (SIGTERM: the AOF is written) this often and
	// starts it again after RedisDown (default 2s). Needs OwnRedis.
	RedisRestartEvery, RedisDown time.Duration
	// CentralDownAfter stops the central store process this long after the load
	// started, for CentralDown. Needs CentralProcess.
	CentralDownAfter, CentralDown time.Duration
	// TooManyRequests and ServerErrors are the probabilities of a 429 (retry_after
	// 1s) and of a 500/502 for each Bot API call the bots make.
	TooManyRequests, ServerErrors float64
	// DeliverTwice makes the fake Telegram deliver every webhook update twice.
	DeliverTwice bool
}

func (f Faults) any() bool { return f != Faults{} }

func (c *Config) setDefaults() {
	if c.Users <= 0 {
		c.Users = 1000
	}
	switch {
	case c.NoThink:
		c.ThinkMin, c.ThinkMax = 0, 0
	case c.ThinkMin == 0 && c.ThinkMax == 0:
		c.ThinkMin, c.ThinkMax = 100*time.Millisecond, 500*time.Millisecond
	case c.ThinkMax < c.ThinkMin:
		c.ThinkMax = c.ThinkMin
	}
	if c.Ramp <= 0 {
		c.Ramp = 2 * time.Second
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Mode == "" {
		c.Mode = bot.ModePolling
	}
	if c.External {
		c.Replicas = 0
	} else if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.RedisURL == "" {
		// Bot processes cannot be given a key prefix, and the server's command
		// counters are only theirs on a server of their own.
		c.OwnRedis = c.OwnRedis || c.Exec
		c.RedisURL = DefaultRedisURL
	}
	if c.RedisServer == "" {
		c.RedisServer = "redis-server"
	}
	if c.ReplyTimeout <= 0 {
		c.ReplyTimeout = 5 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 15 * time.Minute
	}
	if c.Drain <= 0 {
		c.Drain = 30 * time.Second
		if c.Faults.KillEvery > 0 {
			c.Drain = 4 * time.Minute
		}
	}
	if c.Sample <= 0 {
		c.Sample = 10 * time.Second
	}
	if c.Faults.KillEvery > 0 && c.Faults.KillDown <= 0 {
		c.Faults.KillDown = 500 * time.Millisecond
	}
	if c.Faults.RedisRestartEvery > 0 && c.Faults.RedisDown <= 0 {
		c.Faults.RedisDown = 2 * time.Second
	}
	if c.SleepScale < 1 {
		c.SleepScale = 1
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Config) validate() error {
	var errs []error
	if c.Mode != bot.ModePolling && c.Mode != bot.ModeWebhook {
		errs = append(errs, fmt.Errorf("mode %q: want polling or webhook", c.Mode))
	}
	if c.Mode == bot.ModePolling && c.Replicas > 1 {
		errs = append(errs, errors.New("polling allows one getUpdates consumer per bot token: use --mode webhook for several replicas"))
	}
	if (c.Exec || c.CentralProcess) && c.Binary == "" {
		errs = append(errs, errors.New("running dialoq processes needs the dialoq binary"))
	}
	if c.Soak && c.Duration <= 0 {
		errs = append(errs, errors.New("a soak needs a duration"))
	}
	if c.Faults.KillEvery > 0 && !c.Exec {
		errs = append(errs, errors.New("killing bots needs bot processes (exec)"))
	}
	if c.Faults.RedisRestartEvery > 0 && !c.OwnRedis {
		errs = append(errs, errors.New("restarting Redis needs a Redis of the run's own"))
	}
	if c.Faults.CentralDown > 0 && !c.CentralProcess {
		errs = append(errs, errors.New("stopping the central store needs a central store process"))
	}
	if c.Faults.DeliverTwice && c.Mode != bot.ModeWebhook {
		errs = append(errs, errors.New("delivering twice is a webhook fault: use webhook mode"))
	}
	if c.External && (c.TelegramAddr == "" || c.Mode != bot.ModePolling) {
		errs = append(errs, errors.New("an external bot needs a fixed Telegram address and polling mode"))
	}
	if p := c.Faults.TooManyRequests + c.Faults.ServerErrors; p < 0 || p > 1 {
		errs = append(errs, errors.New("fault probabilities must be within 0..1"))
	}
	return errors.Join(errs...)
}

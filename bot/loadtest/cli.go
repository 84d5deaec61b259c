package loadtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/dialoq/dialoq/bot"
)

const usage = `Usage: dialoq loadtest [flags]

Runs simulated Telegram users through the CSO questionnaire against real bots on
real Redis, with the fake Telegram Bot API server, and reports throughput, latency,
Redis commands and memory per dialogue, allocations and resident memory. Then it
checks that the central store holds every completed questionnaire exactly once,
with every answer given. The last line is machine-readable.

  dialoq loadtest                                  1,000 users, polling, one bot in process
  dialoq loadtest --mode webhook --replicas 2 --exec
  dialoq loadtest --chaos all                      the fault suite (kill, redis, central, telegram, twice)
  dialoq loadtest --soak 10m --exec --users 300    constant load; memory and goroutine series

Exit status: 0 clean, 1 something lost, duplicated or failed, 2 bad usage.

Flags:
`

// Main is "dialoq loadtest".
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprint(stderr, usage)
		fl.PrintDefaults()
	}
	var cfg Config
	fl.IntVar(&cfg.Users, "users", 1000, "simulated users at once")
	think := fl.String("think", "100ms-500ms", "pause before each action, MIN-MAX (uniform) or 0")
	fl.DurationVar(&cfg.Ramp, "ramp", 2*time.Second, "spread the users' first actions over this long")
	langs := fl.String("langs", "", "comma-separated languages users pick from (default: every supported one)")
	fl.Uint64Var(&cfg.Seed, "seed", 1, "seed of the users' choices")
	mode := fl.String("mode", string(bot.ModePolling), "polling or webhook")
	fl.IntVar(&cfg.Replicas, "replicas", 1, "bots sharing Redis (several need --mode webhook); 0 with --telegram: a bot started by hand")
	fl.BoolVar(&cfg.Exec, "exec", false, "run the bots as `dialoq bot` processes instead of in this process")
	bin := fl.String("bin", "", "the dialoq binary for --exec and the central store process (default: this executable)")
	fl.IntVar(&cfg.Workers, "workers", 0, "polling workers of an in-process bot (default: the bot's)")
	redisURL := fl.String("redis", "", `Redis URL, or "own" for a private redis-server with the AOF on (default `+DefaultRedisURL+`; own with --exec)`)
	redisArgs := fl.String("redis-args", "", `extra redis-server arguments for --redis own, e.g. "--hash-max-listpack-value 1024"`)
	fl.StringVar(&cfg.RedisServer, "redis-server", "redis-server", "redis-server executable for --redis own")
	fl.StringVar(&cfg.Central, "central", "", "central store: empty for SQLite in the work dir, or a postgres:// URL (a schema is made for the run)")
	fl.BoolVar(&cfg.CentralProcess, "central-process", false, "serve the central store by a `dialoq central` process")
	fl.StringVar(&cfg.TelegramAddr, "telegram", "", "also serve the fake Bot API on this fixed loopback address (e.g. 127.0.0.1:8081)")
	fl.IntVar(&cfg.PerChatLimit, "per-chat-limit", 0, "fake Telegram's flood limit, sends per chat per second (0: none)")
	fl.DurationVar(&cfg.ReplyTimeout, "reply-timeout", 5*time.Second, "a user taps again when a reply takes longer")
	fl.DurationVar(&cfg.Timeout, "timeout", 30*time.Minute, "bound of the whole run (per chaos scenario)")
	fl.DurationVar(&cfg.Drain, "drain", 0, "bound of the wait for the outbox to deliver (default 30s, 4m with kills)")
	soak := fl.Duration("soak", 0, "keep the load on for this long, sampling memory and goroutines")
	fl.DurationVar(&cfg.Sample, "sample", 10*time.Second, "soak sampling interval")
	chaos := fl.String("chaos", "", "fault scenarios: all, or a comma-separated list of kill, redis, central, telegram, twice")
	centralDown := fl.Duration("central-down", time.Minute, "how long the central store stays down (chaos central)")
	fl.DurationVar(&cfg.Faults.KillEvery, "kill-every", 0, "SIGKILL a bot process this often (needs --exec)")
	fl.Float64Var(&cfg.Faults.TooManyRequests, "tg-429", 0, "probability of a 429 answer per Bot API call")
	fl.Float64Var(&cfg.Faults.ServerErrors, "tg-5xx", 0, "probability of a 500/502 answer per Bot API call")
	fl.BoolVar(&cfg.Faults.DeliverTwice, "deliver-twice", false, "deliver every webhook update twice")
	fl.StringVar(&cfg.Dir, "dir", "", "work directory for logs and databases (default: a temporary one)")
	fl.BoolVar(&cfg.Keep, "keep", false, "keep the work directory, Redis keys and PostgreSQL schema")
	quiet := fl.Bool("quiet", false, "no progress line per second")
	verbose := fl.Bool("v", false, "log what the harness does (faults injected) to stderr")
	cpuProfile := fl.String("cpuprofile", "", "write a CPU profile of this process (bots in process included) to this file")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fl.NArg() > 0 {
		fmt.Fprintf(stderr, "dialoq loadtest: unexpected argument %q\n", fl.Arg(0))
		return 2
	}
	cfg.Mode = bot.Mode(*mode)
	if err := parseThink(*think, &cfg); err != nil {
		fmt.Fprintln(stderr, "dialoq loadtest:", err)
		return 2
	}
	if *langs != "" {
		for l := range strings.SplitSeq(*langs, ",") {
			cfg.Langs = append(cfg.Langs, strings.TrimSpace(l))
		}
	}
	if *redisURL == "own" {
		cfg.OwnRedis = true
	} else {
		cfg.RedisURL = *redisURL
	}
	cfg.RedisArgs = strings.Fields(*redisArgs)
	if cfg.Replicas == 0 {
		cfg.External = true
	}
	cfg.Duration = *soak
	cfg.Soak = *soak > 0
	cfg.Binary = *bin
	if cfg.Binary == "" {
		if exe, err := os.Executable(); err == nil {
			cfg.Binary = exe
		}
	}
	if !*quiet {
		cfg.Progress = stderr
	}
	if *verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}

	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "dialoq loadtest:", err)
			return 2
		}
		defer stop()
	}
	if *chaos != "" {
		scenarios, err := pickScenarios(*chaos, *centralDown)
		if err != nil {
			fmt.Fprintln(stderr, "dialoq loadtest:", err)
			return 2
		}
		ok, err := RunChaos(ctx, cfg, scenarios, stdout)
		if err != nil {
			fmt.Fprintln(stderr, "dialoq loadtest:", err)
		}
		if !ok {
			return 1
		}
		return 0
	}
	res, err := Run(ctx, cfg)
	if res != nil {
		res.Print(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "dialoq loadtest:", err)
		if res == nil {
			return 2
		}
		return 1
	}
	if !res.OK() || (res.Soak != nil && !res.Soak.Short && !(res.Soak.MemoryFlat && res.Soak.GoroutinesFlat)) {
		return 1
	}
	return 0
}

func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// parseThink reads "MIN-MAX", a single duration, or "0".
func parseThink(s string, cfg *Config) error {
	lo, hi, found := strings.Cut(s, "-")
	if !found {
		hi = lo
	}
	a, err1 := time.ParseDuration(strings.TrimSpace(lo))
	b, err2 := time.ParseDuration(strings.TrimSpace(hi))
	if err := errors.Join(err1, err2); err != nil || a < 0 || b < a {
		return fmt.Errorf("--think %q: want MIN-MAX such as 100ms-500ms, or 0", s)
	}
	cfg.ThinkMin, cfg.ThinkMax = a, b
	cfg.NoThink = b == 0
	return nil
}

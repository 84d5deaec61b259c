package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/bot"
	"github.com/dialoq/dialoq/storage/outbox"
)

// webhookSecret is what every replica of a run checks on webhook deliveries.
const webhookSecret = "loadtest-secret_0"

// replica is one bot: a bot.Bot in this process or a `dialoq bot` process.
type replica struct {
	name string
	addr string // HTTP (webhook, /healthz, /metrics); "" for an in-process poller

	// In process.
	b      *bot.Bot
	rdb    *redis.Client
	cancel context.CancelFunc
	done   chan error

	// A process.
	p *proc
}

// fleet is the run's bots and, with several webhook replicas, the balancer in
// front of them.
type fleet struct {
	cfg      *Config
	log      *slog.Logger
	replicas []*replica
	lb       *http.Server
	lbAddr   string
	counter  *cmdCounter // in-process bots' Redis commands
	kills    atomic.Int64
}

// startFleet starts cfg.Replicas bots. In-process bots are configured by mk; bot
// processes get the same settings through the environment `dialoq bot` reads.
func startFleet(ctx context.Context, cfg *Config, dir, endpoint, token string, mk func() bot.Config, centralURL, centralToken, redisURL string, log *slog.Logger) (*fleet, error) {
	f := &fleet{cfg: cfg, log: log, counter: newCmdCounter()}
	webhook := cfg.Mode == bot.ModeWebhook
	for i := range cfg.Replicas {
		r := &replica{name: "bot" + strconv.Itoa(i+1)}
		if cfg.Exec || webhook {
			addr, err := freeAddr()
			if err != nil {
				return f, err
			}
			r.addr = addr
		}
		f.replicas = append(f.replicas, r)
	}
	// Where Telegram posts: the only replica, or a balancer over all of them.
	hookURL := ""
	if webhook && len(f.replicas) > 0 {
		hookURL = "http://" + f.replicas[0].addr + bot.DefaultWebhookPath
		if len(f.replicas) > 1 {
			if err := f.startBalancer(); err != nil {
				return f, err
			}
			hookURL = "http://" + f.lbAddr + bot.DefaultWebhookPath
		}
	}
	for i, r := range f.replicas {
		var err error
		if cfg.Exec {
			env := map[string]string{
				"TELEGRAM_BOT_TOKEN": token, "TELEGRAM_API_ENDPOINT": endpoint,
				"BOT_MODE": string(cfg.Mode), "LISTEN_ADDR": r.addr, "REDIS_URL": redisURL,
				"CENTRAL_URL": centralURL, "CENTRAL_TOKEN": centralToken, "WEBHOOK_SECRET": webhookSecret,
				"DIALOQ_DATA": filepath.Join(dir, "data-"+r.name), "LOG_LEVEL": "warn",
			}
			if webhook {
				env["WEBHOOK_URL"] = hookURL // every replica registers the same URL: a no-op after the first
			}
			r.p = &proc{name: r.name, bin: cfg.Binary, args: []string{"bot"}, env: environ(env),
				log: filepath.Join(dir, r.name+".log")}
			err = f.startProc(ctx, r)
		} else {
			c := mk()
			if webhook && i == 0 {
				c.WebhookURL = hookURL // the others leave the registration to the first
			}
			err = f.startInProcess(ctx, r, c, redisURL)
		}
		if err != nil {
			return f, fmt.Errorf("loadtest: start %s: %w", r.name, err)
		}
	}
	return f, nil
}

func (f *fleet) startProc(ctx context.Context, r *replica) error {
	if err := r.p.start(); err != nil {
		return err
	}
	if err := waitHTTP(ctx, "http://"+r.addr+"/healthz", 30*time.Second); err != nil {
		return fmt.Errorf("%w (see %s)", err, r.p.log)
	}
	return nil
}

func (f *fleet) startInProcess(ctx context.Context, r *replica, c bot.Config, redisURL string) error {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Errorf("redis URL: %w", err)
	}
	// A client (and connection pool) per replica, as separate processes would have.
	r.rdb = redis.NewClient(opt)
	r.rdb.AddHook(f.counter)
	c.Redis = r.rdb
	if c.Mode == bot.ModeWebhook {
		ln, err := net.Listen("tcp", r.addr)
		if err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		c.Listener = ln
		c.WebhookSecret = webhookSecret
	}
	if f.cfg.SleepScale > 1 {
		scale := f.cfg.SleepScale
		c.Sleep = func(ctx context.Context, d time.Duration) error {
			return outbox.Sleep(ctx, time.Duration(float64(d)/scale))
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b, err := bot.New(runCtx, c)
	if err != nil {
		cancel()
		return err
	}
	r.b, r.cancel, r.done = b, cancel, make(chan error, 1)
	go func() { r.done <- b.Run(runCtx) }()
	return nil
}

// killOne sends SIGKILL to a random running bot process and starts it again after
// down.
func (f *fleet) killOne(ctx context.Context, down time.Duration) error {
	r := f.replicas[rand.N(len(f.replicas))]
	f.kills.Add(1)
	f.log.Info("SIGKILL", "replica", r.name, "pid", r.p.pid())
	r.p.stop(syscall.SIGKILL, 10*time.Second)
	_ = outbox.Sleep(ctx, down) // a cancelled load still gets its replica back
	return f.startProc(context.WithoutCancel(ctx), r)
}

func (f *fleet) stop() {
	if f.lb != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = f.lb.Shutdown(ctx)
		cancel()
	}
	var wg sync.WaitGroup
	for _, r := range f.replicas {
		wg.Go(func() {
			switch {
			case r.p != nil:
				r.p.stop(syscall.SIGTERM, 20*time.Second)
			case r.cancel != nil:
				r.cancel()
				<-r.done
				_ = r.rdb.Close()
			}
		})
	}
	wg.Wait()
}

// startBalancer serves a round-robin proxy in front of the webhook replicas. A
// replica that refuses the connection (killed, restarting) is skipped; any other
// failure is a 502, after which the fake Telegram delivers again, as Telegram does.
func (f *fleet) startBalancer() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("loadtest: balancer: %w", err)
	}
	f.lbAddr = ln.Addr().String()
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: 30 * time.Second}
	hc := &http.Client{Transport: tr, Timeout: 90 * time.Second}
	var next atomic.Uint64
	f.lb = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		start := next.Add(1)
		for i := range len(f.replicas) {
			be := f.replicas[(int(start)+i)%len(f.replicas)]
			req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+be.addr+r.URL.Path, bytes.NewReader(body))
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			req.Header = r.Header.Clone()
			resp, err := hc.Do(req)
			if err != nil {
				var op *net.OpError
				if errors.As(err, &op) && op.Op == "dial" {
					continue
				}
				http.Error(w, "backend failed", http.StatusBadGateway)
				return
			}
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
			resp.Body.Close()
			return
		}
		http.Error(w, "no backend", http.StatusBadGateway)
	})}
	go func() { _ = f.lb.Serve(ln) }()
	return nil
}

// procMetrics scrapes the Go and process metrics of every bot process and sums
// them: mallocs, heap in use, goroutines, resident memory, and the buckets of the
// bots' own update-handling histogram.
type procMetrics struct {
	Mallocs    float64
	HeapInuse  float64
	Goroutines float64
	RSS        float64
	Handle     map[float64]float64 // dialoq_bot_update_seconds: upper bound → cumulative count
}

// handleQuantile is the upper bound of the histogram bucket holding quantile q of
// the updates handled between before and p (0 when none were).
func (p procMetrics) handleQuantile(before procMetrics, q float64) float64 {
	les := make([]float64, 0, len(p.Handle))
	for le := range p.Handle {
		les = append(les, le)
	}
	slices.Sort(les)
	if len(les) == 0 {
		return 0
	}
	total := p.Handle[les[len(les)-1]] - before.Handle[les[len(les)-1]]
	if total <= 0 {
		return 0
	}
	for _, le := range les {
		if p.Handle[le]-before.Handle[le] >= q*total {
			return le
		}
	}
	return les[len(les)-1]
}

func (f *fleet) scrape(ctx context.Context) (procMetrics, error) {
	sum := procMetrics{Handle: map[float64]float64{}}
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, r := range f.replicas {
		if r.p == nil {
			continue
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.addr+"/metrics", nil)
		resp, err := hc.Do(req)
		if err != nil {
			return sum, fmt.Errorf("loadtest: scrape %s: %w", r.name, err)
		}
		vals := map[string]float64{}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			name, v, ok := strings.Cut(sc.Text(), " ")
			if !ok || strings.HasPrefix(name, "#") {
				continue
			}
			if le, ok := strings.CutPrefix(name, `dialoq_bot_update_seconds_bucket{le="`); ok {
				bound, err1 := strconv.ParseFloat(strings.TrimSuffix(le, `"}`), 64)
				n, err2 := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err1 == nil && err2 == nil {
					sum.Handle[bound] += n
				}
				continue
			}
			if x, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				vals[name] = x
			}
		}
		resp.Body.Close()
		sum.Mallocs += vals["go_memstats_mallocs_total"]
		sum.HeapInuse += vals["go_memstats_heap_inuse_bytes"]
		sum.Goroutines += vals["go_goroutines"]
		sum.RSS += vals["process_resident_memory_bytes"]
	}
	return sum, nil
}

// rss is the resident memory of the bots: the sum over bot processes, or this
// whole process (bots, fake Telegram and users) when the bots run in it.
func (f *fleet) rss() int64 {
	if !f.cfg.Exec {
		n, _ := rssBytes(0)
		return n
	}
	var sum int64
	for _, r := range f.replicas {
		if pid := r.p.pid(); pid > 0 {
			n, _ := rssBytes(pid)
			sum += n
		}
	}
	return sum
}

// warnings counts the warning and error lines the bots logged: the bot processes'
// logs and inProcess, the log of the bots in this process.
func (f *fleet) warnings(inProcess string) int {
	logs := []string{inProcess}
	for _, r := range f.replicas {
		if r.p != nil {
			logs = append(logs, r.p.log)
		}
	}
	n := 0
	for _, l := range logs {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		n += bytes.Count(b, []byte("level=WARN")) + bytes.Count(b, []byte("level=ERROR"))
	}
	return n
}

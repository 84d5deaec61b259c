package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/dialoq/dialoq/bot"
	"github.com/dialoq/dialoq/bot/telegramtest"
	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/locales"
	"github.com/dialoq/dialoq/storage/flowschema"
	"github.com/dialoq/dialoq/storage/outbox"
	"github.com/dialoq/dialoq/storage/redisstate"
)

// firstUserID keeps simulated users apart from the ids tests use.
const firstUserID = 7_000_000

// Run starts the fake Telegram, the store and the bots that cfg describes, runs the
// users, waits for the outbox to deliver, checks the central store and returns what
// was measured. An error means the run could not be made; what it found (lost or
// duplicated submissions, failed users) is in the Result. Users still busy when
// cfg.Timeout ends are stopped and counted as failed.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	log := cfg.Logger
	var b [3]byte
	_, _ = rand.Read(b[:])
	run := hex.EncodeToString(b[:])

	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "dialoq-loadtest-")
		if err != nil {
			return nil, fmt.Errorf("loadtest: work dir: %w", err)
		}
		dir = d
		if !cfg.Keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("loadtest: work dir: %w", err)
	}

	set, err := flows.Builtin()
	if err != nil {
		return nil, fmt.Errorf("loadtest: flows: %w", err)
	}
	cat, err := locales.Embedded()
	if err != nil {
		return nil, fmt.Errorf("loadtest: locales: %w", err)
	}
	def, ok := set.Get(flowID)
	if !ok {
		return nil, fmt.Errorf("loadtest: no %s flow", flowID)
	}
	eng := flows.NewEngine(set, cat)
	schema := flowschema.New(set, cat)
	langs := cfg.Langs
	if len(langs) == 0 {
		langs = cat.Langs()
	}
	for _, l := range langs {
		if !cat.Supported(l) {
			return nil, fmt.Errorf("loadtest: language %q is not supported", l)
		}
	}

	// Redis: the run's own server, or the given one with a prefix of the run's own.
	redisURL := cfg.RedisURL
	var own *ownRedis
	if cfg.OwnRedis {
		if own, err = startOwnRedis(ctx, cfg.RedisServer, dir, cfg.RedisArgs); err != nil {
			return nil, err
		}
		defer own.stop()
		redisURL = own.url()
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("loadtest: redis URL: %w", err)
	}
	admin := redis.NewClient(opt)
	defer admin.Close()
	adminCmds := newCmdCounter()
	admin.AddHook(adminCmds)
	if err := admin.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("loadtest: redis at %s: %w", opt.Addr, err)
	}
	prefix := "lt-" + run
	if cfg.Exec || cfg.External {
		// `dialoq bot` has no prefix setting: it uses the default one.
		prefix = redisstate.DefaultPrefix
		if err := deleteKeys(ctx, admin, prefix); err != nil {
			return nil, err
		}
	}
	if !cfg.Keep {
		defer func() { _ = deleteKeys(context.WithoutCancel(ctx), admin, prefix) }()
	}

	cs, err := openCentral(ctx, &cfg, dir, run, schema)
	if err != nil {
		return nil, err
	}
	defer func() { _ = cs.close(context.WithoutCancel(ctx), cfg.Keep) }()

	rt := newRouter()
	srv := telegramtest.New(telegramtest.Options{
		CallLogSize:  -1, // the log costs time and memory at thousands of calls a second
		OnSend:       rt.onSend,
		DeliverTwice: cfg.Faults.DeliverTwice,
		Limits:       telegramtest.Limits{PerChatPerSecond: cfg.PerChatLimit},
	})
	defer srv.Close()
	endpoint := srv.Endpoint()
	if cfg.TelegramAddr != "" {
		stop, err := serveFixed(cfg.TelegramAddr, srv.URL())
		if err != nil {
			return nil, err
		}
		defer stop()
		endpoint = "http://" + cfg.TelegramAddr + "/bot%s/%s"
		log.Info("fake Telegram", "endpoint", endpoint, "token", srv.Token())
	}

	botLogFile, err := os.Create(filepath.Join(dir, "bots.log"))
	if err != nil {
		return nil, fmt.Errorf("loadtest: bot log: %w", err)
	}
	defer botLogFile.Close()
	botLog := slog.New(slog.NewTextHandler(botLogFile, &slog.HandlerOptions{Level: slog.LevelWarn}))
	mk := func() bot.Config {
		return bot.Config{
			Token: srv.Token(), Endpoint: endpoint, Prefix: prefix,
			Engine: eng, Catalog: cat, Poster: cs.poster,
			Mode: cfg.Mode, Workers: cfg.Workers, Logger: botLog,
		}
	}
	fl, err := startFleet(ctx, &cfg, dir, endpoint, srv.Token(), mk, cs.url, cs.token, redisURL, log)
	defer fl.stop()
	if err != nil {
		return nil, err
	}
	if cfg.Mode == bot.ModeWebhook && len(fl.replicas) > 0 {
		wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
		err := srv.WaitFor(wctx, func() bool { return srv.Calls("setWebhook") > 0 })
		wcancel()
		if err != nil {
			return nil, fmt.Errorf("loadtest: the bots never set the webhook: %w", err)
		}
	}

	res := &Result{Users: cfg.Users, Mode: string(cfg.Mode), Replicas: cfg.Replicas, Exec: cfg.Exec,
		Think: [2]time.Duration{cfg.ThinkMin, cfg.ThinkMax}, Faults: cfg.Faults, Dir: dir, Run: run}
	mirror := flows.NewEngine(set, cat)
	pop := &population{srv: srv, eng: mirror, def: def, router: rt, latency: newHistogram(),
		settle: newHistogram(), cfg: &cfg, run: run}
	window := newHistogram()

	// Baselines.
	var msBefore runtime.MemStats
	runtime.ReadMemStats(&msBefore)
	cmdBefore := fl.counter.snapshot()
	adminBefore := adminCmds.snapshot()
	statsBefore, _ := commandStats(ctx, admin)
	usedBefore, _ := infoInt(ctx, admin, "memory", "used_memory")
	pmBefore, _ := fl.scrape(ctx)
	tgBefore := srv.Stats()
	cpuBefore := fl.cpu()

	shards := redisstate.DefaultShards
	mem := &memSampler{rdb: admin, prefix: prefix, shards: shards}
	// The load has its time limit; setup, the drain and the check have their own, so
	// that a load cut short is still checked.
	loadCtx, stopLoad := context.WithTimeout(ctx, cfg.Timeout)
	var bg sync.WaitGroup
	var rssPeak atomic.Int64
	var done atomic.Int64
	var firstDone atomic.Int64 // unix nanos of the first finished questionnaire
	start := time.Now()
	soak := &soakLog{}

	// Once a second: resident memory, progress and, while dialogues are open, what a
	// dialogue costs Redis.
	bg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var lastUpd int64
		lastSample := start
		for n := 1; ; n++ {
			select {
			case <-loadCtx.Done():
				return
			case <-tick.C:
			}
			rssPeak.Store(max(rssPeak.Load(), fl.rss()))
			if cfg.Duration > 0 || done.Load() < int64(cfg.Users) {
				if err := mem.sample(loadCtx); err != nil && loadCtx.Err() == nil {
					log.Warn("memory sample", "err", err)
				}
			}
			upd := pop.updates.Load()
			soak.tick(time.Now(), upd)
			if cfg.Progress != nil {
				s := pop.latency.summary()
				fmt.Fprintf(cfg.Progress, "t=%3.0fs users_done=%d updates=%d rate=%d/s p99=%.1fms resyncs=%d kills=%d\n",
					time.Since(start).Seconds(), done.Load(), upd, upd-lastUpd, ms(s.P99), pop.resyncs.Load(), fl.kills.Load())
			}
			lastUpd = upd
			if cfg.Soak && time.Since(lastSample) >= cfg.Sample {
				lastSample = time.Now()
				soak.add(loadCtx, fl, time.Since(start), upd, window.reset())
			}
		}
	})
	startFaults(loadCtx, &bg, &cfg, srv, fl, own, cs, log, res)

	results := pop.runUsers(loadCtx, langs, func(r result) {
		if r.Completed {
			if done.Add(1) == 1 {
				firstDone.Store(time.Now().UnixNano())
			}
		}
	}, window)
	loadEnd := time.Now()
	cpuAfter := fl.cpu()
	stopLoad()
	bg.Wait()
	srv.ClearFaults()
	res.RSSEnd = fl.rss()
	res.RSSPeak = max(rssPeak.Load(), res.RSSEnd)

	// What the users did.
	res.Load = loadEnd.Sub(start)
	res.Updates = pop.updates.Load()
	if res.Load > 0 {
		res.UpdatesPerSec = float64(res.Updates) / res.Load.Seconds()
	}
	res.CPU = cpuUse(cpuBefore, cpuAfter, res.Updates, cfg.Exec)
	if fl.kills.Load() > 0 {
		res.CPU.Bots, res.CPU.BotPerUpdate = 0, 0
	}
	res.Latency, res.Settle = pop.latency.summary(), pop.settle.summary()
	res.Actions, res.Resends, res.Resyncs = pop.actions.Load(), pop.resends.Load(), pop.resyncs.Load()
	res.Redone, res.Mismatch, res.Unsent = pop.redone.Load(), pop.mismatch.Load(), pop.unsent.Load()
	res.Questionnaires = len(results)
	for _, r := range results {
		if r.Err != nil {
			res.Failed++
			if len(res.Errors) < maxProblems {
				res.Errors = append(res.Errors, r.Err.Error())
			}
		}
	}

	// Cost figures, taken before the drain so that only the load is in them.
	res.Telegram = diffStats(srv.Stats(), tgBefore)
	if cfg.Mode == bot.ModeWebhook {
		res.WebhookPosts = len(srv.Deliveries())
	}
	if cfg.Exec {
		statsAfter, err := commandStats(ctx, admin)
		if err == nil {
			own := adminCmds.snapshot().sub(adminBefore).byName
			res.Redis.Source = "INFO commandstats (server side: commands run by scripts included)"
			res.Redis.ByName = map[string]int64{}
			var total int64
			for name, n := range statsAfter {
				d := n - statsBefore[name] - own[name]
				if d > 0 && botCommand(name) {
					res.Redis.ByName[name] = d
					total += d
				}
			}
			res.Redis.CmdsPerUpdate = perUpdate(total, res.Updates)
			// The Load script and the Commit script each run one TYPE, and nothing else does.
			res.Redis.HotRTTPerUpdate = perUpdate(res.Redis.ByName["type"], res.Updates)
		}
		if pm, err := fl.scrape(ctx); err == nil && fl.kills.Load() == 0 {
			res.AllocsPerUpdate = (pm.Mallocs - pmBefore.Mallocs) / float64(max(res.Updates, 1))
			res.AllocScope = "bot processes"
			res.BotHandleP50 = pm.handleQuantile(pmBefore, 0.50)
			res.BotHandleP99 = pm.handleQuantile(pmBefore, 0.99)
		}
	} else {
		d := fl.counter.snapshot().sub(cmdBefore)
		res.Redis.Source = "go-redis hook on the bots' clients"
		res.Redis.ByName = d.byName
		res.Redis.CmdsPerUpdate = perUpdate(d.total(), res.Updates)
		res.Redis.RTTPerUpdate = perUpdate(d.rtt, res.Updates)
		res.Redis.HotRTTPerUpdate = perUpdate(d.hot, res.Updates)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		res.AllocsPerUpdate = float64(ms.Mallocs-msBefore.Mallocs) / float64(max(res.Updates, 1))
		res.AllocScope = "whole process: bots, fake Telegram and users"
	}
	res.Redis.StateBytes, res.Redis.StateDataBytes, res.Redis.StateSamples = mem.averages()
	res.Redis.StateBytesMax = mem.maxUsage
	if mem.maxActive > 0 && mem.usedAt > usedBefore {
		res.Redis.BytesPerDialogue = float64(mem.usedAt-usedBefore) / float64(mem.maxActive)
		res.Redis.ActivePeak = mem.maxActive
	}
	if first := firstDone.Load(); first > 0 {
		// The steady rate: every user started, none finished yet.
		from, to := start.Add(cfg.Ramp), time.Unix(0, first)
		if to.Sub(from) >= 2*time.Second {
			res.SteadyPerSec = soak.rateBetween(from, to)
		}
	}
	res.Kills = fl.kills.Load()
	res.CentralOutages = cs.outages.Load()
	if cfg.Soak {
		res.Soak = soak.report(cfg.Exec)
	}

	// Let the outbox deliver, then compare.
	drainStart := time.Now()
	completed := 0
	for _, r := range results {
		if r.Completed {
			completed++
		}
	}
	res.Outbox, err = drain(ctx, admin, prefix, shards, cs, completed, cfg.Drain)
	res.DrainTime = time.Since(drainStart)
	if err != nil {
		log.Warn("drain", "err", err)
	}
	subs, err := cs.readAll(ctx)
	if err != nil {
		return res, err
	}
	res.Verdict = verify(results, subs)
	res.BotWarnings = fl.warnings(filepath.Join(dir, "bots.log"))
	return res, nil
}

// runUsers runs cfg.Users users at once; with Duration each starts a new
// questionnaire, as a new user, until it is over.
func (p *population) runUsers(ctx context.Context, langs []string, finished func(result), window *histogram) []result {
	cfg := p.cfg
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
		nextID  atomic.Int64
	)
	nextID.Store(firstUserID)
	end := time.Now().Add(cfg.Duration)
	p.window = window
	for i := range cfg.Users {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(cfg.Seed, uint64(i)))
			if d := cfg.Ramp * time.Duration(i) / time.Duration(cfg.Users); d > 0 {
				if outbox.Sleep(ctx, d) != nil {
					return
				}
			}
			for ctx.Err() == nil {
				id := nextID.Add(1)
				lang := langs[rng.IntN(len(langs))]
				code := ""
				if id%2 == 0 {
					code = "lt-" + p.run // half the users come by the campaign's deep link
				}
				r := newUser(p, id, lang, code, cfg.Seed).complete(ctx)
				if !errors.Is(r.Err, errStopped) {
					finished(r)
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				if r.Err != nil && errors.Is(r.Err, errStopped) || cfg.Duration <= 0 || time.Now().After(end) {
					return
				}
			}
		})
	}
	wg.Wait()
	slices.SortFunc(results, func(a, b result) int { return int(a.ID - b.ID) })
	return results
}

// drain waits until the outbox streams are empty and the store holds at least want
// submissions, or limit passes.
func drain(ctx context.Context, rdb redis.UniversalClient, prefix string, shards int, cs *centralStore, want int, limit time.Duration) (OutboxState, error) {
	deadline := time.Now().Add(limit)
	var st OutboxState
	for {
		pipe := rdb.Pipeline()
		queued := make([]*redis.IntCmd, shards)
		dead := make([]*redis.IntCmd, shards)
		for s := range shards {
			queued[s] = pipe.XLen(ctx, redisstate.OutboxKey(prefix, s))
			dead[s] = pipe.XLen(ctx, redisstate.DeadKey(prefix, s))
		}
		_, err := pipe.Exec(ctx)
		st = OutboxState{}
		for s := range shards {
			st.Queued += queued[s].Val()
			st.Dead += dead[s].Val()
		}
		n, cerr := cs.count(ctx)
		if err == nil && cerr == nil && st.Queued == 0 && n >= want {
			return st, nil
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("loadtest: outbox not drained after %v: %d queued, %d stored of %d (redis: %v, store: %v)",
				limit, st.Queued, n, want, err, cerr)
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// startFaults runs the configured fault injectors until ctx ends. Each leaves what it
// broke working again before it returns.
func startFaults(ctx context.Context, bg *sync.WaitGroup, cfg *Config, srv *telegramtest.Server, fl *fleet, own *ownRedis, cs *centralStore, log *slog.Logger, res *Result) {
	f := cfg.Faults
	if f.TooManyRequests > 0 || f.ServerErrors > 0 {
		srv.SetChaos(telegramtest.Chaos{Seed: int64(cfg.Seed), TooManyRequests: f.TooManyRequests, ServerErrors: f.ServerErrors, RetryAfter: 1})
	}
	every := func(d time.Duration, fn func() error) {
		bg.Go(func() {
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if err := fn(); err != nil {
					log.Error("fault injection", "err", err)
				}
			}
		})
	}
	if f.KillEvery > 0 {
		every(f.KillEvery, func() error { return fl.killOne(ctx, f.KillDown) })
	}
	if f.RedisRestartEvery > 0 && own != nil {
		every(f.RedisRestartEvery, func() error {
			res.RedisRestarts++
			log.Info("redis down", "for", f.RedisDown)
			own.stop()
			_ = outbox.Sleep(ctx, f.RedisDown) // a cancelled load still gets its Redis back
			return own.start(context.WithoutCancel(ctx))
		})
	}
	if f.CentralDown > 0 && cs.proc != nil {
		bg.Go(func() {
			t := time.NewTimer(f.CentralDownAfter)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// The outage lasts its full length even if the users finish first.
			if err := cs.outage(context.WithoutCancel(ctx), f.CentralDown, log); err != nil {
				log.Error("central store restart", "err", err)
			}
		})
	}
}

// serveFixed serves the fake Bot API also on addr, by forwarding.
func serveFixed(addr, target string) (func(), error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("loadtest: fake Telegram URL: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("loadtest: serve fake Telegram on %s: %w", addr, err)
	}
	hs := &http.Server{Handler: httputil.NewSingleHostReverseProxy(u), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return func() { _ = hs.Close() }, nil
}

func perUpdate(n, updates int64) float64 {
	if updates == 0 {
		return 0
	}
	return float64(n) / float64(updates)
}

// botCommand names the commands the bot and its outbox worker send (and those the
// commit script runs), so that the harness's own sampling commands are left out.
func botCommand(name string) bool {
	switch name {
	case "type", "get", "set", "hmget", "hset", "hdel", "pexpire", "zadd", "zrem", "xadd", "evalsha", "eval",
		"xreadgroup", "xautoclaim", "xack", "xdel", "multi", "exec", "xgroup|create",
		"zrangebyscore", "xpending", "xclaim", "del", "ping", "script|load":
		return true
	}
	return false
}

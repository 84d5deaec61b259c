package loadtest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dialoq/dialoq/bot/telegramtest"
)

// Result is what a run measured and found.
type Result struct {
	Run      string
	Dir      string
	Users    int
	Mode     string
	Replicas int
	Exec     bool
	Think    [2]time.Duration
	Faults   Faults

	Load           time.Duration // first action to the last user's end
	Updates        int64         // updates the users sent (answers, re-sends, /resume)
	UpdatesPerSec  float64       // Updates / Load
	SteadyPerSec   float64       // while every user was active and none had finished; 0 if too short
	Questionnaires int           // questionnaires started
	Failed         int           // users that gave up (see Errors)
	Errors         []string

	Latency summary // update injected → the reply the user waited for
	// BotHandleP50 and BotHandleP99 are the bots' own time per update, seconds, as
	// the upper bounds of their histogram buckets (bot processes only; 0 otherwise).
	BotHandleP50, BotHandleP99 float64
	Settle                     summary // an action's first send → its reply accepted, re-sends and resyncs included

	Actions, Resends, Resyncs, Redone, Mismatch int64
	Unsent                                      int64 // presses on a button the bot had removed meanwhile

	CPU             CPUUse
	Redis           RedisFigures
	AllocsPerUpdate float64
	AllocScope      string
	RSSPeak, RSSEnd int64

	Telegram                      telegramtest.Stats // during the load
	WebhookPosts                  int                // webhook delivery attempts, second copies and retries included
	Kills, RedisRestarts          int64
	CentralOutages                int64
	BotWarnings                   int
	Outbox                        OutboxState
	DrainTime                     time.Duration
	Verdict                       Verdict
	Soak                          *SoakReport
	scenarioName, scenarioSummary string
}

// RedisFigures is what the bots asked of Redis and what a dialogue occupies there.
type RedisFigures struct {
	Source          string
	ByName          map[string]int64
	CmdsPerUpdate   float64 // every command, outbox and sweeper included
	RTTPerUpdate    float64 // round trips (a pipeline is one); in-process bots only
	HotRTTPerUpdate float64 // the update's own Load + Commit
	// StateBytes is the mean MEMORY USAGE of an open dialogue's state key,
	// StateDataBytes the mean length of its envelope, over StateSamples samples.
	StateBytes, StateDataBytes float64
	StateSamples               int64
	StateBytesMax              int64
	// BytesPerDialogue is the growth of used_memory per open dialogue at the sample
	// with most of them (activity index, outbox and allocator overhead included;
	// other clients of a shared server too).
	BytesPerDialogue float64
	ActivePeak       int64
}

// OutboxState is what the outbox streams held when the drain ended.
type OutboxState struct {
	Queued int64 // not delivered
	Dead   int64 // given up on
}

// OK reports whether the run lost, duplicated and garbled nothing and every user
// finished.
func (r *Result) OK() bool {
	return r.Failed == 0 && r.Verdict.OK() && r.Outbox.Dead == 0 && r.Mismatch == 0
}

func diffStats(after, before telegramtest.Stats) telegramtest.Stats {
	d := after
	d.Calls, d.Statuses = map[string]int{}, map[int]int{}
	for k, v := range after.Calls {
		if n := v - before.Calls[k]; n != 0 {
			d.Calls[k] = n
		}
	}
	for k, v := range after.Statuses {
		if n := v - before.Statuses[k]; n != 0 {
			d.Statuses[k] = n
		}
	}
	d.RateLimited -= before.RateLimited
	d.Faults -= before.Faults
	d.Updates -= before.Updates
	d.Delivered -= before.Delivered
	return d
}

// Print writes the human-readable report and, last, the machine-readable line.
func (r *Result) Print(w io.Writer) {
	fmt.Fprintf(w, "dialoq load test %s: %d users, %s, %d replica(s) %s, think %v–%v\n",
		r.Run, r.Users, r.Mode, r.Replicas, map[bool]string{true: "as processes", false: "in process"}[r.Exec], r.Think[0], r.Think[1])
	if r.Faults.any() {
		fmt.Fprintf(w, "faults: %s\n", describeFaults(r.Faults))
	}
	fmt.Fprintf(w, "load: %d questionnaires, %d updates in %v: %.0f updates/s", r.Questionnaires, r.Updates, r.Load.Round(time.Millisecond), r.UpdatesPerSec)
	if r.SteadyPerSec > 0 {
		fmt.Fprintf(w, " (%.0f/s with every user active)", r.SteadyPerSec)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "latency update→reply: p50 %.2fms p95 %.2fms p99 %.2fms max %.1fms (n=%d)\n",
		ms(r.Latency.P50), ms(r.Latency.P95), ms(r.Latency.P99), ms(r.Latency.Max), r.Latency.N)
	if r.BotHandleP99 > 0 {
		fmt.Fprintf(w, "inside the bot (dialoq_bot_update_seconds, bucket bounds): p50 ≤ %gms, p99 ≤ %gms\n", r.BotHandleP50*1000, r.BotHandleP99*1000)
	}
	if r.Resyncs > 0 || r.Resends > 0 {
		fmt.Fprintf(w, "as users felt it (re-sends included): p50 %.2fms p99 %.1fms max %.0fms; re-taps %d (%d on a button already gone), /resume %d, actions found not applied and sent again %d\n",
			ms(r.Settle.P50), ms(r.Settle.P99), ms(r.Settle.Max), r.Resends, r.Unsent, r.Resyncs, r.Redone)
	}
	c := r.CPU
	switch {
	case r.Kills > 0:
		fmt.Fprintf(w, "cpu: %.2f of %d cores busy (bot processes were killed: their CPU time is not known)\n", c.Machine, runtime.NumCPU())
	case r.Exec:
		fmt.Fprintf(w, "cpu: %.2f of %d cores busy: bot processes %.2f (%.0fµs per update), harness (fake Telegram, users) %.2f, other (Redis, kernel, anything else) %.2f\n",
			c.Machine, runtime.NumCPU(), c.Bots, us(c.BotPerUpdate), c.Harness, c.Other())
	default:
		fmt.Fprintf(w, "cpu: %.2f of %d cores busy: this process (bots, fake Telegram, users) %.2f (%.0fµs per update), other (Redis, kernel, anything else) %.2f\n",
			c.Machine, runtime.NumCPU(), c.Harness, us(c.BotPerUpdate), c.Other())
	}
	fmt.Fprintf(w, "redis (%s): %.2f commands/update, %.2f hot-path round trips/update", r.Redis.Source, r.Redis.CmdsPerUpdate, r.Redis.HotRTTPerUpdate)
	if r.Redis.RTTPerUpdate > 0 {
		fmt.Fprintf(w, ", %.2f round trips/update in all", r.Redis.RTTPerUpdate)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  by command: %s\n", topCommands(r.Redis.ByName, 10))
	fmt.Fprintf(w, "redis memory per open dialogue: state key %.0f B mean, %d B max (envelope %.0f B; %d samples)",
		r.Redis.StateBytes, r.Redis.StateBytesMax, r.Redis.StateDataBytes, r.Redis.StateSamples)
	if r.Redis.BytesPerDialogue > 0 {
		fmt.Fprintf(w, "; used_memory growth %.0f B per dialogue at %d open", r.Redis.BytesPerDialogue, r.Redis.ActivePeak)
	}
	fmt.Fprintln(w)
	if r.AllocScope != "" {
		fmt.Fprintf(w, "allocations: %.0f per update (%s)\n", r.AllocsPerUpdate, r.AllocScope)
	}
	scope := "this process: bots, fake Telegram and users"
	if r.Exec {
		scope = "bot processes, summed"
	}
	fmt.Fprintf(w, "resident memory: peak %.1f MB, end %.1f MB (%s)\n", mb(r.RSSPeak), mb(r.RSSEnd), scope)
	fmt.Fprintf(w, "telegram: %s; statuses %v; faults injected %d", callSummary(r.Telegram.Calls), r.Telegram.Statuses, r.Telegram.Faults)
	if r.WebhookPosts > 0 {
		fmt.Fprintf(w, "; webhook: %d updates delivered in %d posts", r.Telegram.Delivered, r.WebhookPosts)
	}
	fmt.Fprintln(w)
	if r.Kills+r.RedisRestarts+r.CentralOutages > 0 {
		fmt.Fprintf(w, "injected: %d SIGKILLs, %d Redis restarts, %d central store outages\n", r.Kills, r.RedisRestarts, r.CentralOutages)
	}
	v := r.Verdict
	fmt.Fprintf(w, "central store: %d completed by users, %d stored exactly as answered, %d lost (%d missing, %d wrong), %d duplicates, %d foreign, %d partial; outbox %d queued, %d dead; drained in %v after the load; longest delivery delay %v\n",
		v.Completed, v.Stored, v.Lost(), v.Missing, v.Wrong, v.Duplicates, v.Foreign, v.Partial, r.Outbox.Queued, r.Outbox.Dead,
		r.DrainTime.Round(time.Millisecond), v.MaxLag.Round(time.Millisecond))
	if v.Unconfirmed > 0 {
		fmt.Fprintf(w, "  %d complete submissions of users stopped before they saw the closing message (not checked)\n", v.Unconfirmed)
	}
	for _, p := range v.Problems {
		fmt.Fprintf(w, "  ! %s\n", p)
	}
	if r.Failed > 0 {
		fmt.Fprintf(w, "users that gave up: %d\n", r.Failed)
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  ! %s\n", e)
		}
	}
	if r.Mismatch > 0 {
		fmt.Fprintf(w, "keyboards that differed from the questionnaire: %d\n", r.Mismatch)
	}
	if r.BotWarnings > 0 {
		fmt.Fprintf(w, "the bots logged %d warnings/errors (bots.log and bot*.log in %s)\n", r.BotWarnings, r.Dir)
	}
	if r.Soak != nil {
		r.Soak.print(w)
	}
	fmt.Fprintln(w, r.Line())
}

// Line is the machine-readable summary: space-separated key=value pairs.
func (r *Result) Line() string {
	v := r.Verdict
	var b strings.Builder
	if r.scenarioName != "" {
		fmt.Fprintf(&b, "scenario=%s ", r.scenarioName)
	}
	fmt.Fprintf(&b, "users=%d mode=%s replicas=%d exec=%t updates=%d updates_per_s=%.0f steady_updates_per_s=%.0f "+
		"p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f max_ms=%.1f redis_cmds_per_update=%.2f redis_hot_rtt_per_update=%.2f "+
		"state_bytes=%.0f state_bytes_max=%d state_data_bytes=%.0f redis_bytes_per_dialogue=%.0f allocs_per_update=%.0f rss_peak_mb=%.1f "+
		"bot_p99_ms_le=%g cpu_busy=%.2f cpu_other=%.2f cpu_us_per_update=%.0f "+
		"completed=%d stored=%d lost=%d dup=%d dead=%d failed=%d resends=%d resyncs=%d redone=%d ok=%t",
		r.Users, r.Mode, r.Replicas, r.Exec, r.Updates, r.UpdatesPerSec, r.SteadyPerSec,
		ms(r.Latency.P50), ms(r.Latency.P95), ms(r.Latency.P99), ms(r.Latency.Max), r.Redis.CmdsPerUpdate, r.Redis.HotRTTPerUpdate,
		r.Redis.StateBytes, r.Redis.StateBytesMax, r.Redis.StateDataBytes, r.Redis.BytesPerDialogue, r.AllocsPerUpdate, mb(r.RSSPeak),
		r.BotHandleP99*1000, r.CPU.Machine, r.CPU.Other(), us(r.CPU.BotPerUpdate),
		v.Completed, v.Stored, v.Lost(), v.Duplicates, r.Outbox.Dead, r.Failed, r.Resends, r.Resyncs, r.Redone, r.OK())
	if s := r.Soak; s != nil {
		verdict := "pass"
		switch {
		case s.Short:
			verdict = "short"
		case !s.MemoryFlat || !s.GoroutinesFlat:
			verdict = "fail"
		}
		fmt.Fprintf(&b, " soak_heap_growth=%.3f soak_rss_growth=%.3f soak_goroutines=%d..%d soak_verdict=%s",
			s.HeapGrowth, s.RSSGrowth, s.GoroutinesMax[0], s.GoroutinesMax[1], verdict)
	}
	return b.String()
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func describeFaults(f Faults) string {
	var parts []string
	if f.KillEvery > 0 {
		parts = append(parts, fmt.Sprintf("SIGKILL a bot every %v (down %v)", f.KillEvery, f.KillDown))
	}
	if f.RedisRestartEvery > 0 {
		parts = append(parts, fmt.Sprintf("restart Redis every %v (down %v)", f.RedisRestartEvery, f.RedisDown))
	}
	if f.CentralDown > 0 {
		parts = append(parts, fmt.Sprintf("central store down for %v after %v", f.CentralDown, f.CentralDownAfter))
	}
	if f.TooManyRequests > 0 || f.ServerErrors > 0 {
		parts = append(parts, fmt.Sprintf("Telegram answers 429 to %.0f%% and 5xx to %.0f%% of calls", 100*f.TooManyRequests, 100*f.ServerErrors))
	}
	if f.DeliverTwice {
		parts = append(parts, "every webhook update delivered twice")
	}
	return strings.Join(parts, "; ")
}

func topCommands(m map[string]int64, n int) string {
	names := slices.Collect(maps.Keys(m))
	slices.SortFunc(names, func(a, b string) int {
		if m[a] != m[b] {
			return int(m[b] - m[a])
		}
		return strings.Compare(a, b)
	})
	var parts []string
	for i, name := range names {
		if i == n {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%s=%d", name, m[name]))
	}
	return strings.Join(parts, " ")
}

func callSummary(calls map[string]int) string {
	names := slices.Sorted(maps.Keys(calls))
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s=%d", n, calls[n]))
	}
	return strings.Join(parts, " ")
}

// SoakSample is one sample of a soak.
type SoakSample struct {
	T          time.Duration
	Rate       float64 // updates/s since the previous sample
	P99        time.Duration
	RSS        int64
	HeapInuse  int64
	Goroutines int
}

// SoakReport is a soak's series and verdict.
type SoakReport struct {
	Scope          string
	Samples        []SoakSample
	HeapGrowth     float64 // mean of the second half over the first, after warm-up, minus 1
	RSSGrowth      float64
	GoroutinesMax  [2]int // first and second half
	MemoryFlat     bool
	GoroutinesFlat bool
	Short          bool // too few samples to judge
	Verdict        string
}

// soakLog keeps the per-second update counter (for the steady rate) and the soak's
// samples.
type soakLog struct {
	mu      sync.Mutex
	ticks   []soakTick
	samples []SoakSample
	lastT   time.Duration // of the previous sample
	lastU   int64
}

type soakTick struct {
	at      time.Time
	updates int64
}

// maxTicks bounds the per-second series (a day of seconds).
const maxTicks = 86400

func (s *soakLog) tick(at time.Time, updates int64) {
	s.mu.Lock()
	if len(s.ticks) < maxTicks {
		s.ticks = append(s.ticks, soakTick{at, updates})
	}
	s.mu.Unlock()
}

// rateBetween is the update rate between the ticks nearest to from and to.
func (s *soakLog) rateBetween(from, to time.Time) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var a, b *soakTick
	for i := range s.ticks {
		t := &s.ticks[i]
		if a == nil && !t.at.Before(from) {
			a = t
		}
		if !t.at.After(to) {
			b = t
		}
	}
	if a == nil || b == nil || !b.at.After(a.at) {
		return 0
	}
	return float64(b.updates-a.updates) / b.at.Sub(a.at).Seconds()
}

func (s *soakLog) add(ctx context.Context, fl *fleet, t time.Duration, updates int64, win *histogram) {
	sm := SoakSample{T: t, P99: win.summary().P99, RSS: fl.rss()}
	if fl.cfg.Exec {
		if pm, err := fl.scrape(ctx); err == nil {
			sm.HeapInuse, sm.Goroutines = int64(pm.HeapInuse), int(pm.Goroutines)
		}
	} else {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		sm.HeapInuse, sm.Goroutines = int64(m.HeapInuse), runtime.NumGoroutine()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t > s.lastT {
		sm.Rate = float64(updates-s.lastU) / (t - s.lastT).Seconds()
	}
	s.lastT, s.lastU = t, updates
	s.samples = append(s.samples, sm)
}

// report judges the series: after a warm-up fifth, the second half's mean heap and
// RSS against the first half's, and the most goroutines in each half.
func (s *soakLog) report(exec bool) *SoakReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return nil
	}
	r := &SoakReport{Samples: slices.Clone(s.samples), Scope: "this process (bots, fake Telegram, users)"}
	if exec {
		r.Scope = "bot processes"
	}
	rest := r.Samples[max(1, len(r.Samples)/5):]
	if len(rest) < 4 {
		r.Short = true
		r.Verdict = "too short to judge (fewer than 4 samples after warm-up)"
		return r
	}
	a, b := rest[:len(rest)/2], rest[len(rest)/2:]
	mean := func(ss []SoakSample, f func(SoakSample) int64) float64 {
		var sum float64
		for _, x := range ss {
			sum += float64(f(x))
		}
		return sum / float64(len(ss))
	}
	most := func(ss []SoakSample) int {
		m := 0
		for _, x := range ss {
			m = max(m, x.Goroutines)
		}
		return m
	}
	heap := func(x SoakSample) int64 { return x.HeapInuse }
	rss := func(x SoakSample) int64 { return x.RSS }
	if h := mean(a, heap); h > 0 {
		r.HeapGrowth = mean(b, heap)/h - 1
	}
	if m := mean(a, rss); m > 0 {
		r.RSSGrowth = mean(b, rss)/m - 1
	}
	r.GoroutinesMax = [2]int{most(a), most(b)}
	// Thresholds: a leak of a few KB per update grows far beyond 10% in minutes,
	// while GC timing and in-flight work move these numbers by a few percent.
	r.MemoryFlat = r.HeapGrowth <= 0.10 && r.RSSGrowth <= 0.10
	r.GoroutinesFlat = float64(r.GoroutinesMax[1]) <= float64(r.GoroutinesMax[0])*1.10+5
	switch {
	case r.MemoryFlat && r.GoroutinesFlat:
		r.Verdict = "PASS: memory flat, goroutines do not grow"
	case !r.MemoryFlat && !r.GoroutinesFlat:
		r.Verdict = "FAIL: memory and goroutines grow"
	case !r.MemoryFlat:
		r.Verdict = "FAIL: memory grows"
	default:
		r.Verdict = "FAIL: goroutines grow"
	}
	return r
}

func (r *SoakReport) print(w io.Writer) {
	fmt.Fprintf(w, "soak samples (%s):\n", r.Scope)
	fmt.Fprintf(w, "  %8s %10s %9s %9s %10s %10s\n", "t", "updates/s", "p99 ms", "RSS MB", "heap MB", "goroutines")
	for _, s := range r.Samples {
		fmt.Fprintf(w, "  %8v %10.0f %9.2f %9.1f %10.1f %10d\n", s.T.Round(time.Second), s.Rate, ms(s.P99), mb(s.RSS), mb(s.HeapInuse), s.Goroutines)
	}
	fmt.Fprintf(w, "soak verdict: %s (heap %+.1f%%, RSS %+.1f%%, goroutines max %d → %d)\n",
		r.Verdict, 100*r.HeapGrowth, 100*r.RSSGrowth, r.GoroutinesMax[0], r.GoroutinesMax[1])
}

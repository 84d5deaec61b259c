package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dialoq/dialoq/bot"
)

// Scenario is a fault and what a run needs to inject it.
type Scenario struct {
	Name  string
	What  string
	apply func(*Config)
}

// Scenarios are the fault suite. centralDown is how long the central store stays
// down (a minute in the full suite, less in tests).
func Scenarios(centralDown time.Duration) []Scenario {
	return []Scenario{
		{Name: "kill", What: "bot processes killed with SIGKILL every 3s under load and restarted", apply: func(c *Config) {
			c.Exec = true
			if c.Mode == bot.ModeWebhook {
				c.Replicas = max(c.Replicas, 2)
			} else {
				c.Replicas = 1
			}
			if c.Faults.KillEvery <= 0 {
				c.Faults.KillEvery = 3 * time.Second
			}
		}},
		{Name: "redis", What: "Redis (AOF, fsync every second) stopped and restarted every 10s, down 2s", apply: func(c *Config) {
			c.OwnRedis = true
			if c.Faults.RedisRestartEvery <= 0 {
				c.Faults.RedisRestartEvery = 10 * time.Second
			}
		}},
		{Name: "central", What: fmt.Sprintf("central store process stopped for %v under load", centralDown), apply: func(c *Config) {
			c.CentralProcess = true
			if c.Faults.CentralDownAfter <= 0 {
				c.Faults.CentralDownAfter = 3 * time.Second
			}
			c.Faults.CentralDown = centralDown
			// Users keep coming through the whole outage.
			c.Duration = max(c.Duration, c.Faults.CentralDownAfter+centralDown+5*time.Second)
			// After the restart the outbox retries on its backoff, up to 30s apart.
			c.Drain = max(c.Drain, 2*time.Minute)
		}},
		{Name: "telegram", What: "Telegram answers 429 (retry_after 1s) to 10% and 5xx to 1% of calls", apply: func(c *Config) {
			c.Faults.TooManyRequests, c.Faults.ServerErrors = 0.10, 0.01
			// A reply may wait out several 429s in a row.
			c.ReplyTimeout = max(c.ReplyTimeout, 10*time.Second)
			// The bot sleeps out every 429 inside the update, so a big polling
			// load may never finish (docs/reliability.md): bound it.
			c.Timeout = min(c.Timeout, 10*time.Minute)
		}},
		{Name: "twice", What: "every webhook update delivered twice", apply: func(c *Config) {
			c.Mode = bot.ModeWebhook
			c.Faults.DeliverTwice = true
		}},
	}
}

// pickScenarios resolves "all" or a comma-separated list of names.
func pickScenarios(list string, centralDown time.Duration) ([]Scenario, error) {
	all := Scenarios(centralDown)
	if list == "all" {
		return all, nil
	}
	var out []Scenario
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, s := range all {
			if s.Name == name {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			var names []string
			for _, s := range all {
				names = append(names, s.Name)
			}
			return nil, fmt.Errorf("loadtest: no chaos scenario %q (have %s, all)", name, strings.Join(names, ", "))
		}
	}
	return out, nil
}

// RunScenario runs base with the scenario's fault.
func RunScenario(ctx context.Context, base Config, s Scenario) (*Result, error) {
	cfg := base
	s.apply(&cfg)
	res, err := Run(ctx, cfg)
	if res != nil {
		res.scenarioName, res.scenarioSummary = s.Name, s.What
	}
	return res, err
}

// RunChaos runs the scenarios one after another, printing each report and then a
// table of what was sent, stored and lost. It reports whether all were clean.
func RunChaos(ctx context.Context, base Config, scenarios []Scenario, w io.Writer) (bool, error) {
	var results []*Result
	var errs []error
	for _, s := range scenarios {
		fmt.Fprintf(w, "\n=== chaos %s: %s\n", s.Name, s.What)
		res, err := RunScenario(ctx, base, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
			fmt.Fprintf(w, "scenario %s could not run: %v\n", s.Name, err)
		}
		if res != nil {
			res.Print(w)
			results = append(results, res)
		}
		if ctx.Err() != nil {
			break
		}
	}
	fmt.Fprintln(w, "\n=== chaos summary")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tupdates sent\tcompleted\tstored\tlost\tduplicates\tdead letters\tusers failed\tre-taps\t/resume\tresent\tinjected\tok\t")
	ok := len(errs) == 0
	for _, r := range results {
		v := r.Verdict
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%t\t\n", r.scenarioName, r.Updates, v.Completed, v.Stored,
			v.Lost(), v.Duplicates, r.Outbox.Dead, r.Failed, r.Resends, r.Resyncs, r.Redone, injected(r), r.OK())
		ok = ok && r.OK()
	}
	_ = tw.Flush()
	return ok, errors.Join(errs...)
}

func injected(r *Result) string {
	switch {
	case r.Kills > 0:
		return fmt.Sprintf("%d kills", r.Kills)
	case r.RedisRestarts > 0:
		return fmt.Sprintf("%d restarts", r.RedisRestarts)
	case r.CentralOutages > 0:
		return fmt.Sprintf("%d outage", r.CentralOutages)
	case r.Telegram.Faults > 0:
		return fmt.Sprintf("%d faults", r.Telegram.Faults)
	case r.Faults.DeliverTwice:
		return fmt.Sprintf("%d posts", r.WebhookPosts)
	}
	return "-"
}

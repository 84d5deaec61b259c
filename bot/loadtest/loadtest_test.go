package loadtest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/dialoq/dialoq/bot"
	"github.com/dialoq/dialoq/storage/redisstate/redistest"
)

// testConfig is a small run against the test Redis.
func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := Config{
		Users:    20,
		ThinkMin: time.Millisecond, ThinkMax: 5 * time.Millisecond,
		Ramp:     200 * time.Millisecond,
		RedisURL: redistest.URL(),
		Timeout:  60 * time.Second,
		Dir:      t.TempDir(),
	}
	if testing.Verbose() {
		cfg.Progress = os.Stderr
	}
	return cfg
}

// check fails the test with the report when the run lost, duplicated or garbled
// anything.
func check(t *testing.T, res *Result, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	var b []byte
	w := &sliceWriter{&b}
	res.Print(w)
	t.Log("\n" + string(b))
	if !res.OK() {
		t.Fatalf("run not clean")
	}
	if v := res.Verdict; v.Stored != v.Completed || v.Completed < res.Users {
		t.Fatalf("stored %d of %d completed by %d users", v.Stored, v.Completed, res.Users)
	}
}

type sliceWriter struct{ b *[]byte }

func (w *sliceWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }

// Twenty users complete the questionnaire through one polling bot in this process;
// every submission is stored once with exactly the answers given.
func TestHarnessPolling(t *testing.T) {
	cfg := testConfig(t)
	res, err := Run(context.Background(), cfg)
	check(t, res, err)
	if res.Redis.HotRTTPerUpdate > 2.05 {
		t.Errorf("%.2f hot-path round trips per update, want ≤ 2", res.Redis.HotRTTPerUpdate)
	}
}

// Every webhook update is delivered twice while Telegram answers 429 to one call in
// ten and 5xx to one in a hundred: nothing is applied twice, nothing is lost. The
// bots' retry waits run twenty times faster than real time so the test stays short.
func TestHarnessDeliverTwiceAndFlakyTelegram(t *testing.T) {
	cfg := testConfig(t)
	cfg.Mode = bot.ModeWebhook
	cfg.Faults = Faults{DeliverTwice: true, TooManyRequests: 0.10, ServerErrors: 0.01}
	cfg.SleepScale = 20
	res, err := Run(context.Background(), cfg)
	check(t, res, err)
	// The last users' second copies may still be on their way when the load ends.
	if res.Telegram.Faults == 0 || res.WebhookPosts < 2*int(res.Updates)-cfg.Users {
		t.Fatalf("faults were not injected: %d faults, %d posts for %d updates", res.Telegram.Faults, res.WebhookPosts, res.Updates)
	}
}

package loadtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dialoq/dialoq/storage/redisstate/redistest"
)

// TestChaosSuite runs every fault scenario with bot and central store processes. It
// takes minutes and starts processes, so it runs only when asked:
//
//	DIALOQ_CHAOS=1 go test ./bot/loadtest -run TestChaosSuite -v -timeout 60m
//
// DIALOQ_CHAOS_USERS (default 100) and DIALOQ_CHAOS_CENTRAL_DOWN (default 10s) size
// it; `make chaos` runs the full suite from the command line instead.
func TestChaosSuite(t *testing.T) {
	if os.Getenv("DIALOQ_CHAOS") == "" {
		t.Skip("set DIALOQ_CHAOS=1 to run the fault suite (minutes, starts processes)")
	}
	users, down := 100, 10*time.Second
	if v, err := strconv.Atoi(os.Getenv("DIALOQ_CHAOS_USERS")); err == nil && v > 0 {
		users = v
	}
	if v, err := time.ParseDuration(os.Getenv("DIALOQ_CHAOS_CENTRAL_DOWN")); err == nil && v > 0 {
		down = v
	}
	bin := filepath.Join(t.TempDir(), "dialoq")
	build := exec.Command("go", "build", "-o", bin, "github.com/dialoq/dialoq/cmd/dialoq")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build dialoq: %v\n%s", err, out)
	}
	for _, s := range Scenarios(down) {
		t.Run(s.Name, func(t *testing.T) {
			cfg := Config{Users: users, Binary: bin, RedisURL: redistest.URL(), Timeout: 20 * time.Minute, Dir: t.TempDir()}
			if s.Name == "kill" {
				cfg.RedisURL = "" // bot processes get a Redis of their own
			}
			res, err := RunScenario(context.Background(), cfg, s)
			check(t, res, err)
		})
	}
}

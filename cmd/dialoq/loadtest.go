package main

import (
	"context"
	"io"

	"github.com/dialoq/dialoq/bot/loadtest"
)

// runLoadtest is "dialoq loadtest": simulated users against real bots on real Redis,
// with fault injection and a soak (see bot/loadtest and docs/benchmarks.md). The
// harness lives in bot/loadtest so that its tests can drive it; this is its command
// line. With --exec it starts this same executable as `dialoq bot` processes.
func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return loadtest.Main(ctx, args, stdout, stderr)
}

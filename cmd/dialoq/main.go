// Command dialoq runs the dialoq bot, its terminal chat, the central store and the
// tools around them. Every subcommand works on embedded defaults: without REDIS_URL,
// DATABASE_URL or a Telegram token it keeps state in process and submissions in an
// SQLite file under ./data/.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `dialoq: multilingual questionnaires and info sessions in chat

Usage:
  dialoq chat [--flow cso] [--lang en] [--code CODE]   answer a flow in this terminal
  dialoq flows lint [--dir DIR] [--locales DIR]         check every definition and locale
  dialoq flows list                                     list the built-in flows
  dialoq bot [flags]                                    run the Telegram bot (see: dialoq bot -h)
  dialoq central [--listen 127.0.0.1:8090]              serve the central store (HTTP API)
  dialoq loadtest [flags]                               load and fault tests (docs/benchmarks.md)

Environment:
  CENTRAL_URL, CENTRAL_TOKEN   post submissions to a central store instead of ./data/
  DIALOQ_DATA                  directory of the embedded store (default ./data)
  DATABASE_URL                 PostgreSQL for 'central' (default: SQLite in DIALOQ_DATA)
  CENTRAL_TOKENS               comma-separated bearer tokens 'central' accepts
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: tests call it with their own streams.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "chat":
		return runChat(ctx, args[1:], stdin, stdout, stderr, log)
	case "bot":
		return runBot(ctx, args[1:], stdout, stderr, log)
	case "loadtest":
		return runLoadtest(ctx, args[1:], stdout, stderr)
	case "central":
		return runCentral(ctx, args[1:], stdout, stderr)
	case "flows":
		if len(args) > 1 && args[1] == "lint" {
			return runLint(args[2:], stdout, stderr)
		}
		if len(args) > 1 && args[1] == "list" {
			return runList(stdout, stderr)
		}
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "dialoq: unknown command %q\n\n%s", args[0], usage)
	return 2
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dialoq/dialoq/storage/central"
)

// runCentral serves the central store: PostgreSQL from DATABASE_URL, else SQLite under
// the data directory. Bearer tokens come from CENTRAL_TOKENS (comma-separated), one
// per bot deployment.
func runCentral(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("central", flag.ContinueOnError)
	fl.SetOutput(stderr)
	addr := fl.String("listen", envOr("CENTRAL_LISTEN", "127.0.0.1:8090"), "address to listen on")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	// A service logs JSON for its log collector; the CLI commands log text.
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var tokens []string
	for _, t := range strings.Split(os.Getenv("CENTRAL_TOKENS"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			tokens = append(tokens, t)
		}
	}
	if len(tokens) == 0 {
		log.Warn("CENTRAL_TOKENS is empty: every /v1 request will be refused")
	}
	rt, err := loadRuntime()
	if err != nil {
		fmt.Fprintln(stderr, "dialoq:", err)
		return 1
	}
	dsn := os.Getenv("DATABASE_URL")
	if dsn == "" {
		dir := dataDir()
		if err := os.MkdirAll(dir, 0o750); err != nil {
			fmt.Fprintln(stderr, "dialoq:", err)
			return 1
		}
		dsn = filepath.Join(dir, "dialoq.db")
		log.Warn("DATABASE_URL is not set: storing in SQLite", "file", dsn)
	}
	store, err := central.Open(ctx, dsn)
	if err != nil {
		fmt.Fprintln(stderr, "dialoq: open store:", err)
		return 1
	}
	defer store.Close()
	reg := prometheus.NewRegistry()
	h := central.NewServer(store, rt.schema, central.Config{Tokens: tokens, Logger: log, Registry: reg})
	srv := &http.Server{Addr: *addr, Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "dialoq:", err)
		return 1
	}
	log.Info("central store listening", "addr", ln.Addr().String(), "backend", store.Dialect())
	fmt.Fprintf(stdout, "central store on http://%s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintln(stderr, "dialoq:", err)
		return 1
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

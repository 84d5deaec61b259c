package bot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Run runs the bot until ctx ends: it registers the commands, starts the outbox
// delivery worker (when Config.Poster is set) and the sweeper, serves HTTP (webhook,
// /healthz, /metrics) when a listener or address is configured, and receives updates
// by polling or webhook. On shutdown it lets in-flight updates finish (within
// ShutdownTimeout) before returning.
func (b *Bot) Run(ctx context.Context) error {
	if err := b.RegisterCommands(ctx); err != nil && ctx.Err() == nil {
		b.log.Warn("bot: could not register commands", "err", err)
	}
	var bg sync.WaitGroup
	bgCtx, stopBG := context.WithCancel(ctx)
	defer func() {
		stopBG()
		bg.Wait()
	}()
	if b.cfg.Poster != nil {
		w := b.NewOutboxWorker(b.cfg.Poster)
		if err := b.reg.Register(newOutboxCollector(w)); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			b.log.Warn("bot: outbox metrics", "err", err)
		}
		bg.Go(func() { _ = w.Run(bgCtx) })
	}
	bg.Go(func() { b.runSweeper(bgCtx) })
	if !b.cfg.Reminders.Disabled {
		bg.Go(func() { b.runReminders(bgCtx) })
	}
	bg.Go(func() { b.runJobs(bgCtx, jobPoll) })

	srv, ln, err := b.listen()
	if err != nil {
		return err
	}
	var serveErr <-chan error // nil when nothing is served: never ready
	if srv != nil {
		b.log.Info("bot: serving HTTP", "addr", ln.Addr().String(), "mode", string(b.cfg.Mode))
		ch := make(chan error, 1)
		go func() { ch <- srv.Serve(ln) }()
		serveErr = ch
	}

	var runErr error
	switch b.cfg.Mode {
	case ModePolling:
		pollCtx, stopPoll := context.WithCancel(ctx)
		defer stopPoll()
		pollErr := make(chan error, 1)
		go func() { pollErr <- b.Poll(pollCtx) }()
		select {
		case runErr = <-pollErr:
		case err := <-serveErr:
			runErr = fmt.Errorf("bot: HTTP server: %w", err)
			stopPoll()
			<-pollErr
		}
	case ModeWebhook:
		if b.cfg.WebhookURL != "" {
			if err := b.SetWebhook(ctx, b.cfg.WebhookURL); err != nil && ctx.Err() == nil {
				b.log.Error("bot: setWebhook failed; updates will not arrive until it is set", "err", err)
			}
		}
		select {
		case <-ctx.Done():
		case err := <-serveErr:
			runErr = fmt.Errorf("bot: HTTP server: %w", err)
		}
	}
	if srv != nil {
		// Shutdown waits for webhook requests in flight, i.e. updates being handled.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.cfg.ShutdownTimeout)
		if err := srv.Shutdown(sctx); err != nil {
			b.log.Warn("bot: HTTP shutdown", "err", err)
		}
		cancel()
	}
	b.later.flush(b.cfg.ShutdownTimeout)
	return runErr
}

// listen opens the HTTP listener, or returns nil when there is nothing to serve.
func (b *Bot) listen() (*http.Server, net.Listener, error) {
	ln := b.cfg.Listener
	if ln == nil {
		if b.cfg.ListenAddr == "" {
			if b.cfg.Mode == ModeWebhook {
				return nil, nil, errors.New("bot: webhook mode needs a listen address")
			}
			return nil, nil, nil
		}
		var err error
		if ln, err = net.Listen("tcp", b.cfg.ListenAddr); err != nil {
			return nil, nil, fmt.Errorf("bot: listen: %w", err)
		}
	}
	srv := &http.Server{
		Handler:           b.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      b.cfg.HandleTimeout + 10*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
	return srv, ln, nil
}

// Handler serves /healthz, /metrics and, in webhook mode, the webhook.
func (b *Bot) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", b.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(b.reg, promhttp.HandlerOpts{}))
	if b.cfg.Mode == ModeWebhook {
		mux.Handle(b.webhookPath(), b.WebhookHandler())
	}
	return mux
}

func (b *Bot) webhookPath() string {
	if b.cfg.WebhookPath != "" {
		return b.cfg.WebhookPath
	}
	if u, err := url.Parse(b.cfg.WebhookURL); err == nil && u.Path != "" && u.Path != "/" {
		return u.Path
	}
	return DefaultWebhookPath
}

// healthz reports whether the bot can reach its store; Telegram being down is not a
// reason to restart the bot.
func (b *Bot) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := b.rdb.Ping(ctx).Err(); err != nil {
		http.Error(w, "redis unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

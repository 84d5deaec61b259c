package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dialoq/dialoq/storage/central"
	"github.com/dialoq/dialoq/storage/outbox"
)

// submissionPoster adapts a central.Poster (the embedded store or the HTTP client)
// to the outbox worker, which deals in raw entries.
type submissionPoster struct {
	p central.Poster
}

func (s submissionPoster) Post(ctx context.Context, entry []byte) error {
	var sub central.Submission
	if err := json.Unmarshal(entry, &sub); err != nil {
		return fmt.Errorf("%w: undecodable submission: %v", outbox.ErrPermanent, err)
	}
	if err := s.p.Post(ctx, sub); err != nil {
		if central.IsPermanent(err) {
			return fmt.Errorf("%w: %w", outbox.ErrPermanent, err)
		}
		return err
	}
	return nil
}

// NewOutboxWorker returns the delivery worker for this bot's outbox, posting to p.
// Run starts one when Config.Poster is set.
func (b *Bot) NewOutboxWorker(p central.Poster) *outbox.Worker {
	return outbox.NewWorker(b.rdb, submissionPoster{p: p}, outbox.Config{
		Prefix: b.cfg.Prefix,
		Shards: b.cfg.Shards,
		Logger: b.cfg.Logger,
		Poll:   b.cfg.OutboxPoll,
	})
}

// outboxCollector exports the delivery backlog on /metrics, read from Redis at
// scrape time, so that a growing queue or any dead letter can be alerted on.
type outboxCollector struct {
	w                     *outbox.Worker
	queued, pending, dead *prometheus.Desc
}

func newOutboxCollector(w *outbox.Worker) *outboxCollector {
	return &outboxCollector{
		w:       w,
		queued:  prometheus.NewDesc("dialoq_bot_outbox_queued", "Submissions in the outbox not yet delivered.", nil, nil),
		pending: prometheus.NewDesc("dialoq_bot_outbox_pending", "Submissions being delivered (read, not acknowledged).", nil, nil),
		dead:    prometheus.NewDesc("dialoq_bot_outbox_dead", "Submissions the delivery gave up on (dead letters).", nil, nil),
	}
}

func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.queued
	ch <- c.pending
	ch <- c.dead
}

func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := c.w.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.queued, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(st.Queued))
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(st.Pending))
	ch <- prometheus.MustNewConstMetric(c.dead, prometheus.GaugeValue, float64(st.Dead))
}

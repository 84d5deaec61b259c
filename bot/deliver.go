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

// outboxEntry is what the outbox holds: a submission, or the id of one the user
// withdrew with /forget. A submission is stored as itself (its JSON has an "id"),
// so entries written before withdrawals existed read the same.
type outboxEntry struct {
	Withdraw string `json:"withdraw,omitempty"`
	central.Submission
}

// withdrawer is the part of the central store that deletes a submission: the HTTP
// client has it as is, the embedded store also says whether the row existed.
type withdrawer interface {
	Withdraw(ctx context.Context, id string) error
}

type storeWithdrawer interface {
	Withdraw(ctx context.Context, id string) (bool, error)
}

// submissionPoster adapts a central.Poster (the embedded store or the HTTP client)
// to the outbox worker, which deals in raw entries.
type submissionPoster struct {
	p        central.Poster
	withdraw func(ctx context.Context, id string) error
}

func newSubmissionPoster(p central.Poster) submissionPoster {
	s := submissionPoster{p: p}
	switch w := p.(type) {
	case withdrawer:
		s.withdraw = w.Withdraw
	case storeWithdrawer:
		s.withdraw = func(ctx context.Context, id string) error {
			_, err := w.Withdraw(ctx, id)
			return err
		}
	}
	return s
}

func (s submissionPoster) Post(ctx context.Context, entry []byte) error {
	var e outboxEntry
	if err := json.Unmarshal(entry, &e); err != nil {
		return fmt.Errorf("%w: undecodable outbox entry: %v", outbox.ErrPermanent, err)
	}
	var err error
	switch {
	case e.Withdraw == "":
		err = s.p.Post(ctx, e.Submission)
	case s.withdraw == nil:
		return fmt.Errorf("%w: the central store cannot withdraw submissions", outbox.ErrPermanent)
	default:
		err = s.withdraw(ctx, e.Withdraw)
	}
	if err != nil {
		if central.IsPermanent(err) {
			return fmt.Errorf("%w: %w", outbox.ErrPermanent, err)
		}
		return err
	}
	return nil
}

const outboxMaxAttempts = 10000

// NewOutboxWorker returns the delivery worker for this bot's outbox, posting to p.
// Run starts one when Config.Poster is set.
func (b *Bot) NewOutboxWorker(p central.Poster) *outbox.Worker {
	return outbox.NewWorker(b.rdb, newSubmissionPoster(p), outbox.Config{
		Prefix:     b.cfg.Prefix,
		Shards:     b.cfg.Shards,
		Logger:     b.cfg.Logger,
		Poll:       b.cfg.OutboxPoll,
		MaxBackoff: b.cfg.OutboxMaxBackoff,
		ClaimIdle:  b.cfg.OutboxClaimIdle,
		// An outage of the central store must not turn answers into dead letters: at
		// the 30 s ceiling of the backoff this keeps retrying for about three days.
		// Refusals (4xx) still go to the dead-letter stream at once.
		MaxAttempts: outboxMaxAttempts,
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

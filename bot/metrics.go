package bot

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are per Bot (no global registry), so two replicas in one test process, or
// a test and production code, never share counters.
type metrics struct {
	updates     *prometheus.CounterVec
	forged      prometheus.Counter
	stale       prometheus.Counter
	tgErrors    *prometheus.CounterVec
	submissions *prometheus.CounterVec
	webhook     *prometheus.CounterVec
	blocked     prometheus.Counter
	handle      prometheus.Histogram
	waiting     prometheus.Gauge

	forgedN atomic.Int64 // mirrors forged, for tests
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dialoq_bot_updates_total",
			Help: "Telegram updates handled, by kind and result.",
		}, []string{"kind", "result"}),
		forged: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dialoq_bot_callbacks_forged_total",
			Help: "Callback queries with malformed or impossible data (ignored).",
		}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dialoq_bot_callbacks_stale_total",
			Help: "Presses of buttons of questions already answered.",
		}),
		tgErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dialoq_bot_telegram_errors_total",
			Help: "Failed Telegram API calls (before retries), by method and error code (0 = network).",
		}, []string{"method", "code"}),
		submissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dialoq_bot_submissions_enqueued_total",
			Help: "Submissions committed to the outbox, complete or partial.",
		}, []string{"complete"}),
		webhook: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dialoq_bot_webhook_rejected_total",
			Help: "Webhook requests refused, by reason.",
		}, []string{"reason"}),
		blocked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dialoq_bot_users_blocked_total",
			Help: "Users found to have blocked the bot (403).",
		}),
		handle: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dialoq_bot_update_seconds",
			Help: "Time to handle one update, commit and sends included.",
			// From a quarter millisecond: most updates take about one.
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16),
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "dialoq_bot_telegram_calls_waiting",
			Help: "Telegram calls waiting out a 429 (Too Many Requests) for their chat.",
		}),
	}
	reg.MustRegister(m.updates, m.forged, m.stale, m.tgErrors, m.submissions, m.webhook, m.blocked, m.handle, m.waiting)
	return m
}

func (m *metrics) update(kind, result string) { m.updates.WithLabelValues(kind, result).Inc() }

func (m *metrics) forgedCallback() {
	m.forged.Inc()
	m.forgedN.Add(1)
}

func (m *metrics) telegramError(method string, code int) {
	m.tgErrors.WithLabelValues(method, strconv.Itoa(code)).Inc()
}

func (m *metrics) submission(complete bool) {
	m.submissions.WithLabelValues(strconv.FormatBool(complete)).Inc()
}

package central

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus collectors. They live on the Server,
// not in package variables, so several servers (tests) can coexist.
type metrics struct {
	accepted  prometheus.Counter
	duplicate prometheus.Counter
	rejected  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
}

// Rejection reasons, the values of the "reason" label.
const (
	reasonUnauthorized = "unauthorized"
	reasonTooLarge     = "too_large"
	reasonContentType  = "content_type"
	reasonMalformed    = "malformed"
	reasonInvalid      = "invalid"
	reasonConflict     = "conflict"
	reasonStore        = "store_error"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dialoq", Subsystem: "central", Name: "submissions_accepted_total",
			Help: "Submissions stored for the first time.",
		}),
		duplicate: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "dialoq", Subsystem: "central", Name: "submissions_duplicate_total",
			Help: "Submissions re-posted with an id and payload already stored (answered 200).",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "dialoq", Subsystem: "central", Name: "submissions_rejected_total",
			Help: "Submission posts not stored, by reason.",
		}, []string{"reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "dialoq", Subsystem: "central", Name: "http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern, method and status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method", "code"}),
	}
	// Pre-create the reason series so dashboards see zeros, not gaps.
	for _, r := range []string{reasonUnauthorized, reasonTooLarge, reasonContentType, reasonMalformed, reasonInvalid, reasonConflict, reasonStore} {
		m.rejected.WithLabelValues(r)
	}
	m.accepted = register(reg, m.accepted)
	m.duplicate = register(reg, m.duplicate)
	m.rejected = register(reg, m.rejected)
	m.latency = register(reg, m.latency)
	return m
}

// register registers c, or returns the collector already registered under
// the same name so that two servers sharing a registry share the series.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A clashing collector of another type is a programming error in
		// the binary's wiring; keep serving with unregistered metrics.
	}
	return c
}

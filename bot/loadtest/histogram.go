package loadtest

import (
	"math"
	"sync"
	"time"
)

// histogram records durations in logarithmic buckets 1% wide, so percentiles of
// millions of samples cost a fixed 20 KB and are off by at most 1%; the maximum is
// kept exactly. It is safe for concurrent use.
type histogram struct {
	mu     sync.Mutex
	counts []uint64
	n      uint64
	sum    time.Duration
	max    time.Duration
}

const (
	histGrowth = 1.01
	// histBuckets covers 1µs · 1.01^2600 ≈ 170 s; longer samples land in the last.
	histBuckets = 2600
)

var logGrowth = math.Log(histGrowth)

func newHistogram() *histogram { return &histogram{counts: make([]uint64, histBuckets)} }

func bucketOf(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	return min(int(math.Log(us)/logGrowth)+1, histBuckets-1)
}

// upper is the largest duration bucket i holds.
func upper(i int) time.Duration {
	if i == 0 {
		return time.Microsecond
	}
	return time.Duration(math.Pow(histGrowth, float64(i)) * float64(time.Microsecond))
}

func (h *histogram) add(d time.Duration) {
	i := bucketOf(d)
	h.mu.Lock()
	h.counts[i]++
	h.n++
	h.sum += d
	h.max = max(h.max, d)
	h.mu.Unlock()
}

// reset empties h and returns what it held, for windows of a soak.
func (h *histogram) reset() *histogram {
	out := newHistogram()
	h.mu.Lock()
	out.counts, h.counts = h.counts, out.counts
	out.n, out.sum, out.max = h.n, h.sum, h.max
	h.n, h.sum, h.max = 0, 0, 0
	h.mu.Unlock()
	return out
}

// summary is a histogram's percentiles.
type summary struct {
	N                  uint64
	Mean               time.Duration
	P50, P95, P99, Max time.Duration
}

func (h *histogram) summary() summary {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := summary{N: h.n, Max: h.max}
	if h.n == 0 {
		return s
	}
	s.Mean = h.sum / time.Duration(h.n)
	s.P50 = h.quantile(0.50)
	s.P95 = h.quantile(0.95)
	s.P99 = h.quantile(0.99)
	return s
}

// quantile is the upper bound of the bucket holding the q-th sample, never above
// the exact maximum. h.mu must be held.
func (h *histogram) quantile(q float64) time.Duration {
	rank := uint64(math.Ceil(q * float64(h.n)))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank && c > 0 {
			return min(upper(i), h.max)
		}
	}
	return h.max
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

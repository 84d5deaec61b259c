package telegramtest

import (
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// Fault replaces the answer to a call. The zero Fault answers normally;
// combine Delay with a status to answer slowly and then fail.
type Fault struct {
	Status      int           // HTTP status and error_code, e.g. 429, 403, 500, 502
	RetryAfter  int           // seconds; sent as parameters.retry_after (429)
	Description string        // defaults to Telegram's text for Status
	Delay       time.Duration // wait before answering
	HTML        bool          // answer with an nginx HTML page, as Telegram's front end does on 502/504
	Drop        bool          // close the connection without answering
}

// TooManyRequests is Telegram's flood-control answer.
func TooManyRequests(retryAfter int) Fault {
	return Fault{Status: 429, RetryAfter: retryAfter}
}

// Forbidden is the answer for a user who blocked the bot.
func Forbidden() Fault { return Fault{Status: 403} }

// ServerError answers with a JSON 5xx error (500, 502, 504 ...).
func ServerError(status int) Fault { return Fault{Status: status} }

// BadGatewayHTML answers 502 with an HTML page, which tgbotapi cannot
// decode: the bot must treat that as a transient error too.
func BadGatewayHTML() Fault { return Fault{Status: 502, HTML: true} }

// Delay answers normally after d.
func Delay(d time.Duration) Fault { return Fault{Delay: d} }

// ConnectionReset drops the connection, so the client sees a network error.
func ConnectionReset() Fault { return Fault{Drop: true} }

func (f Fault) apiError() *apiError {
	e := &apiError{code: f.Status, desc: f.Description}
	if e.desc == "" {
		switch f.Status {
		case 429:
			retry := max(f.RetryAfter, 1)
			e.desc = "Too Many Requests: retry after " + itoa(retry)
		case 403:
			e.desc = "Forbidden: bot was blocked by the user"
		case 400:
			e.desc = "Bad Request"
		default:
			e.desc = http.StatusText(f.Status)
		}
	}
	if f.Status == 429 {
		e.retryAfter = max(f.RetryAfter, 1)
	}
	return e
}

type faultEntry struct {
	f         Fault
	remaining int // <0: forever
}

// InjectFault makes the next `times` calls of method (case-insensitive; ""
// or "*" for any method) answer with f. times <= 0 means every call until
// ClearFaults. Faults for a specific method win over "*"; several faults
// for the same method are used in the order injected.
func (s *Server) InjectFault(method string, f Fault, times int) {
	key := s.faultKey(method)
	if times <= 0 {
		times = -1
	}
	s.faultMu.Lock()
	s.faults[key] = append(s.faults[key], &faultEntry{f: f, remaining: times})
	s.faultMu.Unlock()
}

// ClearFaults removes injected faults and chaos.
func (s *Server) ClearFaults() {
	s.faultMu.Lock()
	clear(s.faults)
	s.chaos = nil
	s.faultMu.Unlock()
}

func (s *Server) faultKey(method string) string {
	if method == "" || method == "*" {
		return "*"
	}
	if def, ok := s.methods[strings.ToLower(method)]; ok {
		return def.name
	}
	return method
}

// Chaos injects faults at random, reproducibly for a given Seed and call
// order. Probabilities are per call, checked in the order listed.
type Chaos struct {
	Seed int64
	// Methods the chaos applies to; empty means every method except
	// getMe, getUpdates and the webhook methods, so the bot can still
	// start and receive updates.
	Methods         []string
	TooManyRequests float64 // probability of 429
	RetryAfter      int     // retry_after for those 429s (default 1)
	ServerErrors    float64 // probability of a JSON 500 or 502
	Drops           float64 // probability of a dropped connection
	Delays          float64 // probability of answering after Delay
	Delay           time.Duration
}

type chaosState struct {
	cfg     Chaos
	rng     *rand.Rand
	methods map[string]bool
}

// SetChaos enables random faults; SetChaos(Chaos{}) or ClearFaults ends it.
func (s *Server) SetChaos(c Chaos) {
	st := &chaosState{cfg: c, rng: rand.New(rand.NewPCG(uint64(c.Seed), 0x9e3779b97f4a7c15))}
	if len(c.Methods) > 0 {
		st.methods = make(map[string]bool)
		for _, m := range c.Methods {
			st.methods[s.faultKey(m)] = true
		}
	}
	s.faultMu.Lock()
	s.chaos = st
	s.faultMu.Unlock()
}

var chaosExempt = map[string]bool{"getMe": true, "getUpdates": true, "setWebhook": true, "deleteWebhook": true, "getWebhookInfo": true}

func (s *Server) pickFault(method string) (Fault, bool) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	for _, key := range [2]string{method, "*"} {
		list := s.faults[key]
		if len(list) == 0 {
			continue
		}
		e := list[0]
		if e.remaining > 0 {
			e.remaining--
			if e.remaining == 0 {
				s.faults[key] = list[1:]
			}
		}
		s.countFault()
		return e.f, true
	}
	ch := s.chaos
	if ch == nil {
		return Fault{}, false
	}
	if ch.methods != nil && !ch.methods[method] || ch.methods == nil && chaosExempt[method] {
		return Fault{}, false
	}
	x := ch.rng.Float64()
	c := ch.cfg
	var f Fault
	switch {
	case x < c.TooManyRequests:
		f = TooManyRequests(max(c.RetryAfter, 1))
	case x < c.TooManyRequests+c.ServerErrors:
		f = ServerError([2]int{500, 502}[ch.rng.IntN(2)])
	case x < c.TooManyRequests+c.ServerErrors+c.Drops:
		f = ConnectionReset()
	case x < c.TooManyRequests+c.ServerErrors+c.Drops+c.Delays:
		f = Delay(c.Delay)
	default:
		return Fault{}, false
	}
	s.countFault()
	return f, true
}

func (s *Server) countFault() {
	s.statsMu.Lock()
	s.faultCount++
	s.statsMu.Unlock()
}

// Limits are Telegram-like flood limits on sending methods (sendMessage,
// sendDocument, sendPhoto). Zero fields are unlimited. Each is a sliding
// window on the server's clock, and a refused call gets 429 with the
// retry_after after which it would have been accepted.
type Limits struct {
	PerSecond         int // across all chats (Telegram: about 30)
	PerChatPerSecond  int // per chat (Telegram: about 1)
	PerGroupPerMinute int // per group chat (Telegram: 20)
}

// window is a sliding-window counter: a ring of the last n accept times.
type window struct {
	times []time.Time
	next  int
}

// wait reports how long until one more event fits; 0 means now.
func (w *window) wait(now time.Time, n int, per time.Duration) time.Duration {
	if len(w.times) < n {
		return 0
	}
	oldest := w.times[w.next]
	if d := oldest.Add(per).Sub(now); d > 0 {
		return d
	}
	return 0
}

func (w *window) add(now time.Time, n int) {
	if len(w.times) < n {
		w.times = append(w.times, now)
		return
	}
	w.times[w.next] = now
	w.next = (w.next + 1) % n
}

type limiter struct {
	cfg    Limits
	global window
	chats  map[int64]*window
	groups map[int64]*window
}

func (l *limiter) init(cfg Limits) {
	l.cfg = cfg
	l.chats = make(map[int64]*window)
	l.groups = make(map[int64]*window)
}

// checkLimits admits or refuses one send to chatID.
func (s *Server) checkLimits(chatID int64) *apiError {
	cfg := s.lim.cfg
	if cfg == (Limits{}) {
		return nil
	}
	now := s.now()
	s.limMu.Lock()
	var wait time.Duration
	var cw, gw *window
	if cfg.PerSecond > 0 {
		wait = max(wait, s.lim.global.wait(now, cfg.PerSecond, time.Second))
	}
	if cfg.PerChatPerSecond > 0 {
		cw = s.lim.chats[chatID]
		if cw == nil {
			cw = &window{}
			s.lim.chats[chatID] = cw
		}
		wait = max(wait, cw.wait(now, cfg.PerChatPerSecond, time.Second))
	}
	if cfg.PerGroupPerMinute > 0 && chatID < 0 {
		gw = s.lim.groups[chatID]
		if gw == nil {
			gw = &window{}
			s.lim.groups[chatID] = gw
		}
		wait = max(wait, gw.wait(now, cfg.PerGroupPerMinute, time.Minute))
	}
	if wait > 0 {
		s.limMu.Unlock()
		s.statsMu.Lock()
		s.rateLimited++
		s.statsMu.Unlock()
		retry := int(math.Ceil(wait.Seconds()))
		return &apiError{code: 429, desc: "Too Many Requests: retry after " + itoa(retry), retryAfter: retry}
	}
	if cfg.PerSecond > 0 {
		s.lim.global.add(now, cfg.PerSecond)
	}
	if cw != nil {
		cw.add(now, cfg.PerChatPerSecond)
	}
	if gw != nil {
		gw.add(now, cfg.PerGroupPerMinute)
	}
	s.limMu.Unlock()
	return nil
}

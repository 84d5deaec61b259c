package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultToken is the token used when Options.Token is empty. It has the
// real "<bot id>:<secret>" shape because bots sometimes parse the ID out.
const DefaultToken = "123456789:AAdialoq-telegramtest-token"

// maxBody mirrors Telegram's 50 MB upload limit for bots, plus room for the
// other form fields.
const maxBody = 51 << 20

// Options configures a Server. The zero value is usable.
type Options struct {
	Token       string // defaults to DefaultToken
	BotUsername string // defaults to "dialoq_test_bot"
	BotName     string // the bot's first_name; defaults to "Dialoq Test"

	// Logger receives debug logs of every call; nil keeps the server quiet.
	Logger *slog.Logger

	// Clock is the server's notion of now, used for message dates, rate
	// limits and recorded timestamps (not for long-poll or retry timers).
	// Defaults to time.Now.
	Clock func() time.Time

	// Limits are optional Telegram-like flood limits on sending methods.
	Limits Limits

	// DeliverTwice makes the webhook deliver every update a second time
	// after the first successful delivery, to test idempotent handling.
	DeliverTwice bool
	// WebhookRetryMin and WebhookRetryMax bound the exponential backoff
	// between failed webhook deliveries (defaults 10ms and 1s: much faster
	// than Telegram, so retry tests stay quick).
	WebhookRetryMin, WebhookRetryMax time.Duration
	// WebhookTimeout limits one delivery attempt (default 30s).
	WebhookTimeout time.Duration
	// WebhookClient performs deliveries; nil means a dedicated client.
	WebhookClient *http.Client

	// CallLogSize is how many recent calls CallLog keeps (default 10000;
	// negative disables the log). Counters in Stats are always kept.
	CallLogSize int

	// OnSend is called synchronously for every message the bot sends or
	// edits, after it is stored and before the API call returns. It must
	// be quick and must not call back into the server's API methods.
	OnSend func(Message)
	// OnCall is called after every API call has been answered.
	OnCall func(Call)
}

// Server is a running fake Bot API. All methods are safe for concurrent use.
type Server struct {
	opts    Options
	log     *slog.Logger
	now     func() time.Time
	token   string
	bot     apiUser
	hs      *httptest.Server
	methods map[string]methodDef
	client  *http.Client

	closed    chan struct{}
	closeOnce sync.Once

	chatsMu sync.RWMutex
	chats   map[int64]*chat

	// updMu guards the update queue and webhook dispatch state. It is only
	// held for bookkeeping, never across network I/O.
	updMu        sync.Mutex
	upd          []*updateRec
	nextUpdateID int
	pending      int
	injected     map[int]time.Time
	pollWake     chan struct{}
	poller       *poller
	wh           *webhook
	whInfo       apiWebhookInfo
	totalUpdates int

	// whMu serialises setWebhook/deleteWebhook, which wait for delivery
	// workers to stop; the workers themselves never take it.
	whMu sync.Mutex

	cbMu       sync.Mutex
	callbacks  map[string]*CallbackAnswer
	unanswered map[string]struct{}
	nextQuery  uint64

	cmdMu    sync.Mutex
	commands map[cmdKey][]BotCommand

	filesMu  sync.Mutex
	files    map[string]*Document
	nextFile int

	faultMu sync.Mutex
	faults  map[string][]*faultEntry
	chaos   *chaosState

	limMu sync.Mutex
	lim   limiter

	statsMu     sync.Mutex
	calls       map[string]int
	statuses    map[int]int
	rateLimited int
	faultCount  int
	delivered   int
	callLog     []Call
	callLogNext int
	deliveries  []Delivery

	notifyMu sync.Mutex
	notifyCh chan struct{}
}

// New starts a server on 127.0.0.1. Call Close when done (Start does it
// for you in tests).
func New(opts Options) *Server {
	s := &Server{
		opts:       opts,
		token:      opts.Token,
		now:        opts.Clock,
		log:        opts.Logger,
		closed:     make(chan struct{}),
		chats:      make(map[int64]*chat),
		injected:   make(map[int]time.Time),
		callbacks:  make(map[string]*CallbackAnswer),
		unanswered: make(map[string]struct{}),
		commands:   make(map[cmdKey][]BotCommand),
		files:      make(map[string]*Document),
		faults:     make(map[string][]*faultEntry),
		calls:      make(map[string]int),
		statuses:   make(map[int]int),
		// Telegram's update IDs do not start at 1; neither do ours, so a
		// bot that assumes they do is caught.
		nextUpdateID: 100001,
		nextQuery:    1,
	}
	if s.token == "" {
		s.token = DefaultToken
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.opts.WebhookRetryMin <= 0 {
		s.opts.WebhookRetryMin = 10 * time.Millisecond
	}
	if s.opts.WebhookRetryMax <= 0 {
		s.opts.WebhookRetryMax = time.Second
	}
	if s.opts.WebhookTimeout <= 0 {
		s.opts.WebhookTimeout = 30 * time.Second
	}
	if s.opts.CallLogSize == 0 {
		s.opts.CallLogSize = 10000
	}
	s.client = opts.WebhookClient
	if s.client == nil {
		s.client = &http.Client{Transport: &http.Transport{
			MaxIdleConns:        200,
			MaxIdleConnsPerHost: 100,
			IdleConnTimeout:     30 * time.Second,
		}}
	}
	username := opts.BotUsername
	if username == "" {
		username = "dialoq_test_bot"
	}
	name := opts.BotName
	if name == "" {
		name = "Dialoq Test"
	}
	botID := int64(123456789)
	if i := strings.IndexByte(s.token, ':'); i > 0 {
		if id, err := strconv.ParseInt(s.token[:i], 10, 64); err == nil {
			botID = id
		}
	}
	s.bot = apiUser{ID: botID, IsBot: true, FirstName: name, Username: username, CanJoinGroups: true}
	s.lim.init(opts.Limits)
	s.methods = s.methodTable()
	s.hs = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// Start is New for tests: the server is closed by t.Cleanup.
func Start(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s := New(opts)
	tb.Cleanup(s.Close)
	return s
}

// Close stops webhook delivery, releases long polls and shuts the HTTP
// server down. It is idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.whMu.Lock()
		s.stopWebhookLocked()
		s.whMu.Unlock()
		s.hs.Close()
		if s.opts.WebhookClient == nil {
			s.client.CloseIdleConnections()
		}
	})
}

// URL is the server's base URL, e.g. "http://127.0.0.1:41234".
func (s *Server) URL() string { return s.hs.URL }

// Endpoint is the format string tgbotapi expects for
// NewBotAPIWithAPIEndpoint/SetAPIEndpoint: "<URL>/bot%s/%s".
func (s *Server) Endpoint() string { return s.hs.URL + "/bot%s/%s" }

// Token is the only token the server accepts.
func (s *Server) Token() string { return s.token }

// MethodURL is the URL of one API method, for raw HTTP calls.
func (s *Server) MethodURL(method string) string {
	return s.hs.URL + "/bot" + s.token + "/" + method
}

// apiError is a failed call as the Bot API reports it.
type apiError struct {
	code       int
	desc       string
	retryAfter int
}

func (e *apiError) Error() string { return e.desc }

func badRequest(format string, a ...any) *apiError {
	return &apiError{code: 400, desc: "Bad Request: " + fmt.Sprintf(format, a...)}
}

func forbidden(desc string) *apiError { return &apiError{code: 403, desc: "Forbidden: " + desc} }

// params holds request parameters of any encoding as strings: nested
// objects stay JSON text, exactly what tgbotapi puts into form fields.
type params map[string]string

type upload struct {
	filename    string
	contentType string
	data        []byte
}

type callCtx struct {
	ctx   context.Context
	p     params
	files map[string]*upload
	// desc is the "description" Telegram adds to some successful answers
	// ("Webhook was set").
	desc string
}

type methodDef struct {
	name    string
	handler func(*callCtx) (any, *apiError)
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	token, method, ok := splitPath(r.URL.Path)
	p, files, perr := readParams(w, r)
	if !ok {
		writeError(w, &apiError{code: 404, desc: "Not Found"})
		return
	}
	if token != s.token {
		writeError(w, &apiError{code: 401, desc: "Unauthorized"})
		return
	}
	def, found := s.methods[strings.ToLower(method)]
	if !found {
		s.finish(w, method, p, files, nil, &apiError{code: 404, desc: "Not Found"}, "")
		return
	}
	if perr != nil {
		s.finish(w, def.name, p, files, nil, perr, "")
		return
	}
	if f, ok := s.pickFault(def.name); ok {
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-r.Context().Done():
				t.Stop()
				return
			case <-s.closed:
				t.Stop()
			}
		}
		switch {
		case f.Drop:
			s.record(def.name, p, files, 0, "connection dropped")
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		case f.HTML:
			s.record(def.name, p, files, f.Status, "html error page")
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(f.Status)
			fmt.Fprintf(w, "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n",
				f.Status, http.StatusText(f.Status), f.Status, http.StatusText(f.Status))
			return
		case f.Status != 0:
			s.finish(w, def.name, p, files, nil, f.apiError(), "")
			return
		}
	}
	c := &callCtx{ctx: r.Context(), p: p, files: files}
	res, aerr := def.handler(c)
	if aerr != nil && aerr.code == -1 {
		return // the client went away during a long poll; nothing to answer
	}
	s.finish(w, def.name, p, files, res, aerr, c.desc)
}

// execute runs a method without HTTP, for methods a webhook handler puts
// into its response body.
func (s *Server) execute(ctx context.Context, method string, p params) {
	def, found := s.methods[strings.ToLower(method)]
	if !found {
		s.record(method, p, nil, 404, "Not Found")
		return
	}
	c := &callCtx{ctx: ctx, p: p}
	_, aerr := def.handler(c)
	call := Call{Method: def.name, Params: p, Status: 200, At: s.now(), WebhookReply: true}
	if aerr != nil {
		call.Status, call.Description = aerr.code, aerr.desc
		s.log.Debug("telegramtest: webhook reply failed", "method", def.name, "error", aerr.desc)
	}
	s.recordCall(call)
}

func (s *Server) finish(w http.ResponseWriter, method string, p params, files map[string]*upload, res any, aerr *apiError, desc string) {
	if aerr != nil {
		s.record(method, p, files, aerr.code, aerr.desc)
		s.log.Debug("telegramtest: call failed", "method", method, "code", aerr.code, "description", aerr.desc)
		writeError(w, aerr)
		return
	}
	s.record(method, p, files, 200, "")
	s.log.Debug("telegramtest: call", "method", method)
	writeJSON(w, 200, apiResponse{OK: true, Result: res, Description: desc})
}

func writeError(w http.ResponseWriter, e *apiError) {
	resp := apiResponse{OK: false, ErrorCode: e.code, Description: e.desc}
	if e.retryAfter > 0 {
		resp.Parameters = &apiRespParams{RetryAfter: e.retryAfter}
	}
	writeJSON(w, e.code, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte(`{"ok":false,"error_code":500,"description":"Internal Server Error"}`)
		status = 500
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// splitPath splits "/bot<token>/<method>".
func splitPath(path string) (token, method string, ok bool) {
	rest, found := strings.CutPrefix(path, "/bot")
	if !found {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 || i == len(rest)-1 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// readParams merges the query string with a body of any encoding the Bot
// API accepts. It always consumes the body, so that an early error answer
// does not break a client still streaming a multipart upload.
func readParams(w http.ResponseWriter, r *http.Request) (params, map[string]*upload, *apiError) {
	p := params{}
	for k, v := range r.URL.Query() {
		if len(v) > 0 {
			p[k] = v[0]
		}
	}
	if r.Body == nil {
		return p, nil, nil
	}
	body := http.MaxBytesReader(w, r.Body, maxBody)
	defer io.Copy(io.Discard, body)
	ct, mp, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	tooLarge := func(err error) *apiError {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{code: 413, desc: "Request Entity Too Large"}
		}
		return badRequest("can't read request body: %v", err)
	}
	switch ct {
	case "application/json":
		b, err := io.ReadAll(body)
		if err != nil {
			return p, nil, tooLarge(err)
		}
		if len(bytes.TrimSpace(b)) == 0 {
			return p, nil, nil
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			return p, nil, badRequest("can't parse JSON encoded request parameters")
		}
		for k, v := range m {
			if sv, ok := rawParam(v); ok {
				p[k] = sv
			}
		}
	case "application/x-www-form-urlencoded":
		b, err := io.ReadAll(body)
		if err != nil {
			return p, nil, tooLarge(err)
		}
		vals, err := url.ParseQuery(string(b))
		if err != nil {
			return p, nil, badRequest("can't parse request parameters")
		}
		for k, v := range vals {
			if len(v) > 0 {
				p[k] = v[0]
			}
		}
	case "multipart/form-data":
		mr := multipart.NewReader(body, mp["boundary"])
		var files map[string]*upload
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return p, files, tooLarge(err)
			}
			data, err := io.ReadAll(part)
			if err != nil {
				return p, files, tooLarge(err)
			}
			if part.FileName() != "" {
				if files == nil {
					files = make(map[string]*upload)
				}
				files[part.FormName()] = &upload{filename: part.FileName(), contentType: part.Header.Get("Content-Type"), data: data}
			} else {
				p[part.FormName()] = string(data)
			}
		}
		return p, files, nil
	}
	return p, nil, nil
}

// rawParam turns a JSON value into the string a form field would carry.
func rawParam(v json.RawMessage) (string, bool) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return "", false
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return "", false
		}
		return s, true
	}
	return string(v), true
}

func (p params) int64(k string) (int64, bool) {
	v, ok := p[k]
	if !ok || v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

func (p params) int(k string) (int, bool) {
	n, ok := p.int64(k)
	return int(n), ok
}

func (p params) bool(k string) bool {
	switch strings.ToLower(strings.TrimSpace(p[k])) {
	case "true", "1", "yes":
		return true
	}
	return false
}

// record updates counters and the call log. Params are stored as given:
// handlers never mutate them after the call.
func (s *Server) record(method string, p params, files map[string]*upload, status int, desc string) {
	call := Call{Method: method, Params: p, Status: status, Description: desc, At: s.now()}
	if len(files) > 0 {
		call.Params = maps.Clone(p)
		for k, f := range files {
			call.Params[k] = "<" + f.filename + ">"
		}
	}
	s.recordCall(call)
}

func (s *Server) recordCall(call Call) {
	method, status := call.Method, call.Status
	s.statsMu.Lock()
	s.calls[method]++
	s.statuses[status]++
	if n := s.opts.CallLogSize; n > 0 {
		if len(s.callLog) < n {
			s.callLog = append(s.callLog, call)
		} else {
			s.callLog[s.callLogNext] = call
			s.callLogNext = (s.callLogNext + 1) % n
		}
	}
	s.statsMu.Unlock()
	if s.opts.OnCall != nil {
		call.Params = maps.Clone(call.Params) // the log keeps the original
		s.opts.OnCall(call)
	}
	s.notify()
}

// Calls reports how many times a method was called (any outcome). The
// name is case-insensitive, like the Bot API's.
func (s *Server) Calls(method string) int {
	if def, ok := s.methods[strings.ToLower(method)]; ok {
		method = def.name
	}
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.calls[method]
}

// CallLog returns the most recent calls, oldest first.
func (s *Server) CallLog() []Call {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := make([]Call, 0, len(s.callLog))
	out = append(out, s.callLog[s.callLogNext:]...)
	out = append(out, s.callLog[:s.callLogNext]...)
	for i := range out {
		out[i].Params = maps.Clone(out[i].Params)
	}
	return out
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.statsMu.Lock()
	st := Stats{
		Calls:       maps.Clone(s.calls),
		Statuses:    maps.Clone(s.statuses),
		RateLimited: s.rateLimited,
		Faults:      s.faultCount,
		Delivered:   s.delivered,
	}
	s.statsMu.Unlock()
	s.updMu.Lock()
	st.Updates = s.totalUpdates
	st.Pending = s.pending
	s.updMu.Unlock()
	return st
}

// notify wakes WaitFor callers. The channel is created lazily so that the
// hot path costs nothing when nobody waits.
func (s *Server) notify() {
	s.notifyMu.Lock()
	if s.notifyCh != nil {
		close(s.notifyCh)
		s.notifyCh = nil
	}
	s.notifyMu.Unlock()
}

// WaitFor blocks until cond returns true or ctx is done. cond is
// re-evaluated after every change to the server's state (calls, updates,
// deliveries), so it may call any of the server's query methods.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		s.notifyMu.Lock()
		if s.notifyCh == nil {
			s.notifyCh = make(chan struct{})
		}
		ch := s.notifyCh
		s.notifyMu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.closed:
			if cond() {
				return nil
			}
			return errClosed
		}
	}
}

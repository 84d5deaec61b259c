package central

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultMaxBody is the request body limit when Config.MaxBody is zero. The
// largest legal submission (1000 answers of 4000 bytes) would not fit, but
// real questionnaires are a few kilobytes; anything near 1 MiB is abuse.
const DefaultMaxBody = 1 << 20

// Config configures NewServer.
type Config struct {
	// Tokens are the accepted bearer tokens for /v1. With none configured
	// every /v1 request is refused: the service fails closed.
	Tokens []string
	// MaxBody limits request bodies (default DefaultMaxBody); larger → 413.
	MaxBody int64
	// Logger receives one line per request; nil discards. Answers and
	// tokens are never logged.
	Logger *slog.Logger
	// Registry receives the metrics. nil means a private registry. /metrics
	// is served when the registry is also a prometheus.Gatherer (as
	// *prometheus.Registry is) or nil.
	Registry prometheus.Registerer
}

// Server is the HTTP face of the central store:
//
//	POST /v1/submissions                     store one submission
//	GET  /v1/reports/responses               Table 1 (json or text)
//	GET  /v1/reports/training-needs          Summary Table 7 (json or text)
//	GET  /v1/exports/{flow}.{csv|xlsx|jsonl} stream an export
//	GET  /healthz, /readyz, /metrics
//
// All /v1 routes need "Authorization: Bearer <token>".
type Server struct {
	store   *Store
	tokens  [][32]byte
	maxBody int64
	log     *slog.Logger
	metrics *metrics
	mux     *http.ServeMux
}

// NewServer returns the service's handler. The store is used through a view
// that validates content with schema (which may be nil only if exports and
// content validation are not wanted).
func NewServer(store *Store, schema Schema, cfg Config) http.Handler {
	s := &Server{
		store:   store,
		maxBody: cfg.MaxBody,
		log:     cfg.Logger,
	}
	if schema != nil {
		s.store = store.WithSchema(schema)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBody
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	// Hashing first gives every comparison the same length, so
	// ConstantTimeCompare leaks neither content nor length of a token.
	for _, t := range cfg.Tokens {
		if t != "" {
			s.tokens = append(s.tokens, sha256.Sum256([]byte(t)))
		}
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(reg)

	s.mux = http.NewServeMux()
	s.mux.Handle("POST /v1/submissions", s.auth(http.HandlerFunc(s.postSubmission)))
	s.mux.Handle("DELETE /v1/submissions/{id}", s.auth(http.HandlerFunc(s.deleteSubmission)))
	s.mux.Handle("GET /v1/reports/responses", s.auth(http.HandlerFunc(s.getResponses)))
	s.mux.Handle("GET /v1/reports/answers", s.auth(http.HandlerFunc(s.getAnswers)))
	s.mux.Handle("GET /v1/reports/training-needs", s.auth(http.HandlerFunc(s.getTrainingNeeds)))
	s.mux.Handle("GET /v1/exports/{file}", s.auth(http.HandlerFunc(s.getExport)))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	if g, ok := reg.(prometheus.Gatherer); ok {
		s.mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	return s
}

// ServeHTTP routes the request and records its latency and an access log
// line.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	route := r.Pattern // set by the mux; bounded, unlike the raw path
	if route == "" {
		route = "unmatched"
	}
	d := time.Since(start)
	s.metrics.latency.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Observe(d.Seconds())
	level := slog.LevelInfo
	if rec.status >= 500 {
		level = slog.LevelError
	}
	attrs := append([]slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.Int("status", rec.status),
		slog.Int64("bytes", rec.bytes),
		slog.Duration("duration", d),
	}, rec.attrs...)
	s.log.LogAttrs(r.Context(), level, "http request", attrs...)
}

// recorder captures the status and size for logs and metrics, and carries
// extra log attributes from handlers to the access log line.
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	attrs       []slog.Attr
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func unwrap(w http.ResponseWriter) http.ResponseWriter {
	if rec, ok := w.(*recorder); ok {
		return rec.ResponseWriter
	}
	return w
}

func annotate(w http.ResponseWriter, attrs ...slog.Attr) {
	if rec, ok := w.(*recorder); ok {
		rec.attrs = append(rec.attrs, attrs...)
	}
}

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, status int, msg, field string) {
	writeJSON(w, status, errorBody{Error: msg, Field: field})
}

func (s *Server) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for _, t := range s.tokens { // no early exit: time does not depend on which token matched
		match |= subtle.ConstantTimeCompare(got[:], t[:])
	}
	return match == 1
}

func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			if r.URL.Path == "/v1/submissions" {
				s.metrics.rejected.WithLabelValues(reasonUnauthorized).Inc()
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="dialoq"`)
			writeError(w, http.StatusUnauthorized, "missing or invalid bearer token", "")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		annotate(w, slog.String("error", err.Error()))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// wireSubmission decodes the times itself so that a malformed time is
// reported with its field name; encoding/json would not name it. The outer
// fields shadow the embedded ones of the same JSON name.
type wireSubmission struct {
	Submission
	StartedAt  json.RawMessage            `json:"started_at"`
	FinishedAt json.RawMessage            `json:"finished_at"`
	Answers    map[string]json.RawMessage `json:"answers"` // so a non-string answer is named by its key
}

func (s *Server) reject(w http.ResponseWriter, status int, reason, msg, field string) {
	s.metrics.rejected.WithLabelValues(reason).Inc()
	annotate(w, slog.String("reject", reason), slog.String("field", field))
	writeError(w, status, msg, field)
}

func (s *Server) postSubmission(w http.ResponseWriter, r *http.Request) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		s.reject(w, http.StatusUnsupportedMediaType, reasonContentType, "Content-Type must be application/json", "")
		return
	}
	if r.ContentLength > s.maxBody {
		s.reject(w, http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Sprintf("body larger than %d bytes", s.maxBody), "")
		return
	}
	// The unwrapped writer lets MaxBytesReader tell the server to close the
	// connection instead of draining an oversized body.
	body := http.MaxBytesReader(unwrap(w), r.Body, s.maxBody)
	sub, err := decodeSubmission(body)
	if err != nil {
		var (
			mbe *http.MaxBytesError
			de  *decodeError
		)
		switch {
		case errors.As(err, &mbe):
			s.reject(w, http.StatusRequestEntityTooLarge, reasonTooLarge, fmt.Sprintf("body larger than %d bytes", s.maxBody), "")
		case errors.As(err, &de):
			s.reject(w, http.StatusBadRequest, reasonMalformed, de.Error(), de.field)
		default:
			s.reject(w, http.StatusBadRequest, reasonMalformed, err.Error(), "")
		}
		return
	}
	annotate(w, slog.String("submission_id", sub.ID), slog.String("flow", sub.Flow))

	created, err := s.store.Put(r.Context(), sub)
	var ve *ValidationError
	switch {
	case errors.As(err, &ve):
		s.reject(w, http.StatusBadRequest, reasonInvalid, ve.Error(), ve.Field)
	case errors.Is(err, ErrConflict):
		s.reject(w, http.StatusConflict, reasonConflict, err.Error(), "id")
	case err != nil:
		s.metrics.rejected.WithLabelValues(reasonStore).Inc()
		annotate(w, slog.String("error", err.Error()))
		writeError(w, http.StatusInternalServerError, "store failure; retry later", "")
	case created:
		s.metrics.accepted.Inc()
		annotate(w, slog.String("outcome", "created"))
		writeJSON(w, http.StatusCreated, map[string]string{"id": strings.ToLower(sub.ID), "status": "created"})
	default:
		s.metrics.duplicate.Inc()
		annotate(w, slog.String("outcome", "duplicate"))
		writeJSON(w, http.StatusOK, map[string]string{"id": strings.ToLower(sub.ID), "status": "duplicate"})
	}
}

// decodeSubmission decodes exactly one JSON object with no unknown fields.
// Errors are *decodeError, or *http.MaxBytesError for an oversized body.
func decodeSubmission(body io.Reader) (Submission, error) {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	var ws wireSubmission
	if err := dec.Decode(&ws); err != nil {
		return Submission{}, describeJSONError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Submission{}, err
		}
		return Submission{}, &decodeError{msg: "malformed JSON: data after the submission object"}
	}
	sub := ws.Submission
	if ws.Answers != nil {
		sub.Answers = make(map[string]string, len(ws.Answers))
		for _, k := range sortedRawKeys(ws.Answers) {
			var v string
			if err := json.Unmarshal(ws.Answers[k], &v); err != nil || string(ws.Answers[k]) == "null" {
				return Submission{}, &decodeError{field: "answers." + k, msg: "must be a string (XLSForm-style answer)"}
			}
			sub.Answers[k] = v
		}
	}
	for _, t := range []struct {
		field string
		raw   json.RawMessage
		dst   *time.Time
	}{{"started_at", ws.StartedAt, &sub.StartedAt}, {"finished_at", ws.FinishedAt, &sub.FinishedAt}} {
		if len(t.raw) == 0 || string(t.raw) == "null" {
			continue // Validate reports it missing
		}
		if err := json.Unmarshal(t.raw, t.dst); err != nil {
			return Submission{}, &decodeError{field: t.field, msg: "not an RFC 3339 time"}
		}
	}
	return sub, nil
}

func sortedRawKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// decodeError is a JSON decoding problem, about field when known.
type decodeError struct{ field, msg string }

func (e *decodeError) Error() string {
	if e.field == "" {
		return e.msg
	}
	return e.field + ": " + e.msg
}

func describeJSONError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return err
	case errors.Is(err, io.EOF):
		return &decodeError{msg: "malformed JSON: empty body"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &decodeError{msg: "malformed JSON: unexpected end of body"}
	case errors.As(err, &syn):
		return &decodeError{msg: fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, err)}
	case errors.As(err, &typ):
		// The embedded Submission shows up in the path; the wire field
		// names do not include it.
		field := strings.TrimPrefix(typ.Field, "Submission.")
		if field == "" {
			return &decodeError{msg: "malformed JSON: expected an object, got " + typ.Value}
		}
		return &decodeError{field: field, msg: fmt.Sprintf("wrong type %s, want %s", typ.Value, typ.Type)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if uerr != nil {
			name = strings.TrimPrefix(err.Error(), "json: unknown field ")
		}
		return &decodeError{field: name, msg: "unknown field"}
	default:
		return &decodeError{msg: "malformed JSON: " + err.Error()}
	}
}

// parseFilter reads the common report/export query parameters.
func parseFilter(r *http.Request) (Filter, error) {
	q := r.URL.Query()
	f := Filter{Flow: q.Get("flow"), Code: q.Get("code")}
	f.Countries = splitList(q.Get("country"))
	for i, c := range f.Countries {
		if c == "unknown" {
			f.Countries[i] = ""
		}
	}
	f.Stakeholders = splitList(q.Get("stakeholder"))
	var err error
	if f.From, err = parseTime(q.Get("from"), false); err != nil {
		return f, invalid("from", "%v", err)
	}
	if f.To, err = parseTime(q.Get("to"), true); err != nil {
		return f, invalid("to", "%v", err)
	}
	if v := q.Get("include_partial"); v != "" {
		if f.IncludePartial, err = strconv.ParseBool(v); err != nil {
			return f, invalid("include_partial", "not a boolean")
		}
	}
	return f, f.Validate()
}

func splitList(v string) []string {
	if v == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseTime accepts RFC 3339 or a date. A date in "to" means the end of that
// day, so that from=2025-03-01&to=2025-03-31 covers all of March.
func parseTime(v string, endOfDay bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 time or YYYY-MM-DD")
	}
	if endOfDay {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

func (s *Server) badRequest(w http.ResponseWriter, err error) {
	var ve *ValidationError
	if errors.As(err, &ve) {
		writeError(w, http.StatusBadRequest, ve.Error(), ve.Field)
		return
	}
	annotate(w, slog.String("error", err.Error()))
	writeError(w, http.StatusInternalServerError, "store failure", "")
}

func wantText(r *http.Request) (bool, error) {
	switch r.URL.Query().Get("format") {
	case "", "json":
		return false, nil
	case "text":
		return true, nil
	}
	return false, invalid("format", "want json or text")
}

func writeText(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = io.WriteString(w, text)
}

// report serves one report as JSON, or as a plain table with format=text; build
// computes it for the request's filter.
func report[R any](s *Server, w http.ResponseWriter, r *http.Request, build func(Filter) (R, error), render func(R) string) {
	f, err := parseFilter(r)
	if err != nil {
		s.badRequest(w, err)
		return
	}
	text, err := wantText(r)
	if err != nil {
		s.badRequest(w, err)
		return
	}
	rep, err := build(f)
	if err != nil {
		s.badRequest(w, err)
		return
	}
	if text {
		writeText(w, render(rep))
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) getResponses(w http.ResponseWriter, r *http.Request) {
	report(s, w, r, func(f Filter) (ResponseReport, error) { return s.store.Responses(r.Context(), f) }, RenderResponses)
}

// getAnswers serves the distribution of one question's answers, e.g.
// /v1/reports/answers?flow=rights&question=useful.
func (s *Server) getAnswers(w http.ResponseWriter, r *http.Request) {
	report(s, w, r, func(f Filter) (AnswerReport, error) {
		return s.store.Answers(r.Context(), f, r.URL.Query().Get("question"))
	}, RenderAnswers)
}

func (s *Server) getTrainingNeeds(w http.ResponseWriter, r *http.Request) {
	matrix := r.URL.Query().Get("matrix")
	if matrix == "" {
		matrix = "training_needs"
	}
	report(s, w, r, func(f Filter) (NeedsReport, error) { return s.store.TrainingNeeds(r.Context(), f, matrix) }, RenderNeeds)
}

// exportFormat returns the export for a file extension and its media type.
func (s *Server) exportFormat(ext string) (run func(context.Context, io.Writer, string, string, Filter) error, contentType string, ok bool) {
	switch ext {
	case "csv":
		return s.store.ExportCSV, "text/csv; charset=utf-8", true
	case "xlsx":
		return s.store.ExportXLSX, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", true
	case "jsonl":
		return s.store.ExportJSONL, "application/jsonl; charset=utf-8", true
	}
	return nil, "", false
}

func (s *Server) getExport(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	dot := strings.LastIndexByte(file, '.')
	if dot < 0 {
		writeError(w, http.StatusNotFound, "want /v1/exports/{flow}.{csv|xlsx|jsonl}", "")
		return
	}
	flow, ext := file[:dot], file[dot+1:]
	run, contentType, ok := s.exportFormat(ext)
	if !ok {
		writeError(w, http.StatusNotFound, "unknown export format "+strconv.Quote(ext)+"; want csv, xlsx or jsonl", "")
		return
	}
	f, err := parseFilter(r)
	if err != nil {
		s.badRequest(w, err)
		return
	}
	lang := r.URL.Query().Get("lang")
	if lang == "" {
		lang = "en"
	}
	annotate(w, slog.String("flow", flow), slog.String("format", ext))
	// Headers go out with the first byte, so an error found before any
	// output (unknown flow, bad query, database down) still gets a proper
	// status instead of a half-written attachment.
	lw := &lazyWriter{w: w, start: func() {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.%s"`, flow, time.Now().UTC().Format("20060102"), ext))
		w.Header().Set("X-Content-Type-Options", "nosniff")
	}}
	err = run(r.Context(), lw, flow, lang, f)
	switch {
	case err == nil:
		if !lw.started { // an empty export still has to send its headers
			lw.start()
			w.WriteHeader(http.StatusOK)
		}
	case !lw.started:
		if errors.Is(err, ErrNoSchema) {
			annotate(w, slog.String("error", err.Error()))
			writeError(w, http.StatusInternalServerError, "exports are not configured", "")
			return
		}
		s.badRequest(w, err)
	default:
		// Mid-stream: the status is gone. Abort the connection so the
		// client sees a broken transfer rather than a short file that
		// looks complete.
		s.log.ErrorContext(r.Context(), "export aborted", slog.String("flow", flow), slog.String("format", ext), slog.String("error", err.Error()))
		panic(http.ErrAbortHandler)
	}
}

// lazyWriter runs start before the first byte is written.
type lazyWriter struct {
	w       io.Writer
	start   func()
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.start()
	}
	return l.w.Write(p)
}

// deleteSubmission withdraws a submission at its respondent's request (/forget in
// the bot). It succeeds for unknown ids too: the withdrawal is remembered.
func (s *Server) deleteSubmission(w http.ResponseWriter, r *http.Request) {
	existed, err := s.store.Withdraw(r.Context(), r.PathValue("id"))
	var ve *ValidationError
	switch {
	case errors.As(err, &ve):
		writeError(w, http.StatusBadRequest, ve.Msg, ve.Field)
	case err != nil:
		s.log.Error("withdraw submission", "err", err)
		writeError(w, http.StatusInternalServerError, "could not withdraw the submission", "")
	default:
		annotate(w, slog.Bool("existed", existed))
		w.WriteHeader(http.StatusNoContent)
	}
}

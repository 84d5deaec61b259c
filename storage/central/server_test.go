package central

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/xuri/excelize/v2"
)

func TestHTTPConcurrentDuplicatePost(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		store := openStore(t, b)
		srv := newTestServer(t, store, Config{})
		const rounds = 10
		for range rounds {
			body := mustJSON(t, validSubmission())
			var (
				wg       sync.WaitGroup
				statuses [2]int
			)
			for i := range statuses {
				wg.Add(1)
				go func() {
					defer wg.Done()
					statuses[i], _ = postRaw(t, srv, testToken, "application/json", body)
				}()
			}
			wg.Wait()
			got := statuses[:]
			sort.Ints(got)
			if got[0] != http.StatusOK || got[1] != http.StatusCreated {
				t.Fatalf("statuses = %v, want one 200 and one 201", got)
			}
		}
		if n := countRows(t, store); n != rounds {
			t.Fatalf("rows = %d, want %d", n, rounds)
		}
	})
}

func TestHTTPManyConcurrentPosts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		store := openStore(t, b)
		srv := newTestServer(t, store, Config{})
		const n = 50
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if status, eb := postRaw(t, srv, testToken, "application/json", mustJSON(t, validSubmission())); status != http.StatusCreated {
					t.Errorf("status %d: %+v", status, eb)
				}
			}()
		}
		wg.Wait()
		if got := countRows(t, store); got != n {
			t.Fatalf("rows = %d, want %d", got, n)
		}
	})
}

func TestHTTPBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		store := openStore(t, b)
		reg := prometheus.NewRegistry()
		var logs bytes.Buffer
		var logMu sync.Mutex
		logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
		srv := newTestServer(t, store, Config{Registry: reg, Logger: logger})

		valid := func(mutate func(m map[string]any)) []byte {
			var m map[string]any
			if err := json.Unmarshal(mustJSON(t, validSubmission()), &m); err != nil {
				t.Fatal(err)
			}
			mutate(m)
			return mustJSON(t, m)
		}
		answers := func(m map[string]any) map[string]any { return m["answers"].(map[string]any) }
		tests := []struct {
			name        string
			token       string
			contentType string
			body        []byte
			status      int
			field       string
		}{
			{"no token", "", "application/json", valid(func(map[string]any) {}), 401, ""},
			{"wrong token", "s3cret-tokeN", "", valid(func(map[string]any) {}), 401, ""},
			{"wrong content type", testToken, "text/plain", valid(func(map[string]any) {}), 415, ""},
			{"oversized body", testToken, "application/json", valid(func(m map[string]any) {
				answers(m)["comments"] = strings.Repeat("x", DefaultMaxBody)
			}), 413, ""},
			{"malformed JSON", testToken, "application/json", []byte(`{"id": "x",`), 400, ""},
			{"not an object", testToken, "application/json", []byte(`[1,2]`), 400, ""},
			{"trailing data", testToken, "application/json", append(valid(func(map[string]any) {}), []byte(`{}`)...), 400, ""},
			{"empty body", testToken, "application/json", nil, 400, ""},
			{"unknown field", testToken, "application/json", valid(func(m map[string]any) { m["telegram_id"] = 12345 }), 400, "telegram_id"},
			{"wrong JSON type", testToken, "application/json", valid(func(m map[string]any) { m["flow_version"] = "1" }), 400, "flow_version"},
			{"non-string answer", testToken, "application/json", valid(func(m map[string]any) { answers(m)["staff_count"] = 12 }), 400, "answers.staff_count"},
			{"bad time", testToken, "application/json", valid(func(m map[string]any) { m["started_at"] = "yesterday" }), 400, "started_at"},
			{"missing time", testToken, "application/json", valid(func(m map[string]any) { delete(m, "finished_at") }), 400, "finished_at"},
			{"unknown flow", testToken, "application/json", valid(func(m map[string]any) { m["flow"] = "bank" }), 400, "flow"},
			{"unknown question", testToken, "application/json", valid(func(m map[string]any) { answers(m)["salary"] = "100" }), 400, "answers.salary"},
			{"wrong type", testToken, "application/json", valid(func(m map[string]any) { answers(m)["staff_count"] = "twelve" }), 400, "answers.staff_count"},
			{"invalid choice", testToken, "application/json", valid(func(m map[string]any) { answers(m)["target_groups"] = "labour tourists" }), 400, "answers.target_groups"},
			{"bad UUID", testToken, "application/json", valid(func(m map[string]any) { m["id"] = "1234" }), 400, "id"},
			{"bad stakeholder", testToken, "application/json", valid(func(m map[string]any) { m["stakeholder"] = "bank" }), 400, "stakeholder"},
			{"bad country", testToken, "application/json", valid(func(m map[string]any) { m["country"] = "Azerbaijan" }), 400, "country"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				status, eb := postRaw(t, srv, tt.token, tt.contentType, tt.body)
				if status != tt.status || eb.Field != tt.field || eb.Error == "" {
					t.Fatalf("got %d %+v, want %d field %q", status, eb, tt.status, tt.field)
				}
			})
		}
		// Without a Content-Length the limit is enforced while reading.
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/submissions",
			io.MultiReader(strings.NewReader(`{"id":"`), strings.NewReader(strings.Repeat("x", DefaultMaxBody))))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength != 0 {
			t.Fatalf("chunked oversized body: %d (content length %d)", resp.StatusCode, req.ContentLength)
		}

		if n := countRows(t, store); n != 0 {
			t.Fatalf("rows = %d after bad input, want 0", n)
		}

		// A different payload under a stored id: 409, first one kept.
		sub := validSubmission()
		if status, _ := postRaw(t, srv, testToken, "application/json", mustJSON(t, sub)); status != http.StatusCreated {
			t.Fatalf("valid post: %d", status)
		}
		sub.Complete = false
		if status, eb := postRaw(t, srv, testToken, "application/json; charset=utf-8", mustJSON(t, sub)); status != http.StatusConflict || eb.Field != "id" {
			t.Fatalf("conflicting post: %d %+v", status, eb)
		}
		if got, err := store.Get(context.Background(), sub.ID); err != nil || !got.Complete {
			t.Fatalf("stored submission changed: %+v %v", got, err)
		}

		metrics := gather(t, reg)
		for series, want := range map[string]float64{
			`dialoq_central_submissions_accepted_total`:                        1,
			`dialoq_central_submissions_rejected_total{reason="unauthorized"}`: 2,
			`dialoq_central_submissions_rejected_total{reason="too_large"}`:    2,
			`dialoq_central_submissions_rejected_total{reason="content_type"}`: 1,
			`dialoq_central_submissions_rejected_total{reason="malformed"}`:    8,
			`dialoq_central_submissions_rejected_total{reason="invalid"}`:      8,
			`dialoq_central_submissions_rejected_total{reason="conflict"}`:     1,
		} {
			if metrics[series] != want {
				t.Errorf("%s = %v, want %v", series, metrics[series], want)
			}
		}

		logMu.Lock()
		defer logMu.Unlock()
		for _, secret := range []string{testToken, "twelve", "labour tourists", "Bearer"} {
			if strings.Contains(logs.String(), secret) {
				t.Errorf("log contains %q", secret)
			}
		}
		if !strings.Contains(logs.String(), `"route":"POST /v1/submissions"`) {
			t.Errorf("no access log lines: %s", logs.String())
		}
	})
}

// lockedWriter serialises concurrent log writes into a buffer.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// gather flattens counters into "name{label="value"}" → value.
func gather(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			if c := m.GetCounter(); c != nil {
				out[name] = c.GetValue()
			}
		}
	}
	return out
}

func TestHTTPReportsAndExports(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		store := fixtureStore(t, b)
		srv := newTestServer(t, store, Config{})

		status, hdr, body := get(t, srv, "/v1/reports/responses?flow=cso&country=AZ,RU&stakeholder=cso,media")
		if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Fatalf("responses: %d %s %s", status, hdr.Get("Content-Type"), body)
		}
		var rr ResponseReport
		if err := json.Unmarshal(body, &rr); err != nil {
			t.Fatal(err)
		}
		// AZ cso 4 + media 3, RU cso 3 + media 1.
		if rr.Totals.Total != (Counts{Started: 11, Completed: 8, Partial: 3}) {
			t.Errorf("filtered total = %+v", rr.Totals.Total)
		}

		status, hdr, body = get(t, srv, "/v1/reports/responses?format=text")
		want, _ := readGolden("responses.golden")
		if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") || string(body) != want {
			t.Errorf("responses text: %d %s\n%s", status, hdr.Get("Content-Type"), body)
		}

		status, _, body = get(t, srv, "/v1/reports/training-needs?flow=cso&matrix=training_needs&to=2025-03-31")
		var nr NeedsReport
		if err := json.Unmarshal(body, &nr); status != 200 || err != nil {
			t.Fatalf("training needs: %d %v %s", status, err, body)
		}
		// March complete (#1 #2 #4 #5 #6 #7 #9 #10): t01 ratings 4 3 4 2 4 3 4, na once.
		if all := nr.Items[0].All; all.N != 7 || all.NA != 1 || all.Mean == nil || *all.Mean != 24.0/7 {
			t.Errorf("March t01 = %+v", all)
		}
		status, _, body = get(t, srv, "/v1/reports/training-needs?flow=cso&format=text")
		want, _ = readGolden("training_needs.golden")
		if status != 200 || string(body) != want {
			t.Errorf("training needs text: %d\n%s", status, body)
		}

		for _, bad := range []struct{ path, field string }{
			{"/v1/reports/responses?country=FR", "country"},
			{"/v1/reports/responses?from=yesterday", "from"},
			{"/v1/reports/responses?format=xml", "format"},
			{"/v1/reports/training-needs?matrix=a%20b", "matrix"},
			{"/v1/reports/training-needs?include_partial=maybe", "include_partial"},
			{"/v1/exports/cso.csv?lang=Russian", "lang"},
			{"/v1/exports/nope.csv", "flow"},
		} {
			status, _, body := get(t, srv, bad.path)
			var eb errorBody
			_ = json.Unmarshal(body, &eb)
			if status != 400 || eb.Field != bad.field {
				t.Errorf("%s: %d %s, want 400 field %s", bad.path, status, body, bad.field)
			}
		}
		if status, _, _ := get(t, srv, "/v1/exports/cso.pdf"); status != 404 {
			t.Errorf("unknown format: %d", status)
		}

		status, hdr, body = get(t, srv, "/v1/exports/cso.csv?lang=ru&country=TJ")
		if status != 200 || hdr.Get("Content-Type") != "text/csv; charset=utf-8" ||
			!strings.Contains(hdr.Get("Content-Disposition"), `filename="cso-`) {
			t.Fatalf("csv export: %d %v", status, hdr)
		}
		recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\xEF\xBB\xBF")))).ReadAll()
		if err != nil || len(recs) != 4 || recs[3][8] != "НКО" {
			t.Fatalf("csv export: %v %q", err, recs)
		}
		status, _, body = get(t, srv, "/v1/exports/cso.xlsx?include_partial=true")
		if status != 200 {
			t.Fatalf("xlsx export: %d", status)
		}
		x, err := excelize.OpenReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := x.GetRows("cso")
		x.Close()
		if err != nil || len(rows) != 21 {
			t.Fatalf("xlsx export: %v, %d rows", err, len(rows))
		}
		status, hdr, body = get(t, srv, "/v1/exports/cso.jsonl?country=KG")
		if status != 200 || len(body) != 0 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/jsonl") {
			t.Errorf("empty jsonl export: %d %q %v", status, body, hdr)
		}

		// Everything under /v1 needs the token.
		for _, path := range []string{"/v1/reports/responses", "/v1/reports/training-needs", "/v1/exports/cso.csv"} {
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s without token: %d", path, resp.StatusCode)
			}
		}
	})
}

func readGolden(name string) (string, error) {
	b, err := os.ReadFile("testdata/" + name)
	return string(b), err
}

func TestHTTPHealthAndMetrics(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		store := openStore(t, b)
		srv := newTestServer(t, store, Config{})
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s: %d %s", path, resp.StatusCode, body)
			}
			if path == "/metrics" && !strings.Contains(string(body), "dialoq_central_http_request_duration_seconds_bucket") {
				t.Errorf("/metrics lacks the latency histogram:\n%s", body)
			}
		}

		// A closed database is not ready, but the process is still healthy.
		dead := openStore(t, b)
		deadSrv := newTestServer(t, dead, Config{})
		dead.Close()
		for path, want := range map[string]int{"/healthz": 200, "/readyz": 503} {
			resp, err := http.Get(deadSrv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("closed store %s: %d, want %d", path, resp.StatusCode, want)
			}
		}
		// A store failure on POST is a 5xx, which clients retry.
		status, _ := postRaw(t, deadSrv, testToken, "application/json", mustJSON(t, validSubmission()))
		if status != http.StatusInternalServerError {
			t.Errorf("post to closed store: %d", status)
		}
	})
}

func TestHTTPNoTokensFailsClosed(t *testing.T) {
	store := openStore(t, backends()[0])
	srv := newTestServer(t, store, Config{Tokens: []string{}})
	for _, token := range []string{"", "anything"} {
		if status, _ := postRaw(t, srv, token, "application/json", mustJSON(t, validSubmission())); status != 401 {
			t.Errorf("token %q with no tokens configured: %d", token, status)
		}
	}
}

func TestSharedRegistry(t *testing.T) {
	// Two servers on one registry (e.g. tests or a restart in-process)
	// must not panic on duplicate registration.
	store := openStore(t, backends()[0])
	reg := prometheus.NewRegistry()
	_ = NewServer(store, fakeSchema{}, Config{Registry: reg})
	_ = NewServer(store, fakeSchema{}, Config{Registry: reg})
}

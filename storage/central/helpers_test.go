package central

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const defaultTestDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// backend opens fresh, empty stores of one kind. dsn returns a new database
// (a temp file, or a new PostgreSQL schema) that is removed after the test.
type backend struct {
	name string
	dsn  func(t testing.TB) string
}

func backends() []backend {
	return []backend{
		{name: "sqlite", dsn: func(t testing.TB) string {
			return "sqlite:" + filepath.Join(t.TempDir(), "sub", "dialoq.db")
		}},
		{name: "postgres", dsn: pgSchemaDSN},
	}
}

// forEachBackend runs fn once per database, as parallel subtests. This is
// the run-the-same-suite pattern: every behaviour is checked on both.
func forEachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fn(t, b)
		})
	}
}

// openStore opens a fresh store of backend b, closed after the test.
func openStore(t testing.TB, b backend) *Store {
	t.Helper()
	s, err := Open(context.Background(), b.dsn(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// pgSchemaDSN creates a schema of its own for the calling test and returns
// a DSN whose search_path points at it, so tests can run in parallel and
// repeatedly against one database. The schema is dropped afterwards. When
// PostgreSQL is unreachable the test is skipped, unless
// DIALOQ_TEST_DATABASE_URL was set explicitly, which makes it a failure.
func pgSchemaDSN(t testing.TB) string {
	t.Helper()
	base, explicit := os.LookupEnv("DIALOQ_TEST_DATABASE_URL")
	if !explicit || base == "" {
		base = defaultTestDatabaseURL
	}
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatalf("parse DIALOQ_TEST_DATABASE_URL: %v", err)
	}
	admin := stdlib.OpenDB(*cfg)
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		if explicit {
			t.Fatalf("PostgreSQL at DIALOQ_TEST_DATABASE_URL unreachable: %v", err)
		}
		t.Skipf("PostgreSQL unreachable at %s (set DIALOQ_TEST_DATABASE_URL): %v", defaultTestDatabaseURL, err)
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	schema := "central_test_" + hex.EncodeToString(rnd[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		if _, err := db.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse DIALOQ_TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// loadFixture reads testdata/submissions.json.
func loadFixture(t testing.TB) []Submission {
	t.Helper()
	b, err := os.ReadFile("testdata/submissions.json")
	if err != nil {
		t.Fatal(err)
	}
	var subs []Submission
	if err := json.Unmarshal(b, &subs); err != nil {
		t.Fatalf("parse fixture: %v", err)
	}
	return subs
}

// fixtureStore returns a store with the schema view and the fixture loaded.
func fixtureStore(t testing.TB, b backend) *Store {
	t.Helper()
	s := openStore(t, b).WithSchema(fakeSchema{})
	for _, sub := range loadFixture(t) {
		if _, err := s.Put(context.Background(), sub); err != nil {
			t.Fatalf("Put %s: %v", sub.ID, err)
		}
	}
	return s
}

// validSubmission is a complete, valid submission of the fake flow.
func validSubmission() Submission {
	start := time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)
	return Submission{
		ID:          uuid.NewString(),
		Flow:        "cso",
		FlowVersion: 1,
		FlowHash:    "9f86d081884c7d65",
		Lang:        "ru",
		Country:     "KZ",
		Stakeholder: "cso",
		Code:        "KZ-ngo-007",
		StartedAt:   start,
		FinishedAt:  start.Add(12 * time.Minute),
		Complete:    true,
		Answers: map[string]string{
			"org_type":           "ngo",
			"staff_count":        "7",
			"target_groups":      "labour returnees",
			"training_needs/t01": "4",
			"training_needs/t02": "na",
		},
	}
}

const testToken = "s3cret-token"

// newTestServer serves a fresh store of backend b over real HTTP.
func newTestServer(t testing.TB, store *Store, cfg Config) *httptest.Server {
	t.Helper()
	if cfg.Tokens == nil {
		cfg.Tokens = []string{"other-token", testToken}
	}
	srv := httptest.NewServer(NewServer(store, fakeSchema{}, cfg))
	t.Cleanup(srv.Close)
	return srv
}

// postRaw posts body to /v1/submissions and returns the status and the
// decoded error body (if any).
func postRaw(t testing.TB, srv *httptest.Server, token, contentType string, body []byte) (int, errorBody) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/submissions", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	var eb errorBody
	if resp.StatusCode >= 300 {
		if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil {
			t.Fatalf("status %d with a non-JSON error body: %v", resp.StatusCode, err)
		}
	}
	return resp.StatusCode, eb
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// get performs an authorised GET and returns status, headers and body.
func get(t testing.TB, srv *httptest.Server, path string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, resp.Header, buf.Bytes()
}

func countRows(t testing.TB, s *Store) int {
	t.Helper()
	n, err := s.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func countAnswers(t testing.TB, s *Store) int {
	t.Helper()
	var n int
	if err := s.rdb.QueryRow(`SELECT COUNT(*) FROM submission_answers`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkGolden compares got with testdata/name, rewriting it under -update.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden file (go test -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

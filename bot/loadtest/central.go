package loadtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/dialoq/dialoq/storage/central"
	"github.com/dialoq/dialoq/storage/outbox"
)

// centralStore is where the run's submissions land, and the read access the final
// check needs.
type centralStore struct {
	sqlitePath string // SQLite file; "" on PostgreSQL
	pgBase     string // PostgreSQL URL as given
	pgSchema   string // schema made for the run
	dsn        string // what central.Open and DATABASE_URL get

	store  *central.Store // in-process store (nil with a process)
	hs     *http.Server   // harness-served HTTP API for bot processes
	proc   *proc          // `dialoq central`
	addr   string
	url    string // CENTRAL_URL for bots
	token  string
	poster central.Poster // for in-process bots

	outages atomic.Int64
	reads   *sql.DB // opened on first read
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// openCentral prepares the store: an SQLite file in dir or a schema of its own on
// PostgreSQL; served in process, or by a `dialoq central` process when it must be
// stoppable.
func openCentral(ctx context.Context, cfg *Config, dir, run string, schema central.Schema) (*centralStore, error) {
	c := &centralStore{token: newToken()}
	if cfg.Central == "" {
		data := filepath.Join(dir, "central")
		if err := os.MkdirAll(data, 0o750); err != nil {
			return nil, fmt.Errorf("loadtest: central dir: %w", err)
		}
		// The name `dialoq central` uses under DIALOQ_DATA.
		c.sqlitePath = filepath.Join(data, "dialoq.db")
		c.dsn = c.sqlitePath
	} else {
		if !strings.HasPrefix(cfg.Central, "postgres://") && !strings.HasPrefix(cfg.Central, "postgresql://") {
			return nil, errors.New("loadtest: the central store must be a postgres:// URL (or empty for SQLite)")
		}
		c.pgBase = cfg.Central
		c.pgSchema = "loadtest_" + strings.ReplaceAll(run, "-", "_")
		db, err := sql.Open("pgx", c.pgBase)
		if err != nil {
			return nil, fmt.Errorf("loadtest: open postgres: %w", err)
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+c.pgSchema); err != nil {
			return nil, fmt.Errorf("loadtest: create schema %s: %w", c.pgSchema, err)
		}
		u, err := url.Parse(c.pgBase)
		if err != nil {
			return nil, fmt.Errorf("loadtest: postgres URL: %w", err)
		}
		q := u.Query()
		q.Set("search_path", c.pgSchema)
		u.RawQuery = q.Encode()
		c.dsn = u.String()
	}
	if cfg.CentralProcess {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		env := map[string]string{"CENTRAL_TOKENS": c.token, "DIALOQ_DATA": filepath.Dir(c.sqlitePath)}
		if c.pgSchema != "" {
			env = map[string]string{"CENTRAL_TOKENS": c.token, "DATABASE_URL": c.dsn}
		}
		c.addr, c.url = addr, "http://"+addr
		c.proc = &proc{name: "dialoq central", bin: cfg.Binary, args: []string{"central", "--listen", addr},
			env: environ(env), log: filepath.Join(dir, "central.log")}
		if err := c.startProc(ctx); err != nil {
			return nil, err
		}
		c.poster = central.NewClient(c.url, c.token, nil)
		return c, nil
	}
	st, err := central.Open(ctx, c.dsn)
	if err != nil {
		return nil, fmt.Errorf("loadtest: open central store: %w", err)
	}
	c.store = st.WithSchema(schema)
	c.poster = c.store
	if cfg.Exec {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("loadtest: central listener: %w", err)
		}
		c.addr, c.url = ln.Addr().String(), "http://"+ln.Addr().String()
		c.hs = &http.Server{Handler: central.NewServer(st, schema, central.Config{Tokens: []string{c.token}}),
			ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = c.hs.Serve(ln) }()
	}
	return c, nil
}

func (c *centralStore) startProc(ctx context.Context) error {
	if err := c.proc.start(); err != nil {
		return err
	}
	if err := waitHTTP(ctx, c.url+"/healthz", 30*time.Second); err != nil {
		return fmt.Errorf("%w (see %s)", err, c.proc.log)
	}
	return nil
}

// outage stops the central store process for d, then starts it again on the same
// address.
func (c *centralStore) outage(ctx context.Context, d time.Duration, log *slog.Logger) error {
	c.outages.Add(1)
	log.Info("central store down", "for", d)
	c.proc.stop(syscall.SIGTERM, 20*time.Second)
	_ = outbox.Sleep(ctx, d) // a cancelled load still gets its store back
	log.Info("central store up again")
	return c.startProc(context.WithoutCancel(ctx))
}

func (c *centralStore) close(ctx context.Context, keep bool) error {
	var errs []error
	if c.reads != nil {
		errs = append(errs, c.reads.Close())
	}
	if c.hs != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		errs = append(errs, c.hs.Shutdown(sctx))
		cancel()
	}
	if c.proc != nil {
		c.proc.stop(syscall.SIGTERM, 20*time.Second)
	}
	if c.store != nil {
		errs = append(errs, c.store.Close())
	}
	if c.pgSchema != "" && !keep {
		if db, err := sql.Open("pgx", c.pgBase); err == nil {
			_, err = db.ExecContext(ctx, "DROP SCHEMA "+c.pgSchema+" CASCADE")
			errs = append(errs, err, db.Close())
		}
	}
	return errors.Join(errs...)
}

// stored is one row of the submissions table.
type stored struct {
	ID       string
	Lang     string
	Code     string
	Country  string
	Complete bool
	Answers  map[string]string
	// Lag is from the questionnaire's end (finished_at, the bot's clock) to its
	// arrival in the store (received_at): the outbox's delivery delay.
	Lag time.Duration
}

// reader opens the store for the final check, apart from whatever serves it.
func (c *centralStore) reader() (*sql.DB, error) {
	if c.reads != nil {
		return c.reads, nil
	}
	driver, dsn := "pgx", c.dsn
	if c.sqlitePath != "" {
		driver, dsn = "sqlite", c.sqlitePath+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("loadtest: open store for reading: %w", err)
	}
	c.reads = db
	return db, nil
}

// readAll reads every submission of the run's store.
func (c *centralStore) readAll(ctx context.Context) ([]stored, error) {
	db, err := c.reader()
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT id, lang, code, country, complete, answers_json, finished_at, received_at FROM submissions`)
	if err != nil {
		return nil, fmt.Errorf("loadtest: read submissions: %w", err)
	}
	defer rows.Close()
	var out []stored
	for rows.Next() {
		var s stored
		var answers string
		var finished, received any
		if err := rows.Scan(&s.ID, &s.Lang, &s.Code, &s.Country, &s.Complete, &answers, &finished, &received); err != nil {
			return nil, fmt.Errorf("loadtest: read submission: %w", err)
		}
		if f, r := dbTime(finished), dbTime(received); !f.IsZero() && !r.IsZero() {
			s.Lag = r.Sub(f)
		}
		if err := json.Unmarshal([]byte(answers), &s.Answers); err != nil {
			return nil, fmt.Errorf("loadtest: answers of %s: %w", s.ID, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("loadtest: read submissions: %w", err)
	}
	return out, nil
}

// dbTime reads a time column: time.Time from PostgreSQL, fixed-width text from
// SQLite; zero when it is neither.
func dbTime(v any) time.Time {
	switch t := v.(type) {
	case time.Time:
		return t
	case string:
		p, _ := time.Parse(time.RFC3339Nano, t)
		return p
	case []byte:
		p, _ := time.Parse(time.RFC3339Nano, string(t))
		return p
	}
	return time.Time{}
}

// count is the number of stored submissions.
func (c *centralStore) count(ctx context.Context) (int, error) {
	db, err := c.reader()
	if err != nil {
		return 0, err
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM submissions`).Scan(&n); err != nil {
		return 0, fmt.Errorf("loadtest: count submissions: %w", err)
	}
	return n, nil
}

// Verdict is the comparison of what users completed with what was stored.
type Verdict struct {
	Completed  int // questionnaires users saw finished
	Stored     int // submissions stored with exactly the answers their user gave
	Missing    int // completed but not stored
	Duplicates int // extra submissions of a questionnaire stored already
	Wrong      int // stored, but with answers or metadata other than given
	Foreign    int // submissions of no user of this run (none expected)
	Partial    int // incomplete submissions (none expected)
	// Unconfirmed are complete submissions of users stopped by the deadline before
	// they saw the closing message: not checked, not an error.
	Unconfirmed int
	MaxLag      time.Duration // longest delivery delay of a stored submission
	Problems    []string      // the first few differences, for the report
}

// Lost is what was completed and is not in the store as given.
func (v Verdict) Lost() int { return v.Missing + v.Wrong }

// OK reports whether every completed questionnaire is stored exactly once and right.
func (v Verdict) OK() bool {
	return v.Missing == 0 && v.Duplicates == 0 && v.Wrong == 0 && v.Foreign == 0 && v.Partial == 0 && v.Stored == v.Completed
}

const maxProblems = 10

// verify matches submissions to users by the tag that starts each user's comments
// answer (submissions carry no Telegram id) and compares everything.
func verify(results []result, subs []stored) Verdict {
	var v Verdict
	byTag := map[string][]stored{}
	for _, s := range subs {
		tag, _, _ := strings.Cut(s.Answers["comments"], ":")
		byTag[tag] = append(byTag[tag], s)
		v.MaxLag = max(v.MaxLag, s.Lag)
	}
	problem := func(format string, args ...any) {
		if len(v.Problems) < maxProblems {
			v.Problems = append(v.Problems, fmt.Sprintf(format, args...))
		}
	}
	for _, r := range results {
		got := byTag[r.Tag]
		delete(byTag, r.Tag)
		if !r.Completed {
			// A user that gave up is owed nothing, and nothing complete may be
			// stored for it; one stopped by the run's deadline may have sent its
			// last answer without waiting for the reply.
			for _, s := range got {
				switch {
				case !s.Complete:
					v.Partial++
				case errors.Is(r.Err, errStopped):
					v.Unconfirmed++
				default:
					v.Foreign++
					problem("user %d did not finish but submission %s is complete", r.ID, s.ID)
				}
			}
			continue
		}
		v.Completed++
		if len(got) == 0 {
			v.Missing++
			problem("user %d (%s): completed, not stored", r.ID, r.Lang)
			continue
		}
		if len(got) > 1 {
			v.Duplicates += len(got) - 1
			problem("user %d: stored %d times", r.ID, len(got))
		}
		s, w := got[0], r.Want
		switch {
		case !s.Complete:
			v.Wrong++
			problem("user %d: submission %s not complete", r.ID, s.ID)
		case s.Lang != w.Lang || s.Lang != r.Lang || s.Code != r.Code || s.Country != w.Country:
			v.Wrong++
			problem("user %d: lang=%s code=%q country=%q, want %s %q %q", r.ID, s.Lang, s.Code, s.Country, r.Lang, r.Code, w.Country)
		case !maps.Equal(s.Answers, w.Answers):
			v.Wrong++
			problem("user %d: answers differ: %s", r.ID, diffAnswers(s.Answers, w.Answers))
		default:
			v.Stored++
		}
	}
	for tag, got := range byTag {
		v.Foreign += len(got)
		problem("%d submissions of nobody in this run (tag %q)", len(got), tag)
	}
	return v
}

func diffAnswers(got, want map[string]string) string {
	var d []string
	for k, w := range want {
		if g, ok := got[k]; !ok || g != w {
			d = append(d, fmt.Sprintf("%s=%q want %q", k, g, w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			d = append(d, fmt.Sprintf("%s=%q not given", k, g))
		}
	}
	if len(d) > 4 {
		d = append(d[:4], "…")
	}
	return strings.Join(d, "; ")
}

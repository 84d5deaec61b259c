package central

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" database/sql driver
)

// DefaultSQLitePath is where Open puts the embedded database when the DSN is
// empty.
const DefaultSQLitePath = "./data/dialoq.db"

// Store is the central submission store on PostgreSQL or SQLite. All SQL is
// shared between the two; the differences live in dialect. A Store is safe
// for concurrent use.
//
// Each submission is one row of submissions, with its answers twice: as the
// JSON text that was posted (answers_json, read back whole by exports and
// Get) and as one row per answer in submission_answers. The side table is
// what keeps reports to plain GROUP BY queries that use an index and run
// unchanged on both databases; aggregating over JSON would need jsonb
// operators on PostgreSQL and json_each on SQLite, i.e. two code paths.
// JSON is stored as TEXT rather than jsonb for the same reason: nothing
// queries inside it.
type Store struct {
	d      *dialect
	db     *sql.DB // writes (and everything on PostgreSQL)
	rdb    *sql.DB // reads; a separate pool on SQLite so reads never queue behind the single writer
	schema Schema
	now    func() time.Time
}

// dialect holds the few things that differ between the databases.
type dialect struct {
	name string // "postgres" or "sqlite"; also the migrations directory
	// timeArg converts a time into the value bound for a time column.
	timeArg func(time.Time) any
	// migrationLock is run first in the migration transaction so that
	// several replicas starting at once apply migrations one after another.
	migrationLock string
}

// sqliteTimeLayout is fixed-width so that SQLite's text comparison orders
// times correctly (RFC3339Nano trims trailing zeros and would not).
const sqliteTimeLayout = "2006-01-02T15:04:05.000000Z"

var (
	postgresDialect = &dialect{
		name:    "postgres",
		timeArg: func(t time.Time) any { return t.UTC().Truncate(time.Microsecond) },
		// The key is arbitrary but fixed: it names "dialoq central migrations"
		// among the advisory locks of the database.
		migrationLock: "SELECT pg_advisory_xact_lock(7234001180424771)",
	}
	sqliteDialect = &dialect{
		name:    "sqlite",
		timeArg: func(t time.Time) any { return t.UTC().Format(sqliteTimeLayout) },
	}
)

// Open connects to the store named by dsn and applies pending migrations.
//
// A dsn starting with postgres:// or postgresql:// selects PostgreSQL (any
// pgx connection parameter works, including search_path=...). Anything else
// is an SQLite database file: "sqlite:PATH", "sqlite://PATH" or a bare PATH;
// an empty dsn means DefaultSQLitePath. The file's directory is created.
func Open(ctx context.Context, dsn string) (*Store, error) {
	var (
		s   *Store
		err error
	)
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		s, err = openPostgres(dsn)
	} else {
		s, err = openSQLite(dsn)
	}
	if err != nil {
		return nil, err
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("central: connect %s: %w", s.d.name, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func openPostgres(dsn string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("central: parse postgres dsn: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(30 * time.Minute)
	return &Store{d: postgresDialect, db: db, rdb: db, now: time.Now}, nil
}

func openSQLite(dsn string) (*Store, error) {
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite://"), "sqlite:")
	if path == "" {
		path = DefaultSQLitePath
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("central: sqlite path %q must not contain '?' or '#'", path)
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("central: create database directory: %w", err)
		}
	}
	common := url.Values{}
	// busy_timeout makes a connection wait for a lock held by another
	// process (a second replica, the CLI) instead of failing at once.
	common.Add("_pragma", "busy_timeout(10000)")
	common.Add("_pragma", "foreign_keys(1)")

	w := url.Values{}
	for k, v := range common {
		w[k] = append([]string(nil), v...)
	}
	w.Add("_pragma", "journal_mode(WAL)")
	// FULL, not NORMAL: a 201 tells the outbox it may forget the
	// submission, so the commit must survive a power cut.
	w.Add("_pragma", "synchronous(FULL)")
	// BEGIN IMMEDIATE takes the write lock up front: a deferred transaction
	// that later upgrades can fail with SQLITE_BUSY regardless of busy_timeout.
	w.Set("_txlock", "immediate")
	wdb, err := sql.Open("sqlite", path+"?"+w.Encode())
	if err != nil {
		return nil, fmt.Errorf("central: open sqlite: %w", err)
	}
	// One writer connection: SQLite allows one writer at a time anyway, and
	// queueing in database/sql is cheaper and more predictable than lock
	// retries inside SQLite.
	wdb.SetMaxOpenConns(1)

	r := url.Values{}
	for k, v := range common {
		r[k] = append([]string(nil), v...)
	}
	r.Add("_pragma", "query_only(1)")
	rdb, err := sql.Open("sqlite", path+"?"+r.Encode())
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("central: open sqlite reader: %w", err)
	}
	rdb.SetMaxOpenConns(4)
	return &Store{d: sqliteDialect, db: wdb, rdb: rdb, now: time.Now}, nil
}

// WithSchema returns a view of s that validates submission content against
// schema in Put and can run exports. The view shares s's connections:
// close only one of them.
func (s *Store) WithSchema(schema Schema) *Store {
	c := *s
	c.schema = schema
	return &c
}

// Dialect returns "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.d.name }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("central: ping: %w", err)
	}
	if s.rdb != s.db {
		if err := s.rdb.PingContext(ctx); err != nil {
			return fmt.Errorf("central: ping reader: %w", err)
		}
	}
	return nil
}

// Close releases the connections.
func (s *Store) Close() error {
	err := s.db.Close()
	if s.rdb != s.db {
		err = errors.Join(err, s.rdb.Close())
	}
	return err
}

const insertSubmissionSQL = `INSERT INTO submissions
 (id, flow, flow_version, flow_hash, lang, country, stakeholder, code,
  started_at, finished_at, complete, answers_json, payload_sha256, received_at)
 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
 ON CONFLICT (id) DO NOTHING`

// answerRowsPerInsert bounds the parameters of one multi-row insert well
// below SQLite's and PostgreSQL's limits.
const answerRowsPerInsert = 200

// Put stores sub once. It validates the structure (and the content, on a
// view from WithSchema) and returns a *ValidationError for bad input. The
// same id posted again with the same payload, also concurrently, is a
// success with created == false; a different payload under a stored id
// returns ErrConflict and changes nothing.
func (s *Store) Put(ctx context.Context, sub Submission) (created bool, err error) {
	if err := sub.Validate(); err != nil {
		return false, err
	}
	n := normalize(sub)
	if err := validateContent(s.schema, n); err != nil {
		return false, err
	}
	hash, err := payloadHash(n)
	if err != nil {
		return false, err
	}
	answersJSON, err := json.Marshal(n.Answers)
	if err != nil {
		return false, fmt.Errorf("central: encode answers: %w", err)
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("central: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	var gone int
	err = tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM withdrawn WHERE id = $1`, n.ID).Scan(&gone)
	if err != nil {
		return false, fmt.Errorf("central: check withdrawn: %w", err)
	}
	if gone > 0 {
		// Withdrawn by the respondent: a late copy from an outbox is accepted and
		// dropped, so the sender stops retrying.
		return false, nil
	}
	res, err := tx.ExecContext(ctx, insertSubmissionSQL,
		n.ID, n.Flow, n.FlowVersion, n.FlowHash, n.Lang, n.Country, n.Stakeholder, n.Code,
		s.d.timeArg(n.StartedAt), s.d.timeArg(n.FinishedAt), n.Complete,
		string(answersJSON), hash, s.d.timeArg(s.now()))
	if err != nil {
		return false, fmt.Errorf("central: insert submission: %w", err)
	}
	rows, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("central: insert submission: %w", err)
	}
	if rows == 0 {
		// ON CONFLICT waited for any concurrent insert of the same id to
		// commit, so this read (a new statement, hence a new snapshot on
		// PostgreSQL) sees the stored row.
		var stored string
		err := tx.QueryRowContext(ctx, `SELECT payload_sha256 FROM submissions WHERE id = $1`, n.ID).Scan(&stored)
		if err != nil {
			return false, fmt.Errorf("central: read existing submission: %w", err)
		}
		if stored != hash {
			return false, ErrConflict
		}
		return false, nil
	}
	if err := insertAnswers(ctx, tx, n.ID, n.Answers); err != nil {
		return false, err
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("central: commit: %w", err)
	}
	return true, nil
}

func insertAnswers(ctx context.Context, tx *sql.Tx, id string, answers map[string]string) error {
	keys := sortedKeys(answers)
	for start := 0; start < len(keys); start += answerRowsPerInsert {
		chunk := keys[start:min(start+answerRowsPerInsert, len(keys))]
		var b strings.Builder
		b.WriteString(`INSERT INTO submission_answers (submission_id, question, item, value) VALUES `)
		args := make([]any, 1, 1+3*len(chunk))
		args[0] = id
		for i, k := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			q, item := splitKey(k)
			p := len(args)
			b.WriteString("($1, $" + strconv.Itoa(p+1) + ", $" + strconv.Itoa(p+2) + ", $" + strconv.Itoa(p+3) + ")")
			args = append(args, q, item, answers[k])
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("central: insert answers: %w", err)
		}
	}
	return nil
}

// Withdraw deletes a submission at its respondent's request and remembers the id,
// so a copy delivered later is not stored again. Withdrawing an unknown id records
// it all the same: the withdrawal may overtake the submission on its way.
func (s *Store) Withdraw(ctx context.Context, id string) (existed bool, err error) {
	id = strings.ToLower(strings.TrimSpace(id))
	if !validUUID(id) {
		return false, invalid("id", "not a UUID")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("central: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `INSERT INTO withdrawn (id, withdrawn_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`,
		id, s.d.timeArg(s.now())); err != nil {
		return false, fmt.Errorf("central: record withdrawal: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM submission_answers WHERE submission_id = $1`, id); err != nil {
		return false, fmt.Errorf("central: withdraw answers: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM submissions WHERE id = $1`, id)
	if err != nil {
		return false, fmt.Errorf("central: withdraw: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("central: withdraw: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("central: commit: %w", err)
	}
	return n > 0, nil
}

// Post stores sub and treats a duplicate as success, so that *Store is a
// Poster like *Client.
func (s *Store) Post(ctx context.Context, sub Submission) error {
	_, err := s.Put(ctx, sub)
	return err
}

// Count returns the number of stored submissions. It exists for tests and
// health dashboards; reports are the richer view.
func (s *Store) Count(ctx context.Context) (int, error) {
	var n int
	if err := s.rdb.QueryRowContext(ctx, `SELECT COUNT(*) FROM submissions`).Scan(&n); err != nil {
		return 0, fmt.Errorf("central: count: %w", err)
	}
	return n, nil
}

// Get returns the stored submission with that id, or sql.ErrNoRows.
func (s *Store) Get(ctx context.Context, id string) (Submission, error) {
	row := s.rdb.QueryRowContext(ctx, `SELECT id, flow, flow_version, flow_hash, lang, country, stakeholder, code,
 started_at, finished_at, complete, answers_json FROM submissions WHERE id = $1`, strings.ToLower(id))
	var (
		sub               Submission
		started, finished dbTime
		answers           string
	)
	err := row.Scan(&sub.ID, &sub.Flow, &sub.FlowVersion, &sub.FlowHash, &sub.Lang, &sub.Country,
		&sub.Stakeholder, &sub.Code, &started, &finished, &sub.Complete, &answers)
	if err != nil {
		return Submission{}, fmt.Errorf("central: get %s: %w", id, err)
	}
	sub.StartedAt, sub.FinishedAt = started.t, finished.t
	if err := json.Unmarshal([]byte(answers), &sub.Answers); err != nil {
		return Submission{}, fmt.Errorf("central: decode answers of %s: %w", id, err)
	}
	return sub, nil
}

// dbTime scans a time column from either database: PostgreSQL returns
// time.Time, SQLite the fixed-width text written by sqliteDialect.timeArg.
type dbTime struct{ t time.Time }

func (d *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case time.Time:
		d.t = v.UTC()
		return nil
	case string:
		return d.parse(v)
	case []byte:
		return d.parse(string(v))
	default:
		return fmt.Errorf("central: cannot scan %T as time", src)
	}
}

func (d *dbTime) parse(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("central: parse stored time: %w", err)
	}
	d.t = t.UTC()
	return nil
}

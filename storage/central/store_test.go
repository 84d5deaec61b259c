package central

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestSubmissionValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(s *Submission)
		field  string // "" = valid
	}{
		{"valid", func(s *Submission) {}, ""},
		{"upper-case uuid", func(s *Submission) { s.ID = strings.ToUpper(s.ID) }, ""},
		{"uuid v7", func(s *Submission) { s.ID = uuid.Must(uuid.NewV7()).String() }, ""},
		{"unknown country", func(s *Submission) { s.Country = "" }, ""},
		{"other country", func(s *Submission) { s.Country = "other" }, ""},
		{"no code", func(s *Submission) { s.Code = "" }, ""},
		{"no answers", func(s *Submission) { s.Answers = nil }, ""},
		{"bad uuid", func(s *Submission) { s.ID = "not-a-uuid" }, "id"},
		{"uuid without hyphens", func(s *Submission) { s.ID = strings.ReplaceAll(s.ID, "-", "") }, "id"},
		{"urn uuid", func(s *Submission) { s.ID = "urn:uuid:" + s.ID }, "id"},
		{"empty flow", func(s *Submission) { s.Flow = "" }, "flow"},
		{"flow with slash", func(s *Submission) { s.Flow = "a/b" }, "flow"},
		{"zero version", func(s *Submission) { s.FlowVersion = 0 }, "flow_version"},
		{"non-hex hash", func(s *Submission) { s.FlowHash = "xyz" }, "flow_hash"},
		{"long lang", func(s *Submission) { s.Lang = "russian" }, "lang"},
		{"upper lang", func(s *Submission) { s.Lang = "RU" }, "lang"},
		{"lower country", func(s *Submission) { s.Country = "az" }, "country"},
		{"non-participating country", func(s *Submission) { s.Country = "FR" }, "country"},
		{"bad stakeholder", func(s *Submission) { s.Stakeholder = "bank" }, "stakeholder"},
		{"bad code", func(s *Submission) { s.Code = "AZ ngo" }, "code"},
		{"long code", func(s *Submission) { s.Code = strings.Repeat("a", 65) }, "code"},
		{"no start", func(s *Submission) { s.StartedAt = time.Time{} }, "started_at"},
		{"finished before started", func(s *Submission) { s.FinishedAt = s.StartedAt.Add(-time.Second) }, "finished_at"},
		{"bad key", func(s *Submission) { s.Answers["a b"] = "1" }, "answers"},
		{"too deep key", func(s *Submission) { s.Answers["a/b/c"] = "1" }, "answers"},
		{"empty item", func(s *Submission) { s.Answers["a/"] = "1" }, "answers"},
		{"long value", func(s *Submission) { s.Answers["comments"] = strings.Repeat("ж", 2001) }, "answers.comments"},
		{"max value", func(s *Submission) { s.Answers["comments"] = strings.Repeat("ж", 2000) }, ""},
		{"invalid utf8", func(s *Submission) { s.Answers["comments"] = "\xff" }, "answers.comments"},
		{"NUL", func(s *Submission) { s.Answers["comments"] = "a\x00b" }, "answers.comments"},
		{"newline ok", func(s *Submission) { s.Answers["comments"] = "a\nb\tc" }, ""},
		{"too many answers", func(s *Submission) {
			for i := range MaxAnswers {
				s.Answers[fmt.Sprintf("q%d", i)] = "x"
			}
		}, "answers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSubmission()
			tt.mutate(&s)
			err := s.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("want *ValidationError, got %v", err)
			}
			if ve.Field != tt.field {
				t.Fatalf("field = %q, want %q (%v)", ve.Field, tt.field, err)
			}
		})
	}
}

func TestPutIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := openStore(t, b).WithSchema(fakeSchema{})
		sub := validSubmission()

		created, err := s.Put(ctx, sub)
		if err != nil || !created {
			t.Fatalf("first Put = %v, %v; want true, nil", created, err)
		}
		// Same payload, spelled differently on the wire: upper-case id and
		// another time zone. Still the same submission.
		again := sub
		again.ID = strings.ToUpper(sub.ID)
		again.StartedAt = sub.StartedAt.In(time.FixedZone("AZT", 4*3600))
		created, err = s.Put(ctx, again)
		if err != nil || created {
			t.Fatalf("second Put = %v, %v; want false, nil", created, err)
		}
		if err := s.Post(ctx, sub); err != nil {
			t.Fatalf("Post of a duplicate: %v", err)
		}

		changed := sub
		changed.Answers = map[string]string{"staff_count": "8"}
		if _, err := s.Put(ctx, changed); !errors.Is(err, ErrConflict) {
			t.Fatalf("Put of a different payload: %v, want ErrConflict", err)
		}
		if n := countRows(t, s); n != 1 {
			t.Fatalf("rows = %d, want 1", n)
		}
		if n := countAnswers(t, s); n != len(sub.Answers) {
			t.Fatalf("answer rows = %d, want %d", n, len(sub.Answers))
		}
		got, err := s.Get(ctx, sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := normalize(sub)
		if got.ID != want.ID || !got.StartedAt.Equal(want.StartedAt) || !got.FinishedAt.Equal(want.FinishedAt) ||
			got.Complete != want.Complete || got.Code != want.Code || fmt.Sprint(got.Answers) != fmt.Sprint(want.Answers) {
			t.Fatalf("stored %+v\nwant %+v", got, want)
		}
	})
}

func TestPutConcurrentSameID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b)
		sub := validSubmission()
		const n = 8
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			created int
		)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := s.Put(context.Background(), sub)
				if err != nil {
					t.Errorf("Put: %v", err)
				}
				if c {
					mu.Lock()
					created++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if created != 1 {
			t.Fatalf("created %d times, want 1", created)
		}
		if got := countRows(t, s); got != 1 {
			t.Fatalf("rows = %d, want 1", got)
		}
	})
}

func TestPutContentValidation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b).WithSchema(fakeSchema{})
		tests := []struct {
			name   string
			mutate func(*Submission)
			field  string
		}{
			{"unknown flow", func(s *Submission) { s.Flow = "bank" }, "flow"},
			{"unknown version", func(s *Submission) { s.FlowVersion = 9 }, "flow_version"},
			{"unknown question", func(s *Submission) { s.Answers["salary"] = "1" }, "answers.salary"},
			{"not an integer", func(s *Submission) { s.Answers["staff_count"] = "twelve" }, "answers.staff_count"},
			{"invalid choice", func(s *Submission) { s.Answers["org_type"] = "bank" }, "answers.org_type"},
			{"invalid rating", func(s *Submission) { s.Answers["training_needs/t01"] = "5" }, "answers.training_needs/t01"},
		}
		for _, tt := range tests {
			sub := validSubmission()
			tt.mutate(&sub)
			_, err := s.Put(context.Background(), sub)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tt.field {
				t.Errorf("%s: err = %v, want field %q", tt.name, err, tt.field)
			}
		}
		if n := countRows(t, s); n != 0 {
			t.Fatalf("rows = %d after rejected puts, want 0", n)
		}
	})
}

func TestMigrationsIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.dsn(t)
		s1, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s1.Put(ctx, validSubmission()); err != nil {
			t.Fatal(err)
		}
		s1.Close()

		// Several replicas starting at once on an existing database, then
		// the same on a fresh one: all succeed, nothing is applied twice.
		for _, d := range []string{dsn, b.dsn(t)} {
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := Open(ctx, d)
					if err != nil {
						t.Errorf("concurrent Open: %v", err)
						return
					}
					s.Close()
				}()
			}
			wg.Wait()
		}

		s2, err := Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer s2.Close()
		ms, err := loadMigrations(s2.Dialect())
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s2.db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != len(ms) {
			t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
		}
		if c := countRows(t, s2); c != 1 {
			t.Fatalf("rows = %d after reopening, want 1", c)
		}
	})
}

func TestMigrationsInStep(t *testing.T) {
	t.Parallel()
	pg, err := loadMigrations("postgres")
	if err != nil {
		t.Fatal(err)
	}
	lite, err := loadMigrations("sqlite")
	if err != nil {
		t.Fatal(err)
	}
	if len(pg) == 0 || len(pg) != len(lite) {
		t.Fatalf("postgres has %d migrations, sqlite %d", len(pg), len(lite))
	}
	for i := range pg {
		if pg[i].name != lite[i].name {
			t.Errorf("migration %d: postgres %s, sqlite %s", i, pg[i].name, lite[i].name)
		}
	}
}

func TestOpenDefaultPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	s, err := Open(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Dialect() != "sqlite" {
		t.Fatalf("dialect %s", s.Dialect())
	}
	var mode string
	if err := s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
	}
	var fk int
	if err := s.rdb.QueryRow(`PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Fatalf("foreign_keys = %d, %v; want 1", fk, err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestPutManyAnswers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b)
		sub := validSubmission()
		sub.Answers = map[string]string{}
		for i := range MaxAnswers {
			sub.Answers[fmt.Sprintf("m%d/i%d", i%7, i)] = strings.Repeat("я", 100)
		}
		if created, err := s.Put(context.Background(), sub); err != nil || !created {
			t.Fatalf("Put = %v, %v", created, err)
		}
		if n := countAnswers(t, s); n != MaxAnswers {
			t.Fatalf("answer rows = %d, want %d", n, MaxAnswers)
		}
		if created, err := s.Put(context.Background(), sub); err != nil || created {
			t.Fatalf("re-Put = %v, %v", created, err)
		}
	})
}

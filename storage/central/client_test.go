package central

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestClientAgainstServer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		store := openStore(t, b)
		srv := newTestServer(t, store, Config{})
		ctx := context.Background()
		c := NewClient(srv.URL+"/", testToken, nil)

		sub := validSubmission()
		if created, err := c.Put(ctx, sub); err != nil || !created {
			t.Fatalf("first Put = %v, %v", created, err)
		}
		if created, err := c.Put(ctx, sub); err != nil || created {
			t.Fatalf("second Put = %v, %v", created, err)
		}
		if err := c.Post(ctx, sub); err != nil {
			t.Fatalf("Post of a duplicate: %v", err)
		}

		changed := sub
		changed.Answers = map[string]string{"staff_count": "1"}
		err := c.Post(ctx, changed)
		if !errors.Is(err, ErrConflict) || !IsPermanent(err) {
			t.Fatalf("conflict: %v (permanent %v)", err, IsPermanent(err))
		}

		bad := validSubmission()
		bad.Answers["staff_count"] = "many"
		err = c.Post(ctx, bad)
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != 400 || he.Field != "answers.staff_count" || !IsPermanent(err) || !errors.Is(err, ErrInvalid) {
			t.Fatalf("invalid content: %v", err)
		}
		bad = validSubmission()
		bad.ID = "nope"
		if err := c.Post(ctx, bad); !errors.Is(err, ErrInvalid) || !IsPermanent(err) {
			t.Fatalf("local validation: %v", err)
		}

		wrong := NewClient(srv.URL, "wrong", srv.Client())
		if err := wrong.Post(ctx, validSubmission()); !IsPermanent(err) {
			t.Fatalf("wrong token: %v", err)
		}
		if n := countRows(t, store); n != 1 {
			t.Fatalf("rows = %d, want 1", n)
		}
	})
}

func TestClientErrorClassification(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status    int
		permanent bool
	}{
		{400, true}, {401, true}, {403, true}, {404, true}, {409, true}, {413, true}, {415, true},
		{408, false}, {429, false}, {500, false}, {502, false}, {503, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.status == 429 {
					w.Header().Set("Retry-After", "7")
				}
				writeError(w, tt.status, "nope", "")
			}))
			defer srv.Close()
			err := NewClient(srv.URL, testToken, nil).Post(context.Background(), validSubmission())
			var he *HTTPError
			if !errors.As(err, &he) || he.Status != tt.status {
				t.Fatalf("err = %v", err)
			}
			if got := IsPermanent(err); got != tt.permanent {
				t.Fatalf("IsPermanent = %v, want %v", got, tt.permanent)
			}
			if tt.status == 429 && he.RetryAfter != 7*time.Second {
				t.Fatalf("RetryAfter = %v", he.RetryAfter)
			}
		})
	}

	t.Run("network", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		err := NewClient(url, testToken, nil).Post(context.Background(), validSubmission())
		if err == nil || IsPermanent(err) {
			t.Fatalf("connection refused: %v, permanent %v", err, IsPermanent(err))
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		block := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(block)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		err := NewClient(srv.URL, testToken, nil).Post(ctx, validSubmission())
		if !errors.Is(err, context.DeadlineExceeded) || IsPermanent(err) {
			t.Fatalf("timeout: %v, permanent %v", err, IsPermanent(err))
		}
	})
	if IsPermanent(nil) {
		t.Error("IsPermanent(nil)")
	}
}

// deliver is how a caller uses either implementation.
func deliver(ctx context.Context, p Poster, s Submission) error { return p.Post(ctx, s) }

func TestPosterInterchangeable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		store := openStore(t, b).WithSchema(fakeSchema{})
		srv := newTestServer(t, store, Config{})
		sub := validSubmission()
		for _, p := range []Poster{store, NewClient(srv.URL, testToken, nil), store} {
			if err := deliver(context.Background(), p, sub); err != nil {
				t.Fatalf("%T: %v", p, err)
			}
		}
		if n := countRows(t, store); n != 1 {
			t.Fatalf("rows = %d, want 1", n)
		}
	})
}

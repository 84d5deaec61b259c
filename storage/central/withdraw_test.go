package central

import (
	"context"
	"testing"
)

// A respondent's /forget withdraws what they sent: the row and its answers go, and a
// copy still queued somewhere and delivered afterwards is not stored again.
func TestWithdraw(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := openStore(t, b)
		sub := validSubmission()
		if _, err := s.Put(ctx, sub); err != nil {
			t.Fatal(err)
		}
		existed, err := s.Withdraw(ctx, sub.ID)
		if err != nil || !existed {
			t.Fatalf("withdraw: existed=%v err=%v", existed, err)
		}
		if countRows(t, s) != 0 || countAnswers(t, s) != 0 {
			t.Fatalf("rows %d, answers %d after withdrawal", countRows(t, s), countAnswers(t, s))
		}
		created, err := s.Put(ctx, sub)
		if err != nil || created || countRows(t, s) != 0 {
			t.Fatalf("late copy: created=%v err=%v rows=%d", created, err, countRows(t, s))
		}
		// A withdrawal that overtakes its submission wins too.
		other := validSubmission()
		other.ID = "5b1f2c8e-3f0e-4c55-9a57-0d1f8b5d7a11"
		if existed, err := s.Withdraw(ctx, other.ID); err != nil || existed {
			t.Fatalf("early withdraw: existed=%v err=%v", existed, err)
		}
		if created, err := s.Put(ctx, other); err != nil || created {
			t.Fatalf("put after early withdrawal: created=%v err=%v", created, err)
		}
		if _, err := s.Withdraw(ctx, "not-a-uuid"); err == nil {
			t.Error("bad id accepted")
		}
	})
}

func TestHTTPWithdraw(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := openStore(t, b)
		srv := newTestServer(t, s, Config{Tokens: []string{"tok"}})
		c := NewClient(srv.URL, "tok", nil)
		sub := validSubmission()
		if err := c.Post(ctx, sub); err != nil {
			t.Fatal(err)
		}
		if err := c.Withdraw(ctx, sub.ID); err != nil {
			t.Fatal(err)
		}
		if err := c.Withdraw(ctx, sub.ID); err != nil {
			t.Fatalf("second withdrawal: %v", err)
		}
		if countRows(t, s) != 0 {
			t.Fatal("row still there")
		}
		if err := NewClient(srv.URL, "wrong", nil).Withdraw(ctx, sub.ID); !IsPermanent(err) {
			t.Errorf("wrong token: %v, want a permanent error", err)
		}
	})
}

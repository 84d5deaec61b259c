package central

import (
	"context"
	"testing"
)

func TestAnswersReport(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := openStore(t, b)
		put := func(complete bool, answers map[string]string) {
			sub := validSubmission()
			sub.Complete, sub.Answers = complete, answers
			if _, err := s.Put(ctx, sub); err != nil {
				t.Fatal(err)
			}
		}
		put(true, map[string]string{"target_groups": "labour returnees", "training_needs/t01": "4"})
		put(true, map[string]string{"target_groups": "labour"})
		put(false, map[string]string{"target_groups": "returnees"})
		put(true, map[string]string{"org_type": "ngo"})

		rep, err := s.Answers(ctx, Filter{Flow: "cso"}, "target_groups")
		if err != nil {
			t.Fatal(err)
		}
		// Two complete submissions answered; "labour" picked twice, "returnees" once.
		want := []AnswerCount{{"labour", 2}, {"returnees", 1}}
		if rep.Total != 2 || len(rep.Counts) != 2 || rep.Counts[0] != want[0] || rep.Counts[1] != want[1] {
			t.Errorf("report = %+v, want total 2 and %v", rep, want)
		}
		rep, err = s.Answers(ctx, Filter{Flow: "cso", IncludePartial: true}, "target_groups")
		if err != nil || rep.Total != 3 || rep.Counts[1].N != 2 {
			t.Errorf("with partial: %+v %v", rep, err)
		}
		rep, err = s.Answers(ctx, Filter{}, "training_needs/t01")
		if err != nil || rep.Total != 1 || rep.Counts[0] != (AnswerCount{"4", 1}) {
			t.Errorf("matrix item: %+v %v", rep, err)
		}
		if _, err := s.Answers(ctx, Filter{}, "bad key!"); err == nil {
			t.Error("bad question accepted")
		}
	})
}

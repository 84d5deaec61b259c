package central

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"
)

// The expected tables below were computed by hand from
// testdata/submissions.json (20 submissions: AZ 9, RU 6, TJ 5; 6 partial).

func TestResponsesReport(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := fixtureStore(t, b)
		ctx := context.Background()

		r, err := s.Responses(ctx, Filter{Flow: "cso"})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"government", "cso", "media"}; !reflect.DeepEqual(r.Stakeholders, want) {
			t.Fatalf("stakeholders = %v, want %v", r.Stakeholders, want)
		}
		c := func(started, completed int) Counts {
			return Counts{Started: started, Completed: completed, Partial: started - completed}
		}
		// country → government, cso, media, row total
		want := map[string][4]Counts{
			"AZ":    {c(2, 1), c(4, 3), c(3, 3), c(9, 7)},
			"RU":    {c(2, 2), c(3, 2), c(1, 0), c(6, 4)},
			"TJ":    {c(3, 2), c(2, 1), c(0, 0), c(5, 3)},
			"total": {c(7, 5), c(9, 6), c(4, 3), c(20, 14)},
		}
		rows := append(append([]ResponseRow(nil), r.Rows...), r.Totals)
		if len(rows) != 4 || rows[0].Country != "AZ" || rows[1].Country != "RU" || rows[2].Country != "TJ" {
			t.Fatalf("rows = %+v, want AZ, RU, TJ", r.Rows)
		}
		for _, row := range rows {
			w := want[row.Country]
			for j, cell := range row.Cells {
				if cell.Counts != w[j] || cell.Stakeholder != r.Stakeholders[j] {
					t.Errorf("%s/%s = %+v, want %+v", row.Country, cell.Stakeholder, cell.Counts, w[j])
				}
			}
			if row.Total != w[3] {
				t.Errorf("%s total = %+v, want %+v", row.Country, row.Total, w[3])
			}
		}

		// Filters: April only (submissions 11-20), and explicit rows/columns.
		april, err := s.Responses(ctx, Filter{From: time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		if april.Totals.Total != c(10, 6) {
			t.Errorf("April total = %+v, want %+v", april.Totals.Total, c(10, 6))
		}
		sel, err := s.Responses(ctx, Filter{Countries: []string{"UZ", "AZ"}, Stakeholders: []string{"media", "government"}})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(sel.Stakeholders, []string{"government", "media"}) || len(sel.Rows) != 2 ||
			sel.Rows[0].Country != "AZ" || sel.Rows[1].Country != "UZ" {
			t.Fatalf("selected report shape: %v %+v", sel.Stakeholders, sel.Rows)
		}
		if sel.Rows[0].Total != c(5, 4) || sel.Rows[1].Total != c(0, 0) || sel.Totals.Total != c(5, 4) {
			t.Errorf("selected totals: AZ %+v UZ %+v all %+v", sel.Rows[0].Total, sel.Rows[1].Total, sel.Totals.Total)
		}
		code, err := s.Responses(ctx, Filter{Code: "AZ-media-02"})
		if err != nil {
			t.Fatal(err)
		}
		if code.Totals.Total != c(1, 1) {
			t.Errorf("code filter total = %+v", code.Totals.Total)
		}

		if _, err := s.Responses(ctx, Filter{Countries: []string{"FR"}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad country filter: %v", err)
		}
		checkGolden(t, "responses.golden", RenderResponses(r))
	})
}

func TestTrainingNeedsReport(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := fixtureStore(t, b)
		ctx := context.Background()

		r, err := s.TrainingNeeds(ctx, Filter{Flow: "cso"}, "training_needs")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r.Countries, []string{"AZ", "RU", "TJ"}) {
			t.Fatalf("countries = %v", r.Countries)
		}
		type cell struct {
			n       int
			sum     int // of the numeric ratings; mean = sum/n
			ratings [4]int
			na      int
		}
		// item → AZ, RU, TJ, All (complete submissions only)
		want := map[string][4]cell{
			"t01": {{6, 20, [4]int{0, 1, 2, 3}, 1}, {3, 11, [4]int{0, 0, 1, 2}, 1}, {3, 6, [4]int{1, 1, 1, 0}, 0}, {12, 37, [4]int{1, 2, 4, 5}, 2}},
			"t02": {{6, 19, [4]int{0, 1, 3, 2}, 1}, {4, 11, [4]int{1, 1, 0, 2}, 0}, {2, 5, [4]int{0, 1, 1, 0}, 1}, {12, 35, [4]int{1, 3, 4, 4}, 2}},
			"t03": {{5, 16, [4]int{0, 1, 2, 2}, 2}, {3, 7, [4]int{1, 1, 0, 1}, 1}, {2, 6, [4]int{0, 0, 2, 0}, 1}, {10, 29, [4]int{1, 2, 4, 3}, 4}},
		}
		if len(r.Items) != 3 {
			t.Fatalf("items = %d, want 3", len(r.Items))
		}
		for i, item := range r.Items {
			if wantKey := []string{"t01", "t02", "t03"}[i]; item.Key != wantKey {
				t.Fatalf("item %d = %s, want %s", i, item.Key, wantKey)
			}
			if item.Label != "Global context of international migration (training_needs/t01)" && i == 0 {
				t.Errorf("label = %q", item.Label)
			}
			cells := append(append([]NeedsCell(nil), item.Countries...), item.All)
			for j, got := range cells {
				w := want[item.Key][j]
				if got.N != w.n || got.Ratings != w.ratings || got.NA != w.na || got.Other != 0 {
					t.Errorf("%s/%s = n %d ratings %v na %d, want n %d ratings %v na %d",
						item.Key, got.Country, got.N, got.Ratings, got.NA, w.n, w.ratings, w.na)
				}
				if got.Mean == nil || math.Abs(*got.Mean-float64(w.sum)/float64(w.n)) > 1e-9 {
					t.Errorf("%s/%s mean = %v, want %d/%d", item.Key, got.Country, got.Mean, w.sum, w.n)
				}
			}
			if item.All.Country != "all" {
				t.Errorf("all column named %q", item.All.Country)
			}
		}

		// Partial dialogues add #3 (AZ t01=1), #11 (RU t01=2, t02=2), #17 (TJ t01=4).
		p, err := s.TrainingNeeds(ctx, Filter{IncludePartial: true}, "training_needs")
		if err != nil {
			t.Fatal(err)
		}
		if all := p.Items[0].All; all.N != 15 || all.Ratings != [4]int{2, 3, 4, 6} || math.Abs(*all.Mean-44.0/15) > 1e-9 {
			t.Errorf("t01 all with partial = %+v", all)
		}
		// Government only: AZ #7 (3), RU #12 (3) #13 (4), TJ #15 (2) #16 (1).
		g, err := s.TrainingNeeds(ctx, Filter{Stakeholders: []string{"government"}}, "training_needs")
		if err != nil {
			t.Fatal(err)
		}
		if all := g.Items[0].All; all.N != 5 || math.Abs(*all.Mean-2.6) > 1e-9 {
			t.Errorf("t01 all government = %+v", all)
		}
		// A country without ratings shows as an empty column.
		e, err := s.TrainingNeeds(ctx, Filter{Flow: "cso", Countries: []string{"KG"}}, "training_needs")
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Items) != 3 || e.Items[0].Countries[0].N != 0 || e.Items[0].Countries[0].Mean != nil {
			t.Errorf("empty country: %+v", e.Items)
		}

		if _, err := s.TrainingNeeds(ctx, Filter{}, "bad matrix"); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad matrix: %v", err)
		}
		if _, err := s.TrainingNeeds(ctx, Filter{Flow: "nope"}, "training_needs"); !errors.Is(err, ErrInvalid) {
			t.Errorf("unknown flow: %v", err)
		}
		checkGolden(t, "training_needs.golden", RenderNeeds(r))
	})
}

func TestTrainingNeedsWithoutSchema(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b)
		ctx := context.Background()
		for i, v := range []string{"4", "2", "na", "9"} {
			sub := validSubmission()
			sub.Answers = map[string]string{"m/t10": v, "m/t2": "3"}
			if i == 3 {
				sub.Country = ""
			}
			if _, err := s.Put(ctx, sub); err != nil {
				t.Fatal(err)
			}
		}
		r, err := s.TrainingNeeds(ctx, Filter{}, "m")
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Items) != 2 || r.Items[0].Key != "t2" || r.Items[1].Key != "t10" {
			t.Fatalf("items not in natural order: %+v", r.Items)
		}
		if !reflect.DeepEqual(r.Countries, []string{"KZ", ""}) {
			t.Fatalf("countries = %q", r.Countries)
		}
		if all := r.Items[1].All; all.N != 2 || all.NA != 1 || all.Other != 1 || *all.Mean != 3 {
			t.Fatalf("t10 all = %+v", all)
		}
	})
}

func TestNaturalLess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want bool
	}{
		{"t2", "t10", true},
		{"t10", "t2", false},
		{"t02", "t10", true},
		{"t02", "t2", false},
		{"a", "b", true},
		{"t1", "t1a", true},
		{"", "a", true},
	}
	for _, tt := range tests {
		if got := naturalLess(tt.a, tt.b); got != tt.want {
			t.Errorf("naturalLess(%q, %q) = %v", tt.a, tt.b, got)
		}
	}
}

package central

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// AnswerCount is how often one value was given.
type AnswerCount struct {
	Value string `json:"value"`
	N     int    `json:"n"`
}

// AnswerReport is the distribution of the answers to one question: how often each
// choice was picked (multiple-choice answers count once per pick), for instance how
// many migrants found an info session useful.
type AnswerReport struct {
	Filter   Filter        `json:"filter"`
	Question string        `json:"question"`
	Total    int           `json:"total"` // submissions that answered
	Counts   []AnswerCount `json:"counts"`
}

// Answers counts the answers to question (an answer key, "matrix/item" for a matrix
// item) among the submissions f selects; partial ones only with IncludePartial.
func (s *Store) Answers(ctx context.Context, f Filter, question string) (AnswerReport, error) {
	if err := f.Validate(); err != nil {
		return AnswerReport{}, err
	}
	q, item := splitKey(question)
	if !validName(q) || (item != "" && !validName(item)) {
		return AnswerReport{}, invalid("question", "not a question id")
	}
	w := &where{d: s.d}
	w.filter(f, !f.IncludePartial)
	w.add("a.question = " + w.arg(q))
	w.add("a.item = " + w.arg(item))
	rows, err := s.rdb.QueryContext(ctx, `SELECT a.value FROM submission_answers a
 JOIN submissions s ON s.id = a.submission_id`+w.sql(), w.args...)
	if err != nil {
		return AnswerReport{}, fmt.Errorf("central: answers: %w", err)
	}
	defer rows.Close()
	rep := AnswerReport{Filter: f, Question: question}
	counts := map[string]int{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return AnswerReport{}, fmt.Errorf("central: answers: %w", err)
		}
		rep.Total++
		for _, pick := range strings.Fields(v) {
			counts[pick]++
		}
	}
	if err := rows.Err(); err != nil {
		return AnswerReport{}, fmt.Errorf("central: answers: %w", err)
	}
	for _, v := range slices.Sorted(maps.Keys(counts)) {
		rep.Counts = append(rep.Counts, AnswerCount{Value: v, N: counts[v]})
	}
	return rep, nil
}

// RenderAnswers renders an answer report as a plain table.
func RenderAnswers(r AnswerReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d answered)\n", r.Question, r.Total)
	for _, c := range r.Counts {
		fmt.Fprintf(&b, "  %-24s %6d\n", c.Value, c.N)
	}
	return b.String()
}

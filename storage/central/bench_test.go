package central

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
)

// benchSubmission has the size of a real CSO questionnaire: a dozen
// questions plus the 22-topic training-needs matrix.
func benchSubmission() Submission {
	sub := validSubmission()
	for i := 1; i <= 22; i++ {
		sub.Answers[fmt.Sprintf("training_needs/t%02d", i)] = fmt.Sprint(i%4 + 1)
	}
	for i := range 8 {
		sub.Answers[fmt.Sprintf("q%d", i)] = "Организация работает с трудовыми мигрантами и их семьями"
	}
	return sub
}

// BenchmarkPut stores distinct submissions of realistic size. No schema:
// content validation belongs to the flow engine and is not measured here.
func BenchmarkPut(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			s := openStore(b, be)
			sub := benchSubmission()
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				sub.ID = uuid.NewString()
				if _, err := s.Put(ctx, sub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPutDuplicate measures the outbox-retry path: the id is stored.
func BenchmarkPutDuplicate(b *testing.B) {
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			s := openStore(b, be)
			sub := benchSubmission()
			ctx := context.Background()
			if _, err := s.Put(ctx, sub); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if created, err := s.Put(ctx, sub); err != nil || created {
					b.Fatal(created, err)
				}
			}
		})
	}
}

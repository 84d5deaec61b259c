package bot

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/storage/redisstate"
)

// Sweep bounds: how many dialogues one Idle call returns, and how many calls one
// pass makes before leaving the rest to the next.
const (
	sweepBatch   = 100
	sweepBatches = 20
)

// Sweep posts the answers of questionnaires left unfinished for PartialAfter as
// partial submissions, and closes those dialogues. Each one is closed and its
// submission enqueued in one commit, so it is posted once even when several
// replicas sweep at the same time. It returns how many were posted.
func (b *Bot) Sweep(ctx context.Context) (int, error) {
	cutoff := b.now().Add(-b.cfg.PartialAfter)
	posted := 0
	for range sweepBatches {
		keys, err := b.store.Idle(ctx, cutoff, sweepBatch)
		if err != nil {
			return posted, fmt.Errorf("bot: sweep: %w", err)
		}
		for _, k := range keys {
			ok, err := b.sweepOne(ctx, k, cutoff)
			if err != nil {
				return posted, fmt.Errorf("bot: sweep: %w", err)
			}
			if ok {
				posted++
			}
		}
		if len(keys) < sweepBatch {
			break
		}
	}
	return posted, nil
}

func (b *Bot) sweepOne(ctx context.Context, k redisstate.Key, cutoff time.Time) (bool, error) {
	posted := false
	_, err := b.store.Apply(ctx, k, func(snap redisstate.Snapshot) (redisstate.Write, error) {
		posted = false
		now := b.now()
		if snap.Exists && !snap.UpdatedAt.Before(cutoff) {
			return redisstate.Write{}, errNoWrite // the user came back meanwhile
		}
		// Whatever is not an abandoned questionnaire leaves the activity index.
		keep := redisstate.Write{Data: snap.Data, Active: false, Now: now}
		env, err := decodeEnvelope(snap.Data)
		if !snap.Exists || err != nil || !env.state.Active() {
			return keep, nil
		}
		c, ok := b.engine.Partial(env.state)
		if !ok {
			// Nothing answered, or a session: nothing to post. The dialogue stays
			// resumable; it re-enters the index when the user writes again.
			return keep, nil
		}
		t := &turn{b: b, env: env, now: now}
		finished := snap.UpdatedAt
		if finished.IsZero() || finished.After(now) {
			finished = now
		}
		t.enqueue(c, finished)
		st := env.state
		// As the engine stops a flow: the language stays, the token moves on so the
		// closed questionnaire's buttons are stale.
		t.env.state = flows.State{Lang: st.Lang, Token: st.Token + 1}
		t.env.Started, t.env.Code, t.env.Closed = 0, "", true
		data, err := encodeEnvelope(t.env)
		if err != nil {
			return redisstate.Write{}, err
		}
		posted = true
		return redisstate.Write{Data: data, Active: false, Outbox: t.out.outbox, Now: now}, nil
	})
	if errors.Is(err, errNoWrite) {
		return false, nil
	}
	if err != nil {
		return false, scrub(err, k)
	}
	if posted {
		b.m.submission(false)
	}
	return posted, nil
}

// runSweeper sweeps every SweepEvery until ctx ends.
func (b *Bot) runSweeper(ctx context.Context) {
	for {
		n, err := b.Sweep(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			b.log.Warn("bot: sweep failed", "err", err)
		case n > 0:
			b.log.Info("bot: posted abandoned questionnaires as partial submissions", "count", n)
		}
		if b.sleep(ctx, backoffJitter(b.cfg.SweepEvery)) != nil {
			return
		}
	}
}

// backoffJitter spreads periodic work of several replicas: d ± 10%.
func backoffJitter(d time.Duration) time.Duration {
	return d*9/10 + rand.N(d/5+1)
}

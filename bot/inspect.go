package bot

import (
	"context"
	"fmt"
	"time"

	"github.com/dialoq/dialoq/storage/redisstate"
)

// Dialogue is what the bot stores about one user in one chat, for support and tests.
// It holds no answers.
type Dialogue struct {
	Exists   bool      // anything stored at all
	Lang     string    // the user's language
	Flow     string    // the running flow, "" when none
	Question string    // the current question's key
	Answers  int       // how many answers the running flow holds
	Code     string    // organisation or campaign code of the running flow
	Started  time.Time // when the running flow started
	Inactive bool      // the user blocked the bot
	Updated  time.Time // last write
}

// Inspect reads the stored dialogue of a user in a chat.
func (b *Bot) Inspect(ctx context.Context, chatID, userID int64) (Dialogue, error) {
	k := redisstate.Key{ChatID: chatID, UserID: userID}
	snap, err := b.store.Load(ctx, k)
	if err != nil {
		return Dialogue{}, fmt.Errorf("%w: %w", ErrStorage, scrub(err, k))
	}
	if !snap.Exists {
		return Dialogue{Updated: snap.UpdatedAt}, nil
	}
	env, err := decodeEnvelope(snap.Data)
	if err != nil {
		return Dialogue{Exists: true, Updated: snap.UpdatedAt}, err
	}
	d := Dialogue{Exists: true, Lang: env.Lang, Flow: env.state.Flow, Question: env.state.Cur,
		Answers: len(env.state.Answers), Code: env.Code, Inactive: env.Inactive, Updated: snap.UpdatedAt}
	if env.Started != 0 {
		d.Started = time.Unix(env.Started, 0)
	}
	return d, nil
}

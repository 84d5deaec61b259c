package bot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dialoq/dialoq/flows"
)

// envelopeFormat starts every stored blob so that a later layout can be told apart.
const envelopeFormat = 'e'

// maxEnvelopeBytes bounds what is decoded: a corrupted or forged value must not make
// the bot allocate without bound (flows.DecodeState bounds the state part itself).
const maxEnvelopeBytes = 80 << 10

// envelope is what the bot stores per dialogue: the engine's state, opaque, plus what
// only the channel knows. The header is compact JSON (one-letter keys, empty fields
// left out), then a newline, then the bytes of flows.EncodeState. JSON never holds a
// raw newline, so the first one ends the header.
type envelope struct {
	Lang     string `json:"l,omitempty"` // the user's language, also outside a dialogue
	Code     string `json:"c,omitempty"` // organisation or campaign code of the running flow
	Started  int64  `json:"s,omitempty"` // unix seconds the running flow started
	Inactive bool   `json:"i,omitempty"` // the user blocked the bot: send nothing
	// Closed is set when the sweeper posted an abandoned dialogue, so that the user
	// hears about it at the next contact.
	Closed bool `json:"x,omitempty"`
	// OptOut is set by /stop: no reminders and no broadcasts until the user opts in
	// again with the button (starting or answering a questionnaire does not).
	OptOut bool `json:"o,omitempty"`
	// Sent are the ids of the submissions this user made here, newest last, so that
	// /forget can withdraw them from the central store. Only this envelope links
	// them to the user; the central store never learns who sent what.
	Sent []string `json:"w,omitempty"`

	state flows.State
}

// maxSent bounds the submission ids kept per user: enough for every flow several
// times over, and the envelope stays small.
const maxSent = 20

// remember records a submission id for /forget.
func (e *envelope) remember(id string) {
	e.Sent = append(e.Sent, id)
	if len(e.Sent) > maxSent {
		e.Sent = e.Sent[len(e.Sent)-maxSent:]
	}
}

var errBadEnvelope = errors.New("bot: not a dialogue envelope")

func encodeEnvelope(e envelope) ([]byte, error) {
	head, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("bot: encode envelope: %w", err)
	}
	st, err := flows.EncodeState(e.state)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, 1+len(head)+1+len(st))
	out = append(out, envelopeFormat)
	out = append(out, head...)
	out = append(out, '\n')
	return append(out, st...), nil
}

// decodeEnvelope reads what encodeEnvelope wrote; no data is a new user.
func decodeEnvelope(b []byte) (envelope, error) {
	var e envelope
	if len(b) == 0 {
		return e, nil
	}
	if b[0] != envelopeFormat || len(b) > maxEnvelopeBytes {
		return envelope{}, errBadEnvelope
	}
	head, st, ok := bytes.Cut(b[1:], []byte{'\n'})
	if !ok {
		return envelope{}, errBadEnvelope
	}
	if err := json.Unmarshal(head, &e); err != nil {
		return envelope{}, fmt.Errorf("%w: %v", errBadEnvelope, err)
	}
	s, err := flows.DecodeState(st)
	if err != nil {
		return envelope{}, fmt.Errorf("%w: %w", errBadEnvelope, err)
	}
	e.state = s
	return e, nil
}

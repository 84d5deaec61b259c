package flows

import (
	"encoding/json"
	"errors"
	"fmt"
)

// stateFormat prefixes encoded states so a later, more compact encoding can be told
// apart from this one without guessing.
const stateFormat = 'j'

// Limits on a decoded state: a state comes back from Redis, and a corrupted or forged
// value must not make the engine allocate without bound.
const (
	maxStateBytes   = 64 << 10
	maxStateAnswers = 2000
)

// EncodeState serialises a state compactly.
func EncodeState(s State) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return append([]byte{stateFormat}, b...), nil
}

// ErrBadState is returned for bytes that are not a state.
var ErrBadState = errors.New("not a dialogue state")

// DecodeState reads what EncodeState wrote.
func DecodeState(b []byte) (State, error) {
	var s State
	if len(b) == 0 {
		return s, nil
	}
	if b[0] != stateFormat || len(b) > maxStateBytes {
		return s, ErrBadState
	}
	if err := json.Unmarshal(b[1:], &s); err != nil {
		return State{}, fmt.Errorf("%w: %v", ErrBadState, err)
	}
	if len(s.Answers) > maxStateAnswers || len(s.Picks) > maxStateAnswers || s.Token < 0 {
		return State{}, ErrBadState
	}
	return s, nil
}

package flows

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// State encodings, told apart by their first byte. The binary one is what Redis holds:
// a dialogue must stay well under 1 KB even near the end of a long questionnaire, and
// JSON repeats keys such as "training_needs/t17" in full. JSON is still read, so
// states written by an older binary survive an upgrade.
const (
	formatJSON   = 'j'
	formatBinary = 'b'
)

// Limits on a decoded state: a state comes back from Redis, and a corrupted or forged
// value must not make the engine allocate without bound.
const (
	maxStateBytes   = 64 << 10
	maxStateAnswers = 2000
	maxStateString  = 16 << 10
)

// ErrBadState is returned for bytes that are not a state.
var ErrBadState = errors.New("not a dialogue state")

// EncodeState serialises a state compactly: fixed fields, then answers sorted by key
// with each key stored as the length it shares with the previous key plus the rest
// (front coding), since answer keys share long prefixes.
func EncodeState(s State) ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, formatBinary)
	for _, f := range []string{s.Flow, s.Hash, s.Lang, s.Cur} {
		b = appendString(b, f)
	}
	b = binary.AppendUvarint(b, uint64(s.Version))
	if s.Token < 0 {
		return nil, fmt.Errorf("encode state: negative token %d", s.Token)
	}
	b = binary.AppendUvarint(b, uint64(s.Token))
	b = binary.AppendUvarint(b, uint64(len(s.Picks)))
	for _, p := range s.Picks {
		b = appendString(b, p)
	}
	keys := make([]string, 0, len(s.Answers))
	for k := range s.Answers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	prev := ""
	for _, k := range keys {
		n := commonPrefix(prev, k)
		b = binary.AppendUvarint(b, uint64(n))
		b = appendString(b, k[n:])
		b = appendString(b, s.Answers[k])
		prev = k
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// DecodeState reads what EncodeState wrote, in either format.
func DecodeState(b []byte) (State, error) {
	if len(b) == 0 {
		return State{}, nil
	}
	if len(b) > maxStateBytes {
		return State{}, ErrBadState
	}
	switch b[0] {
	case formatBinary:
		return decodeBinary(b[1:])
	case formatJSON:
		var s State
		if err := json.Unmarshal(b[1:], &s); err != nil {
			return State{}, fmt.Errorf("%w: %v", ErrBadState, err)
		}
		if len(s.Answers) > maxStateAnswers || len(s.Picks) > maxStateAnswers || s.Token < 0 {
			return State{}, ErrBadState
		}
		return s, nil
	}
	return State{}, ErrBadState
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = ErrBadState
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) count(limit int) int {
	v := r.uint()
	if v > uint64(limit) {
		r.err = ErrBadState
		return 0
	}
	return int(v)
}

func (r *reader) str() string {
	n := r.count(maxStateString)
	if r.err != nil || n > len(r.b) {
		r.err = ErrBadState
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func decodeBinary(b []byte) (State, error) {
	r := &reader{b: b}
	var s State
	s.Flow, s.Hash, s.Lang, s.Cur = r.str(), r.str(), r.str(), r.str()
	s.Version = r.count(1 << 30)
	s.Token = r.count(1 << 62)
	if n := r.count(maxStateAnswers); n > 0 {
		s.Picks = make([]string, n)
		for i := range s.Picks {
			s.Picks[i] = r.str()
		}
	}
	if n := r.count(maxStateAnswers); n > 0 {
		s.Answers = make(map[string]string, n)
		var key strings.Builder
		prev := ""
		for range n {
			shared := r.count(len(prev))
			key.Reset()
			key.WriteString(prev[:shared])
			key.WriteString(r.str())
			k := key.String()
			s.Answers[k] = r.str()
			prev = k
		}
	}
	if r.err != nil {
		return State{}, r.err
	}
	if len(r.b) != 0 {
		return State{}, fmt.Errorf("%w: %d trailing bytes", ErrBadState, len(r.b))
	}
	return s, nil
}

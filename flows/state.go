package flows

import (
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// State encodings, told apart by their first byte. What Redis holds must stay well
// under 1 KB even near the end of a long questionnaire. JSON repeats keys such as
// "training_needs/t17" in full; the front-coded binary format still spells out every
// key suffix and choice name; the words format stores each of those as its number in
// statewords.txt, which leaves little but the free-text answers. The older formats
// are still read, so states written by an older binary survive an upgrade.
const (
	formatJSON   = 'j'
	formatBinary = 'b'
	formatWords  = 'w'
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

// EncodeState serialises a state compactly: fixed fields, then the answers sorted by
// key. Every string is a token: a word of statewords.txt by its number, or the bytes
// themselves. An answer is split at spaces first, since a select_multiple answer is
// choice names joined by spaces; a free-text answer costs what it did, a length byte
// per word instead of its space.
func EncodeState(s State) ([]byte, error) {
	if s.Token < 0 {
		return nil, fmt.Errorf("encode state: negative token %d", s.Token)
	}
	if s.Version < 0 {
		return nil, fmt.Errorf("encode state: negative version %d", s.Version)
	}
	b := make([]byte, 0, 256)
	b = append(b, formatWords)
	for _, f := range []string{s.Flow, s.Hash, s.Lang, s.Cur} {
		b = appendToken(b, f)
	}
	b = binary.AppendUvarint(b, uint64(s.Version))
	b = binary.AppendUvarint(b, uint64(s.Token))
	b = binary.AppendUvarint(b, uint64(len(s.Picks)))
	for _, p := range s.Picks {
		b = appendToken(b, p)
	}
	keys := make([]string, 0, len(s.Answers))
	for k := range s.Answers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		b = appendToken(b, k)
		b = appendValue(b, s.Answers[k])
	}
	return b, nil
}

// A token is a uvarint tag: word number n as n<<1|1, or a literal of length n as
// n<<1 followed by its bytes.
func appendToken(b []byte, s string) []byte {
	if n, ok := wordIndex[s]; ok {
		return binary.AppendUvarint(b, uint64(n)<<1|1)
	}
	b = binary.AppendUvarint(b, uint64(len(s))<<1)
	return append(b, s...)
}

// A value is its space-separated parts, each a token whose tag has one more bit
// telling whether another part follows: n<<2 | more<<1 | word. A one-word answer
// such as "yes" is then a single byte.
func appendValue(b []byte, v string) []byte {
	for {
		part, rest, more := strings.Cut(v, " ")
		var tag uint64
		if more {
			tag = 2
		}
		if n, ok := wordIndex[part]; ok {
			b = binary.AppendUvarint(b, uint64(n)<<2|tag|1)
		} else {
			b = binary.AppendUvarint(b, uint64(len(part))<<2|tag)
			b = append(b, part...)
		}
		if !more {
			return b
		}
		v = rest
	}
}

// encodeBinary writes the previous format, kept so that tests can produce it: fixed
// fields, then answers sorted by key with each key stored as the length it shares
// with the previous key plus the rest (front coding).
func encodeBinary(s State) ([]byte, error) {
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
	case formatWords:
		return decodeWords(b[1:])
	case formatBinary:
		return decodeBinary(b[1:])
	case formatJSON:
		var s State
		if err := json.Unmarshal(b[1:], &s); err != nil {
			return State{}, fmt.Errorf("%w: %v", ErrBadState, err)
		}
		if len(s.Answers) > maxStateAnswers || len(s.Picks) > maxStateAnswers || s.Token < 0 || s.Version < 0 {
			return State{}, ErrBadState
		}
		// What is read must encode to something that reads back.
		long := func(x string) bool { return len(x) > maxStateString }
		if long(s.Flow) || long(s.Hash) || long(s.Lang) || long(s.Cur) || slices.ContainsFunc(s.Picks, long) {
			return State{}, ErrBadState
		}
		for k, v := range s.Answers {
			if long(k) || long(v) {
				return State{}, ErrBadState
			}
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

// bytes returns the next n bytes.
func (r *reader) bytes(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.err = ErrBadState
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) token() string {
	tag := r.uint()
	if tag&1 == 1 {
		return r.word(tag >> 1)
	}
	if tag>>1 > maxStateString {
		r.err = ErrBadState
		return ""
	}
	return string(r.bytes(int(tag >> 1)))
}

func (r *reader) word(n uint64) string {
	if n >= uint64(len(words)) {
		r.err = ErrBadState
		return ""
	}
	return words[n]
}

func (r *reader) value(sb *strings.Builder) string {
	sb.Reset()
	for r.err == nil {
		tag := r.uint()
		if tag&1 == 1 {
			sb.WriteString(r.word(tag >> 2))
		} else if tag>>2 > maxStateString {
			r.err = ErrBadState
		} else {
			sb.Write(r.bytes(int(tag >> 2)))
		}
		if sb.Len() > maxStateString {
			r.err = ErrBadState
		}
		if tag&2 == 0 {
			break
		}
		sb.WriteByte(' ')
	}
	if r.err != nil {
		return ""
	}
	return sb.String()
}

func decodeWords(b []byte) (State, error) {
	r := &reader{b: b}
	var s State
	s.Flow, s.Hash, s.Lang, s.Cur = r.token(), r.token(), r.token(), r.token()
	s.Version = r.count(1 << 30)
	s.Token = r.count(1 << 62)
	if n := r.count(maxStateAnswers); n > 0 {
		s.Picks = make([]string, n)
		for i := range s.Picks {
			s.Picks[i] = r.token()
		}
	}
	if n := r.count(maxStateAnswers); n > 0 {
		s.Answers = make(map[string]string, n)
		var sb strings.Builder
		for range n {
			k := r.token()
			s.Answers[k] = r.value(&sb)
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
			if len(k) > maxStateString {
				r.err = ErrBadState
			}
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

// wordList is statewords.txt: one word a line; lines starting with # are comments.
//
//go:embed statewords.txt
var wordList string

var (
	words     []string
	wordIndex map[string]int
)

func init() {
	wordIndex = map[string]int{}
	for line := range strings.Lines(wordList) {
		w := strings.TrimRight(line, "\n")
		if strings.HasPrefix(w, "#") {
			continue
		}
		// A word a value part could never equal, or one that appears twice, would
		// make encoding ambiguous: refuse to start rather than store such states.
		if _, dup := wordIndex[w]; dup || w == "" || strings.ContainsAny(w, " \t\r") {
			panic(fmt.Sprintf("flows: statewords.txt: bad or repeated word %q", w))
		}
		wordIndex[w] = len(words)
		words = append(words, w)
	}
}

package bot

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dialoq/dialoq/flows"
)

// Envelope formats, told apart by the first byte. The binary one is what is written:
// with Redis's default settings a dialogue must fit in 1 KB, and JSON spells out keys
// and each submission id as 38 characters. JSON is still read, so envelopes written by
// an older binary survive an upgrade.
const (
	envelopeJSON   = 'e'
	envelopeBinary = 'B'
)

// maxEnvelopeBytes bounds what is decoded: a corrupted or forged value must not make
// the bot allocate without bound (flows.DecodeState bounds the state part itself).
const maxEnvelopeBytes = 80 << 10

// envelope is what the bot stores per dialogue: the engine's state, opaque, plus what
// only the channel knows. The binary layout is envelopeBinary, a flags byte, the
// language and code as length and bytes, the start time as a varint, the submission
// ids, then the bytes of flows.EncodeState to the end. The JSON layout was compact
// JSON (the tags below), a newline, then the state.
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

const (
	flagInactive = 1 << iota
	flagClosed
	flagOptOut
	flagsKnown = flagInactive | flagClosed | flagOptOut
)

func encodeEnvelope(e envelope) ([]byte, error) {
	st, err := flows.EncodeState(e.state)
	if err != nil {
		return nil, err
	}
	var flags byte
	if e.Inactive {
		flags |= flagInactive
	}
	if e.Closed {
		flags |= flagClosed
	}
	if e.OptOut {
		flags |= flagOptOut
	}
	out := make([]byte, 0, 16+len(e.Lang)+len(e.Code)+17*len(e.Sent)+len(st))
	out = append(out, envelopeBinary, flags)
	out = appendString(out, e.Lang)
	out = appendString(out, e.Code)
	out = binary.AppendVarint(out, e.Started)
	out = binary.AppendUvarint(out, uint64(len(e.Sent)))
	for _, id := range e.Sent {
		out = appendID(out, id)
	}
	return append(out, st...), nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendID stores a submission id, a UUID in its canonical lowercase form, as its 16
// bytes after a 0; anything else as its length plus one, then its bytes.
func appendID(b []byte, id string) []byte {
	if u, ok := parseUUID(id); ok {
		b = append(b, 0)
		return append(b, u[:]...)
	}
	b = binary.AppendUvarint(b, uint64(len(id))+1)
	return append(b, id...)
}

// parseUUID accepts only the form formatUUID writes, so that every id reads back as
// the very string that was stored.
func parseUUID(s string) (u [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	h := s[:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(u[:], []byte(h)); err != nil || hex.EncodeToString(u[:]) != h {
		return u, false
	}
	return u, true
}

func formatUUID(u []byte) string {
	h := hex.EncodeToString(u)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// decodeEnvelope reads what encodeEnvelope writes, and the JSON envelopes of older
// binaries; no data is a new user.
func decodeEnvelope(b []byte) (envelope, error) {
	if len(b) == 0 {
		return envelope{}, nil
	}
	if len(b) > maxEnvelopeBytes {
		return envelope{}, errBadEnvelope
	}
	var (
		e   envelope
		st  []byte
		err error
	)
	switch b[0] {
	case envelopeBinary:
		e, st, err = decodeBinaryHead(b[1:])
	case envelopeJSON:
		e, st, err = decodeJSONHead(b[1:])
	default:
		err = errBadEnvelope
	}
	if err != nil {
		return envelope{}, err
	}
	s, err := flows.DecodeState(st)
	if err != nil {
		return envelope{}, fmt.Errorf("%w: %w", errBadEnvelope, err)
	}
	e.state = s
	return e, nil
}

// decodeBinaryHead returns the envelope without its state, and the state's bytes.
func decodeBinaryHead(b []byte) (envelope, []byte, error) {
	var e envelope
	if len(b) == 0 || b[0]&^flagsKnown != 0 {
		return e, nil, errBadEnvelope
	}
	e.Inactive, e.Closed, e.OptOut = b[0]&flagInactive != 0, b[0]&flagClosed != 0, b[0]&flagOptOut != 0
	b = b[1:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	var ok bool
	if e.Lang, ok = str(); !ok {
		return e, nil, errBadEnvelope
	}
	if e.Code, ok = str(); !ok {
		return e, nil, errBadEnvelope
	}
	started, k := binary.Varint(b)
	if k <= 0 {
		return e, nil, errBadEnvelope
	}
	e.Started, b = started, b[k:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) { // every id takes at least a byte
		return e, nil, errBadEnvelope
	}
	b = b[k:]
	for range n {
		tag, k := binary.Uvarint(b)
		if k <= 0 {
			return e, nil, errBadEnvelope
		}
		b = b[k:]
		size := 16
		if tag > 0 {
			size = int(min(tag-1, uint64(len(b))+1))
		}
		if size > len(b) {
			return e, nil, errBadEnvelope
		}
		id := string(b[:size])
		if tag == 0 {
			id = formatUUID(b[:size])
		}
		e.Sent = append(e.Sent, id)
		b = b[size:]
	}
	return e, b, nil
}

// decodeJSONHead reads the header of the JSON layout, which ends at the first
// newline: JSON never holds a raw one.
func decodeJSONHead(b []byte) (envelope, []byte, error) {
	var e envelope
	head, st, ok := bytes.Cut(b, []byte{'\n'})
	if !ok {
		return e, nil, errBadEnvelope
	}
	if err := json.Unmarshal(head, &e); err != nil {
		return e, nil, fmt.Errorf("%w: %v", errBadEnvelope, err)
	}
	return e, st, nil
}

package bot

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Telegram writes update_id first; the fast path must never misread anything else.
func TestUpdateIDFastPath(t *testing.T) {
	for _, tc := range []struct {
		raw string
		id  int
		ok  bool
	}{
		{`{"update_id":42,"message":{}}`, 42, true},
		{`{"update_id":42}`, 42, true},
		{`{"message":{"text":"x"},"update_id":7}`, 7, true},
		{`{"update_id":4x2}`, 0, false},
		{`{"update_id":"42"}`, 0, false},
		{`{"message":{}}`, 0, false},
		{`not json`, 0, false},
	} {
		id, ok := updateID([]byte(tc.raw))
		if id != tc.id || ok != tc.ok {
			t.Errorf("UpdateID(%s) = %d, %v; want %d, %v", tc.raw, id, ok, tc.id, tc.ok)
		}
	}
}

// The fast read of a Bot API answer must agree with the decoder or step aside.
func TestQuickSuccess(t *testing.T) {
	for _, tc := range []struct {
		data  string
		sent  bool // decode into a sentMessage
		ok    bool
		msgID int
	}{
		{`{"ok":true,"result":true}`, false, true, 0},
		{`{"ok":true}`, false, true, 0},
		{`{"ok":false,"error_code":429}`, false, false, 0},
		{`{"result":true,"ok":true}`, false, false, 0},
		{`{"ok":true,"result":{"message_id":981,"date":1}}`, true, true, 981},
		{`{"ok":true,"result":{"date":1,"message_id":981}}`, true, false, 0},
		{`{"ok":true,"result":{"message_id":-1}}`, true, false, 0},
		{`{"ok":true,"result":{"message_id":12`, true, false, 0},
	} {
		var result any
		var sent sentMessage
		if tc.sent {
			result = &sent
		}
		if ok := quickSuccess([]byte(tc.data), result); ok != tc.ok || sent.MessageID != tc.msgID {
			t.Errorf("quickSuccess(%s) = %v, message %d; want %v, %d", tc.data, ok, sent.MessageID, tc.ok, tc.msgID)
		}
	}
}

// splitResult must cut a getUpdates answer exactly as encoding/json does, or step
// aside; it never has to reject what the decoder would also reject.
func FuzzSplitResult(f *testing.F) {
	for _, s := range []string{
		`{"ok":true,"result":[]}`,
		`{"ok":true,"result":[{"update_id":1,"message":{"text":"a \"}\" b","chat":{"id":2}}}]}`,
		`{"ok":true,"result":[{"update_id":1},{"update_id":2,"callback_query":{"data":"c:1:2","message":{"reply_markup":{"inline_keyboard":[[{"text":"{[","callback_data":"x"}]]}}}}]}` + "\n",
		`{"ok":true,"result":[{"update_id":1} , {"update_id":2}]}`,
		`{"ok":true,"result":[{"a":"\\"},{"b":1}]}`,
		`{"ok":true,"result":[{"a":[}]}`,
		`{"ok":true,"result":[{"update_id":1}]`,
		`{"ok":false,"error_code":409}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := splitResult(data)
		var want struct {
			OK     bool              `json:"ok"`
			Result []json.RawMessage `json:"result"`
		}
		if !ok || json.Unmarshal(data, &want) != nil {
			return
		}
		if len(got) != len(want.Result) {
			t.Fatalf("%d elements, the decoder found %d", len(got), len(want.Result))
		}
		for i := range got {
			if !bytes.Equal(got[i], want.Result[i]) {
				t.Fatalf("element %d: %s, the decoder: %s", i, got[i], want.Result[i])
			}
		}
	})
}

func TestSplitResultShapes(t *testing.T) {
	for _, tc := range []struct {
		data string
		n    int
		ok   bool
	}{
		{`{"ok":true,"result":[]}`, 0, true},
		{`{"ok":true,"result":[ ] } ` + "\n", 0, true},
		{`{"ok":true,"result":[{"update_id":1,"message":{"text":"}]"}},{"update_id":2}]}`, 2, true},
		{`{"ok":true,"result":[{"update_id":1}`, 0, false},
		{`{"ok":true,"result":[{"update_id":1}]}x`, 0, false},
		{`{"ok":true,"result":[1,2]}`, 0, false},
		{`{"result":[],"ok":true}`, 0, false},
	} {
		got, ok := splitResult([]byte(tc.data))
		if ok != tc.ok || ok && len(got) != tc.n {
			t.Errorf("splitResult(%s) = %d elements, %v; want %d, %v", tc.data, len(got), ok, tc.n, tc.ok)
		}
	}
}

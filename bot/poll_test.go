package bot

import "testing"

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

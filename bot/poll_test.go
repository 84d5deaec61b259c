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

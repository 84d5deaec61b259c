package bot

import (
	"bytes"
	"errors"
	"flag"
	"maps"
	"os"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/dialoq/dialoq/flows"
)

// roundTrip encodes and decodes an envelope.
func roundTrip(t *testing.T, in envelope) envelope {
	t.Helper()
	b, err := encodeEnvelope(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestEnvelopeRoundTrip(t *testing.T) {
	in := envelope{Lang: "ru", Code: "az", Started: 1760000000, Inactive: true, Closed: true,
		state: flows.State{Flow: "cso", Version: 1, Hash: "abc", Lang: "ru", Cur: "staff", Token: 7,
			Answers: map[string]string{"consent": "yes", "comments": "a\nb \"c\""}, Picks: []string{"x"}}}
	out := roundTrip(t, in)
	if out.Lang != in.Lang || out.Code != in.Code || out.Started != in.Started || !out.Inactive || !out.Closed ||
		out.state.Cur != "staff" || out.state.Token != 7 || out.state.Answers["comments"] != "a\nb \"c\"" {
		t.Errorf("round trip: %+v", out)
	}
	if e, err := decodeEnvelope(nil); err != nil || e.Lang != "" {
		t.Errorf("empty: %+v %v", e, err)
	}
	// Compact: a fresh user costs a few dozen bytes.
	small, _ := encodeEnvelope(envelope{Lang: "ru", state: flows.State{Lang: "ru", Token: 3}})
	if len(small) > 40 {
		t.Errorf("fresh envelope is %d bytes: %s", len(small), small)
	}
}

func TestEnvelopeCorrupt(t *testing.T) {
	good, _ := encodeEnvelope(envelope{Lang: "ru"})
	for _, b := range [][]byte{
		[]byte("x"), []byte("e"), []byte("e{}"), []byte("e{\n"), []byte("e{}\nz"),
		append([]byte("e{}\n"), bytes.Repeat([]byte("j"), 100<<10)...), good[:len(good)-1],
	} {
		if _, err := decodeEnvelope(b); !errors.Is(err, errBadEnvelope) {
			t.Errorf("%.20q: err %v", b, err)
		}
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	good, _ := encodeEnvelope(envelope{Lang: "ru", Code: "x", state: flows.State{Flow: "cso", Token: 2}})
	f.Add(good)
	f.Add([]byte("e{}\nj{}"))
	withIDs, _ := encodeEnvelope(envelope{Lang: "ru", Inactive: true, Sent: []string{"0b6c1f3e-8f4a-4c2e-9d3b-5a7e6f1c2d3e", "x"}})
	f.Add(withIDs)
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b)
		if err != nil {
			return
		}
		again, err := encodeEnvelope(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeEnvelope(again); err != nil {
			t.Fatalf("re-encoded envelope does not decode: %v", err)
		}
	})
}

// testBot is a Bot with just enough inside for the pure parts.
func testBot(t *testing.T, defs map[string]string) *Bot {
	t.Helper()
	fs := fstest.MapFS{"defs/_choices.yaml": {Data: []byte("choices:\n  yes_no: [\"yes\", \"no\"]\n")}}
	for id, body := range defs {
		fs["defs/"+id+".yaml"] = &fstest.MapFile{Data: []byte(body)}
	}
	set, err := flows.Load(fs, "defs")
	if err != nil {
		t.Fatal(err)
	}
	return &Bot{set: set, now: time.Now}
}

func TestStartPayload(t *testing.T) {
	def := func(id string) string {
		return "id: " + id + "\nversion: 1\nkind: questionnaire\nstakeholder: cso\nquestions:\n  - id: q\n    type: select_one\n    choices: yes_no\n"
	}
	b := testBot(t, map[string]string{"cso": def("cso"), "media_x": def("media_x"), "a-b": def("a-b"), "a": def("a")})
	for in, want := range map[string][2]string{
		"cso":           {"cso", ""},
		"cso-az":        {"cso", "az"},
		"cso-AZ_ngo-42": {"cso", "AZ_ngo-42"},
		"media_x":       {"media_x", ""},
		"media_x-kz":    {"media_x", "kz"},
		"a-b":           {"a-b", ""},
		"a-b-c":         {"a-b", "c"}, // the longest flow id wins
		"a-c":           {"a", "c"},
	} {
		flow, code, ok := b.parseStartPayload(in)
		if !ok || flow != want[0] || code != want[1] {
			t.Errorf("%q → %q %q %v, want %q %q", in, flow, code, ok, want[0], want[1])
		}
	}
	for _, in := range []string{"", "nope", "cso-", "cso-a b", "cso-ä", "media-x", "cso-" + string(make([]byte, 70))} {
		if flow, code, ok := b.parseStartPayload(in); ok {
			t.Errorf("%q → %q %q", in, flow, code)
		}
	}
}

func TestParseCommand(t *testing.T) {
	b := &Bot{username: "dialoq_bot"}
	for in, want := range map[string][3]string{
		"/start":                       {"start", "", "1"},
		"/start cso-az":                {"start", "cso-az", "1"},
		"/Start@dialoq_bot  x ":        {"start", "x", "1"},
		"/start@other_bot":             {"", "", ""},
		"/ 5":                          {"", "", ""},
		"1/2":                          {"", "", ""},
		"/ответ":                       {"", "", ""},
		"/language\nru":                {"language", "ru", "1"},
		"  /help  ":                    {"help", "", "1"},
		"/" + string(make([]byte, 40)): {"", "", ""},
	} {
		cmd, arg, ok := b.parseCommand(in)
		if cmd != want[0] || arg != want[1] || ok != (want[2] == "1") {
			t.Errorf("%q → %q %q %v", in, cmd, arg, ok)
		}
	}
}

func TestTrackerOffset(t *testing.T) {
	tr := newTracker()
	for _, id := range []int{10, 11, 12} {
		if !tr.start(id) {
			t.Fatal("start refused")
		}
	}
	if tr.start(11) {
		t.Error("an update in flight was started twice")
	}
	tr.finish(11)
	tr.finish(12)
	if got := tr.offset(); got != 10 {
		t.Errorf("offset %d with 10 unfinished, want 10", got)
	}
	if tr.start(12) {
		t.Error("a finished but unconfirmed update was started again")
	}
	tr.finish(10)
	if got := tr.offset(); got != 13 {
		t.Errorf("offset %d, want 13", got)
	}
	if tr.start(11) {
		t.Error("a confirmed update was started again")
	}
}

func TestEnvelopeBinary(t *testing.T) {
	in := envelope{Lang: "uz", Code: "AZ_ngo-42", Started: -5, OptOut: true,
		Sent:  []string{"0b6c1f3e-8f4a-4c2e-9d3b-5a7e6f1c2d3e", "0B6C1F3E-8F4A-4C2E-9D3B-5A7E6F1C2D3E", "legacy-id", ""},
		state: flows.State{Flow: "cso", Lang: "uz", Token: 2}}
	out := roundTrip(t, in)
	if out.Lang != in.Lang || out.Code != in.Code || out.Started != in.Started || out.Inactive || out.Closed || !out.OptOut ||
		!slices.Equal(out.Sent, in.Sent) || out.state.Flow != "cso" || out.state.Token != 2 {
		t.Errorf("round trip: %+v", out)
	}
	// A canonical UUID costs its 16 bytes and a tag, not 36 characters in quotes.
	one, _ := encodeEnvelope(envelope{Sent: in.Sent[:1]})
	none, _ := encodeEnvelope(envelope{})
	if n := len(one) - len(none); n != 17 {
		t.Errorf("a submission id costs %d bytes", n)
	}
}

// legacyEnvelope is the largest dialogue of a load test (the CSO questionnaire near
// its end, the 22-item training matrix answered) as the JSON layout stored it.
func legacyEnvelope(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/cso-near-end.json-envelope")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEnvelopeJSONLayoutStillReads(t *testing.T) {
	old := legacyEnvelope(t)
	e, err := decodeEnvelope(old)
	if err != nil {
		t.Fatal(err)
	}
	if e.Lang != "uz" || e.Code == "" || e.Started == 0 || e.state.Flow != "cso" || len(e.state.Answers) < 40 ||
		e.state.Answers["training_needs/t22"] == "" {
		t.Fatalf("legacy envelope: %+v", e)
	}
	again := roundTrip(t, e)
	if again.Lang != e.Lang || again.Code != e.Code || again.Started != e.Started || !maps.Equal(again.state.Answers, e.state.Answers) {
		t.Errorf("rewritten envelope differs: %+v", again)
	}
	b, _ := encodeEnvelope(e)
	t.Logf("largest load-test dialogue: %d bytes as JSON layout, %d now", len(old), len(b))
}

var update = flag.Bool("update", false, "rewrite the stored-envelope fixture of storage/redisstate")

// The memory figure of storage/redisstate is measured on what the bot stores for the
// largest load-test dialogue; it must be the current layout.
func TestStoredEnvelopeFixture(t *testing.T) {
	const path = "../storage/redisstate/testdata/cso-near-end.envelope"
	e, err := decodeEnvelope(legacyEnvelope(t))
	if err != nil {
		t.Fatal(err)
	}
	want, err := encodeEnvelope(e)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what the bot stores now: go test ./bot -run StoredEnvelopeFixture -update", path)
	}
}

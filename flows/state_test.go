package flows

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

func sameState(a, b State) bool {
	return a.Flow == b.Flow && a.Version == b.Version && a.Hash == b.Hash && a.Lang == b.Lang &&
		a.Cur == b.Cur && a.Token == b.Token && maps.Equal(a.Answers, b.Answers) && slices.Equal(a.Picks, b.Picks)
}

var stateSamples = []State{
	{},
	{Lang: "ru", Token: 3},
	{Flow: "cso", Version: 1, Hash: "125b059cd6c7", Lang: "uz", Cur: "training_needs/t07", Token: 41,
		Picks: []string{"legal_aid", "not a word", ""},
		Answers: map[string]string{
			"consent": "yes", "coop_forms": "psychosocial legal_aid humanitarian_aid",
			"training_needs/t01": "3", "training_needs/t02": "na", "staff": "1562",
			"comments":            "Мы работаем с мигрантами  уже 10 лет, other  yes 🙂 ",
			"new_key":             "",
			"spaces":              " ",
			"target_groups_other": "x\ny\tz",
		}},
}

func TestStateFormatsRoundTrip(t *testing.T) {
	for _, in := range stateSamples {
		w, err := EncodeState(in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := encodeBinary(in)
		if err != nil {
			t.Fatal(err)
		}
		j, _ := json.Marshal(in)
		for _, enc := range [][]byte{w, b, append([]byte{formatJSON}, j...)} {
			out, err := DecodeState(enc)
			if err != nil {
				t.Fatalf("%c: %v", enc[0], err)
			}
			if !sameState(in, out) {
				t.Errorf("%c: round trip\n got %+v\nwant %+v", enc[0], out, in)
			}
		}
		if len(in.Answers) > 0 && len(w) >= len(b) {
			t.Errorf("words format %d bytes, front-coded %d", len(w), len(b))
		}
	}
}

// States in Redis refer to words by position: an edit other than appending would
// silently change stored answers.
func TestStateWordsAppendOnly(t *testing.T) {
	const frozen, sum = 325, "e913a9f72362ce1ac7befb5078ebe53a15493726b831c34a0505b84fabb7eb80"
	if len(words) < frozen {
		t.Fatalf("statewords.txt has %d words, had %d: it is append only", len(words), frozen)
	}
	h := sha256.Sum256([]byte(strings.Join(words[:frozen], "\n")))
	if got := hex.EncodeToString(h[:]); got != sum {
		t.Fatalf("the first %d words of statewords.txt changed (sha256 %s): it is append only, add new words at the end", frozen, got)
	}
}

// Every word the built-in flows store should be in statewords.txt, or their states
// grow by the whole word each time.
func TestStateWordsCoverBuiltin(t *testing.T) {
	set, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	need := func(w string) {
		if _, ok := wordIndex[w]; !ok && !slices.Contains(missing, w) {
			missing = append(missing, w)
		}
	}
	var walk func([]*Question)
	walk = func(qs []*Question) {
		for _, q := range qs {
			need(q.ID)
			for _, c := range []*ChoiceList{q.Choices, q.Items} {
				if c != nil {
					for _, n := range c.Names {
						need(n)
					}
				}
			}
			walk(q.Questions)
		}
	}
	for _, d := range set.All() {
		need(d.ID)
		for _, k := range d.Keys() {
			need(k)
		}
		walk(d.Questions)
	}
	if len(missing) > 0 {
		t.Errorf("append to flows/statewords.txt (at the end, one a line):\n%s", strings.Join(missing, "\n"))
	}
}

func TestDecodeStateCorrupt(t *testing.T) {
	good, _ := EncodeState(stateSamples[2])
	for _, b := range [][]byte{
		{formatWords},
		good[:len(good)-1],
		append(good, 0),
		{formatWords, 0xff, 0xff, 0xff, 0xff, 0x7f}, // a word past the end of the list
		{formatWords, 0xfe, 0xff, 0xff, 0xff, 0x7f}, // a literal past the end
	} {
		if _, err := DecodeState(b); err == nil {
			t.Errorf("%q decoded", b)
		}
	}
}

// FuzzStateFormats is FuzzDecodeState seeded with every format, the older ones
// included, and comparing whole states.
func FuzzStateFormats(f *testing.F) {
	for _, s := range stateSamples {
		w, _ := EncodeState(s)
		b, _ := encodeBinary(s)
		j, _ := json.Marshal(s)
		f.Add(w)
		f.Add(b)
		f.Add(append([]byte{formatJSON}, j...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeState(b)
		if err != nil {
			return
		}
		enc, err := EncodeState(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeState(enc)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		if !sameState(s, again) {
			t.Fatalf("re-encoded state differs:\n%+v\n%+v", s, again)
		}
	})
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dialoq/dialoq/storage/central"
)

// line is one line typed into the chat and the answer it must leave in the store.
type line struct{ text, key, want string }

// csoScript answers the whole CSO questionnaire in Russian, typing choices by number,
// label and name, with thousands separators and a decimal-free integer, and one
// mistake that must be refused without losing anything.
func csoScript(country string) []line {
	ls := []line{
		{"", "", ""}, // the purpose and consent card
		{"1", "consent", "yes"},
		{country, "country", "AZ"}, // a name, or a label in any case
		{"1", "org_type", "ngo"},
		{"1 2 12", "work_areas", "legal_aid psychosocial other"},
		{"Помощь детям-мигрантам", "work_areas_other", "Помощь детям-мигрантам"},
		{"1, 4", "target_groups", "labour_migrants trafficking_victims"},
		{"yes", "nrm_referral", "yes"}, // a choice name
		{"двенадцать", "", ""},         // refused: not a number
		{"12", "staff", "12"},
		{"1 000", "volunteers", "1000"},
		{"2005", "year_founded", "2005"},
		{"1", "gov_coop", "yes"},
		{"2 4", "coop_forms", "legal_aid policy_consultation"},
		{"3", "coop_rating", "3"}, // on a scale, 3 is the value, not the third button
		{"2 3", "funding_sources", "intl_org eu_projects"},
		{"2", "migrants_consulted", "sometimes"},
		{"1", "diaspora_engaged", "yes"},
		{"/skip", "", ""}, // covid_effects is optional
		{"1", "training_received", "yes"},
		{"2", "training_providers", "intl_org"},
		{"2", "training_delivered", "no"},
		{"1", "training_plan", "yes"},
		{"2", "tot_trainers", "no"},
	}
	scale := []string{"4", "3", "2", "1", "na"}
	for i := 1; i <= 22; i++ {
		v := scale[i%len(scale)]
		ls = append(ls, line{v, fmt.Sprintf("training_needs/t%02d", i), v})
	}
	return append(ls,
		line{"1 2", "training_formats", "in_person online"},
		line{"2 3", "training_languages", "az ru"},
		line{"2", "expert_roster", "no"},
		line{"Спасибо, «хорошо» & <ok>", "comments", "Спасибо, «хорошо» & <ok>"},
		line{"", "", ""}, // the closing card
	)
}

func buildDialoq(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "dialoq")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// TestChatThroughPipe runs the real binary with the whole questionnaire piped in, as
// a script would, and checks that the embedded store holds exactly one submission
// with every answer.
func TestChatThroughPipe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildDialoq(t)
	data := t.TempDir()
	script := csoScript("азербайджан")
	var stdin strings.Builder
	want := map[string]string{}
	for _, l := range script {
		stdin.WriteString(l.text + "\n")
		if l.key != "" {
			want[l.key] = l.want
		}
	}
	cmd := exec.Command(bin, "chat", "--flow", "cso", "--lang", "ru", "--code", "AZ-ngo-042")
	cmd.Env = append(os.Environ(), "DIALOQ_DATA="+data, "CENTRAL_URL=")
	cmd.Stdin = strings.NewReader(stdin.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chat: %v\nstderr: %s\nstdout tail: %s", err, stderr.String(), tail(stdout.String(), 2000))
	}
	out := stdout.String()
	for _, s := range []string{"Вопрос 1 из", "Пожалуйста, отправьте целое число"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q", s)
		}
	}

	ctx := context.Background()
	store, err := central.Open(ctx, filepath.Join(data, "dialoq.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if n, err := store.Count(ctx); err != nil || n != 1 {
		t.Fatalf("store holds %d submissions (err %v), want 1", n, err)
	}
	id := regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`).FindString(out)
	sub, err := store.Get(ctx, id)
	if err != nil {
		t.Fatalf("get %q: %v\n%s", id, err, tail(out, 500))
	}
	if !maps.Equal(sub.Answers, want) {
		for k, v := range want {
			if sub.Answers[k] != v {
				t.Errorf("answer %s = %q, want %q", k, sub.Answers[k], v)
			}
		}
		for k, v := range sub.Answers {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected answer %s = %q", k, v)
			}
		}
	}
	if sub.Country != "AZ" || sub.Stakeholder != "cso" || sub.Code != "AZ-ngo-042" || sub.Lang != "ru" || !sub.Complete {
		t.Errorf("submission meta = %+v", sub)
	}
}

// TestChatEndsCleanlyOnEOF: input that stops half way saves nothing and says so.
func TestChatEndsCleanlyOnEOF(t *testing.T) {
	data := t.TempDir()
	t.Setenv("DIALOQ_DATA", data)
	t.Setenv("CENTRAL_URL", "")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"chat", "--lang", "en"}, strings.NewReader("\n1\n"), &stdout, &stderr)
	if code != 3 {
		t.Fatalf("exit %d, want 3\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "nothing was saved") {
		t.Errorf("no clear message at EOF:\n%s", tail(stdout.String(), 300))
	}
}

func TestChatBadInput(t *testing.T) {
	t.Setenv("DIALOQ_DATA", t.TempDir())
	t.Setenv("CENTRAL_URL", "")
	huge := strings.Repeat("x", maxLine+10)
	input := strings.Join([]string{"", "/frobnicate", huge, "/lang xx", "/lang az", "/back", "/cancel"}, "\n") + "\n"
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"chat", "--lang", "en"}, strings.NewReader(input), &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, s := range []string{"Unknown command /frobnicate", "too long", "Language xx is not available", "Azərbaycanca"} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, tail(out, 1500))
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

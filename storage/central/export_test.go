package central

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

var wantExportHeaderEN = []string{
	"submission_id", "country", "stakeholder", "code", "lang", "started_at", "finished_at", "complete",
	"Organisation type (org_type)", "Staff count (staff_count)", "Target groups (target_groups)",
	"Global context of international migration (training_needs/t01)",
	"International cooperation on migration (training_needs/t02)",
	"International migration law (training_needs/t03)",
	"Comments (comments)",
}

// Complete submissions of the fixture in finished_at order.
var wantCompleteIDs = []string{"01", "02", "04", "05", "06", "07", "09", "10", "12", "13", "15", "16", "18", "20"}

func fixtureID(n string) string { return "00000000-0000-4000-8000-0000000000" + n }

func TestExportCSV(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := fixtureStore(t, b)
		var buf bytes.Buffer
		if err := s.ExportCSV(context.Background(), &buf, "cso", "en", Filter{}); err != nil {
			t.Fatal(err)
		}
		raw := buf.Bytes()
		if !bytes.HasPrefix(raw, []byte("\xEF\xBB\xBF")) {
			t.Fatal("CSV does not start with a UTF-8 BOM")
		}
		if !bytes.Contains(raw, []byte("\r\n")) {
			t.Error("CSV lines do not end in CRLF")
		}
		recs, err := csv.NewReader(bytes.NewReader(raw[3:])).ReadAll()
		if err != nil {
			t.Fatalf("read CSV back: %v", err)
		}
		if !reflect.DeepEqual(recs[0], wantExportHeaderEN) {
			t.Fatalf("header = %q", recs[0])
		}
		if len(recs)-1 != len(wantCompleteIDs) {
			t.Fatalf("%d rows, want %d", len(recs)-1, len(wantCompleteIDs))
		}
		for i, n := range wantCompleteIDs {
			if recs[i+1][0] != fixtureID(n) {
				t.Errorf("row %d id = %s, want %s", i+1, recs[i+1][0], fixtureID(n))
			}
		}
		first := []string{fixtureID("01"), "AZ", "cso", "AZ-ngo-001", "az", "2025-03-01T09:45:00Z", "2025-03-01T10:00:00Z", "true",
			"NGO", "12", "Labour migrants; Refugees", "4", "3", "Not applicable",
			`Нужны тренинги по миграционному праву; "срочно"`}
		if !reflect.DeepEqual(recs[1], first) {
			t.Errorf("first row =\n%q\nwant\n%q", recs[1], first)
		}
		// #5 was posted with a +04:00 offset: exports are in UTC.
		if recs[4][0] != fixtureID("05") || recs[4][6] != "2025-03-05T10:00:00Z" {
			t.Errorf("row of #5 = %q", recs[4])
		}
		last := recs[len(recs)-1]
		if got := last[len(last)-1]; got != `'=HYPERLINK("http://evil.example","click")` {
			t.Errorf("formula not neutralised: %q", got)
		}

		// Russian labels, partial submissions included.
		buf.Reset()
		if err := s.ExportCSV(context.Background(), &buf, "cso", "ru", Filter{IncludePartial: true}); err != nil {
			t.Fatal(err)
		}
		recs, err = csv.NewReader(bytes.NewReader(buf.Bytes()[3:])).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 21 || recs[0][8] != "Тип организации (org_type)" || recs[1][10] != "Трудовые мигранты; Беженцы" {
			t.Errorf("ru export: %d rows, header %q, row 1 %q", len(recs), recs[0][8], recs[1])
		}
	})
}

func TestExportXLSX(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := fixtureStore(t, b)
		var buf bytes.Buffer
		if err := s.ExportXLSX(context.Background(), &buf, "cso", "en", Filter{Countries: []string{"AZ"}}); err != nil {
			t.Fatal(err)
		}
		x, err := excelize.OpenReader(&buf)
		if err != nil {
			t.Fatalf("open XLSX: %v", err)
		}
		defer x.Close()
		if sheets := x.GetSheetList(); !reflect.DeepEqual(sheets, []string{"cso"}) {
			t.Fatalf("sheets = %v", sheets)
		}
		rows, err := x.GetRows("cso")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(rows[0], wantExportHeaderEN) {
			t.Fatalf("header = %q", rows[0])
		}
		// AZ complete: #1 #2 #4 #5 #6 #7 #20.
		if len(rows) != 8 {
			t.Fatalf("%d rows, want 1 + 7", len(rows))
		}
		first := []string{fixtureID("01"), "AZ", "cso", "AZ-ngo-001", "az", "2025-03-01 09:45:00", "2025-03-01 10:00:00", "TRUE",
			"NGO", "12", "Labour migrants; Refugees", "4", "3", "Not applicable",
			`Нужны тренинги по миграционному праву; "срочно"`}
		if !reflect.DeepEqual(rows[1], first) {
			t.Errorf("first row =\n%q\nwant\n%q", rows[1], first)
		}
		// #4 has no org_type: the cell is empty, the next ones still line up.
		if rows[3][0] != fixtureID("04") || rows[3][8] != "" || rows[3][9] != "30" || rows[3][14] != "Mətbuat üçün təlim lazımdır" {
			t.Errorf("row of #4 = %q", rows[3])
		}
		// XLSX cells are text, never formulas, so they are kept verbatim.
		if got := rows[7][14]; got != `=HYPERLINK("http://evil.example","click")` {
			t.Errorf("last comment = %q", got)
		}
		if f, err := x.GetCellFormula("cso", "O8"); err != nil || f != "" {
			t.Errorf("cell O8 has formula %q (%v)", f, err)
		}
	})
}

func TestExportJSONL(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := fixtureStore(t, b)
		var buf bytes.Buffer
		if err := s.ExportJSONL(context.Background(), &buf, "cso", "en", Filter{Countries: []string{"RU"}, IncludePartial: true}); err != nil {
			t.Fatal(err)
		}
		raw := buf.String()
		sc := bufio.NewScanner(strings.NewReader(raw))
		var ids []string
		for sc.Scan() {
			var line struct {
				ID          string             `json:"submission_id"`
				Country     string             `json:"country"`
				Stakeholder string             `json:"stakeholder"`
				Code        string             `json:"code"`
				Lang        string             `json:"lang"`
				Started     time.Time          `json:"started_at"`
				Finished    time.Time          `json:"finished_at"`
				Complete    bool               `json:"complete"`
				Answers     map[string]*string `json:"answers"`
			}
			dec := json.NewDecoder(strings.NewReader(sc.Text()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&line); err != nil {
				t.Fatalf("line %d: %v: %s", len(ids)+1, err, sc.Text())
			}
			ids = append(ids, line.ID)
			if len(line.Answers) != 7 {
				t.Errorf("%s: %d answer keys, want all 7 columns", line.ID, len(line.Answers))
			}
			if line.Country != "RU" || line.Started.IsZero() || line.Finished.Before(line.Started) {
				t.Errorf("%s: meta = %+v", line.ID, line)
			}
			if line.ID == fixtureID("09") {
				if line.Stakeholder != "cso" || line.Code != "RU-ngo-001" || line.Lang != "ru" {
					t.Errorf("#9 meta = %+v", line)
				}
				if v := line.Answers["org_type"]; v == nil || *v != "Migrant association" {
					t.Errorf("#9 org_type = %v", v)
				}
				if line.Answers["staff_count"] != nil {
					t.Errorf("#9 staff_count should be null")
				}
			}
			if line.ID == fixtureID("14") && line.Complete {
				t.Errorf("#14 is partial")
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		want := []string{fixtureID("09"), fixtureID("10"), fixtureID("11"), fixtureID("12"), fixtureID("13"), fixtureID("14")}
		if !reflect.DeepEqual(ids, want) {
			t.Fatalf("ids = %v, want %v", ids, want)
		}
		// Answer keys keep questionnaire order (a Go map would not).
		firstLine, _, _ := strings.Cut(raw, "\n")
		pos := -1
		for _, k := range []string{"org_type", "staff_count", "target_groups", "training_needs/t01", "training_needs/t02", "training_needs/t03", "comments"} {
			i := strings.Index(firstLine, `"`+k+`":`)
			if i <= pos {
				t.Fatalf("key %s out of order in %s", k, firstLine)
			}
			pos = i
		}
	})
}

func TestExportErrors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		plain := openStore(t, b)
		var buf bytes.Buffer
		if err := plain.ExportCSV(context.Background(), &buf, "cso", "en", Filter{}); !errors.Is(err, ErrNoSchema) {
			t.Errorf("without schema: %v", err)
		}
		s := plain.WithSchema(fakeSchema{})
		if err := s.ExportCSV(context.Background(), &buf, "nope", "en", Filter{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("unknown flow: %v", err)
		}
		if err := s.ExportJSONL(context.Background(), &buf, "cso", "EN", Filter{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad lang: %v", err)
		}
		if buf.Len() != 0 {
			t.Errorf("failed exports wrote %d bytes", buf.Len())
		}
	})
}

func TestCSVSafe(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"=1+1":       "'=1+1",
		"+7 999":     "'+7 999",
		"-5":         "'-5",
		"@SUM(A1)":   "'@SUM(A1)",
		"\tx":        "'\tx",
		"plain":      "plain",
		"":           "",
		"a=b":        "a=b",
		"Беженцы":    "Беженцы",
		"'=already'": "'=already'",
	} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}

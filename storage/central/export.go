package central

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"
)

// ErrNoSchema is returned by exports on a Store without a schema; use
// WithSchema.
var ErrNoSchema = errors.New("central: exports need a schema (Store.WithSchema)")

// metaColumns are the fixed first columns of every export, before the
// flow's own columns. Never modified.
var metaColumns = []string{"submission_id", "country", "stakeholder", "code", "lang", "started_at", "finished_at", "complete"}

// exportRow is one submission ready for writing; Values are labels aligned
// with the flow's columns, and Answered tells an empty answer from none.
type exportRow struct {
	ID, Country, Stakeholder, Code, Lang string
	Started, Finished                    time.Time
	Complete                             bool
	Values                               []string
	Answered                             []bool
}

func (r *exportRow) metaStrings() []string {
	return []string{r.ID, r.Country, r.Stakeholder, r.Code, r.Lang,
		r.Started.Format(time.RFC3339), r.Finished.Format(time.RFC3339), strconv.FormatBool(r.Complete)}
}

// exportColumns resolves the flow's columns before anything is written, so
// that an unknown flow is an error the caller can still turn into a status.
func (s *Store) exportColumns(flow, lang string, f Filter) ([]Column, Filter, error) {
	if s.schema == nil {
		return nil, f, ErrNoSchema
	}
	if !validName(flow) {
		return nil, f, invalid("flow", "not a valid flow name")
	}
	if !langRe.MatchString(lang) {
		return nil, f, invalid("lang", "must be a lower-case BCP-47 base language tag such as \"ru\"")
	}
	f.Flow = flow
	if err := f.Validate(); err != nil {
		return nil, f, err
	}
	cols, err := s.schema.Columns(flow, lang)
	if err != nil {
		return nil, f, invalid("flow", "%v", err)
	}
	return cols, f, nil
}

// eachExportRow streams the submissions selected by f, oldest first, through
// fn. Rows come from a database cursor one at a time, so memory does not
// grow with the number of submissions.
func (s *Store) eachExportRow(ctx context.Context, flow, lang string, f Filter, cols []Column, fn func(*exportRow) error) error {
	w := &where{d: s.d}
	w.filter(f, !f.IncludePartial)
	q := `SELECT s.id, s.country, s.stakeholder, s.code, s.lang, s.started_at, s.finished_at, s.complete, s.answers_json
 FROM submissions s` + w.sql() + ` ORDER BY s.finished_at, s.id`
	rows, err := s.rdb.QueryContext(ctx, q, w.args...)
	if err != nil {
		return fmt.Errorf("central: export: %w", err)
	}
	defer rows.Close()
	r := exportRow{Values: make([]string, len(cols)), Answered: make([]bool, len(cols))}
	for rows.Next() {
		var (
			started, finished dbTime
			answersJSON       string
			answers           map[string]string
		)
		if err := rows.Scan(&r.ID, &r.Country, &r.Stakeholder, &r.Code, &r.Lang,
			&started, &finished, &r.Complete, &answersJSON); err != nil {
			return fmt.Errorf("central: export: %w", err)
		}
		if err := json.Unmarshal([]byte(answersJSON), &answers); err != nil {
			return fmt.Errorf("central: export: decode answers of %s: %w", r.ID, err)
		}
		r.Started, r.Finished = started.t, finished.t
		for i, c := range cols {
			v, ok := answers[c.Key]
			r.Answered[i] = ok
			r.Values[i] = ""
			if ok {
				r.Values[i] = s.schema.Label(flow, c.Key, v, lang)
			}
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("central: export: %w", err)
	}
	return nil
}

// csvSafe neutralises spreadsheet formula injection (OWASP "CSV Injection"):
// Excel and LibreOffice evaluate a cell that starts with = + - or @ (and
// treat a leading tab or CR the same way) as a formula, so a respondent
// could plant =HYPERLINK(...) or a DDE payload in a free-text answer that
// runs on the coordinator's machine. A leading single quote makes the
// spreadsheet show the text literally.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// ExportCSV writes one row per submission of flow, labels in lang. The file
// is UTF-8 with a byte-order mark, because Excel otherwise reads CSV in the
// legacy code page and garbles Cyrillic and Azerbaijani; quoting follows
// RFC 4180 (CRLF line ends). Partial submissions only with f.IncludePartial.
func (s *Store) ExportCSV(ctx context.Context, w io.Writer, flow, lang string, f Filter) error {
	cols, f, err := s.exportColumns(flow, lang, f)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	if _, err := bw.WriteString("\uFEFF"); err != nil {
		return fmt.Errorf("central: export csv: %w", err)
	}
	cw := csv.NewWriter(bw)
	cw.UseCRLF = true
	record := make([]string, 0, len(metaColumns)+len(cols))
	record = append(record, metaColumns...)
	for _, c := range cols {
		record = append(record, csvSafe(c.Header))
	}
	if err := cw.Write(record); err != nil {
		return fmt.Errorf("central: export csv: %w", err)
	}
	err = s.eachExportRow(ctx, flow, lang, f, cols, func(r *exportRow) error {
		record = record[:0]
		for _, v := range r.metaStrings() {
			record = append(record, csvSafe(v))
		}
		for _, v := range r.Values {
			record = append(record, csvSafe(v))
		}
		if err := cw.Write(record); err != nil {
			return fmt.Errorf("central: export csv: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("central: export csv: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("central: export csv: %w", err)
	}
	return nil
}

// ExportJSONL writes one JSON object per line and submission: the meta
// columns, then "answers" with the flow's columns in questionnaire order
// (labels in lang; null when unanswered).
func (s *Store) ExportJSONL(ctx context.Context, w io.Writer, flow, lang string, f Filter) error {
	cols, f, err := s.exportColumns(flow, lang, f)
	if err != nil {
		return err
	}
	type meta struct {
		ID          string    `json:"submission_id"`
		Country     string    `json:"country"`
		Stakeholder string    `json:"stakeholder"`
		Code        string    `json:"code"`
		Lang        string    `json:"lang"`
		Started     time.Time `json:"started_at"`
		Finished    time.Time `json:"finished_at"`
		Complete    bool      `json:"complete"`
	}
	// Column keys are encoded once; the answers object is assembled by hand
	// because a Go map would lose the questionnaire order.
	keys := make([][]byte, len(cols))
	for i, c := range cols {
		k, err := json.Marshal(c.Key)
		if err != nil {
			return fmt.Errorf("central: export jsonl: %w", err)
		}
		keys[i] = k
	}
	bw := bufio.NewWriter(w)
	var line []byte
	err = s.eachExportRow(ctx, flow, lang, f, cols, func(r *exportRow) error {
		m, err := json.Marshal(meta{r.ID, r.Country, r.Stakeholder, r.Code, r.Lang, r.Started, r.Finished, r.Complete})
		if err != nil {
			return fmt.Errorf("central: export jsonl: %w", err)
		}
		line = append(line[:0], m[:len(m)-1]...) // drop the closing brace
		line = append(line, `,"answers":{`...)
		for i := range cols {
			if i > 0 {
				line = append(line, ',')
			}
			line = append(line, keys[i]...)
			line = append(line, ':')
			if !r.Answered[i] {
				line = append(line, "null"...)
				continue
			}
			v, err := json.Marshal(r.Values[i])
			if err != nil {
				return fmt.Errorf("central: export jsonl: %w", err)
			}
			line = append(line, v...)
		}
		line = append(line, "}}\n"...)
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("central: export jsonl: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("central: export jsonl: %w", err)
	}
	return nil
}

// ExportXLSX writes an Excel workbook with one sheet named after the flow,
// a bold frozen header row and one row per submission. It uses excelize's
// StreamWriter, which spills rows to a temporary file instead of building
// the sheet in memory. Cells are written as typed strings, never formulas,
// so the CSV injection guard is not needed (and would alter the data).
func (s *Store) ExportXLSX(ctx context.Context, w io.Writer, flow, lang string, f Filter) error {
	cols, f, err := s.exportColumns(flow, lang, f)
	if err != nil {
		return err
	}
	x := excelize.NewFile()
	defer x.Close()
	sheet := flow
	if len(sheet) > 31 { // Excel's limit on sheet names
		sheet = sheet[:31]
	}
	if err := x.SetSheetName("Sheet1", sheet); err != nil {
		return fmt.Errorf("central: export xlsx: %w", err)
	}
	sw, err := x.NewStreamWriter(sheet)
	if err != nil {
		return fmt.Errorf("central: export xlsx: %w", err)
	}
	bold, err := x.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return fmt.Errorf("central: export xlsx: %w", err)
	}
	dateFmt := "yyyy-mm-dd hh:mm:ss"
	dateStyle, err := x.NewStyle(&excelize.Style{CustomNumFmt: &dateFmt})
	if err != nil {
		return fmt.Errorf("central: export xlsx: %w", err)
	}
	// Pane and widths must be set before the first row of a stream.
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return fmt.Errorf("central: export xlsx: %w", err)
	}
	if err := sw.SetColWidth(1, 1, 38); err != nil {
		return fmt.Errorf("central: export xlsx: %w", err)
	}
	if err := sw.SetColWidth(6, 7, 20); err != nil {
		return fmt.Errorf("central: export xlsx: %w", err)
	}
	if len(cols) > 0 {
		if err := sw.SetColWidth(len(metaColumns)+1, len(metaColumns)+len(cols), 24); err != nil {
			return fmt.Errorf("central: export xlsx: %w", err)
		}
	}
	row := make([]any, 0, len(metaColumns)+len(cols))
	for _, m := range metaColumns {
		row = append(row, excelize.Cell{StyleID: bold, Value: m})
	}
	for _, c := range cols {
		row = append(row, excelize.Cell{StyleID: bold, Value: c.Header})
	}
	if err := sw.SetRow("A1", row); err != nil {
		return fmt.Errorf("central: export xlsx: %w", err)
	}
	n := 1
	err = s.eachExportRow(ctx, flow, lang, f, cols, func(r *exportRow) error {
		n++
		row = row[:0]
		row = append(row, r.ID, r.Country, r.Stakeholder, r.Code, r.Lang,
			excelize.Cell{StyleID: dateStyle, Value: r.Started},
			excelize.Cell{StyleID: dateStyle, Value: r.Finished},
			r.Complete)
		for i, v := range r.Values {
			if r.Answered[i] {
				row = append(row, v)
			} else {
				row = append(row, nil)
			}
		}
		cell, err := excelize.CoordinatesToCellName(1, n)
		if err != nil {
			return fmt.Errorf("central: export xlsx: %w", err)
		}
		if err := sw.SetRow(cell, row); err != nil {
			return fmt.Errorf("central: export xlsx: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := sw.Flush(); err != nil {
		return fmt.Errorf("central: export xlsx: %w", err)
	}
	if err := x.Write(w); err != nil {
		return fmt.Errorf("central: export xlsx: %w", err)
	}
	return nil
}

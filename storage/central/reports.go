package central

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Counts are the response counts of one cell of the responses table.
type Counts struct {
	Started   int `json:"started"`   // all submissions, partial included
	Completed int `json:"completed"` // complete == true
	Partial   int `json:"partial"`   // started - completed
}

func (c *Counts) add(o Counts) {
	c.Started += o.Started
	c.Completed += o.Completed
	c.Partial += o.Partial
}

// ResponseCell is one country × stakeholder cell.
type ResponseCell struct {
	Stakeholder string `json:"stakeholder"`
	Counts
}

// ResponseRow is one country (or the totals row) of the responses table.
type ResponseRow struct {
	Country string         `json:"country"` // "" = unknown
	Cells   []ResponseCell `json:"cells"`   // in ResponseReport.Stakeholders order
	Total   Counts         `json:"total"`
}

// ResponseReport is the live version of the report's Table 1: rows are
// countries, columns stakeholder types, with row and column totals.
//
// Rows are the filtered countries, or every country with data; columns the
// filtered stakeholder types, or every type with data. Both follow the
// report's order (Countries(), Stakeholders()).
type ResponseReport struct {
	Filter       Filter        `json:"filter"`
	Stakeholders []string      `json:"stakeholders"`
	Rows         []ResponseRow `json:"rows"`
	Totals       ResponseRow   `json:"totals"` // Country "total"; per-column totals and the grand total
}

// Responses counts started, completed and partial submissions per country
// and stakeholder type. Filter.IncludePartial is ignored: partial dialogues
// are what "started but not completed" counts.
func (s *Store) Responses(ctx context.Context, f Filter) (ResponseReport, error) {
	if err := f.Validate(); err != nil {
		return ResponseReport{}, err
	}
	w := &where{d: s.d}
	w.filter(f, false)
	q := `SELECT s.country, s.stakeholder, COUNT(*), SUM(CASE WHEN s.complete THEN 1 ELSE 0 END)
 FROM submissions s` + w.sql() + ` GROUP BY s.country, s.stakeholder`
	rows, err := s.rdb.QueryContext(ctx, q, w.args...)
	if err != nil {
		return ResponseReport{}, fmt.Errorf("central: responses: %w", err)
	}
	defer rows.Close()

	type key struct{ country, stakeholder string }
	cells := map[key]Counts{}
	countries := map[string]bool{}
	stakeholders := map[string]bool{}
	for rows.Next() {
		var (
			k                  key
			started, completed int
		)
		if err := rows.Scan(&k.country, &k.stakeholder, &started, &completed); err != nil {
			return ResponseReport{}, fmt.Errorf("central: responses: %w", err)
		}
		cells[k] = Counts{Started: started, Completed: completed, Partial: started - completed}
		countries[k.country] = true
		stakeholders[k.stakeholder] = true
	}
	if err := rows.Err(); err != nil {
		return ResponseReport{}, fmt.Errorf("central: responses: %w", err)
	}

	r := ResponseReport{Filter: f}
	rowKeys := f.Countries
	if len(rowKeys) == 0 {
		rowKeys = setKeys(countries)
	}
	rowKeys = sortedBy(rowKeys, countryOrder)
	r.Stakeholders = f.Stakeholders
	if len(r.Stakeholders) == 0 {
		r.Stakeholders = setKeys(stakeholders)
	}
	r.Stakeholders = sortedBy(r.Stakeholders, stakeholderOrder)

	r.Totals = ResponseRow{Country: "total", Cells: make([]ResponseCell, len(r.Stakeholders))}
	for j, st := range r.Stakeholders {
		r.Totals.Cells[j].Stakeholder = st
	}
	for _, c := range rowKeys {
		row := ResponseRow{Country: c, Cells: make([]ResponseCell, len(r.Stakeholders))}
		for j, st := range r.Stakeholders {
			cnt := cells[key{c, st}]
			row.Cells[j] = ResponseCell{Stakeholder: st, Counts: cnt}
			row.Total.add(cnt)
			r.Totals.Cells[j].add(cnt)
		}
		r.Totals.Total.add(row.Total)
		r.Rows = append(r.Rows, row)
	}
	return r, nil
}

// NeedsCell summarises the ratings of one matrix item in one country (or
// in all countries).
type NeedsCell struct {
	Country string   `json:"country"` // "" = unknown, "all" for the all-countries column
	N       int      `json:"n"`       // numeric ratings (1-4)
	Mean    *float64 `json:"mean"`    // mean of the numeric ratings; null when N == 0
	Ratings [4]int   `json:"ratings"` // how many rated 1, 2, 3, 4
	NA      int      `json:"na"`      // "not applicable"
	// Other counts values that are neither 1-4 nor "na". It stays zero when
	// submissions were validated against the schema; it exists so that bad
	// data is visible instead of silently dropped.
	Other int `json:"other,omitempty"`
}

func (c *NeedsCell) addValue(value string, n int) {
	switch value {
	case "1", "2", "3", "4":
		c.Ratings[value[0]-'1'] += n
		c.N += n
	case "na":
		c.NA += n
	default:
		c.Other += n
	}
}

func (c *NeedsCell) finish() {
	if c.N == 0 {
		c.Mean = nil
		return
	}
	sum := 0
	for i, k := range c.Ratings {
		sum += (i + 1) * k
	}
	m := float64(sum) / float64(c.N)
	c.Mean = &m
}

// NeedsItem is one topic of the matrix.
type NeedsItem struct {
	Key       string      `json:"key"`             // item id, e.g. "t04"
	Label     string      `json:"label,omitempty"` // English header from Schema.Columns, when known
	Countries []NeedsCell `json:"countries"`       // in NeedsReport.Countries order
	All       NeedsCell   `json:"all"`
}

// NeedsReport is the live version of the report's Summary Table 7: the mean
// priority (4 highest, 1 lowest) of each training topic per country.
type NeedsReport struct {
	Filter    Filter      `json:"filter"`
	Matrix    string      `json:"matrix"`
	Countries []string    `json:"countries"`
	Items     []NeedsItem `json:"items"`
}

// TrainingNeeds summarises the answers to the rating matrix (keys
// "matrix/item") per item and country. Only complete submissions count
// unless f.IncludePartial. Items follow the questionnaire order when the
// store has a schema and f.Flow is set, otherwise natural key order
// (t2 before t10). Countries are the filtered ones or those with ratings.
func (s *Store) TrainingNeeds(ctx context.Context, f Filter, matrix string) (NeedsReport, error) {
	if err := f.Validate(); err != nil {
		return NeedsReport{}, err
	}
	if !validName(matrix) {
		return NeedsReport{}, invalid("matrix", "not a valid question name")
	}
	w := &where{d: s.d}
	w.add("a.question = " + w.arg(matrix))
	w.add("a.item <> ''")
	w.filter(f, !f.IncludePartial)
	q := `SELECT s.country, a.item, a.value, COUNT(*)
 FROM submission_answers a JOIN submissions s ON s.id = a.submission_id` +
		w.sql() + ` GROUP BY s.country, a.item, a.value`
	rows, err := s.rdb.QueryContext(ctx, q, w.args...)
	if err != nil {
		return NeedsReport{}, fmt.Errorf("central: training needs: %w", err)
	}
	defer rows.Close()

	type key struct{ item, country string }
	cells := map[key]*NeedsCell{}
	countries := map[string]bool{}
	items := map[string]bool{}
	for rows.Next() {
		var (
			country, item, value string
			n                    int
		)
		if err := rows.Scan(&country, &item, &value, &n); err != nil {
			return NeedsReport{}, fmt.Errorf("central: training needs: %w", err)
		}
		k := key{item, country}
		if cells[k] == nil {
			cells[k] = &NeedsCell{Country: country}
		}
		cells[k].addValue(value, n)
		countries[country] = true
		items[item] = true
	}
	if err := rows.Err(); err != nil {
		return NeedsReport{}, fmt.Errorf("central: training needs: %w", err)
	}

	order, labels, err := s.matrixItems(f.Flow, matrix)
	if err != nil {
		return NeedsReport{}, err
	}
	var extra []string
	for it := range items {
		if _, known := labels[it]; !known {
			extra = append(extra, it)
		}
	}
	sort.Slice(extra, func(i, j int) bool { return naturalLess(extra[i], extra[j]) })
	order = append(order, extra...)

	r := NeedsReport{Filter: f, Matrix: matrix}
	r.Countries = f.Countries
	if len(r.Countries) == 0 {
		r.Countries = setKeys(countries)
	}
	r.Countries = sortedBy(r.Countries, countryOrder)
	for _, it := range order {
		item := NeedsItem{Key: it, Label: labels[it], All: NeedsCell{Country: "all"}}
		for _, c := range r.Countries {
			cell := NeedsCell{Country: c}
			if p := cells[key{it, c}]; p != nil {
				cell = *p
			}
			cell.finish()
			item.Countries = append(item.Countries, cell)
		}
		// Every row of cells passed the filter, so summing all of them gives
		// the all-countries column whether or not the filter named countries.
		for k, p := range cells {
			if k.item != it {
				continue
			}
			for i, n := range p.Ratings {
				item.All.Ratings[i] += n
			}
			item.All.N += p.N
			item.All.NA += p.NA
			item.All.Other += p.Other
		}
		item.All.finish()
		r.Items = append(r.Items, item)
	}
	return r, nil
}

// matrixItems returns the items of matrix in questionnaire order with their
// headers, when a schema is available for flow; otherwise nothing.
func (s *Store) matrixItems(flow, matrix string) ([]string, map[string]string, error) {
	labels := map[string]string{}
	if s.schema == nil || flow == "" {
		return nil, labels, nil
	}
	cols, err := s.schema.Columns(flow, "en")
	if err != nil {
		return nil, nil, invalid("flow", "%v", err)
	}
	var order []string
	for _, c := range cols {
		q, item := splitKey(c.Key)
		if q == matrix && item != "" {
			order = append(order, item)
			labels[item] = c.Header
		}
	}
	return order, labels, nil
}

func setKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// sortedBy returns a sorted copy of list by rank, then by value, without
// duplicates.
func sortedBy(list []string, rank func(string) int) []string {
	out := make([]string, 0, len(list))
	seen := map[string]bool{}
	for _, v := range list {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := rank(out[i]), rank(out[j])
		if ri != rj {
			return ri < rj
		}
		return out[i] < out[j]
	})
	return out
}

// naturalLess orders strings with embedded numbers by value, so that "t2"
// sorts before "t10".
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := isDigit(a[0]), isDigit(b[0])
		if da && db {
			na, ra := leadingDigits(a)
			nb, rb := leadingDigits(b)
			ta, tb := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if len(ta) != len(tb) {
				return len(ta) < len(tb)
			}
			if ta != tb {
				return ta < tb
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func leadingDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

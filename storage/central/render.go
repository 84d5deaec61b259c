package central

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Short column headers: a Telegram <pre> block on a phone shows about 40
// monospace characters before wrapping, so headers are abbreviations and
// country codes stay codes. They are the same in every language on purpose:
// codes like "AZ" and "CSO" read the same for every coordinator.
func stakeholderShort(s string) string {
	switch s {
	case "government":
		return "Gov"
	case "cso":
		return "CSO"
	case "media":
		return "Media"
	case "migrant_association":
		return "MigAs"
	case "expert":
		return "Expert"
	case "migrant":
		return "Migr"
	}
	return s
}

func countryShort(c string) string {
	switch c {
	case "":
		return "?"
	case CountryOther:
		return "Other"
	case "total":
		return "Total"
	case "all":
		return "All"
	}
	return c
}

// RenderResponses renders r as a fixed-width table for a Telegram <pre>
// block: one row per country, one column per stakeholder type, each cell
// "completed/started", then the totals.
func RenderResponses(r ResponseReport) string {
	var b strings.Builder
	b.WriteString("Responses: completed/started\n")
	if len(r.Rows) == 0 {
		b.WriteString("(no submissions)\n")
		return b.String()
	}
	header := []string{"Country"}
	for _, s := range r.Stakeholders {
		header = append(header, stakeholderShort(s))
	}
	header = append(header, "Total")
	table := [][]string{header}
	cell := func(c Counts) string {
		if c.Started == 0 {
			return "-"
		}
		return fmt.Sprintf("%d/%d", c.Completed, c.Started)
	}
	for _, row := range append(append([]ResponseRow(nil), r.Rows...), r.Totals) {
		line := []string{countryShort(row.Country)}
		for _, c := range row.Cells {
			line = append(line, cell(c.Counts))
		}
		line = append(line, cell(row.Total))
		table = append(table, line)
	}
	writeTable(&b, table, len(table)-1)
	fmt.Fprintf(&b, "Partial (started, not completed): %d\n", r.Totals.Total.Partial)
	return b.String()
}

// RenderNeeds renders r as a fixed-width table: one row per matrix item,
// one column per country plus "All", each cell "mean (n)" where n counts
// the numeric ratings and "not applicable" is left out. A legend of item
// labels follows when the report has them.
func RenderNeeds(r NeedsReport) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Training needs: %s\nmean priority 4=highest 1=lowest (n rated; n/a excluded)\n", r.Matrix)
	if len(r.Items) == 0 {
		b.WriteString("(no ratings)\n")
		return b.String()
	}
	header := []string{"Item"}
	for _, c := range r.Countries {
		header = append(header, countryShort(c))
	}
	header = append(header, "All")
	table := [][]string{header}
	cell := func(c NeedsCell) string {
		if c.Mean == nil {
			return "-"
		}
		return fmt.Sprintf("%.2f (%d)", *c.Mean, c.N)
	}
	for _, it := range r.Items {
		line := []string{it.Key}
		for _, c := range it.Countries {
			line = append(line, cell(c))
		}
		line = append(line, cell(it.All))
		table = append(table, line)
	}
	writeTable(&b, table, -1)

	var legend []string
	for _, it := range r.Items {
		if l := trimKeySuffix(it.Label, r.Matrix+"/"+it.Key); l != "" {
			legend = append(legend, fmt.Sprintf("%s %s", it.Key, l))
		}
	}
	if len(legend) > 0 {
		b.WriteString("\n")
		for _, l := range legend {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// trimKeySuffix drops the " (key)" that Schema.Columns headers end with; the
// legend already starts with the key.
func trimKeySuffix(label, key string) string {
	return strings.TrimSpace(strings.TrimSuffix(label, "("+key+")"))
}

// writeTable writes rows with the first column left-aligned and the others
// right-aligned, two spaces apart. A rule is drawn before row ruleBefore
// (the totals row) when it is positive.
func writeTable(b *strings.Builder, rows [][]string, ruleBefore int) {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	total := 0
	for i, w := range widths {
		total += w
		if i > 0 {
			total += 2
		}
	}
	for r, row := range rows {
		if r == ruleBefore && ruleBefore > 0 {
			b.WriteString(strings.Repeat("-", total) + "\n")
		}
		var line strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i == 0 {
				line.WriteString(c + pad)
				continue
			}
			line.WriteString("  " + pad + c)
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

package central

// Schema is what the central store needs to know about flow definitions.
// The flow engine implements it; the store only depends on this interface so
// that it never has to parse flow files itself.
type Schema interface {
	// Validate reports the first problem with answers for that flow and
	// version: unknown flow, answer to an unknown question, wrong
	// type/invalid choice. The error message names the field (e.g.
	// `answers.staff_count: not an integer`); returning a *ValidationError
	// is the most precise way to do so.
	Validate(flow string, version int, answers map[string]string) error
	// Columns lists the export columns of a flow in questionnaire order
	// (matrix: one per item, key "matrix/item"; multiple choice: one column
	// with space-separated labels), with a header in lang like
	// "Staff count (staff_count)".
	Columns(flow, lang string) ([]Column, error)
	// Label turns a stored value into the label shown in exports in lang
	// (choice names → labels; multiple choice → labels joined with "; ");
	// unknown values are returned unchanged.
	Label(flow, key, value, lang string) string
}

// Column is one export column of a flow.
type Column struct {
	Key    string // answer key: question id or "matrix/item"
	Header string // human header in the export language
}

package main

import (
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/dialoq/dialoq/flows"
	"github.com/dialoq/dialoq/flows/lint"
	"github.com/dialoq/dialoq/locales"
)

// runLint checks the definitions and locales on disk when run from the repository, so
// authors see their edits at once, and the embedded ones otherwise.
func runLint(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("flows lint", flag.ContinueOnError)
	fl.SetOutput(stderr)
	defsDir := fl.String("dir", "flows/defs", "directory of flow definitions")
	locDir := fl.String("locales", "locales", "directory of message files")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	var defsFS, locFS fs.FS = os.DirFS("."), os.DirFS(".")
	if _, err := os.Stat(*defsDir); err != nil {
		fmt.Fprintf(stderr, "dialoq: %s not found; linting the built-in definitions\n", *defsDir)
		defsFS, *defsDir = flows.Files()
	}
	if _, err := os.Stat(*locDir); err != nil {
		fmt.Fprintf(stderr, "dialoq: %s not found; linting the built-in locales\n", *locDir)
		locFS, *locDir = locales.Files(), "."
	}
	r := lint.Run(defsFS, *defsDir, locFS, *locDir)
	for _, p := range r.Problems {
		fmt.Fprintln(stdout, p)
	}
	fmt.Fprintln(stdout, "coverage:")
	for _, c := range r.Coverage {
		fmt.Fprintf(stdout, "  %-3s %5.1f%%  %d of %d messages\n", c.Lang, c.Percent(), c.Have, c.Need)
	}
	if len(r.Problems) > 0 {
		fmt.Fprintf(stdout, "%d problems\n", len(r.Problems))
		return 1
	}
	fmt.Fprintln(stdout, "ok")
	return 0
}

func runList(stdout, stderr io.Writer) int {
	set, err := flows.Builtin()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	cat, err := locales.Embedded()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, d := range set.All() {
		fmt.Fprintf(stdout, "%-22s %-13s v%d  %s\n", d.ID, d.Kind, d.Version, cat.Text("en", d.ID+".title", nil))
	}
	return 0
}

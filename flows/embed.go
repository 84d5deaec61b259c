package flows

import "embed"

//go:embed defs/*.yaml
var defs embed.FS

// Builtin loads the definitions built into the binary.
func Builtin() (*Set, error) { return Load(defs, "defs") }

// Files returns the embedded definition files and their directory.
func Files() (embed.FS, string) { return defs, "defs" }

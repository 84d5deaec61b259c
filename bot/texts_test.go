package bot

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dialoq/dialoq/locales"
)

// Every bot.* message the code names exists in English, the fallback (lint then
// holds every other language to it), and every command has a description.
func TestTextsExist(t *testing.T) {
	cat, err := locales.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, _ := strconv.Unquote(lit.Value)
			if strings.HasPrefix(s, "bot.") && !strings.HasSuffix(s, ".") && !strings.Contains(s, " ") && !cat.Has("en", s) {
				t.Errorf("%s: message %q is not in locales/bot.en.yaml", fset.Position(lit.Pos()), s)
			}
			return true
		})
	}
	for _, c := range commands {
		if !cat.Has("en", "bot.cmd."+c) {
			t.Errorf("command /%s has no description bot.cmd.%s", c, c)
		}
	}
}

package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// Go runs every linked package's initialisers at every start, so a
// package-level regexp.MustCompile is paid by every jwkctl command: the
// first compile in a process costs milliseconds (docs/performance.md).
// Package-level expressions go through internal/lazyre, which compiles on
// first use. Test files are exempt: they are not in the binary.
func TestNoRegexpCompiledAtInit(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		regexpName := "" // the local name of the regexp import, if any
		for _, imp := range f.Imports {
			if imp.Path.Value == `"regexp"` {
				regexpName = "regexp"
				if imp.Name != nil {
					regexpName = imp.Name.Name
				}
			}
		}
		if regexpName == "" {
			return nil
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			// Any regexp compile in a package-level var's initialiser,
			// also one nested inside a composite literal or call.
			ast.Inspect(gd, func(n ast.Node) bool {
				if _, ok := n.(*ast.FuncLit); ok {
					return false // runs later, not at init
				}
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
					if id, ok := sel.X.(*ast.Ident); ok && id.Name == regexpName && strings.Contains(sel.Sel.Name, "Compile") {
						t.Errorf("%s: %s.%s at package level runs at every start; use internal/lazyre", fset.Position(call.Pos()), regexpName, sel.Sel.Name)
					}
				}
				return true
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

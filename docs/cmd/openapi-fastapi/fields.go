package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
)

// nameComment is swag's `// @name X` override after a struct's closing brace.
var nameComment = regexp.MustCompile(`@name\s+(\S+)`)

// structFieldOrder returns, for every struct type of the package in dir,
// the JSON names of its fields in declaration order, keyed by the component
// name swag gives it (the `@name` override, else the type name). swag sorts
// properties alphabetically; Pydantic keeps the model's field order, and so
// do we.
func structFieldOrder(dir string) (map[string][]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	fset := token.NewFileSet()
	order := map[string][]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", e.Name(), err)
		}
		for _, decl := range file.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.TYPE {
				continue
			}
			for _, spec := range gen.Specs {
				ts := spec.(*ast.TypeSpec)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				name := ts.Name.Name
				if n := trailingName(fset, file, st); n != "" {
					name = n
				}
				order[name] = jsonNames(st)
			}
		}
	}
	return order, nil
}

// trailingName finds a `// @name X` comment on the line of the struct's
// closing brace.
func trailingName(fset *token.FileSet, file *ast.File, st *ast.StructType) string {
	line := fset.Position(st.End()).Line
	for _, cg := range file.Comments {
		if fset.Position(cg.Pos()).Line != line {
			continue
		}
		if m := nameComment.FindStringSubmatch(cg.Text()); m != nil {
			return m[1]
		}
	}
	return ""
}

func jsonNames(st *ast.StructType) []string {
	var names []string
	for _, f := range st.Fields.List {
		if len(f.Names) == 0 || f.Tag == nil {
			continue
		}
		tag, err := strconv.Unquote(f.Tag.Value)
		if err != nil {
			continue
		}
		name, _, _ := strings.Cut(reflect.StructTag(tag).Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		names = append(names, name)
	}
	return names
}

// Command openapi-fastapi generates docs/openapi.json and docs/openapi.yaml:
// the OpenAPI 3.1 document FastAPI would serve for this API.
//
// Run it from the module root (this is `make docs`):
//
//	go run ./docs/cmd/openapi-fastapi
//
// It runs the pinned swag (`go tool swag init --v3.1 --ot json -g apiinfo.go
// -d ./api`) into a temporary directory, then reshapes swag's output the way
// FastAPI and Pydantic v2 write a document (see fastapi.go), and writes it
// with a stable key order (see encode.go), so running it twice gives the same
// bytes and a diff shows only real changes.
//
// Flags: -api (the annotated package, default ./api), -out (default ./docs).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
)

func main() {
	apiDir := flag.String("api", "./api", "directory of the annotated handlers, apiinfo.go and schemas.go")
	outDir := flag.String("out", "./docs", "directory that receives openapi.json and openapi.yaml")
	flag.Parse()
	if err := run(*apiDir, *outDir); err != nil {
		slog.Error("generate openapi document", "err", err)
		os.Exit(1)
	}
}

func run(apiDir, outDir string) error {
	raw, err := runSwag(apiDir)
	if err != nil {
		return err
	}
	fields, err := structFieldOrder(apiDir)
	if err != nil {
		return err
	}
	doc, err := decode(raw)
	if err != nil {
		return fmt.Errorf("decode swag output: %w", err)
	}
	if err := reshape(doc, fields); err != nil {
		return fmt.Errorf("reshape document: %w", err)
	}
	js := encodeJSON(doc, fields)
	ym, err := encodeYAML(doc, fields)
	if err != nil {
		return fmt.Errorf("encode yaml: %w", err)
	}
	if err := os.WriteFile(filepath.Join(outDir, "openapi.json"), js, 0o644); err != nil {
		return fmt.Errorf("write openapi.json: %w", err)
	}
	if err := os.WriteFile(filepath.Join(outDir, "openapi.yaml"), ym, 0o644); err != nil {
		return fmt.Errorf("write openapi.yaml: %w", err)
	}
	return nil
}

// runSwag runs the swag pinned in go.mod (a go tool) into a temporary
// directory and returns its swagger.json.
func runSwag(apiDir string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "openapi-swag-")
	if err != nil {
		return nil, fmt.Errorf("swag temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "tool", "swag", "init", "--v3.1", "--ot", "json",
		"--quiet", "-g", "apiinfo.go", "-d", apiDir, "-o", tmp)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go tool swag init: %w\n%s", err, stderr.Bytes())
	}
	raw, err := os.ReadFile(filepath.Join(tmp, "swagger.json"))
	if err != nil {
		return nil, fmt.Errorf("read swag output: %w", err)
	}
	return raw, nil
}

// decode parses JSON keeping numbers as written, so 1 stays 1 and not 1.0.
func decode(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	return doc, nil
}

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clientDir is the TypeScript client test: package.json and its lock
// (openapi-typescript, openapi-fetch, typescript), src/compat.ts and src/flows.ts.
const clientDir = "../../clients/typescript"

// TestTypeScriptClient consumes the API the way a TypeScript team does:
// openapi-typescript generates types from the /openapi.json this server
// serves, `tsc --strict` compiles src/compat.ts (code written against
// FastAPI's document) and src/flows.ts, and node runs flows.js (the README's
// flows through openapi-fetch) against the server. As a control, the same
// sources must NOT compile against the served document with "default": null
// put back on the optional nullable fields, the document's old shape.
func TestTypeScriptClient(t *testing.T) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the generated TypeScript client test needs node and npm (apt-get install nodejs npm; .ci/run installs them)", tool)
		}
	}
	dir, err := filepath.Abs(clientDir)
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, dir)
	base := startServer(t, nil)
	served := fetch(t, base+"/openapi.json")

	// Control: the document as it was before, with null defaults.
	old := filepath.Join(t.TempDir(), "openapi-null-defaults.json")
	if err := os.WriteFile(old, withNullDefaults(t, served), 0o644); err != nil {
		t.Fatal(err)
	}
	runIn(t, dir, nil, "node_modules/.bin/openapi-typescript", old, "-o", "generated/schema.d.ts")
	out, err := commandIn(t, dir, nil, "node_modules/.bin/tsc", "-p", "tsconfig.json", "--noEmit").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "src/compat.ts") || !strings.Contains(string(out), "summary") {
		t.Fatalf("the client compiled against a document with \"default\": null (err %v); the compat check proves nothing:\n%s", err, out)
	}

	runIn(t, dir, nil, "node_modules/.bin/openapi-typescript", base+"/openapi.json", "-o", "generated/schema.d.ts")
	runIn(t, dir, nil, "node_modules/.bin/tsc", "-p", "tsconfig.json") // strict, noEmitOnError: writes dist/ only when it type-checks
	out = runIn(t, dir, []string{"BASE_URL=" + base, "ADMIN_TOKEN=" + testAdminToken}, "node", "dist/src/flows.js")
	t.Logf("%s", bytes.TrimSpace(out))
}

// npmCI installs the locked packages when node_modules is missing or was
// installed from another package-lock.json.
func npmCI(t *testing.T, dir string) {
	t.Helper()
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:])
	stamp := filepath.Join(dir, "node_modules", ".package-lock.sha256")
	if got, err := os.ReadFile(stamp); err == nil && string(got) == want {
		return
	}
	runIn(t, dir, nil, "npm", "ci", "--no-audit", "--no-fund")
	if err := os.WriteFile(stamp, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
}

// commandIn prepares name args in dir with extra environment; it is killed
// after five minutes, far beyond what any step takes on a loaded machine.
func commandIn(t *testing.T, dir string, env []string, name string, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// runIn runs a command and fails the test with its output when it fails.
func runIn(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	out, err := commandIn(t, dir, env, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func fetch(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return body
}

// withNullDefaults returns the document with "default": null on every
// optional component property that may be null, as the generator wrote it
// before.
func withNullDefaults(t *testing.T, doc []byte) []byte {
	t.Helper()
	var spec map[string]any
	if err := json.Unmarshal(doc, &spec); err != nil {
		t.Fatal(err)
	}
	schemas := spec["components"].(map[string]any)["schemas"].(map[string]any)
	changed := 0
	for _, s := range schemas {
		schema := s.(map[string]any)
		props, _ := schema["properties"].(map[string]any)
		required, _ := schema["required"].([]any)
		for name, p := range props {
			prop := p.(map[string]any)
			anyOf, _ := prop["anyOf"].([]any)
			nullable := len(anyOf) == 2 && anyOf[1].(map[string]any)["type"] == "null"
			if _, hasDefault := prop["default"]; nullable && !hasDefault && !containsString(required, name) {
				prop["default"] = nil
				changed++
			}
		}
	}
	if changed == 0 {
		t.Fatal("no optional nullable property to put a null default on")
	}
	out, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func containsString(list []any, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

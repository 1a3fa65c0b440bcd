package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// browserDir is the docs browser test: package.json and its lock
// (playwright-core, which downloads no browser) and docs.mjs.
const browserDir = "../../clients/browser"

// chromiumPath is the browser the test drives: Debian's chromium
// (apt-get install chromium; .ci/run installs it), or $CHROMIUM.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// TestDocsInBrowser opens /docs and /redoc of a running service in headless
// Chromium (clients/browser/docs.mjs): every operation of /openapi.json is
// rendered by Swagger UI and by ReDoc, "Try it out" on POST
// /api/v1/analyses sends the schema examples and gets 201, and no request
// leaves the service's origin (each is routed; another origin fails the
// test). It is skipped only when node, npm or Chromium is missing.
func TestDocsInBrowser(t *testing.T) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the docs browser test needs node and npm (apt-get install nodejs npm; .ci/run installs them)", tool)
		}
	}
	chromium := chromiumPath()
	if _, err := os.Stat(chromium); err != nil {
		t.Skipf("%s is missing: the docs browser test needs Chromium (apt-get install chromium; .ci/run installs it): %v", chromium, err)
	}
	dir, err := filepath.Abs(browserDir)
	if err != nil {
		t.Fatal(err)
	}
	npmCI(t, dir)
	base := startServer(t, nil)
	env := []string{"BASE_URL=" + base, "CHROMIUM=" + chromium}
	if shots := os.Getenv("DOCS_SCREENSHOTS"); shots != "" {
		env = append(env, "SCREENSHOTS="+shots)
	}
	out := runIn(t, dir, env, "node", "docs.mjs")
	t.Logf("%s", bytes.TrimSpace(out))
}

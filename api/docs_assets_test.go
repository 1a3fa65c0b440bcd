package api

import (
	"io/fs"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/analysis-cache/service/docs"
)

// sourceMapRef is a sourceMappingURL comment naming a file (ReDoc's
// style-loader also writes inline data: maps at run time, which load nothing).
var sourceMapRef = regexp.MustCompile(`sourceMappingURL=[\w./-]+\.map`)

// TestDocsEmbedNoSourceMaps: no package linked into the service embeds a
// source map (Swagger UI's *.map files were ~11 MB of the binary), and no
// embedded documentation asset points to one with a sourceMappingURL, which
// would make a browser's developer tools request a missing file.
func TestDocsEmbedNoSourceMaps(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}{{range .EmbedFiles}} {{.}}{{end}}`, "./cmd/api")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/api: %v\n%s", err, out)
	}
	embedding := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, files, _ := strings.Cut(line, " ")
		if files != "" {
			embedding++
		}
		for _, f := range strings.Fields(files) {
			if strings.HasSuffix(f, ".map") {
				t.Errorf("%s embeds the source map %s", pkg, f)
			}
		}
	}
	if embedding == 0 {
		t.Fatal("go list found no package with embedded files: the check proves nothing")
	}

	for name, fsys := range map[string]fs.FS{"docs.SwaggerUI": docs.SwaggerUI, "docs.ReDoc": docs.ReDoc} {
		err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if strings.HasSuffix(path, ".map") {
				t.Errorf("%s holds %s", name, path)
			}
			switch filepath.Ext(path) {
			case ".js", ".css", ".html":
			default:
				return nil // READMEs and licences: read by people, not browsers
			}
			b, err := fs.ReadFile(fsys, path)
			if m := sourceMapRef.Find(b); m != nil {
				t.Errorf("%s: %s refers to a source map: %s", name, path, m)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	r := docsRouter()
	for _, path := range []string{"/static/swagger-ui/swagger-ui-bundle.js.map", "/static/swagger-ui/swagger-ui.css.map"} {
		if w := docsRequest(r, http.MethodGet, path); w.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, w.Code)
		}
	}
}

// absoluteSrc finds an image or script source on another origin written in
// a bundle (React's src:"https://...") or a stylesheet (url(https://...)).
var absoluteSrc = regexp.MustCompile(`src:"(?:https?:)?//[^"]*"|url\(["']?(?:https?:)?//[^)]*\)`)

// TestDocsAssetsLoadNothingFromAnotherOrigin: the served bundles name no
// resource on another origin for the browser to load. ReDoc's sidebar logo
// came from cdn.redoc.ly; the vendored bundle has it as "data:,", which
// fails to decode without a request so ReDoc hides the image (its onError).
// The browser test (cmd/api/browser_test.go) checks what is really requested.
func TestDocsAssetsLoadNothingFromAnotherOrigin(t *testing.T) {
	r := docsRouter()
	for _, path := range []string{
		"/static/redoc/redoc.standalone.js",
		"/static/swagger-ui/swagger-ui-bundle.js",
		"/static/swagger-ui/swagger-ui.css",
	} {
		w := docsRequest(r, http.MethodGet, path)
		if w.Code != http.StatusOK || w.Body.Len() == 0 {
			t.Fatalf("GET %s = %d", path, w.Code)
		}
		if m := absoluteSrc.FindString(w.Body.String()); m != "" {
			t.Errorf("%s loads from another origin: %s", path, m)
		}
	}
	bundle := docsRequest(r, http.MethodGet, "/static/redoc/redoc.standalone.js").Body.String()
	if !strings.Contains(bundle, `alt:"redocly logo",onError:()=>t(!1),src:"data:,"`) {
		t.Error(`the ReDoc logo is not the local "data:," image (docs/redoc/README.md says how to vendor the bundle)`)
	}
}

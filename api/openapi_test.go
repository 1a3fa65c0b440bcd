package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/analysis-cache/service/docs"
	"github.com/analysis-cache/service/domain"
)

// contractOperations is the contract's endpoint table: path → method → operationId.
var contractOperations = map[string]map[string]string{
	"/api/v1/analyses": {
		"post": "create_analysis_api_v1_analyses_post",
		"get":  "list_analyses_api_v1_analyses_get",
	},
	"/api/v1/analyses/{analysis_id}": {
		"get":    "read_analysis_api_v1_analyses__analysis_id__get",
		"patch":  "update_analysis_api_v1_analyses__analysis_id__patch",
		"delete": "delete_analysis_api_v1_analyses__analysis_id__delete",
	},
	"/api/v1/analyses/bulk":             {"post": "ingest_analyses_api_v1_analyses_bulk_post"},
	"/api/v1/analyses/stats":            {"get": "read_analysis_stats_api_v1_analyses_stats_get"},
	"/api/v1/users/{owner_id}/analyses": {"get": "list_user_analyses_api_v1_users__owner_id__analyses_get"},
	"/api/v1/cache/stats":               {"get": "read_cache_stats_api_v1_cache_stats_get"},
	"/api/v1/cache/invalidate":          {"post": "invalidate_cache_api_v1_cache_invalidate_post"},
	"/api/v1/cache/write-behind/flush":  {"post": "flush_write_behind_api_v1_cache_write_behind_flush_post"},
	"/health":                           {"get": "health_health_get"},
	"/ready":                            {"get": "ready_ready_get"},
}

// contractComponents are the component names contract.md fixes.
var contractComponents = []string{
	"AnalysisPublic", "AnalysesPublic", "AnalysisCreate", "AnalysisUpdate", "AnalysisIngest",
	"BulkIngest", "AnalysisStats", "CacheStats", "HTTPValidationError", "ValidationError",
}

// requestComponents are the bodies; every other object component is a
// response and must list all its properties as required.
var requestComponents = []string{
	"AnalysisCreate", "AnalysisUpdate", "AnalysisIngest", "BulkIngest", "InvalidateRequest",
	"HTTPValidationError", "ValidationError", // FastAPI's own definitions
}

func loadSpec(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	spec, err := loader.LoadFromData(docs.OpenAPIJSON)
	if err != nil {
		t.Fatalf("load docs/openapi.json: %v", err)
	}
	return spec
}

// TestOpenAPIDocumentIsUpToDate runs the `make docs` pipeline (swag, then
// the FastAPI reshaping) into a temporary directory and requires the
// committed files to be byte-identical: an annotation changed without
// regenerating fails here.
func TestOpenAPIDocumentIsUpToDate(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command("go", "run", "./docs/cmd/openapi-fastapi", "-api", "./api", "-out", out)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generate: %v\n%s", err, b)
	}
	for _, name := range []string{"openapi.json", "openapi.yaml"} {
		want, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, "docs", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("docs/%s is stale: run `go run ./docs/cmd/openapi-fastapi` (make docs)", name)
		}
	}
}

// TestOpenAPIDocumentValidates checks the document with kin-openapi, which
// understands OpenAPI 3.1 (type null, $ref siblings), and the 3.1 specifics
// FastAPI relies on.
func TestOpenAPIDocumentValidates(t *testing.T) {
	spec := loadSpec(t)
	if spec.OpenAPI != "3.1.0" {
		t.Fatalf("openapi = %q, want 3.1.0", spec.OpenAPI)
	}
	if !spec.IsOpenAPI31OrLater() {
		t.Fatal("kin-openapi does not read the document as 3.1")
	}
	if err := spec.Validate(context.Background()); err != nil {
		t.Fatalf("validate: %v", err)
	}
	// Every $ref points at a component that exists (kin-openapi resolved
	// them on load; a dangling one fails there, this catches typos in names).
	refs := regexp.MustCompile(`"\$ref":\s*"#/components/schemas/([^"]+)"`).FindAllSubmatch(docs.OpenAPIJSON, -1)
	for _, m := range refs {
		if spec.Components.Schemas[string(m[1])] == nil {
			t.Errorf("$ref to missing component %s", m[1])
		}
	}
	for name := range spec.Components.Schemas {
		if strings.ContainsAny(name, "./") {
			t.Errorf("component %q has a Go package prefix", name)
		}
	}
}

func TestOpenAPIOperationsFollowTheContract(t *testing.T) {
	spec := loadSpec(t)
	got := map[string]map[string]string{}
	for path, item := range spec.Paths.Map() {
		got[path] = map[string]string{}
		for method, op := range item.Operations() {
			got[path][strings.ToLower(method)] = op.OperationID
		}
	}
	for path, methods := range contractOperations {
		for method, id := range methods {
			if got[path][method] != id {
				t.Errorf("%s %s: operationId %q, want %q", method, path, got[path][method], id)
			}
		}
	}
	for path, methods := range got {
		for method := range methods {
			if _, ok := contractOperations[path][method]; !ok {
				t.Errorf("%s %s is in the document but not in the contract", method, path)
			}
		}
	}

	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			wantTag := map[bool]string{true: "analyses"}[strings.HasPrefix(path, "/api/v1/analyses")]
			switch {
			case strings.HasPrefix(path, "/api/v1/users/"):
				wantTag = "users"
			case strings.HasPrefix(path, "/api/v1/cache/"):
				wantTag = "cache"
			case path == "/health" || path == "/ready":
				wantTag = "ops"
			}
			if !slices.Equal(op.Tags, []string{wantTag}) {
				t.Errorf("%s: tags %v, want [%s]", where, op.Tags, wantTag)
			}
			secured := op.Security != nil && len(*op.Security) == 1 && (*op.Security)[0]["HTTPBearer"] != nil
			if secured != strings.HasPrefix(path, "/api/v1/cache/") {
				t.Errorf("%s: HTTPBearer security = %v", where, secured)
			}
			if len(op.Parameters) > 0 || op.RequestBody != nil {
				r := op.Responses.Value("422")
				if r == nil || r.Value.Content.Get("application/json") == nil ||
					r.Value.Content.Get("application/json").Schema.Ref != "#/components/schemas/HTTPValidationError" {
					t.Errorf("%s has parameters or a body but no 422 HTTPValidationError", where)
				}
			}
			for _, p := range op.Parameters {
				if p.Value.Schema.Value.Title == "" {
					t.Errorf("%s: parameter %s has no title", where, p.Value.Name)
				}
			}
		}
	}
	scheme := spec.Components.SecuritySchemes["HTTPBearer"]
	if scheme == nil || scheme.Value.Type != "http" || scheme.Value.Scheme != "bearer" {
		t.Errorf("securitySchemes.HTTPBearer = %+v, want {type: http, scheme: bearer}", scheme)
	}
}

func TestOpenAPIComponentsHaveFastAPIShapes(t *testing.T) {
	spec := loadSpec(t)
	schemas := spec.Components.Schemas
	for _, name := range contractComponents {
		if schemas[name] == nil {
			t.Errorf("component %s is missing", name)
		}
	}
	for name, ref := range schemas {
		s := ref.Value
		if s.Title != name {
			t.Errorf("%s: title %q", name, s.Title)
		}
		if slices.Contains(requestComponents, name) || len(s.Properties) == 0 {
			continue
		}
		for prop := range s.Properties {
			if !slices.Contains(s.Required, prop) {
				t.Errorf("response schema %s: property %s is not required", name, prop)
			}
		}
	}
	// Request bodies: only the fields without a default are required.
	for name, want := range map[string][]string{
		"AnalysisCreate": {"owner_id", "url", "title"},
		"AnalysisIngest": {"owner_id", "url", "title"},
		"AnalysisUpdate": nil,
		"BulkIngest":     {"items"},
	} {
		if s := schemas[name]; s != nil && !slices.Equal(s.Value.Required, want) {
			t.Errorf("%s: required %v, want %v", name, s.Value.Required, want)
		}
	}
	// Formats, enums and limits of the contract.
	if ap := schemas["AnalysisPublic"]; ap != nil {
		p := ap.Value.Properties
		for prop, format := range map[string]string{"id": "uuid", "owner_id": "uuid", "created_at": "date-time", "updated_at": "date-time"} {
			if p[prop] == nil || p[prop].Value.Format != format {
				t.Errorf("AnalysisPublic.%s: want format %s", prop, format)
			}
		}
		if url := p["url"]; url == nil || url.Value.Pattern != `^https?://\S+$` || url.Value.MaxLength == nil || *url.Value.MaxLength != 2048 {
			t.Errorf("AnalysisPublic.url: want pattern and maxLength 2048")
		}
		if st := p["status"]; st == nil || len(st.Value.Enum) != 4 {
			t.Errorf("AnalysisPublic.status: want the 4-value enum")
		}
		if tags := p["tags"]; tags == nil || tags.Value.MaxItems == nil || *tags.Value.MaxItems != 20 {
			t.Errorf("AnalysisPublic.tags: want maxItems 20")
		}
		// Nullable fields are anyOf [T, null], as Pydantic v2 writes them.
		for _, prop := range []string{"summary", "score", "notes"} {
			if p[prop] == nil || len(p[prop].Value.AnyOf) != 2 || !p[prop].Value.AnyOf[1].Value.Type.Is("null") {
				t.Errorf("AnalysisPublic.%s: want anyOf [..., {type: null}]", prop)
			}
		}
	}
	if bi := schemas["BulkIngest"]; bi != nil {
		items := bi.Value.Properties["items"]
		if items == nil || items.Value.MaxItems == nil || *items.Value.MaxItems != uint64(domain.MaxBulkItems) || items.Value.MinItems != 1 {
			t.Errorf("BulkIngest.items: want 1..%d items", domain.MaxBulkItems)
		}
	}
	if ve := schemas["ValidationError"]; ve != nil {
		loc := ve.Value.Properties["loc"]
		if loc == nil || len(loc.Value.Items.Value.AnyOf) != 2 {
			t.Errorf("ValidationError.loc items: want anyOf string/integer")
		}
		for _, prop := range []string{"loc", "msg", "type", "input", "ctx"} {
			if ve.Value.Properties[prop] == nil {
				t.Errorf("ValidationError.%s is missing", prop)
			}
		}
	}
}

// TestOpenAPISchemasAcceptRealResponses validates bodies written by the
// domain encoders (the bytes clients get) against the documented schemas,
// with the JSON Schema 2020-12 validator: null fields must be allowed, and
// the document cannot drift from what the service writes.
func TestOpenAPISchemasAcceptRealResponses(t *testing.T) {
	spec := loadSpec(t)
	now := time.Date(2026, 11, 26, 10, 20, 30, 123456000, time.UTC)
	score := 0.5
	full := domain.Analysis{
		ID: uuid.New(), OwnerID: uuid.New(), URL: "https://example.com/a", Title: "t",
		Status: domain.StatusCompleted, Score: &score, Tags: []string{"go"}, Version: 3,
		CreatedAt: now, UpdatedAt: now,
	}
	bare := full
	bare.Score, bare.Tags = nil, []string{}
	page := domain.Page{Data: []domain.Analysis{full, bare}, Count: 7}
	stats := domain.Stats{Total: 2, ByStatus: map[domain.Status]int64{domain.StatusCompleted: 2},
		TopTags: []domain.TagCount{{Tag: "go", Count: 1}}, ComputedAt: now}

	for _, tc := range []struct {
		component string
		body      []byte
	}{
		{"AnalysisPublic", full.AppendJSON(nil)},
		{"AnalysisPublic", bare.AppendJSON(nil)},
		{"AnalysesPublic", page.AppendJSON(nil)},
		{"AnalysisStats", stats.AppendJSON(nil)},
		{"HTTPValidationError", []byte(`{"detail":[{"type":"missing","loc":["body","items",0,"title"],"msg":"Field required","input":{}}]}`)},
	} {
		schema := spec.Components.Schemas[tc.component]
		if schema == nil {
			t.Errorf("component %s is missing", tc.component)
			continue
		}
		var v any
		if err := json.Unmarshal(tc.body, &v); err != nil {
			t.Fatalf("%s: %v", tc.component, err)
		}
		if err := schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
			t.Errorf("%s rejects %s: %v", tc.component, tc.body, err)
		}
	}
	// And the schema is not vacuous: a wrong body is rejected.
	var bad any
	_ = json.Unmarshal([]byte(`{"id":"x"}`), &bad)
	if err := spec.Components.Schemas["AnalysisPublic"].Value.VisitJSON(bad, openapi3.EnableJSONSchema2020()); err == nil {
		t.Error("AnalysisPublic accepts an object without its required fields")
	}
}

func TestOpenAPIHidesInternalRoutes(t *testing.T) {
	spec := loadSpec(t)
	for _, path := range []string{"/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"} {
		if spec.Paths.Find(path) != nil {
			t.Errorf("%s must not be in the schema", path)
		}
	}
}

func docsRouter() *gin.Engine {
	gin.SetMode(gin.TestMode)
	r := gin.New()
	registerDocs(r)
	return r
}

func docsRequest(r http.Handler, method, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest(method, target, nil))
	return w
}

// externalURL finds any absolute URL or protocol-relative reference in a page.
var externalURL = regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|cdn\.`)

// assetRef finds the src and href attributes of a page.
var assetRef = regexp.MustCompile(`(?:src|href)="([^"]+)"`)

func TestDocsRoutesServeOfflinePages(t *testing.T) {
	r := docsRouter()
	for _, path := range []string{"/docs", "/redoc", "/docs/oauth2-redirect", "/openapi.json"} {
		// Other methods are the fallback's 405 (TestDocsRoutesAreServed).
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			if w := docsRequest(r, method, path); w.Code != http.StatusOK {
				t.Errorf("%s %s = %d, want 200", method, path, w.Code)
			}
		}
	}

	for path, title := range map[string]string{
		"/docs":  "<title>Analysis Cache Service - Swagger UI</title>",
		"/redoc": "<title>Analysis Cache Service - ReDoc</title>",
	} {
		w := docsRequest(r, http.MethodGet, path)
		page := w.Body.String()
		if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s: Content-Type %q", path, ct)
		}
		if !strings.Contains(page, title) {
			t.Errorf("%s: want %s", path, title)
		}
		if !strings.Contains(page, "/openapi.json") {
			t.Errorf("%s does not load /openapi.json", path)
		}
		if m := externalURL.FindString(page); m != "" {
			t.Errorf("%s refers to another origin: %q", path, m)
		}
		refs := assetRef.FindAllStringSubmatch(page, -1)
		if len(refs) == 0 {
			t.Errorf("%s loads no assets", path)
		}
		for _, ref := range refs {
			a := docsRequest(r, http.MethodGet, ref[1])
			if a.Code != http.StatusOK || a.Body.Len() == 0 {
				t.Errorf("%s: asset %s = %d (%d bytes)", path, ref[1], a.Code, a.Body.Len())
			}
		}
	}
	if page := docsRequest(r, http.MethodGet, "/docs").Body.String(); !strings.Contains(page, "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'") {
		t.Error("/docs: oauth2RedirectUrl is not /docs/oauth2-redirect")
	}
	if m := externalURL.FindString(docsRequest(r, http.MethodGet, "/docs/oauth2-redirect").Body.String()); m != "" {
		t.Errorf("/docs/oauth2-redirect refers to another origin: %q", m)
	}
}

func TestOpenAPIJSONIsServedCompact(t *testing.T) {
	w := docsRequest(docsRouter(), http.MethodGet, "/openapi.json")
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, docs.OpenAPIJSON); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w.Body.Bytes(), want.Bytes()) {
		t.Error("/openapi.json is not the committed document, compacted")
	}
}

func TestDocsAssetsNeverListDirectories(t *testing.T) {
	r := docsRouter()
	for _, path := range []string{
		"/static/swagger-ui/", "/static/redoc/", "/static/swagger-ui/.", "/static/redoc/.",
		"/static/redoc/missing.js",
		"/static/swagger-ui/../embed.go", "/static/redoc/%2e%2e/openapi.json",
	} {
		w := docsRequest(r, http.MethodGet, path)
		if w.Code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", path, w.Code)
		}
	}
	// The ReDoc licence travels with the bundle it covers.
	for _, path := range []string{"/static/redoc/LICENSE", "/static/redoc/redoc.standalone.js.LICENSE.txt"} {
		w := docsRequest(r, http.MethodGet, path)
		body, _ := io.ReadAll(w.Body)
		if w.Code != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s = %d", path, w.Code)
		}
	}
}

package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
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

// contractComponents are the component names the API fixes; generated
// clients use them as type names (docs/fastapi-compatibility.md, "What
// generated clients rely on").
var contractComponents = []string{
	"AnalysisPublic", "AnalysesPublic", "AnalysisCreate", "AnalysisUpdate", "AnalysisIngest",
	"AnalysisStatus", "BulkIngest", "BulkAccepted", "AnalysisStats", "StatusCounts", "TagCount",
	"CacheStats", "WriteBehindStats", "StampedeStats", "CacheInvalidate", "CacheInvalidated",
	"WriteBehindFlushed", "HTTPError", "HTTPValidationError", "ValidationError",
}

// requestComponents are the bodies; every other object component is a
// response and must list all its properties as required.
var requestComponents = []string{
	"AnalysisCreate", "AnalysisUpdate", "AnalysisIngest", "BulkIngest", "CacheInvalidate",
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

// The tests below are the rules that decide whether a client generated from
// this document (openapi-typescript, openapi-generator, orval...) has the
// same types as one generated from FastAPI's document for this API; see
// docs/fastapi-compatibility.md. clients/typescript runs
// such a client against the service (cmd/api/client_test.go).

// rawSpec is docs/openapi.json as plain JSON values: kin-openapi resolves
// $refs and drops what it does not model, and these tests are about the
// exact shapes a generator reads.
func rawSpec(t *testing.T) map[string]any {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(docs.OpenAPIJSON, &doc); err != nil {
		t.Fatalf("parse docs/openapi.json: %v", err)
	}
	return doc
}

// walkJSON calls visit for every object in v with its JSON pointer.
func walkJSON(v any, pointer string, visit func(pointer string, obj map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		visit(pointer, v)
		for _, k := range slices.Sorted(maps.Keys(v)) {
			walkJSON(v[k], pointer+"/"+k, visit)
		}
	case []any:
		for i, e := range v {
			walkJSON(e, fmt.Sprintf("%s/%d", pointer, i), visit)
		}
	}
}

// rawOperations returns "METHOD path" → operation object.
func rawOperations(doc map[string]any) map[string]map[string]any {
	ops := map[string]map[string]any{}
	for path, item := range doc["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			ops[strings.ToUpper(method)+" "+path] = op.(map[string]any)
		}
	}
	return ops
}

// TestOpenAPINoNullDefaults: FastAPI leaves None defaults out. With
// "default": null, openapi-typescript types the property as required
// (`summary: string | null`), so a PATCH sending only {title} would not
// compile.
func TestOpenAPINoNullDefaults(t *testing.T) {
	walkJSON(rawSpec(t), "#", func(pointer string, obj map[string]any) {
		if d, ok := obj["default"]; ok && d == nil {
			t.Errorf(`%s: "default": null`, pointer)
		}
	})
	// And the optional nullable fields are really optional.
	schemas := rawSpec(t)["components"].(map[string]any)["schemas"].(map[string]any)
	for name, want := range map[string][]string{
		"AnalysisCreate":  {"owner_id", "url", "title"},
		"AnalysisIngest":  {"owner_id", "url", "title"},
		"AnalysisUpdate":  nil,
		"CacheInvalidate": nil,
	} {
		var got []string
		if req, ok := schemas[name].(map[string]any)["required"].([]any); ok {
			for _, r := range req {
				got = append(got, r.(string))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: required %v, want %v", name, got, want)
		}
	}
}

// TestOpenAPIHeaderParametersAreNamedAsFastAPI: FastAPI's Header() turns
// if_match into "if-match"; generated clients key headers by that name.
func TestOpenAPIHeaderParametersAreNamedAsFastAPI(t *testing.T) {
	ops := rawOperations(rawSpec(t))
	headers := map[string][]string{}
	for where, op := range ops {
		params, _ := op["parameters"].([]any)
		for _, p := range params {
			param := p.(map[string]any)
			if param["in"] == "header" {
				headers[where] = append(headers[where], param["name"].(string))
			}
		}
	}
	want := map[string][]string{
		"GET /api/v1/analyses/{analysis_id}":    {"if-none-match"},
		"PATCH /api/v1/analyses/{analysis_id}":  {"if-match"},
		"DELETE /api/v1/analyses/{analysis_id}": {"if-match"},
	}
	if !reflect.DeepEqual(headers, want) {
		t.Errorf("header parameters %v, want %v", headers, want)
	}
}

// TestOpenAPIStatusIsOneEnumComponent: Pydantic writes an Enum class once,
// as a component, and refers to it; generated clients get one
// AnalysisStatus type instead of a string union per use.
func TestOpenAPIStatusIsOneEnumComponent(t *testing.T) {
	doc := rawSpec(t)
	var want []any
	for _, s := range domain.Statuses {
		want = append(want, string(s))
	}
	// The constants swag reads are the domain's statuses.
	for i, s := range []AnalysisStatus{statusPending, statusProcessing, statusCompleted, statusFailed} {
		if string(s) != want[i] {
			t.Errorf("api status constant %d = %q, domain has %q", i, s, want[i])
		}
	}
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	component, _ := schemas["AnalysisStatus"].(map[string]any)
	wantComponent := map[string]any{"type": "string", "enum": want, "title": "AnalysisStatus"}
	if !reflect.DeepEqual(component, wantComponent) {
		t.Errorf("AnalysisStatus = %v, want %v", component, wantComponent)
	}
	walkJSON(doc, "#", func(pointer string, obj map[string]any) {
		if pointer != "#/components/schemas/AnalysisStatus" && reflect.DeepEqual(obj["enum"], want) {
			t.Errorf("%s inlines the status enum instead of $ref AnalysisStatus", pointer)
		}
	})
	ref := map[string]any{"$ref": "#/components/schemas/AnalysisStatus"}
	for name, wantStatus := range map[string]map[string]any{
		"AnalysisPublic": ref,
		"AnalysisUpdate": ref,
		"AnalysisCreate": {"$ref": ref["$ref"], "default": "pending"},
		"AnalysisIngest": {"$ref": ref["$ref"], "default": "pending"},
	} {
		got := schemas[name].(map[string]any)["properties"].(map[string]any)["status"]
		if !reflect.DeepEqual(got, wantStatus) {
			t.Errorf("%s.status = %v, want %v", name, got, wantStatus)
		}
	}
	list := rawOperations(doc)["GET /api/v1/analyses"]
	found := false
	for _, p := range list["parameters"].([]any) {
		param := p.(map[string]any)
		if param["name"] != "status" {
			continue
		}
		found = true
		wantSchema := map[string]any{"anyOf": []any{ref, map[string]any{"type": "null"}}, "title": "Status"}
		if !reflect.DeepEqual(param["schema"], wantSchema) {
			t.Errorf("GET /api/v1/analyses ?status schema = %v, want %v", param["schema"], wantSchema)
		}
	}
	if !found {
		t.Error("GET /api/v1/analyses has no status parameter")
	}
}

// TestOpenAPIBodiesAndAnswersUseContractComponents: the request body and
// the success answer of each operation are the components the contract
// names, so generated clients have those type names.
func TestOpenAPIBodiesAndAnswersUseContractComponents(t *testing.T) {
	ops := rawOperations(rawSpec(t))
	schemaRef := func(holder any) string {
		h, _ := holder.(map[string]any)
		content, _ := h["content"].(map[string]any)
		media, _ := content["application/json"].(map[string]any)
		schema, _ := media["schema"].(map[string]any)
		ref, _ := schema["$ref"].(string)
		return strings.TrimPrefix(ref, "#/components/schemas/")
	}
	for where, want := range map[string][3]string{ // body, success status, answer
		"POST /api/v1/analyses":                 {"AnalysisCreate", "201", "AnalysisPublic"},
		"GET /api/v1/analyses":                  {"", "200", "AnalysesPublic"},
		"GET /api/v1/analyses/{analysis_id}":    {"", "200", "AnalysisPublic"},
		"PATCH /api/v1/analyses/{analysis_id}":  {"AnalysisUpdate", "200", "AnalysisPublic"},
		"DELETE /api/v1/analyses/{analysis_id}": {"", "204", ""},
		"POST /api/v1/analyses/bulk":            {"BulkIngest", "202", "BulkAccepted"},
		"GET /api/v1/analyses/stats":            {"", "200", "AnalysisStats"},
		"GET /api/v1/users/{owner_id}/analyses": {"", "200", "AnalysesPublic"},
		"GET /api/v1/cache/stats":               {"", "200", "CacheStats"},
		"POST /api/v1/cache/invalidate":         {"CacheInvalidate", "200", "CacheInvalidated"},
		"POST /api/v1/cache/write-behind/flush": {"", "200", "WriteBehindFlushed"},
	} {
		op := ops[where]
		if op == nil {
			t.Errorf("%s is missing", where)
			continue
		}
		if got := schemaRef(op["requestBody"]); got != want[0] {
			t.Errorf("%s: body %q, want %q", where, got, want[0])
		}
		responses := op["responses"].(map[string]any)
		if responses[want[1]] == nil {
			t.Errorf("%s: no %s response", where, want[1])
		} else if got := schemaRef(responses[want[1]]); got != want[2] {
			t.Errorf("%s: %s answer %q, want %q", where, want[1], got, want[2])
		}
	}
}

// errorResponses is the contract's list of documented error statuses per
// operation (besides 422), with FastAPI's descriptions.
var errorResponses = map[string]map[string]string{
	"POST /api/v1/analyses":                 {"409": "Conflict", "413": "Request Entity Too Large", "503": "Service Unavailable"},
	"GET /api/v1/analyses":                  {"503": "Service Unavailable"},
	"GET /api/v1/analyses/{analysis_id}":    {"304": "Not Modified", "404": "Not Found", "503": "Service Unavailable"},
	"PATCH /api/v1/analyses/{analysis_id}":  {"404": "Not Found", "412": "Precondition Failed", "413": "Request Entity Too Large", "503": "Service Unavailable"},
	"DELETE /api/v1/analyses/{analysis_id}": {"404": "Not Found", "412": "Precondition Failed", "503": "Service Unavailable"},
	"POST /api/v1/analyses/bulk":            {"413": "Request Entity Too Large", "503": "Service Unavailable"},
	"GET /api/v1/analyses/stats":            {"503": "Service Unavailable"},
	"GET /api/v1/users/{owner_id}/analyses": {"503": "Service Unavailable"},
	"GET /api/v1/cache/stats":               {"401": "Unauthorized", "503": "Service Unavailable"},
	"POST /api/v1/cache/invalidate":         {"401": "Unauthorized", "413": "Request Entity Too Large", "503": "Service Unavailable"},
	"POST /api/v1/cache/write-behind/flush": {"401": "Unauthorized", "503": "Service Unavailable"},
	"GET /health":                           {},
	"GET /ready":                            {"503": "Service Unavailable"},
}

// TestOpenAPIErrorResponsesAreFastAPIs checks every response of every
// operation against what FastAPI's `responses={404: {"model": HTTPError,
// "description": "Not Found"}}` writes: exactly the contract's statuses,
// each {"description", "content": {"application/json": {"schema": $ref}}},
// 304 with a description only, and a 422 with HTTPValidationError exactly
// when the operation has parameters or a body.
func TestOpenAPIErrorResponsesAreFastAPIs(t *testing.T) {
	ops := rawOperations(rawSpec(t))
	withSchema := func(description, component string) map[string]any {
		return map[string]any{"description": description, "content": map[string]any{
			"application/json": map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/" + component}},
		}}
	}
	for where, op := range ops {
		want, ok := errorResponses[where]
		if !ok {
			t.Errorf("%s: not in the contract's error table", where)
			continue
		}
		responses := op["responses"].(map[string]any)
		var got []string
		for code, r := range responses {
			if strings.HasPrefix(code, "2") {
				if d := r.(map[string]any)["description"]; d != "Successful Response" {
					t.Errorf("%s %s: description %q, want Successful Response", where, code, d)
				}
				continue
			}
			if code == "422" {
				continue
			}
			got = append(got, code)
			var wantResp map[string]any
			switch {
			case code == "304":
				wantResp = map[string]any{"description": want[code]}
			case where == "GET /ready":
				wantResp = withSchema(want[code], "ReadyStatus") // the readiness body names the failed check
			default:
				wantResp = withSchema(want[code], "HTTPError")
			}
			if !reflect.DeepEqual(r, wantResp) {
				t.Errorf("%s %s = %v, want %v", where, code, r, wantResp)
			}
		}
		slices.Sort(got)
		if wantCodes := slices.Sorted(maps.Keys(want)); !slices.Equal(got, wantCodes) {
			t.Errorf("%s: error statuses %v, want %v", where, got, wantCodes)
		}
		params, _ := op["parameters"].([]any)
		_, hasBody := op["requestBody"]
		r422, has422 := responses["422"]
		switch {
		case len(params) > 0 || hasBody:
			if !reflect.DeepEqual(r422, withSchema("Validation Error", "HTTPValidationError")) {
				t.Errorf("%s 422 = %v, want FastAPI's Validation Error", where, r422)
			}
		case has422:
			t.Errorf("%s has neither parameters nor a body but documents a 422", where)
		}
	}
	for where := range errorResponses {
		if ops[where] == nil {
			t.Errorf("%s is missing from the document", where)
		}
	}
}

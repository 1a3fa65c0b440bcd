package api

import (
	"encoding/json"
	"testing"

	"github.com/analysis-cache/service/docs"
)

// schemaExample builds the body Swagger UI's "Try it out" starts from for
// the component name: each property's "example" (inside the first anyOf
// branch for a nullable one), else its "default"; any other property but a
// $ref is left out and reported in missing.
func schemaExample(t *testing.T, name string) (body map[string]any, missing []string) {
	t.Helper()
	var spec struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(docs.OpenAPIJSON, &spec); err != nil {
		t.Fatal(err)
	}
	schema, ok := spec.Components.Schemas[name]
	if !ok || len(schema.Properties) == 0 {
		t.Fatalf("component %s has no properties", name)
	}
	body = map[string]any{}
	for prop, p := range schema.Properties {
		if anyOf, ok := p["anyOf"].([]any); ok {
			p = anyOf[0].(map[string]any)
		}
		if v, ok := p["example"]; ok {
			body[prop] = v
		} else if v, ok := p["default"]; ok {
			body[prop] = v
		} else if _, isRef := p["$ref"]; !isRef {
			// A $ref (AnalysisStatus) starts from the enum's first value.
			missing = append(missing, prop)
		}
	}
	return body, missing
}

func parseExample(t *testing.T, body any) *jsonValue {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	v, syntaxErr, refused := parsePythonJSON(string(raw))
	if syntaxErr != nil || refused {
		t.Fatalf("example %s does not parse: %v", raw, syntaxErr)
	}
	return v
}

// TestOpenAPIRequestExamplesAreValid: the request bodies built from the
// document's examples (what "Try it out" sends) pass the service's own
// validation, with a realistic URL rather than text generated from the
// pattern. Only AnalysisIngest's id has no example (an idempotency key the
// client chooses).
func TestOpenAPIRequestExamplesAreValid(t *testing.T) {
	const wantURL = "https://example.com/article"
	for _, name := range []string{"AnalysisCreate", "AnalysisUpdate", "AnalysisIngest", "AnalysisPublic"} {
		body, missing := schemaExample(t, name)
		for _, prop := range missing {
			if name != "AnalysisIngest" || prop != "id" {
				t.Errorf("%s.%s has no example", name, prop)
			}
		}
		if body["url"] != wantURL {
			t.Errorf("%s.url example = %v, want %s", name, body["url"], wantURL)
		}
		var e valErrors
		switch name {
		case "AnalysisCreate":
			if a := e.validateCreate(parseExample(t, body)); a != nil && a.URL != wantURL {
				t.Errorf("AnalysisCreate example stored url %q", a.URL)
			}
		case "AnalysisUpdate":
			if p := e.validateUpdate(parseExample(t, body)); p.URL == nil || *p.URL != wantURL {
				t.Errorf("AnalysisUpdate example changes url to %v", p.URL)
			}
		case "AnalysisIngest":
			items := e.validateBulk(parseExample(t, map[string]any{"items": []any{body}}))
			if len(items) != 1 || items[0].URL != wantURL {
				t.Errorf("BulkIngest example gives %+v", items)
			}
		case "AnalysisPublic":
			// A response: its example documents a stored analysis, which
			// is also a valid create body once the read-only fields go.
			for _, readOnly := range []string{"id", "version", "created_at", "updated_at"} {
				delete(body, readOnly)
			}
			e.validateCreate(parseExample(t, body))
		}
		for _, err := range e {
			t.Errorf("%s example: %s at %v: %s", name, err.typ, err.loc, err.msg)
		}
	}
}

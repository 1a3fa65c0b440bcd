package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// swagLike is what swag writes for the ruled components when their fields
// carry no constraint (names and types only).
func swagLike() (schemas, paths map[string]any) {
	str := func() map[string]any { return map[string]any{"type": "string"} }
	analysis := func(extra ...string) map[string]any {
		props := map[string]any{
			"owner_id": str(), "url": str(), "title": str(),
			"status":  map[string]any{"$ref": "#/components/schemas/AnalysisStatus"},
			"summary": str(), "score": map[string]any{"type": "number"},
			"tags":  map[string]any{"type": "array", "items": str()},
			"notes": str(),
		}
		for _, e := range extra {
			props[e] = str()
		}
		return map[string]any{"type": "object", "properties": props}
	}
	public := analysis("id", "created_at", "updated_at")
	public["properties"].(map[string]any)["version"] = map[string]any{"type": "integer"}
	schemas = map[string]any{
		"AnalysisStatus": map[string]any{"type": "string", "enum": []any{"pending", "processing", "completed", "failed"}},
		"AnalysisPublic": public,
		"AnalysisCreate": analysis(),
		"AnalysisUpdate": analysis(),
		"AnalysisIngest": analysis("id"),
		"BulkIngest": map[string]any{"type": "object", "properties": map[string]any{
			"items": map[string]any{"type": "array", "items": map[string]any{"$ref": "#/components/schemas/AnalysisIngest"}},
		}},
	}
	paths = map[string]any{"/x": map[string]any{"get": map[string]any{"parameters": []any{
		map[string]any{"name": "limit", "in": "query", "schema": map[string]any{"type": "integer"}},
	}}}}
	return schemas, paths
}

func prop(schemas map[string]any, component, name string) map[string]any {
	return schemas[component].(map[string]any)["properties"].(map[string]any)[name].(map[string]any)
}

func TestApplyRulesWritesTheDeclarations(t *testing.T) {
	schemas, paths := swagLike()
	if err := applyRules(schemas, paths); err != nil {
		t.Fatal(err)
	}
	n := func(s string) json.Number { return json.Number(s) }
	for _, tc := range []struct {
		component, prop string
		want            map[string]any
	}{
		{"AnalysisCreate", "url", map[string]any{"type": "string", "minLength": n("1"), "maxLength": n("2048"), "pattern": `^https?://\S+$`}},
		{"AnalysisCreate", "status", map[string]any{"$ref": "#/components/schemas/AnalysisStatus", "default": "pending"}},
		{"AnalysisUpdate", "status", map[string]any{"$ref": "#/components/schemas/AnalysisStatus"}},
		{"AnalysisPublic", "score", map[string]any{"type": "number", "minimum": n("0"), "maximum": n("1"), "x-nullable": true}},
		{"AnalysisPublic", "version", map[string]any{"type": "integer", "minimum": n("1")}},
		{"AnalysisPublic", "id", map[string]any{"type": "string", "format": "uuid"}},
		{"AnalysisIngest", "id", map[string]any{"type": "string", "format": "uuid", "x-nullable": true}},
		{"AnalysisPublic", "tags", map[string]any{"type": "array", "maxItems": n("20"),
			"items": map[string]any{"type": "string", "minLength": n("1"), "maxLength": n("50")}}},
		{"BulkIngest", "items", map[string]any{"type": "array", "minItems": n("1"), "maxItems": n("1000"),
			"items": map[string]any{"$ref": "#/components/schemas/AnalysisIngest"}}},
	} {
		if got := prop(schemas, tc.component, tc.prop); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s.%s = %v, want %v", tc.component, tc.prop, got, tc.want)
		}
	}
	limit := paths["/x"].(map[string]any)["get"].(map[string]any)["parameters"].([]any)[0].(map[string]any)["schema"]
	if want := map[string]any{"type": "integer", "minimum": n("1"), "maximum": n("100"), "default": n("20")}; !reflect.DeepEqual(limit, want) {
		t.Errorf("limit = %v, want %v", limit, want)
	}
}

// TestApplyRulesRefusesASecondSource: a constraint in an annotation, a
// property without a declaration, a type or an enum that disagrees with
// the declaration each fail the generation.
func TestApplyRulesRefusesASecondSource(t *testing.T) {
	for name, tc := range map[string]struct {
		change func(schemas, paths map[string]any)
		want   string
	}{
		"maxLength tag": {func(s, _ map[string]any) { prop(s, "AnalysisUpdate", "title")["maxLength"] = json.Number("5") }, `states "maxLength"`},
		"nullable tag":  {func(s, _ map[string]any) { prop(s, "AnalysisCreate", "title")["x-nullable"] = true }, `states "x-nullable"`},
		"item tag": {func(s, _ map[string]any) {
			prop(s, "AnalysisCreate", "tags")["items"].(map[string]any)["maxLength"] = json.Number("9")
		}, `items: the annotation states "maxLength"`},
		"param default": {func(_, p map[string]any) {
			p["/x"].(map[string]any)["get"].(map[string]any)["parameters"].([]any)[0].(map[string]any)["schema"].(map[string]any)["default"] = 5
		}, `parameter limit: the annotation states "default"`},
		"undeclared property": {func(s, _ map[string]any) {
			s["AnalysisCreate"].(map[string]any)["properties"].(map[string]any)["colour"] = map[string]any{"type": "string"}
		}, "AnalysisCreate.colour: no field declaration"},
		"type": {func(s, _ map[string]any) { prop(s, "AnalysisPublic", "version")["type"] = "string" }, "type string, the declaration says integer"},
		"enum": {func(s, _ map[string]any) {
			s["AnalysisStatus"].(map[string]any)["enum"] = []any{"pending", "done"}
		}, "has the values"},
	} {
		schemas, paths := swagLike()
		tc.change(schemas, paths)
		err := applyRules(schemas, paths)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
	// And the fixture itself is accepted (the failures above are the changes).
	schemas, paths := swagLike()
	if err := applyRules(schemas, paths); err != nil {
		t.Fatal(err)
	}
}

package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// reshape turns swag's OpenAPI 3.1 output into what FastAPI (Pydantic v2)
// writes for the same API:
//   - component names without Go package prefixes ("api.X" → "X");
//   - the constraints, formats, defaults and nullability of the Analysis
//     schemas and list parameters from domain's field declarations (rules.go);
//   - ValidationError and HTTPValidationError exactly as FastAPI defines them;
//   - `x-nullable` properties (pointer fields) as anyOf [{...}, {"type":"null"}],
//     never with "default": null: FastAPI leaves None defaults out, and a
//     generator such as openapi-typescript would make a property with a
//     default required in the client's types;
//   - an enum type (AnalysisStatus) as one component that every use refers
//     to with $ref, as Pydantic writes an Enum class: swag does that for
//     struct fields and inlines the enum of a parameter, which is rewritten
//     to the $ref here;
//   - a property that is a $ref keeps its "default" beside it (Pydantic v2
//     writes {"$ref": ..., "default": "pending"}) and nothing else;
//   - a "title" on every component and property (Pydantic's field title),
//     and on every parameter schema;
//   - optional parameters without a default as anyOf [..., null] and an
//     explicit "required" on every parameter;
//   - a 422 HTTPValidationError on every operation with parameters or a body;
//   - FastAPI's response descriptions ("Successful Response", "Validation Error");
//   - none of swag's noise ($ref siblings, uniqueItems:false, x-enum-varnames).
//
// fields is the Go field order of each component, used to check that every
// property swag produced comes from a known struct.
func reshape(doc map[string]any, fields map[string][]string) error {
	doc["openapi"] = "3.1.0"
	components := object(doc, "components")
	schemas := object(components, "schemas")
	if err := unprefix(doc, schemas); err != nil {
		return err
	}
	if err := applyRules(schemas, object(doc, "paths")); err != nil {
		return err
	}
	schemas["ValidationError"] = validationError()
	schemas["HTTPValidationError"] = httpValidationError()
	for name, s := range schemas {
		if name == "ValidationError" || name == "HTTPValidationError" {
			continue
		}
		schema, ok := s.(map[string]any)
		if !ok {
			return fmt.Errorf("component %s is not an object", name)
		}
		if err := reshapeComponent(name, schema, fields[name]); err != nil {
			return err
		}
	}
	enums := enumComponents(schemas)
	securitySchemes := object(components, "securitySchemes")
	securitySchemes["HTTPBearer"] = map[string]any{"type": "http", "scheme": "bearer"}

	paths := object(doc, "paths")
	for path, item := range paths {
		if undocumented(path) {
			delete(paths, path)
			continue
		}
		for method, op := range item.(map[string]any) {
			operation, ok := op.(map[string]any)
			if !ok {
				return fmt.Errorf("%s %s is not an object", method, path)
			}
			reshapeOperation(operation, enums)
		}
	}
	clean(doc)
	return nil
}

// undocumented reports paths FastAPI leaves out of its own schema.
func undocumented(path string) bool {
	switch path {
	case "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json":
		return true
	}
	return strings.HasPrefix(path, "/static/")
}

// object returns m[key] as an object, creating it when absent.
func object(m map[string]any, key string) map[string]any {
	o, ok := m[key].(map[string]any)
	if !ok {
		o = map[string]any{}
		m[key] = o
	}
	return o
}

// unprefix renames components such as "api.AnalysisPublic" (a type without
// a `// @name` override) to their type name and rewrites every $ref to them.
func unprefix(doc, schemas map[string]any) error {
	renames := map[string]string{}
	for name := range schemas {
		i := strings.LastIndexByte(name, '.')
		if i < 0 {
			continue
		}
		short := name[i+1:]
		if _, taken := schemas[short]; taken {
			return fmt.Errorf("component %s: %s already exists; give one an @name", name, short)
		}
		renames["#/components/schemas/"+name] = "#/components/schemas/" + short
		schemas[short] = schemas[name]
		delete(schemas, name)
	}
	if len(renames) > 0 {
		rewriteRefs(doc, renames)
	}
	return nil
}

func rewriteRefs(v any, renames map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		if ref, ok := v["$ref"].(string); ok {
			if to, ok := renames[ref]; ok {
				v["$ref"] = to
			}
		}
		for _, e := range v {
			rewriteRefs(e, renames)
		}
	case []any:
		for _, e := range v {
			rewriteRefs(e, renames)
		}
	}
}

func reshapeComponent(name string, schema map[string]any, order []string) error {
	schema["title"] = name
	props, _ := schema["properties"].(map[string]any)
	if len(props) == 0 {
		return nil
	}
	required := map[string]bool{}
	if list, ok := schema["required"].([]any); ok {
		for _, r := range list {
			required[r.(string)] = true
		}
	}
	for prop, p := range props {
		if !slices.Contains(order, prop) {
			return fmt.Errorf("component %s: property %s has no Go field (is the struct in the api package?)", name, prop)
		}
		ps, ok := p.(map[string]any)
		if !ok {
			return fmt.Errorf("component %s: property %s is not an object", name, prop)
		}
		props[prop] = reshapeProperty(prop, ps, required[prop])
	}
	if len(required) > 0 {
		// Pydantic lists required fields in field order; swag sorts them.
		var inOrder []any
		for _, f := range order {
			if required[f] {
				inOrder = append(inOrder, f)
			}
		}
		schema["required"] = inOrder
	}
	return nil
}

// reshapeProperty applies Pydantic's shape to one property schema.
func reshapeProperty(name string, p map[string]any, required bool) map[string]any {
	if _, isRef := p["$ref"]; isRef {
		// Pydantic writes a model- or enum-typed field as a bare $ref, with
		// the field's default (if any) beside it.
		def, hasDefault := p["default"]
		dropRefSiblings(p)
		if hasDefault && def != nil {
			p["default"] = def
		}
		return p
	}
	nullable := p["x-nullable"] == true
	delete(p, "x-nullable")
	if nullable {
		description, hasDescription := p["description"]
		delete(p, "description")
		p = map[string]any{"anyOf": []any{p, map[string]any{"type": "null"}}}
		if hasDescription {
			p["description"] = description
		}
	}
	if p["default"] == nil {
		delete(p, "default") // FastAPI never writes "default": null
	}
	p["title"] = pythonTitle(name)
	return p
}

// dropRefSiblings removes what swag writes next to a $ref (summary,
// description copied from a @Param); FastAPI's $ref stands alone.
func dropRefSiblings(s map[string]any) {
	if _, ok := s["$ref"]; !ok {
		return
	}
	for k := range s {
		if k != "$ref" {
			delete(s, k)
		}
	}
}

// enumComponents maps the values of every enum component (joined by "|")
// to its name.
func enumComponents(schemas map[string]any) map[string]string {
	enums := map[string]string{}
	for name, s := range schemas {
		if values, ok := s.(map[string]any)["enum"].([]any); ok {
			enums[enumKey(values)] = name
		}
	}
	return enums
}

func enumKey(values []any) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = fmt.Sprint(v)
	}
	return strings.Join(parts, "|")
}

func reshapeOperation(op map[string]any, enums map[string]string) {
	params, _ := op["parameters"].([]any)
	for _, p := range params {
		param := p.(map[string]any)
		required := param["required"] == true
		param["required"] = required
		schema := object(param, "schema")
		if values, ok := schema["enum"].([]any); ok && enums[enumKey(values)] != "" {
			// swag inlines a parameter's enum type; FastAPI refers to the component.
			schema = map[string]any{"$ref": "#/components/schemas/" + enums[enumKey(values)]}
			param["schema"] = schema
		}
		_, hasDefault := schema["default"]
		name, _ := param["name"].(string)
		if !required && !hasDefault {
			schema = map[string]any{"anyOf": []any{schema, map[string]any{"type": "null"}}}
			param["schema"] = schema
		}
		schema["title"] = pythonTitle(name)
	}
	body, hasBody := op["requestBody"].(map[string]any)
	if hasBody {
		delete(body, "description")
		for _, media := range object(body, "content") {
			if s, ok := media.(map[string]any)["schema"].(map[string]any); ok {
				dropRefSiblings(s)
			}
		}
	}
	responses := object(op, "responses")
	if len(params) > 0 || hasBody {
		responses["422"] = map[string]any{
			"description": "Validation Error",
			"content": map[string]any{"application/json": map[string]any{
				"schema": map[string]any{"$ref": "#/components/schemas/HTTPValidationError"},
			}},
		}
	}
	success := successCode(responses)
	for code, r := range responses {
		resp := r.(map[string]any)
		if code == success {
			// FastAPI's words for the route's own status code, whatever swag wrote.
			resp["description"] = "Successful Response"
		}
		for _, media := range object(resp, "content") {
			if s, ok := media.(map[string]any)["schema"].(map[string]any); ok {
				dropRefSiblings(s)
			}
		}
		if len(resp["content"].(map[string]any)) == 0 {
			delete(resp, "content")
		}
	}
}

// successCode is the operation's own status code: its lowest 2xx response.
func successCode(responses map[string]any) string {
	best := ""
	for code := range responses {
		if status, err := strconv.Atoi(code); err == nil && status >= 200 && status < 300 && (best == "" || code < best) {
			best = code
		}
	}
	return best
}

// clean removes swag's noise anywhere in the document.
func clean(v any) {
	switch v := v.(type) {
	case map[string]any:
		if v["uniqueItems"] == false {
			delete(v, "uniqueItems")
		}
		delete(v, "x-enum-varnames")
		delete(v, "x-enum-comments")
		delete(v, "x-enum-descriptions")
		for _, e := range v {
			clean(e)
		}
	case []any:
		for _, e := range v {
			clean(e)
		}
	}
}

// pythonTitle is Pydantic's default title for a field: Python's str.title()
// with underscores as spaces ("owner_id" → "Owner Id").
func pythonTitle(name string) string {
	var b strings.Builder
	prevLetter := false
	for _, r := range name {
		switch {
		case unicode.IsLetter(r) && !prevLetter:
			b.WriteRune(unicode.ToUpper(r))
		case unicode.IsLetter(r):
			b.WriteRune(unicode.ToLower(r))
		case r == '_':
			b.WriteRune(' ')
		default:
			b.WriteRune(r)
		}
		prevLetter = unicode.IsLetter(r)
	}
	return b.String()
}

// validationError is FastAPI's ValidationError component, verbatim.
func validationError() map[string]any {
	return map[string]any{
		"title": "ValidationError",
		"type":  "object",
		"properties": map[string]any{
			"loc": map[string]any{
				"title": "Location",
				"type":  "array",
				"items": map[string]any{"anyOf": []any{
					map[string]any{"type": "string"},
					map[string]any{"type": "integer"},
				}},
			},
			"msg":   map[string]any{"title": "Message", "type": "string"},
			"type":  map[string]any{"title": "Error Type", "type": "string"},
			"input": map[string]any{"title": "Input"},
			"ctx":   map[string]any{"title": "Context", "type": "object"},
		},
		"required": []any{"loc", "msg", "type"},
	}
}

// httpValidationError is FastAPI's HTTPValidationError component, verbatim.
func httpValidationError() map[string]any {
	return map[string]any{
		"title": "HTTPValidationError",
		"type":  "object",
		"properties": map[string]any{
			"detail": map[string]any{
				"title": "Detail",
				"type":  "array",
				"items": map[string]any{"$ref": "#/components/schemas/ValidationError"},
			},
		},
	}
}

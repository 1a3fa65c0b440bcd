package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// keyRank orders the keys of an object that is not a schema the way
// FastAPI writes them; keys not listed follow, alphabetically. A fixed order
// (never a map's) makes the output byte-stable.
var keyRank = rankOf(
	"openapi", "info", "tags", "title", "summary", "description", "version", "externalDocs",
	"servers", "operationId", "name", "in", "required", "schema", "parameters", "requestBody",
	"content", "headers", "responses", "security", "paths", "components", "schemas",
	"securitySchemes", "type", "scheme", "url",
)

// schemaRank orders the keywords of a schema as Pydantic writes them:
// {"properties", "type", "required", "title"} for a model and
// {"type", constraints..., "format", "title", "default"} for a field.
var schemaRank = rankOf(
	"$ref", "properties", "type", "anyOf", "items", "minimum", "maximum", "minLength",
	"maxLength", "pattern", "minItems", "maxItems", "format", "enum", "additionalProperties",
	"required", "title", "default", "description",
)

func rankOf(keys ...string) map[string]int {
	m := make(map[string]int, len(keys))
	for i, k := range keys {
		if _, dup := m[k]; !dup {
			m[k] = i
		}
	}
	return m
}

// methodRank is the order of operations in a path item (the spec's order).
var methodRank = rankOf("get", "put", "post", "delete", "options", "head", "patch", "trace")

// orderedKeys returns m's keys in output order. parent is the key under
// which m sits; grand the one above it. The properties of a component keep
// the Go struct's field order (fields[component]).
func orderedKeys(m map[string]any, parent, grand string, fields map[string][]string, component string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	switch {
	case parent == "properties" && fields[component] != nil:
		pos := rankOf(fields[component]...)
		slices.SortStableFunc(keys, func(a, b string) int { return cmpRank(pos, a, b) })
	case grand == "paths":
		slices.SortStableFunc(keys, func(a, b string) int { return cmpRank(methodRank, a, b) })
	case parent == "paths", parent == "responses", parent == "schemas", parent == "properties",
		parent == "securitySchemes", parent == "headers", parent == "content":
		// alphabetical: paths, status codes, component names
	case isSchema(parent, grand):
		slices.SortStableFunc(keys, func(a, b string) int { return cmpRank(schemaRank, a, b) })
	default:
		slices.SortStableFunc(keys, func(a, b string) int { return cmpRank(keyRank, a, b) })
	}
	return keys
}

// isSchema reports whether the object under parent (itself under grand) is
// a JSON Schema: a component, a property, or what schema/items/anyOf hold.
func isSchema(parent, grand string) bool {
	switch {
	case parent == "schema", parent == "items", parent == "anyOf", parent == "additionalProperties":
		return true
	case grand == "properties", grand == "schemas":
		return true
	}
	return false
}

func cmpRank(rank map[string]int, a, b string) int {
	ra, oka := rank[a]
	rb, okb := rank[b]
	switch {
	case oka && okb:
		return ra - rb
	case oka:
		return -1
	case okb:
		return 1
	}
	return strings.Compare(a, b)
}

// walker carries what orderedKeys needs to know about the position in the document.
type walker struct {
	fields map[string][]string
}

// encodeJSON writes doc indented by two spaces, keys in output order
// (fields: the Go field order of each component), with a final newline.
func encodeJSON(doc map[string]any, fields map[string][]string) []byte {
	var buf bytes.Buffer
	w := walker{fields: fields}
	w.json(&buf, doc, "", "", "", 0)
	buf.WriteByte('\n')
	return buf.Bytes()
}

func (w walker) json(buf *bytes.Buffer, v any, parent, grand, component string, depth int) {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			buf.WriteString("{}")
			return
		}
		buf.WriteString("{\n")
		keys := orderedKeys(v, parent, grand, w.fields, component)
		for i, k := range keys {
			indent(buf, depth+1)
			writeJSONString(buf, k)
			buf.WriteString(": ")
			comp := component
			if parent == "schemas" && grand == "components" {
				comp = k
			}
			w.json(buf, v[k], k, parent, comp, depth+1)
			if i < len(keys)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		indent(buf, depth)
		buf.WriteByte('}')
	case []any:
		if len(v) == 0 {
			buf.WriteString("[]")
			return
		}
		buf.WriteString("[\n")
		for i, e := range v {
			indent(buf, depth+1)
			w.json(buf, e, parent, grand, component, depth+1)
			if i < len(v)-1 {
				buf.WriteByte(',')
			}
			buf.WriteByte('\n')
		}
		indent(buf, depth)
		buf.WriteByte(']')
	case string:
		writeJSONString(buf, v)
	case json.Number:
		buf.WriteString(v.String())
	case bool:
		if v {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case nil:
		buf.WriteString("null")
	default:
		b, _ := json.Marshal(v)
		buf.Write(b)
	}
}

func indent(buf *bytes.Buffer, depth int) {
	for range depth {
		buf.WriteString("  ")
	}
}

// writeJSONString writes s as a JSON string without HTML escaping (patterns
// and descriptions stay readable: `<`, `>` and `&` as themselves).
func writeJSONString(buf *bytes.Buffer, s string) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	buf.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// encodeYAML writes the same document as YAML, keys in the same order.
func encodeYAML(doc map[string]any, fields map[string][]string) ([]byte, error) {
	w := walker{fields: fields}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(w.yaml(doc, "", "", "")); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (w walker) yaml(v any, parent, grand, component string) *yaml.Node {
	switch v := v.(type) {
	case map[string]any:
		n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		for _, k := range orderedKeys(v, parent, grand, w.fields, component) {
			comp := component
			if parent == "schemas" && grand == "components" {
				comp = k
			}
			n.Content = append(n.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k},
				w.yaml(v[k], k, parent, comp))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		for _, e := range v {
			n.Content = append(n.Content, w.yaml(e, parent, grand, component))
		}
		return n
	case string:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
	case json.Number:
		tag := "!!int"
		if strings.ContainsAny(v.String(), ".eE") {
			tag = "!!float"
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v.String()}
	case bool:
		if v {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"}
		}
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false"}
	default:
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/analysis-cache/service/domain"
)

// The constraints of the Analysis resource's schemas and of the list
// parameters come from the field declarations in domain/rules.go, the one
// place they are written: the swag annotations carry the names, Go types,
// required-ness and examples only, and applyRules refuses a constraint
// written there, so no limit can be stated twice.

// componentRule says which declarations rule a component's properties.
type componentRule struct {
	fields []*domain.Field // looked up by name, the first match wins
	// defaults: an absent property takes the declared default (a PATCH
	// model has none: an absent field is left unchanged).
	defaults bool
}

var componentRules = map[string]componentRule{
	"AnalysisPublic": {fields: domain.AnalysisFields},
	"AnalysisCreate": {fields: domain.AnalysisFields, defaults: true},
	"AnalysisUpdate": {fields: domain.AnalysisFields},
	"AnalysisIngest": {fields: append([]*domain.Field{&domain.IngestIDField}, domain.AnalysisFields...), defaults: true},
	"BulkIngest":     {fields: []*domain.Field{&domain.BulkItemsField}},
}

// queryRules rule the query parameters of that name, in every operation.
var queryRules = []*domain.Field{&domain.SkipParam, &domain.LimitParam}

// declaredKeys are the keywords that only a declaration may write.
var declaredKeys = []string{
	"minLength", "maxLength", "pattern", "minimum", "maximum", "minItems", "maxItems",
	"format", "enum", "default", "x-nullable",
}

// applyRules writes the declared constraints into swag's output (component
// names already without their package prefix). It fails when a property
// of a ruled component has no declaration, when swag's type disagrees with
// the declared kind, when an annotation already states a constraint, and
// when an enum component's values are not the declared ones.
func applyRules(schemas, paths map[string]any) error {
	for name, rule := range componentRules {
		component, ok := schemas[name].(map[string]any)
		if !ok {
			return fmt.Errorf("component %s is missing", name)
		}
		props, _ := component["properties"].(map[string]any)
		for prop, p := range props {
			i := slices.IndexFunc(rule.fields, func(f *domain.Field) bool { return f.Name == prop })
			if i < 0 {
				return fmt.Errorf("%s.%s: no field declaration in domain/rules.go", name, prop)
			}
			if err := applyField(schemas, p.(map[string]any), rule.fields[i], rule.defaults); err != nil {
				return fmt.Errorf("%s.%s: %w", name, prop, err)
			}
		}
	}
	for path, item := range paths {
		for method, op := range item.(map[string]any) {
			params, _ := op.(map[string]any)["parameters"].([]any)
			for _, p := range params {
				param := p.(map[string]any)
				i := slices.IndexFunc(queryRules, func(f *domain.Field) bool { return f.Name == param["name"] })
				if param["in"] != "query" || i < 0 {
					continue
				}
				schema, _ := param["schema"].(map[string]any)
				if err := applyField(schemas, schema, queryRules[i], true); err != nil {
					return fmt.Errorf("%s %s parameter %s: %w", method, path, param["name"], err)
				}
			}
		}
	}
	return nil
}

// applyField writes f's constraints into the property schema p.
func applyField(schemas, p map[string]any, f *domain.Field, defaults bool) error {
	if p == nil {
		return fmt.Errorf("no schema")
	}
	for _, k := range declaredKeys {
		if _, ok := p[k]; ok {
			return fmt.Errorf("the annotation states %q: declare it in domain/rules.go only", k)
		}
	}
	wantType := map[domain.Kind]string{
		domain.KindString: "string", domain.KindUUID: "string", domain.KindDateTime: "string",
		domain.KindInteger: "integer", domain.KindNumber: "number", domain.KindList: "array",
	}[f.Kind]
	if f.Kind == domain.KindEnum {
		ref, _ := p["$ref"].(string)
		enum, ok := schemas[strings.TrimPrefix(ref, "#/components/schemas/")].(map[string]any)
		if !ok {
			return fmt.Errorf("an enum field is not a $ref to an enum component")
		}
		if !reflect.DeepEqual(enum["enum"], anySlice(f.Enum)) {
			return fmt.Errorf("%s has the values %v, the declaration %v", ref, enum["enum"], f.Enum)
		}
	} else if p["type"] != wantType {
		return fmt.Errorf("type %v, the declaration says %s", p["type"], wantType)
	}
	switch f.Kind {
	case domain.KindUUID:
		p["format"] = "uuid"
	case domain.KindDateTime:
		p["format"] = "date-time"
	case domain.KindString:
		if f.MinLength > 0 {
			p["minLength"] = json.Number(strconv.Itoa(f.MinLength))
		}
		if f.MaxLength > 0 {
			p["maxLength"] = json.Number(strconv.Itoa(f.MaxLength))
		}
		if f.Pattern != "" {
			p["pattern"] = f.Pattern
		}
	case domain.KindInteger, domain.KindNumber:
		if f.Minimum != nil {
			p["minimum"] = json.Number(strconv.FormatFloat(*f.Minimum, 'f', -1, 64))
		}
		if f.Maximum != nil {
			p["maximum"] = json.Number(strconv.FormatFloat(*f.Maximum, 'f', -1, 64))
		}
	case domain.KindList:
		if f.MinLength > 0 {
			p["minItems"] = json.Number(strconv.Itoa(f.MinLength))
		}
		if f.MaxLength > 0 {
			p["maxItems"] = json.Number(strconv.Itoa(f.MaxLength))
		}
		if f.Items != nil {
			items, _ := p["items"].(map[string]any)
			if err := applyField(schemas, items, f.Items, false); err != nil {
				return fmt.Errorf("items: %w", err)
			}
		}
	}
	if f.Nullable {
		p["x-nullable"] = true // reshapeProperty writes anyOf [..., null]
	}
	if defaults && f.Default != nil {
		switch d := f.Default.(type) {
		case int:
			p["default"] = json.Number(strconv.Itoa(d))
		default:
			p["default"] = d
		}
	}
	return nil
}

func anySlice(values []string) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = v
	}
	return out
}

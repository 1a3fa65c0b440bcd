package api

import (
	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
)

// The request models of the contract, validated field by field in
// declaration order with one error per field (the first rule that fails),
// as Pydantic v2 does. Unknown fields are ignored.

var (
	bodyLoc  = []any{"body"}
	itemsLoc = []any{"body", "items"}

	urlRule     = stringRule{min: 1, max: domain.MaxURLLength, url: true, stored: true}
	titleRule   = stringRule{min: 1, max: domain.MaxTitleLength, stored: true}
	summaryRule = stringRule{max: domain.MaxSummaryLength, stored: true}
	notesRule   = stringRule{max: domain.MaxNotesLength, stored: true}
	tagRule     = stringRule{min: 1, max: domain.MaxTagLength, stored: true}
)

// analysisCreate validates an AnalysisCreate object at prefix into a.
// withID adds AnalysisIngest's optional id, which comes last because
// AnalysisIngest subclasses AnalysisCreate (Pydantic orders inherited fields first).
func (e *valErrors) analysisCreate(prefix []any, obj *jsonValue, a *domain.Analysis, withID bool) {
	if v := obj.get("owner_id"); v == nil {
		e.missing(loc(prefix, "owner_id"), obj)
	} else {
		a.OwnerID, _ = e.uuidValue(loc(prefix, "owner_id"), v)
	}
	if v := obj.get("url"); v == nil {
		e.missing(loc(prefix, "url"), obj)
	} else {
		a.URL, _ = e.str(loc(prefix, "url"), v, urlRule)
	}
	if v := obj.get("title"); v == nil {
		e.missing(loc(prefix, "title"), obj)
	} else {
		a.Title, _ = e.str(loc(prefix, "title"), v, titleRule)
	}
	a.Status = domain.StatusPending
	if v := obj.get("status"); v != nil {
		a.Status, _ = e.status(loc(prefix, "status"), v)
	}
	a.Summary = e.optionalString(loc(prefix, "summary"), obj.get("summary"), summaryRule).Value
	a.Score = e.optionalScore(loc(prefix, "score"), obj.get("score")).Value
	a.Tags = []string{}
	if v := obj.get("tags"); v != nil {
		a.Tags, _ = e.tagList(loc(prefix, "tags"), v)
	}
	a.Notes = e.optionalString(loc(prefix, "notes"), obj.get("notes"), notesRule).Value
	if withID {
		if v := obj.get("id"); v != nil && v.kind != kindNull {
			a.ID, _ = e.uuidValue(loc(prefix, "id"), v)
		}
	}
}

// optionalString is a `str | None` field: absent, null (clears) or a string.
func (e *valErrors) optionalString(l []any, v *jsonValue, r stringRule) domain.Nullable[string] {
	if v == nil {
		return domain.Nullable[string]{}
	}
	if v.kind == kindNull {
		return domain.Nullable[string]{Set: true}
	}
	s, ok := e.str(l, v, r)
	if !ok {
		return domain.Nullable[string]{}
	}
	return domain.Nullable[string]{Set: true, Value: &s}
}

// optionalScore is `float | None` with 0 <= score <= 1.
func (e *valErrors) optionalScore(l []any, v *jsonValue) domain.Nullable[float64] {
	if v == nil {
		return domain.Nullable[float64]{}
	}
	if v.kind == kindNull {
		return domain.Nullable[float64]{Set: true}
	}
	f, ok := e.score(l, v)
	if !ok {
		return domain.Nullable[float64]{}
	}
	return domain.Nullable[float64]{Set: true, Value: &f}
}

// validateCreate validates the body of POST /api/v1/analyses.
func (e *valErrors) validateCreate(body *jsonValue) *domain.Analysis {
	if !e.modelObject(bodyLoc, body) {
		return nil
	}
	a := &domain.Analysis{}
	e.analysisCreate(bodyLoc, body, a, false)
	return a
}

// validateUpdate validates the body of PATCH: every field optional; null
// clears summary, score and notes and is an error for the others.
func (e *valErrors) validateUpdate(body *jsonValue) domain.AnalysisPatch {
	var p domain.AnalysisPatch
	if !e.modelObject(bodyLoc, body) {
		return p
	}
	if v := body.get("url"); v != nil {
		if s, ok := e.str(loc(bodyLoc, "url"), v, urlRule); ok {
			p.URL = &s
		}
	}
	if v := body.get("title"); v != nil {
		if s, ok := e.str(loc(bodyLoc, "title"), v, titleRule); ok {
			p.Title = &s
		}
	}
	if v := body.get("status"); v != nil {
		if s, ok := e.status(loc(bodyLoc, "status"), v); ok {
			p.Status = &s
		}
	}
	p.Summary = e.optionalString(loc(bodyLoc, "summary"), body.get("summary"), summaryRule)
	p.Score = e.optionalScore(loc(bodyLoc, "score"), body.get("score"))
	if v := body.get("tags"); v != nil {
		if tags, ok := e.tagList(loc(bodyLoc, "tags"), v); ok {
			p.Tags = &tags
		}
	}
	p.Notes = e.optionalString(loc(bodyLoc, "notes"), body.get("notes"), notesRule)
	return p
}

// validateBulk validates {"items": [AnalysisIngest, ...]} with 1..1000 items.
func (e *valErrors) validateBulk(body *jsonValue) []domain.Analysis {
	if !e.modelObject(bodyLoc, body) {
		return nil
	}
	v := body.get("items")
	if v == nil {
		e.missing(itemsLoc, body)
		return nil
	}
	var items []domain.Analysis
	if v.kind == kindArray && len(v.items) <= domain.MaxBulkItems {
		items = make([]domain.Analysis, len(v.items))
	}
	e.list(itemsLoc, v, 1, domain.MaxBulkItems, func(l []any, it *jsonValue) bool {
		before := len(*e)
		if e.modelObject(l, it) {
			e.analysisCreate(l, it, &items[l[len(l)-1].(int)], true)
		}
		return len(*e) == before
	})
	return items
}

// validateInvalidate validates the admin invalidation body: each selector
// is optional and nullable; after the fields, exactly one must be given
// (a model validator: value_error at ["body"]).
func (e *valErrors) validateInvalidate(body *jsonValue) cache.Selector {
	var s cache.Selector
	if !e.modelObject(bodyLoc, body) {
		return s
	}
	before := len(*e)
	given := 0
	strList := func(name string) []string {
		v := body.get(name)
		if v == nil || v.kind == kindNull {
			return nil
		}
		given++
		out := make([]string, 0, len(v.items))
		e.list(loc(bodyLoc, name), v, 0, 0, func(l []any, it *jsonValue) bool {
			str, ok := e.str(l, it, stringRule{})
			out = append(out, str)
			return ok
		})
		return out
	}
	str := func(name string) *string {
		v := body.get(name)
		if v == nil || v.kind == kindNull {
			return nil
		}
		given++
		if str, ok := e.str(loc(bodyLoc, name), v, stringRule{}); ok {
			return &str
		}
		return nil
	}
	s.Keys = strList("keys")
	s.Pattern = str("pattern")
	s.Tags = strList("tags")
	s.Namespace = str("namespace")
	if len(*e) == before && given != 1 {
		e.add("value_error", bodyLoc, "Value error, exactly one of keys, pattern, tags or namespace is required", body, `{"error":{}}`)
	}
	return s
}

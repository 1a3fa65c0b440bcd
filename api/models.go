package api

import (
	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
)

// The request models of the contract, validated field by field in
// declaration order with one error per field (the first rule that fails),
// as Pydantic v2 does. Unknown fields are ignored. Every name and limit
// comes from the field declarations in domain/rules.go.

var (
	bodyLoc  = []any{"body"}
	itemsLoc = []any{"body", domain.BulkItemsField.Name}

	urlRule     = storedString(&domain.URLField)
	titleRule   = storedString(&domain.TitleField)
	summaryRule = storedString(&domain.SummaryField)
	notesRule   = storedString(&domain.NotesField)
	tagRule     = storedString(domain.TagsField.Items)
	statusRule  = newEnumRule(&domain.StatusField)
	scoreRule   = newBoundRule(&domain.ScoreField)
	skipRule    = newBoundRule(&domain.SkipParam)
	limitRule   = newBoundRule(&domain.LimitParam)

	// The JSON names of the fields, declared with their rules.
	nameOwnerID = domain.OwnerIDField.Name
	nameURL     = domain.URLField.Name
	nameTitle   = domain.TitleField.Name
	nameStatus  = domain.StatusField.Name
	nameSummary = domain.SummaryField.Name
	nameScore   = domain.ScoreField.Name
	nameTags    = domain.TagsField.Name
	nameNotes   = domain.NotesField.Name
	nameID      = domain.IngestIDField.Name
)

// analysisCreate validates an AnalysisCreate object at prefix into a.
// withID adds AnalysisIngest's optional id, which comes last because
// AnalysisIngest subclasses AnalysisCreate (Pydantic orders inherited fields first).
func (e *valErrors) analysisCreate(prefix []any, obj *jsonValue, a *domain.Analysis, withID bool) {
	if v := obj.get(nameOwnerID); v == nil {
		e.missing(loc(prefix, nameOwnerID), obj)
	} else {
		a.OwnerID, _ = e.uuidValue(loc(prefix, nameOwnerID), v)
	}
	if v := obj.get(nameURL); v == nil {
		e.missing(loc(prefix, nameURL), obj)
	} else {
		a.URL, _ = e.str(loc(prefix, nameURL), v, urlRule)
	}
	if v := obj.get(nameTitle); v == nil {
		e.missing(loc(prefix, nameTitle), obj)
	} else {
		a.Title, _ = e.str(loc(prefix, nameTitle), v, titleRule)
	}
	a.Status = statusDefault
	if v := obj.get(nameStatus); v != nil {
		a.Status, _ = e.status(loc(prefix, nameStatus), v)
	}
	a.Summary = e.optionalString(loc(prefix, nameSummary), obj.get(nameSummary), summaryRule).Value
	a.Score = e.optionalScore(loc(prefix, nameScore), obj.get(nameScore)).Value
	a.Tags = []string{}
	if v := obj.get(nameTags); v != nil {
		a.Tags, _ = e.tagList(loc(prefix, nameTags), v)
	}
	a.Notes = e.optionalString(loc(prefix, nameNotes), obj.get(nameNotes), notesRule).Value
	if withID {
		if v := obj.get(nameID); v != nil && v.kind != kindNull {
			a.ID, _ = e.uuidValue(loc(prefix, nameID), v)
		}
	}
}

// statusDefault is the status of a created analysis that names none.
var statusDefault = domain.Status(domain.StatusField.Default.(string))

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
	if v := body.get(nameURL); v != nil {
		if s, ok := e.str(loc(bodyLoc, nameURL), v, urlRule); ok {
			p.URL = &s
		}
	}
	if v := body.get(nameTitle); v != nil {
		if s, ok := e.str(loc(bodyLoc, nameTitle), v, titleRule); ok {
			p.Title = &s
		}
	}
	if v := body.get(nameStatus); v != nil {
		if s, ok := e.status(loc(bodyLoc, nameStatus), v); ok {
			p.Status = &s
		}
	}
	p.Summary = e.optionalString(loc(bodyLoc, nameSummary), body.get(nameSummary), summaryRule)
	p.Score = e.optionalScore(loc(bodyLoc, nameScore), body.get(nameScore))
	if v := body.get(nameTags); v != nil {
		if tags, ok := e.tagList(loc(bodyLoc, nameTags), v); ok {
			p.Tags = &tags
		}
	}
	p.Notes = e.optionalString(loc(bodyLoc, nameNotes), body.get(nameNotes), notesRule)
	return p
}

// validateBulk validates {"items": [AnalysisIngest, ...]} (domain.BulkItemsField).
func (e *valErrors) validateBulk(body *jsonValue) []domain.Analysis {
	if !e.modelObject(bodyLoc, body) {
		return nil
	}
	v := body.get(domain.BulkItemsField.Name)
	if v == nil {
		e.missing(itemsLoc, body)
		return nil
	}
	var items []domain.Analysis
	minItems, maxItems := domain.BulkItemsField.MinLength, domain.BulkItemsField.MaxLength
	if v.kind == kindArray && len(v.items) <= maxItems {
		items = make([]domain.Analysis, len(v.items))
	}
	e.list(itemsLoc, v, minItems, maxItems, func(l []any, it *jsonValue) bool {
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

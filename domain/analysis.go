// Package domain holds the Analysis types, their rules, the error codes and
// the interfaces that repository/ and cache/ implement. It depends on nothing
// but the standard library and uuid.
package domain

import (
	"slices"
	"time"

	"github.com/google/uuid"
)

// Status is the processing state of an analysis.
type Status string

// The four statuses, in the order the contract lists them.
const (
	StatusPending    Status = "pending"
	StatusProcessing Status = "processing"
	StatusCompleted  Status = "completed"
	StatusFailed     Status = "failed"
)

// Statuses lists every valid Status in contract order.
var Statuses = []Status{StatusPending, StatusProcessing, StatusCompleted, StatusFailed}

// Valid reports whether s is one of Statuses.
func (s Status) Valid() bool { return slices.Contains(Statuses, s) }

// AnalysisKind names analyses wherever a resource is named: the invalidation
// log's resource column, the cache's keys ("analysis:{id}") and metric labels.
const AnalysisKind = "analysis"

// Analysis is one stored analysis: the row in Postgres and the value the
// caches hold. Notes is sensitive and must never reach Redis in plain text.
type Analysis struct {
	ID        uuid.UUID
	OwnerID   uuid.UUID
	URL       string
	Title     string
	Status    Status
	Summary   *string
	Score     *float64
	Tags      []string
	Notes     *string
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Nullable is a PATCH field that may be absent, null or a value.
// Set=false means "not sent"; Set=true with Value=nil means "clear it".
type Nullable[T any] struct {
	Set   bool
	Value *T
}

// AnalysisPatch is a validated PATCH: only the fields that were sent change.
// Nil pointers mean "not sent" (null is rejected for these by validation).
type AnalysisPatch struct {
	URL     *string
	Title   *string
	Status  *Status
	Tags    *[]string
	Summary Nullable[string]
	Score   Nullable[float64]
	Notes   Nullable[string]
}

// Apply changes a in place and reports whether any field changed. It does
// not touch Version or timestamps; the repository does that when it returns true.
func (p AnalysisPatch) Apply(a *Analysis) bool {
	changed := false
	if p.URL != nil && *p.URL != a.URL {
		a.URL, changed = *p.URL, true
	}
	if p.Title != nil && *p.Title != a.Title {
		a.Title, changed = *p.Title, true
	}
	if p.Status != nil && *p.Status != a.Status {
		a.Status, changed = *p.Status, true
	}
	if p.Tags != nil && !slices.Equal(*p.Tags, a.Tags) {
		a.Tags, changed = append([]string{}, (*p.Tags)...), true
	}
	if p.Summary.Set && !equalPtr(p.Summary.Value, a.Summary) {
		a.Summary, changed = clonePtr(p.Summary.Value), true
	}
	if p.Score.Set && !equalPtr(p.Score.Value, a.Score) {
		a.Score, changed = clonePtr(p.Score.Value), true
	}
	if p.Notes.Set && !equalPtr(p.Notes.Value, a.Notes) {
		a.Notes, changed = clonePtr(p.Notes.Value), true
	}
	return changed
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// ListFilter selects a page of analyses. Zero values mean "no filter".
// Order is always created_at descending, then id descending.
type ListFilter struct {
	OwnerID *uuid.UUID
	Status  *Status
	Tag     *string
	Skip    int
	Limit   int
}

// Page is one page of analyses and the number of all matching rows.
type Page struct {
	Data  []Analysis
	Count int64
}

// TagCount is one entry of Stats.TopTags.
type TagCount struct {
	Tag   string
	Count int64
}

// Stats is the aggregation over all analyses (AnalysisStats in the contract).
// ByStatus has an entry for every status, zero included.
type Stats struct {
	Total      int64
	ByStatus   map[Status]int64
	AvgScore   *float64
	TopTags    []TagCount
	ComputedAt time.Time
}

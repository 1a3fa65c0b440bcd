package domain

import (
	"context"

	"github.com/google/uuid"
)

// AnalysisRepository is the store of analyses. repository.Postgres implements
// it on Postgres; the shared test suite (repository/repotest) holds every
// implementation to the same contract.
//
// Every method returns an *Error with EUNAVAILABLE when Postgres cannot be
// reached, and wraps any other failure with context.
type AnalysisRepository interface {
	// Get returns the analysis with id. Returns ENOTFOUND if there is none.
	Get(ctx context.Context, id uuid.UUID) (*Analysis, error)

	// Create inserts a with Version 1 and CreatedAt = UpdatedAt = now (UTC,
	// microsecond precision), filling those fields of a. a.ID must be set.
	// Returns ECONFLICT if the id is taken. The returned Change was logged
	// in the same statement as the insert.
	Create(ctx context.Context, a *Analysis) (Change, error)

	// Update applies patch atomically. When ifVersion is not nil and differs
	// from the stored version it returns EPRECONDITION and changes nothing.
	// When the patch changes a field, Version grows by one and UpdatedAt is
	// set and the Change is logged atomically with it; otherwise the analysis
	// is returned unchanged with a zero Change. Returns ENOTFOUND.
	Update(ctx context.Context, id uuid.UUID, patch AnalysisPatch, ifVersion *int64) (*Analysis, Change, error)

	// Delete removes the analysis and returns it as it was (callers need its
	// owner and version to invalidate caches). When ifVersion is not nil and
	// differs it returns EPRECONDITION and deletes nothing. Returns ENOTFOUND.
	// The Change (Deleted, at the deleted version) is logged atomically with it.
	Delete(ctx context.Context, id uuid.UUID, ifVersion *int64) (*Analysis, Change, error)

	// List returns the page that filter selects and the count of all matches,
	// ordered by created_at descending then id descending.
	List(ctx context.Context, filter ListFilter) (Page, error)

	// ListByOwner is List with only an owner filter: the query behind the
	// read-through user list.
	ListByOwner(ctx context.Context, ownerID uuid.UUID, skip, limit int) (Page, error)

	// InsertMissing inserts the analyses whose id is not yet stored, in one
	// statement, and leaves existing rows untouched. It returns the ids it
	// inserted. Items must have distinct ids. It is idempotent: replaying the
	// same items inserts nothing. When it inserted any, one Change listing
	// them is logged atomically with them (Version 0); otherwise it is zero.
	InsertMissing(ctx context.Context, items []Analysis) ([]uuid.UUID, Change, error)

	// ExistingIDs returns those of ids that are stored, in one query, in no
	// particular order. Write-behind ingest uses it so that an item with a
	// client-given id never shadows a committed row in the cache.
	ExistingIDs(ctx context.Context, ids []uuid.UUID) ([]uuid.UUID, error)

	// Rows returns the stored analyses among ids (missing ones are absent),
	// in one query: how the invalidation log reloads what a change touched.
	Rows(ctx context.Context, ids []uuid.UUID) ([]*Analysis, error)

	// Stats aggregates over all analyses. It is expensive by design.
	Stats(ctx context.Context) (*Stats, error)

	// Ping checks that Postgres answers.
	Ping(ctx context.Context) error
}

package domain

import "github.com/google/uuid"

// Change is one committed change to analyses as the invalidation log
// (the cache_outbox table) records it, in the same statement as the change:
// what a write of AnalysisRepository returns. The cache reads the log back
// as cache.Change (repository implements cache.ChangeStore) and derives
// what to invalidate from it: the entries of AnalysisIDs (replaced, or
// tombstoned at Version when Deleted), the list namespace and the user
// lists of OwnerIDs; the writer only passes ID to cache.Log.Commit.
type Change struct {
	// ID is the log's sequence number; 0 means "nothing changed, nothing logged".
	ID          int64
	AnalysisIDs []uuid.UUID
	OwnerIDs    []uuid.UUID
	// Version is the version written, or the last version of a deleted
	// analysis; 0 for a write-behind batch (the applier reloads its rows).
	Version int64
	Deleted bool
}

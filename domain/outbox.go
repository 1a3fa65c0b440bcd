package domain

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Change is one committed change to analyses as the invalidation log
// (the cache_outbox table) records it, in the same transaction as the change.
// The cache derives what to invalidate from it: the entries of AnalysisIDs
// (replaced, or tombstoned at Version when Deleted), the list namespace and
// the user lists of OwnerIDs.
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

// ChangeLog is the invalidation log as the cache reads it. Rows are written
// by AnalysisRepository's write methods, never through this interface.
// Every method returns EUNAVAILABLE when Postgres cannot be reached.
type ChangeLog interface {
	// Pending returns up to limit changes not applied yet and at least
	// minAge old, oldest first.
	Pending(ctx context.Context, minAge time.Duration, limit int) ([]Change, error)
	// Retained returns every change not applied yet or applied within the
	// last since, oldest first: what a Redis that restarted may have lost.
	Retained(ctx context.Context, since time.Duration) ([]Change, error)
	// MarkApplied records that ids were applied to Redis.
	MarkApplied(ctx context.Context, ids []int64) error
	// Announce tells every listener that ids are pending: their writer could
	// not apply them.
	Announce(ctx context.Context, ids []int64) error
	// Purge deletes the changes applied more than retention ago and returns
	// how many it deleted.
	Purge(ctx context.Context, retention time.Duration) (int64, error)
	// Listen delivers announcements (the ids of changes their writer could
	// not apply) until ctx ends. connected runs each time the listening connection is
	// (re)established, before any announcement made after it is delivered:
	// announcements sent while it was down are lost, so the caller resyncs.
	Listen(ctx context.Context, connected func(), fn func(ids []int64)) error
	// Rows returns the stored analyses among ids (missing ones are absent).
	Rows(ctx context.Context, ids []uuid.UUID) ([]*Analysis, error)
}

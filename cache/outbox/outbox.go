// Package outbox holds the records of the invalidation log (a
// transactional outbox in Postgres, docs/design.md "Invalidation log") and
// the store interface a database implements for cache.Log to read them. It
// imports nothing of the service, so a store (repository) implements it
// without depending on the cache, and the cache's own tests can use that
// store.
package outbox

import (
	"context"
	"time"
)

// Change is one committed change as the invalidation log (a transactional
// outbox in Postgres) records it, in the same statement as the change
// itself. cache.Log derives what to invalidate from it: the entries of IDs
// (replaced by the stored row, or tombstoned at Version when Deleted), the
// resource's list namespace and the per-group lists of Groups.
type Change struct {
	// ID is the log's sequence number; 0 means "nothing changed, nothing logged".
	ID int64
	// Resource is the Kind of the cache.Resource changed (cache.Log.Track).
	Resource string
	IDs      []string
	Groups   []string
	// Version is the version written, or the last version of a deleted
	// entity; 0 for a write-behind batch (the applier reloads its rows).
	Version int64
	Deleted bool
}

// Store is the invalidation log as cache.Log reads it (repository.Postgres
// implements it on Postgres). Rows are written by the stores' write
// statements, never through this interface.
type Store interface {
	// Pending returns up to limit changes of the resources kinds (nil: of
	// every resource) not applied yet and at least minAge old, oldest first.
	Pending(ctx context.Context, kinds []string, minAge time.Duration, limit int) ([]Change, error)
	// Retained returns every change of the resources kinds (nil: of every
	// resource) not applied yet or applied within the last since, oldest
	// first: what a Redis that restarted may have lost.
	Retained(ctx context.Context, kinds []string, since time.Duration) ([]Change, error)
	// MarkApplied records that ids were applied to Redis.
	MarkApplied(ctx context.Context, ids []int64) error
	// Announce tells every listener that ids are pending: their writer could
	// not apply them.
	Announce(ctx context.Context, ids []int64) error
	// Purge deletes the changes applied more than retention ago and returns
	// how many it deleted.
	Purge(ctx context.Context, retention time.Duration) (int64, error)
	// Listen delivers announcements (the ids of changes their writer could
	// not apply) until ctx ends. connected runs each time the listening
	// connection is (re)established, before any announcement made after it
	// is delivered: announcements sent while it was down are lost, so the
	// caller resyncs.
	Listen(ctx context.Context, connected func(), fn func(ids []int64)) error
}

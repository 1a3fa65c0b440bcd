package cache

import (
	"context"
	"errors"
)

// WriteThrough is the write path of one resource (docs/design.md, "Single
// analysis"): after a write committed in the store, in one statement with
// its row of the invalidation log, Written or Deleted updates the cache
// before the write answers. Its guarantees:
//
//   - The entry of the written entity is replaced through Aside's version
//     guard (Set), or tombstoned at the deleted version (Tombstone), so a
//     delayed write-through or a racing fill never puts an older version
//     back, and a deleted entity is never resurrected.
//   - The lists that could contain it are invalidated (ListInvalidation:
//     the resource's namespace and its group's tag) in the same round trip
//     time: the entry and the lists are written concurrently.
//   - The change is settled by the Log: marked applied when both succeeded;
//     otherwise announced to every process, which bypasses Redis until it
//     has applied the change from the log. So no read started after the
//     write answered returns older data, from any process.
//   - It never fails the write: the write committed, and the cache side is
//     finished even when the caller's context is cancelled.
//
// NewWriteThrough makes the Log track the resource. A WriteThrough is safe
// for concurrent use.
type WriteThrough struct {
	aside *Aside
	lists ChangeListener
	log   *Log
}

// NewWriteThrough returns the write path of aside's resource, invalidating
// lists (nil: the resource has no cached lists) and settling changes in
// log, which it makes track the resource: load reloads stored entities when
// the log must apply a change itself (Log.Track).
func NewWriteThrough(aside *Aside, lists ChangeListener, log *Log, load LoadStored) *WriteThrough {
	log.Track(aside, lists, load)
	return &WriteThrough{aside: aside, lists: lists, log: log}
}

// Written puts body at version into the entry of id and invalidates the
// lists of group, settling change (the log's id of the write; 0 when
// nothing was logged) in the Log. See the type's guarantees.
func (w *WriteThrough) Written(ctx context.Context, change int64, id, group string, version int64, body []byte) {
	w.log.Commit(ctx, func(ctx context.Context) error {
		return w.both(ctx, func(ctx context.Context) error { return w.aside.Set(ctx, id, version, body) }, group)
	}, change)
}

// Deleted tombstones the entry of id at version (the entity's last
// version) and invalidates the lists of group, settling change in the Log.
func (w *WriteThrough) Deleted(ctx context.Context, change int64, id, group string, version int64) {
	w.log.Commit(ctx, func(ctx context.Context) error {
		return w.both(ctx, func(ctx context.Context) error { return w.aside.Tombstone(ctx, id, version) }, group)
	}, change)
}

// both runs the entry's write and the lists' invalidation at once (they
// touch different keys, so their order does not matter): a write answers
// after one Redis round trip instead of two. Both are always tried, since
// what reaches Redis narrows what the log must redo, and both errors are
// returned.
func (w *WriteThrough) both(ctx context.Context, entry func(context.Context) error, group string) error {
	if w.lists == nil {
		return entry(ctx)
	}
	var listsErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		listsErr = w.lists.Changed(ctx, group)
	}()
	entryErr := entry(ctx)
	<-done
	return errors.Join(entryErr, listsErr)
}

package cache

import (
	"context"
	"sync"
	"sync/atomic"
)

// Backlog holds the invalidations this process could not apply because
// Redis failed (a tombstone, a namespace bump, a tag invalidation). Writes
// still succeed in Postgres; the invalidation waits here.
//
// Guarantee: while the backlog is not empty, this process reads nothing
// from Redis. Every read first calls Ready, which drains the backlog in
// order and answers false (serve from Postgres, X-Cache: BYPASS) until it is
// empty, so when Redis comes back no key written during the outage is served
// stale by this process. A process that dies with a non-empty backlog leaves
// those keys to expire by TTL; that window is documented in the README.
//
// The zero value is ready to use.
type Backlog struct {
	pending atomic.Int64 // len(ops), readable without the lock on the hot path
	mu      sync.Mutex   // guards ops and serialises draining
	ops     []func(context.Context) error
}

// Defer queues op to be retried until it succeeds.
func (b *Backlog) Defer(op func(context.Context) error) {
	b.mu.Lock()
	b.ops = append(b.ops, op)
	b.pending.Store(int64(len(b.ops)))
	b.mu.Unlock()
}

// Len returns the number of queued invalidations.
func (b *Backlog) Len() int { return int(b.pending.Load()) }

// Ready reports whether Redis may be read: true when the backlog is empty
// or was drained now. It costs one atomic load when there is nothing queued.
func (b *Backlog) Ready(ctx context.Context) bool {
	if b.pending.Load() == 0 {
		return true
	}
	return b.Drain(ctx) == nil
}

// Drain runs the queued invalidations in order and stops at the first
// failure, keeping it and what follows for the next attempt.
func (b *Backlog) Drain(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.ops) > 0 {
		if err := b.ops[0](ctx); err != nil {
			return err
		}
		b.ops[0] = nil
		b.ops = b.ops[1:]
		b.pending.Store(int64(len(b.ops)))
	}
	b.ops = nil
	return nil
}

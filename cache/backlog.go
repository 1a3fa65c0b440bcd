package cache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Backlog holds the invalidations this process could not apply because
// Redis failed (a tombstone, a namespace bump, a tag invalidation). Writes
// still succeed in Postgres; the invalidation waits here.
//
// Guarantees:
//   - While the backlog is not empty, this process reads nothing from Redis:
//     every read first calls Ready, which answers false (serve from Postgres,
//     X-Cache: BYPASS) until the backlog has been applied, in order. So when
//     Redis comes back, this process never serves a key it failed to
//     invalidate during the outage.
//   - Other processes are protected by Run, which drains the backlog in the
//     background as soon as Redis answers again, without waiting for a read
//     here. Until then they may serve the entries this process could not
//     invalidate; a process that dies with a non-empty backlog leaves them to
//     expire by TTL. The README states both windows.
//   - A stalled Redis never queues reads: only one caller drains at a time,
//     the others answer BYPASS at once, and a failed drain is not retried by
//     reads for RetryEvery.
//
// The zero value is ready to use.
type Backlog struct {
	pending  atomic.Int64 // len(ops), readable without a lock on the hot path
	lastFail atomic.Int64 // unix nanos of the last failed drain
	draining sync.Mutex   // held by the one caller applying ops
	mu       sync.Mutex   // guards ops; never held while Redis is called
	ops      []func(context.Context) error
}

// RetryEvery is how long reads leave Redis alone after a failed drain.
const RetryEvery = 100 * time.Millisecond

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
// or was drained now. It costs one atomic load when nothing is queued, and
// never waits for another caller's drain.
func (b *Backlog) Ready(ctx context.Context) bool {
	if b.pending.Load() == 0 {
		return true
	}
	if time.Now().UnixNano()-b.lastFail.Load() < int64(RetryEvery) {
		return false
	}
	if !b.draining.TryLock() {
		return false
	}
	defer b.draining.Unlock()
	return b.drainLocked(ctx) == nil
}

// Drain applies the queued invalidations in order and stops at the first
// failure, keeping it and what follows for the next attempt.
func (b *Backlog) Drain(ctx context.Context) error {
	b.draining.Lock()
	defer b.draining.Unlock()
	return b.drainLocked(ctx)
}

func (b *Backlog) drainLocked(ctx context.Context) error {
	for {
		b.mu.Lock()
		if len(b.ops) == 0 {
			b.ops = nil
			b.mu.Unlock()
			return nil
		}
		op := b.ops[0]
		b.mu.Unlock()
		// The op runs detached from a caller that may hang up: an
		// invalidation half-applied because a client left helps no one.
		if err := op(context.WithoutCancel(ctx)); err != nil {
			b.lastFail.Store(time.Now().UnixNano())
			return err
		}
		b.mu.Lock()
		b.ops[0] = nil
		b.ops = b.ops[1:]
		b.pending.Store(int64(len(b.ops)))
		b.mu.Unlock()
	}
}

// Run drains the backlog every interval while it is not empty, until ctx
// ends, so that other processes stop seeing entries this one failed to
// invalidate as soon as Redis is back, whether or not this one serves reads.
func (b *Backlog) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if b.pending.Load() > 0 {
				_ = b.Drain(ctx)
			}
		}
	}
}

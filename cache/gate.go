package cache

import (
	"sync"
	"sync/atomic"
)

// Gate decides whether this process may serve reads from Redis. It is
// closed while Redis may hold entries that an applied invalidation has not
// reached yet, as far as this process can know:
//
//   - this process saw a Redis failure (Breaker closes it on every error
//     that is not an answer): an invalidation of its own, or of another
//     process at the same moment, may not have reached Redis;
//   - Redis restarted (a new run_id: it may have come back from an AOF that
//     lost the latest writes);
//   - another process announced a change it could not apply (Log);
//   - the listener of those announcements (re)connected, so some may have
//     been missed.
//
// While it is closed every read is served from Postgres (BYPASS). Only the
// Log reopens it, after applying every pending change of the invalidation
// log (and, after a restart, every retained one), and only if nothing closed
// it again meanwhile (Reopen compares the epoch the catch-up started from).
//
// A read checks Admit before it touches Redis and Still after: a read whose
// answer came back after the gate closed is not served from Redis either.
// Both cost one or two atomic loads. The zero value is open; NewGate
// returns a closed one, for a process that has not caught up yet.
type Gate struct {
	mu      sync.Mutex    // serializes Close and Reopen
	closed  atomic.Bool   // read on every request
	epoch   atomic.Uint64 // incremented by every Close
	restart atomic.Bool   // a Redis restart was seen: replay the retained log
	wake    chan struct{} // tells the Log to catch up; buffered, never blocks
}

// NewGate returns a closed gate: nothing is served from Redis until a Log
// has caught up with the invalidation log, replaying every retained change
// (Redis may have restarted before this process started, unseen).
func NewGate() *Gate {
	g := &Gate{}
	g.closed.Store(true)
	g.restart.Store(true)
	return g
}

// Admit reports whether a read may be served from Redis now, and the epoch
// to pass to Still once Redis answered.
func (g *Gate) Admit() (epoch uint64, ok bool) {
	e := g.epoch.Load()
	return e, !g.closed.Load()
}

// Still reports whether the gate stayed open since Admit returned epoch:
// every Close moves the epoch on, so an unchanged epoch is enough.
func (g *Gate) Still(epoch uint64) bool {
	return g.epoch.Load() == epoch
}

// Open reports whether the gate is open.
func (g *Gate) Open() bool { return !g.closed.Load() }

// Close closes the gate until the Log catches up, and wakes the Log.
// A catch-up already under way will not reopen it: the epoch moves on.
func (g *Gate) Close() {
	g.mu.Lock()
	g.epoch.Add(1)
	g.closed.Store(true)
	g.mu.Unlock()
	g.signal()
}

// Restarted closes the gate and asks the next catch-up to replay the
// retained log, not only its pending changes.
func (g *Gate) Restarted() {
	g.restart.Store(true)
	g.Close()
}

// beginCatchUp returns the epoch a catch-up starts from and whether it must
// replay the retained log (the request is consumed; a failed catch-up puts
// it back with retryReplay).
func (g *Gate) beginCatchUp() (epoch uint64, replay bool) {
	return g.epoch.Load(), g.restart.Swap(false)
}

// retryReplay puts back a replay request a failed catch-up consumed.
func (g *Gate) retryReplay() { g.restart.Store(true) }

// reopen opens the gate if nothing closed it since epoch, and reports
// whether it did.
func (g *Gate) reopen(epoch uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.epoch.Load() != epoch || g.restart.Load() {
		return false
	}
	g.closed.Store(false)
	return true
}

// signal wakes the Log without blocking.
func (g *Gate) signal() {
	g.mu.Lock()
	if g.wake == nil {
		g.wake = make(chan struct{}, 1)
	}
	w := g.wake
	g.mu.Unlock()
	select {
	case w <- struct{}{}:
	default:
	}
}

// woken is the channel signal writes to.
func (g *Gate) woken() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.wake == nil {
		g.wake = make(chan struct{}, 1)
	}
	return g.wake
}

package cache

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"slices"

	"github.com/analysis-cache/service/cache/outbox"
)

// Change is one committed change as the invalidation log records it (see
// outbox.Change).
type Change = outbox.Change

// ChangeStore is the invalidation log as the Log reads it (see outbox.Store;
// repository.Postgres implements it).
type ChangeStore = outbox.Store

// Stored is an entity as its store holds it now: the exact body its
// entry caches, and its version.
type Stored struct {
	ID      string
	Version int64
	Body    []byte
}

// LoadStored returns the stored entities among ids (missing ones are
// absent): how the Log reloads the entries a change touched.
type LoadStored func(ctx context.Context, ids []string) ([]Stored, error)

// tracked is how the Log applies the changes of one resource.
type tracked struct {
	aside *Aside
	lists ChangeListener
	load  LoadStored
}

// Log applies the invalidation log (a transactional outbox in Postgres,
// ChangeStore) to Redis, so that no cache invalidation lives only in
// one process's memory (docs/design.md, "Invalidation log"). Its
// guarantees, with every write recording its Change in the same statement
// as the change itself:
//
//   - The writer applies its change right after the commit (Commit: the
//     write-through and the list invalidation). When that succeeds the
//     change is marked applied (in batches, in the background).
//   - When it fails, the writer announces the change (NOTIFY) before its
//     write answers: every process, the writer included, closes its Gate
//     on the announcement and serves every read from Postgres until it has
//     applied the pending log itself (catch-up), then reopens. Until the
//     announcement reaches a process (LISTEN latency, sub-millisecond on
//     one host) that process may still serve the entries the change
//     invalidates: that is the one window left (docs/design.md).
//   - A change whose writer died before applying or announcing it is
//     applied by any process's sweep once it is Grace old.
//   - A process that saw a Redis failure (Breaker) catches up the same way
//     before it serves from Redis again; one that sees Redis restarted
//     replays every change applied within Retention (an AOF restart may have
//     lost the latest write-throughs and invalidations: appendfsync
//     everysec loses at most about a second).
//   - Applying is idempotent and order-free: an entry is replaced by the row
//     Postgres holds now, through the version guard, or tombstoned at the
//     deleted version; the resource's list namespace is bumped and its
//     groups' tags invalidated. Applying a change twice, or two processes at once, is
//     harmless.
//   - The log stays small: applied changes are purged after Retention.
//
// A Log reads and applies only the changes of the resources it tracks
// (Track): a process serves no read of a resource it does not track, so
// another resource's changes are left to the processes that track it (its
// writers do), and never hold this process's gate closed.
//
// A Log is safe for concurrent use; Run drives it.
type Log struct {
	changes ChangeStore
	gate    *Gate
	rdb     Client
	log     *slog.Logger
	opt     LogOptions

	mu        sync.RWMutex       // guards resources and kinds
	resources map[string]tracked // by Resource.Kind
	kinds     []string           // the keys of resources, sorted

	listening atomic.Bool // the listener has LISTENed at least once

	appliedMu sync.Mutex
	applied   []int64       // applied by their writer, not yet marked
	kick      chan struct{} // wakes the marker
}

// LogOptions configures a Log. Zero values take the defaults.
type LogOptions struct {
	Grace      time.Duration // age after which any process applies a pending change (2s)
	Retention  time.Duration // how long applied changes are kept for a replay (10s)
	SweepEvery time.Duration // sweep and purge period (250ms)
	Batch      int           // changes applied per catch-up round (500)
}

// NewLog returns the Log of changes on b, closing b.Gate when it must.
// Track each resource before Run.
func NewLog(changes ChangeStore, b Backend, opt LogOptions) *Log {
	b = b.withDefaults()
	if opt.Grace <= 0 {
		opt.Grace = 2 * time.Second
	}
	if opt.Retention <= 0 {
		opt.Retention = 10 * time.Second
	}
	if opt.SweepEvery <= 0 {
		opt.SweepEvery = 250 * time.Millisecond
	}
	if opt.Batch <= 0 {
		opt.Batch = 500
	}
	return &Log{changes: changes, gate: b.Gate, rdb: b.Redis, log: b.Logger, opt: opt,
		resources: map[string]tracked{}, kick: make(chan struct{}, 1)}
}

// Track makes the Log apply the changes of aside's resource: entries
// through aside (reloaded with load), list invalidations through lists
// (nil when the resource has no cached lists). It may be called at any
// time, Run included.
func (l *Log) Track(aside *Aside, lists ChangeListener, load LoadStored) {
	kind := aside.Resource().Kind
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.resources[kind]; !ok {
		l.kinds = append(l.kinds, kind)
		slices.Sort(l.kinds)
	}
	l.resources[kind] = tracked{aside: aside, lists: lists, load: load}
}

// Tracks reports whether the Log applies the changes of the resource kind.
func (l *Log) Tracks(kind string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.resources[kind]
	return ok
}

// tracking returns the kinds the Log applies, for the store's queries:
// never nil (which would ask for every kind), empty when it tracks none.
func (l *Log) tracking() []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return append([]string{}, l.kinds...)
}

// Commit runs apply, the cache side of the changes logged as changes (their
// IDs in the log) that just committed, and settles them in the log:
// applied, or announced to every process when apply failed (see the type's
// guarantees). It never fails the write. Zero ids (nothing logged) are
// skipped; when none is left apply still runs, unchecked.
func (l *Log) Commit(ctx context.Context, apply func(context.Context) error, changes ...int64) {
	// The write committed: finish its cache work even if the client left.
	ctx = context.WithoutCancel(ctx)
	err := apply(ctx)
	ids := slices.DeleteFunc(slices.Clone(changes), func(id int64) bool { return id == 0 })
	if len(ids) == 0 {
		return
	}
	if err == nil {
		l.appliedMu.Lock()
		l.applied = append(l.applied, ids...)
		l.appliedMu.Unlock()
		select {
		case l.kick <- struct{}{}:
		default:
		}
		return
	}
	// Redis refused: the Breaker already closed this process's gate; tell
	// the others before the write answers.
	l.gate.Close()
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if aerr := l.changes.Announce(actx, ids); aerr != nil {
		// Postgres went away right after the commit: the sweep of every
		// process applies the change once it is Grace old.
		l.log.LogAttrs(ctx, slog.LevelError, "invalidation log: could not announce a change Redis refused",
			slog.Any("ids", ids), slog.Any("error", aerr))
	}
}

// Run drives the log until ctx ends: it listens for announcements, marks
// applied changes, catches up while the gate is closed, sweeps changes
// older than Grace and purges applied ones older than Retention.
func (l *Log) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() {
		connected := func() {
			// Announcements made while it was not listening are lost:
			// catch up (and only from now on, so none falls in between).
			l.listening.Store(true)
			l.gate.Close()
		}
		_ = l.changes.Listen(ctx, connected, func([]int64) { l.gate.Close() })
	})
	wg.Go(func() { l.markLoop(ctx) })
	l.applyLoop(ctx)
	wg.Wait()
}

// markLoop marks the changes their writers applied, in batches.
func (l *Log) markLoop(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.markApplied(context.WithoutCancel(ctx))
			return
		case <-l.kick:
		case <-t.C:
		}
		l.markApplied(ctx)
	}
}

func (l *Log) markApplied(ctx context.Context) {
	l.appliedMu.Lock()
	ids := l.applied
	l.applied = nil
	l.appliedMu.Unlock()
	if len(ids) == 0 {
		return
	}
	if err := l.changes.MarkApplied(ctx, ids); err != nil {
		// Not lost: the sweep applies them again once they are Grace old.
		l.log.LogAttrs(ctx, slog.LevelWarn, "invalidation log: could not mark applied changes",
			slog.Int("changes", len(ids)), slog.Any("error", err))
	}
}

// applyLoop catches up whenever the gate closes, sweeps and purges.
func (l *Log) applyLoop(ctx context.Context) {
	sweep := time.NewTicker(l.opt.SweepEvery)
	defer sweep.Stop()
	lastPurge := time.Now()
	for {
		if !l.gate.Open() && l.listening.Load() {
			if err := l.CatchUp(ctx); err != nil && ctx.Err() == nil {
				// Redis or Postgres still away: try again soon, not in a spin.
				select {
				case <-ctx.Done():
					return
				case <-time.After(l.opt.SweepEvery / 5):
				}
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-l.gate.woken():
			continue
		case <-sweep.C:
		}
		if err := l.sweep(ctx); err != nil && ctx.Err() == nil {
			l.log.LogAttrs(ctx, slog.LevelWarn, "invalidation log: sweep failed", slog.Any("error", err))
		}
		if time.Since(lastPurge) >= time.Second {
			lastPurge = time.Now()
			if _, err := l.changes.Purge(ctx, l.opt.Retention); err != nil && ctx.Err() == nil {
				l.log.LogAttrs(ctx, slog.LevelWarn, "invalidation log: purge failed", slog.Any("error", err))
			}
		}
	}
}

// CatchUp applies every pending change (every retained one after a Redis
// restart) and reopens the gate if nothing closed it meanwhile. It returns
// the first error; the gate then stays closed.
func (l *Log) CatchUp(ctx context.Context) error {
	epoch, replay := l.gate.beginCatchUp()
	err := l.catchUp(ctx, replay)
	if err != nil {
		if replay {
			l.gate.retryReplay()
		}
		return err
	}
	if l.gate.reopen(epoch) {
		l.log.LogAttrs(ctx, slog.LevelDebug, "invalidation log caught up; serving from Redis again", slog.Bool("replayed", replay))
	}
	return nil
}

func (l *Log) catchUp(ctx context.Context, replay bool) error {
	// A connection first: the Breaker records the server's run_id, so a
	// restart after this catch-up is told from this server.
	if err := l.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	if replay {
		changes, err := l.changes.Retained(ctx, l.tracking(), l.opt.Retention)
		if err != nil {
			return fmt.Errorf("replay the invalidation log: %w", err)
		}
		for start := 0; start < len(changes); start += l.opt.Batch {
			if err := l.apply(ctx, changes[start:min(start+l.opt.Batch, len(changes))]); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		changes, err := l.changes.Pending(ctx, l.tracking(), 0, l.opt.Batch)
		if err != nil {
			return fmt.Errorf("read the invalidation log: %w", err)
		}
		if len(changes) == 0 {
			return nil
		}
		if err := l.apply(ctx, changes); err != nil {
			return err
		}
		if len(changes) < l.opt.Batch {
			return nil
		}
	}
}

// sweep applies the pending changes older than Grace: those whose writer
// died before applying or announcing them.
func (l *Log) sweep(ctx context.Context) error {
	changes, err := l.changes.Pending(ctx, l.tracking(), l.opt.Grace, l.opt.Batch)
	if err != nil || len(changes) == 0 {
		return err
	}
	l.log.LogAttrs(ctx, slog.LevelInfo, "invalidation log: applying changes their writers left", slog.Int("changes", len(changes)))
	return l.apply(ctx, changes)
}

// apply applies changes to Redis (see the type's guarantees) and marks them
// applied.
func (l *Log) apply(ctx context.Context, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	byResource := map[string][]Change{}
	ids := make([]int64, len(changes))
	for i, c := range changes {
		ids[i] = c.ID
		byResource[c.Resource] = append(byResource[c.Resource], c)
	}
	for kind, cs := range byResource {
		l.mu.RLock()
		t, ok := l.resources[kind]
		l.mu.RUnlock()
		if !ok { // the store returned a kind it was not asked for
			return fmt.Errorf("apply the invalidation log: change %d is of resource %q, which this process does not track (Log.Track)", cs[0].ID, kind)
		}
		if err := t.apply(ctx, cs); err != nil {
			return fmt.Errorf("apply the invalidation log (%s): %w", kind, err)
		}
	}
	if err := l.changes.MarkApplied(ctx, ids); err != nil {
		return fmt.Errorf("apply the invalidation log: %w", err)
	}
	return nil
}

// apply applies changes of t's resource: entries replaced by the stored
// row or tombstoned, then the lists of their groups invalidated.
func (t tracked) apply(ctx context.Context, changes []Change) error {
	// The latest change of each entity decides: a delete tombstones at its
	// version, anything else is replaced by the row stored now.
	deleted := map[string]int64{}
	var reload, groups []string
	seen := map[string]bool{}
	groupSeen := map[string]bool{}
	for _, c := range changes {
		for _, id := range c.IDs {
			if c.Deleted && c.Version > deleted[id] {
				deleted[id] = c.Version
			}
			if !seen[id] {
				seen[id] = true
				reload = append(reload, id)
			}
		}
		for _, g := range c.Groups {
			if !groupSeen[g] {
				groupSeen[g] = true
				groups = append(groups, g)
			}
		}
	}
	rows, err := t.load(ctx, reload)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	stored := make(map[string]Stored, len(rows))
	for _, r := range rows {
		stored[r.ID] = r
	}
	replacements := make([]Replacement, 0, len(reload))
	for _, id := range reload {
		if r, ok := stored[id]; ok {
			replacements = append(replacements, Replacement{ID: id, Version: r.Version, Body: r.Body})
		} else if v, ok := deleted[id]; ok {
			replacements = append(replacements, Replacement{ID: id, Version: v, Deleted: true})
		}
		// Otherwise it is gone, deleted by a change not in this batch,
		// which tombstones it (dropping the key here could remove that
		// tombstone and let a delayed older write-through back in).
	}
	if err := t.aside.ApplyMany(ctx, replacements); err != nil {
		return err
	}
	if t.lists != nil {
		return t.lists.Changed(ctx, groups...)
	}
	return nil
}

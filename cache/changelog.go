package cache

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/domain"
)

// Log applies the invalidation log (a transactional outbox in Postgres,
// domain.ChangeLog) to Redis, so that no cache invalidation lives only in
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
//     deleted version; the list namespace is bumped and the owners' tags
//     invalidated. Applying a change twice, or two processes at once, is
//     harmless.
//   - The log stays small: applied changes are purged after Retention.
//
// A Log is safe for concurrent use; Run drives it.
type Log struct {
	changes domain.ChangeLog
	gate    *Gate
	aside   *Aside
	lists   ChangeListener
	keys    Keys
	metrics *Metrics
	log     *slog.Logger
	opt     LogOptions

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

// NewLog returns the Log of changes, applying entries through aside and
// list invalidations through lists, and closing gate when it must.
func NewLog(changes domain.ChangeLog, gate *Gate, aside *Aside, lists ChangeListener, keys Keys, m *Metrics, log *slog.Logger, opt LogOptions) *Log {
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
	if log == nil {
		log = slog.Default()
	}
	return &Log{changes: changes, gate: gate, aside: aside, lists: lists, keys: keys, metrics: m, log: log, opt: opt,
		kick: make(chan struct{}, 1)}
}

// Commit runs apply, the cache side of changes that just committed, and
// settles them in the log: applied, or announced to every process when apply
// failed (see the type's guarantees). It never fails the write. Changes
// with a zero ID (nothing logged) are skipped; when none is left apply
// still runs, unchecked.
func (l *Log) Commit(ctx context.Context, apply func(context.Context) error, changes ...domain.Change) {
	// The write committed: finish its cache work even if the client left.
	ctx = context.WithoutCancel(ctx)
	err := apply(ctx)
	ids := make([]int64, 0, len(changes))
	for _, c := range changes {
		if c.ID != 0 {
			ids = append(ids, c.ID)
		}
	}
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
	if err := l.aside.ping(ctx); err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	if replay {
		changes, err := l.changes.Retained(ctx, l.opt.Retention)
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
		changes, err := l.changes.Pending(ctx, 0, l.opt.Batch)
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
	changes, err := l.changes.Pending(ctx, l.opt.Grace, l.opt.Batch)
	if err != nil || len(changes) == 0 {
		return err
	}
	l.log.LogAttrs(ctx, slog.LevelInfo, "invalidation log: applying changes their writers left", slog.Int("changes", len(changes)))
	return l.apply(ctx, changes)
}

// apply applies changes to Redis (see the type's guarantees) and marks them
// applied.
func (l *Log) apply(ctx context.Context, changes []domain.Change) error {
	if len(changes) == 0 {
		return nil
	}
	// The latest change of each analysis decides: a delete tombstones at
	// its version, anything else is replaced by the row stored now.
	deleted := map[uuid.UUID]int64{}
	var reload []uuid.UUID
	seen := map[uuid.UUID]bool{}
	var owners []uuid.UUID
	ownerSeen := map[uuid.UUID]bool{}
	ids := make([]int64, len(changes))
	for i, c := range changes {
		ids[i] = c.ID
		for _, id := range c.AnalysisIDs {
			if c.Deleted && c.Version > deleted[id] {
				deleted[id] = c.Version
			}
			if !seen[id] {
				seen[id] = true
				reload = append(reload, id)
			}
		}
		for _, o := range c.OwnerIDs {
			if !ownerSeen[o] {
				ownerSeen[o] = true
				owners = append(owners, o)
			}
		}
	}
	rows, err := l.changes.Rows(ctx, reload)
	if err != nil {
		return fmt.Errorf("apply the invalidation log: %w", err)
	}
	stored := make(map[uuid.UUID]*domain.Analysis, len(rows))
	for _, a := range rows {
		stored[a.ID] = a
	}
	replacements := make([]Replacement, 0, len(reload))
	for _, id := range reload {
		key := l.keys.Analysis(id)
		if a, ok := stored[id]; ok {
			replacements = append(replacements, Replacement{Key: key, Version: a.Version, Body: a.AppendJSON(nil)})
		} else if v, ok := deleted[id]; ok {
			replacements = append(replacements, Replacement{Key: key, Version: v, Deleted: true})
		}
		// Otherwise it is gone, deleted by a change not in this batch,
		// which tombstones it (dropping the key here could remove that
		// tombstone and let a delayed older write-through back in).
	}
	if err := l.aside.ApplyMany(ctx, replacements); err != nil {
		return fmt.Errorf("apply the invalidation log: %w", err)
	}
	if err := l.lists.AnalysesChanged(ctx, owners...); err != nil {
		return fmt.Errorf("apply the invalidation log: %w", err)
	}
	if err := l.changes.MarkApplied(ctx, ids); err != nil {
		return fmt.Errorf("apply the invalidation log: %w", err)
	}
	return nil
}

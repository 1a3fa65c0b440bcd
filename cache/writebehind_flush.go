package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/redis/go-redis/v9"
)

// Run flushes the stream into the store until ctx is done, as one consumer
// of the group. At start it flushes its own pending entries (read with ID
// 0), then it loops: claim entries idle longer than ClaimIdle on any
// consumer (crashed processes), then block on XREADGROUP for up to
// BatchSize new entries or FlushInterval, whichever comes first, and flush
// what it got. A batch that fails because the store is unavailable is
// retried with backoff, never dropped. Run returns nil once ctx is done
// (entries it holds stay pending for Stop or the next start); it returns
// an error only when called while another Run of this WriteBehind runs. A
// WriteBehind that was stopped stays stopped: Run called after Stop began
// (even one started just before it, in a goroutine not yet scheduled)
// returns nil at once.
func (w *WriteBehind[T]) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return nil
	}
	if w.done != nil {
		w.mu.Unlock()
		return errors.New("write-behind: Run is already running")
	}
	w.cancel, w.done = cancel, done
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.cancel, w.done = nil, nil
		w.mu.Unlock()
		close(done)
	}()

	var (
		bo        = wbBackoff(w.opt.FlushInterval)
		recovered bool      // own pending entries flushed since start
		nextClaim time.Time // zero: claim at once, a restart recovers at start
	)
	for ctx.Err() == nil {
		err := w.step(ctx, &recovered, &nextClaim)
		if err == nil {
			bo.Reset()
			continue
		}
		if ctx.Err() != nil {
			break
		}
		w.log.LogAttrs(ctx, slog.LevelWarn, "write-behind flusher", slog.String("consumer", w.opt.Consumer), slog.Any("error", err))
		wbSleep(ctx, bo.NextBackOff())
	}
	return nil
}

// step is one turn of Run.
func (w *WriteBehind[T]) step(ctx context.Context, recovered *bool, nextClaim *time.Time) error {
	if err := w.ensureGroup(ctx); err != nil {
		return err
	}
	if !*recovered {
		if _, err := w.drainOwn(ctx, true); err != nil {
			return err
		}
		*recovered = true
	}
	if !time.Now().Before(*nextClaim) {
		if _, err := w.claim(ctx, w.opt.ClaimIdle, true); err != nil {
			return err
		}
		w.reapConsumers(ctx)
		*nextClaim = time.Now().Add(max(w.opt.ClaimIdle/2, 10*time.Millisecond))
	}
	// The first read blocks until entries arrive; while batches come back
	// full (a backlog), the next is read without blocking, ahead of the
	// flush of the current one, until it is time to claim again.
	first := true
	_, err := w.flushAhead(ctx, false, true, func(ctx context.Context) ([]redis.XMessage, bool, error) {
		block := time.Duration(-1)
		if first {
			block = max(min(w.opt.FlushInterval, time.Until(*nextClaim), maxBlock), time.Millisecond)
			first = false
		}
		msgs, err := w.read(ctx, ">", block)
		return msgs, len(msgs) == w.opt.BatchSize && time.Now().Before(*nextClaim), err
	})
	return err
}

// maxBlock bounds one blocking XREADGROUP. go-redis does not interrupt a
// blocking read when its context is cancelled, so this is the longest Run
// takes to notice a shutdown, whatever WRITE_BEHIND_FLUSH_INTERVAL is; the
// loop simply blocks again.
const maxBlock = time.Second

// Flush flushes now everything the stream held when it was called, on any
// consumer (it claims pending entries whatever their idle time: flushing
// twice is harmless), and returns how many of those entries are in the
// store when it returns, whoever committed them: entries another flusher (the
// background one of this or another process) committed meanwhile count too.
// An entry leaves the stream only once it is committed (or dead-lettered,
// which is not counted), so the count is the entries present at arrival
// that are gone at the end, less those dead-lettered meanwhile. A store
// outage returns an error wrapping ErrStoreUnavailable at once (no retry),
// a Redis failure one wrapping ErrQueueUnavailable; entries not flushed
// stay in the stream. Poison entries
// below MaxAttempts stay pending and are not counted.
func (w *WriteBehind[T]) Flush(ctx context.Context) (int, error) {
	if err := w.ensureGroup(ctx); err != nil {
		return 0, err
	}
	until, held, dead, err := w.snapshot(ctx, "")
	if err != nil {
		return 0, err
	}
	if w.afterFlushArrival != nil {
		w.afterFlushArrival()
	}
	if _, err := w.claim(ctx, 0, false); err != nil {
		return 0, fmt.Errorf("write-behind flush: %w", err)
	}
	if _, err := w.drainNew(ctx, until, false); err != nil {
		return 0, fmt.Errorf("write-behind flush: %w", err)
	}
	_, left, deadAfter, err := w.snapshot(ctx, until)
	if err != nil {
		return 0, err
	}
	return int(max(held-left-(deadAfter-dead), 0)), nil
}

// wbSnapshot returns {last id, entries up to ARGV[1] (all when empty),
// dead-lettered entries} of the stream KEYS[1] and dead-letter stream
// KEYS[2], atomically.
var wbSnapshot = redis.NewScript(`
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local id = '0-0'
if #last > 0 then id = last[1][1] end
local n = redis.call('XLEN', KEYS[1])
if ARGV[1] ~= '' then
  n = n - #redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+')
end
return {id, n, redis.call('XLEN', KEYS[2])}`)

// snapshot reads the stream's last id, how many entries up to until (all
// when empty) it holds, and the dead-letter stream's length, in one call.
func (w *WriteBehind[T]) snapshot(ctx context.Context, until string) (last string, held, dead int64, err error) {
	res, err := wbSnapshot.Run(ctx, w.rdb, []string{w.stream, w.dead}, until).Slice()
	if err != nil {
		return "", 0, 0, w.redisFailed(ctx, "snapshot", err)
	}
	last, _ = res[0].(string)
	held, _ = res[1].(int64)
	dead, _ = res[2].(int64)
	return last, held, dead, nil
}

// Stop stops Run and drains within ctx: this consumer's pending entries,
// then the entries not yet delivered that the stream held when Stop began,
// retrying a store outage until ctx ends. What is left stays in the
// stream for the next start or another process. It returns ctx's error
// when the deadline cut the drain short.
func (w *WriteBehind[T]) Stop(ctx context.Context) error {
	w.mu.Lock()
	cancel, done := w.cancel, w.done
	w.stopped = true // a Run not yet registered never starts
	w.mu.Unlock()
	if cancel != nil {
		cancel()
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("write-behind stop: flusher still running: %w", ctx.Err())
		}
	}
	if err := w.ensureGroup(ctx); err != nil {
		return fmt.Errorf("write-behind drain: %w", err)
	}
	until, err := w.lastID(ctx)
	if err != nil {
		return fmt.Errorf("write-behind drain: %w", err)
	}
	own, err := w.drainOwn(ctx, true)
	if err != nil {
		return fmt.Errorf("write-behind drain: %w", err)
	}
	fresh, err := w.drainNew(ctx, until, true)
	if err != nil {
		return fmt.Errorf("write-behind drain: %w", err)
	}
	w.log.LogAttrs(ctx, slog.LevelInfo, "write-behind drained", slog.String("consumer", w.opt.Consumer), slog.Int("flushed", own+fresh))
	return nil
}

// drainOwn flushes the entries pending on this consumer (delivered before a
// restart or a failure), one pass over its pending list.
func (w *WriteBehind[T]) drainOwn(ctx context.Context, retry bool) (int, error) {
	start := "0"
	return w.flushAhead(ctx, true, retry, func(ctx context.Context) ([]redis.XMessage, bool, error) {
		msgs, err := w.read(ctx, start, -1)
		if len(msgs) > 0 {
			start = msgs[len(msgs)-1].ID
		}
		return msgs, len(msgs) > 0, err
	})
}

// drainNew flushes undelivered entries until it has passed until (the last
// id when the drain began), so a steady ingest cannot keep it running.
func (w *WriteBehind[T]) drainNew(ctx context.Context, until string, retry bool) (int, error) {
	if until == "0-0" {
		return 0, nil
	}
	return w.flushAhead(ctx, false, retry, func(ctx context.Context) ([]redis.XMessage, bool, error) {
		msgs, err := w.read(ctx, ">", -1)
		return msgs, len(msgs) > 0 && streamIDLess(msgs[len(msgs)-1].ID, until), err
	})
}

// claim takes over entries pending longer than minIdle on any consumer (one
// pass of XAUTOCLAIM over the pending list) and flushes them.
func (w *WriteBehind[T]) claim(ctx context.Context, minIdle time.Duration, retry bool) (int, error) {
	start := "0-0"
	return w.flushAhead(ctx, true, retry, func(ctx context.Context) ([]redis.XMessage, bool, error) {
		msgs, next, err := w.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: w.stream, Group: wbGroup, Consumer: w.opt.Consumer,
			MinIdle: minIdle, Start: start, Count: int64(w.opt.BatchSize),
		}).Result()
		if err != nil {
			return nil, false, w.redisFailed(ctx, "xautoclaim", err)
		}
		start = next
		return msgs, next != "0-0" && next != "", nil
	})
}

// read reads up to BatchSize entries from start (">" for new, an id for
// this consumer's pending ones); block < 0 does not block.
func (w *WriteBehind[T]) read(ctx context.Context, start string, block time.Duration) ([]redis.XMessage, error) {
	res, err := w.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: wbGroup, Consumer: w.opt.Consumer, Streams: []string{w.stream, start},
		Count: int64(w.opt.BatchSize), Block: block,
	}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		return nil, w.redisFailed(ctx, "xreadgroup", err)
	case len(res) == 0:
		return nil, nil
	}
	return res[0].Messages, nil
}

// ensureGroup creates the consumer group (and the stream) once. It starts
// at id 0, so entries appended before any flusher existed are flushed too.
func (w *WriteBehind[T]) ensureGroup(ctx context.Context) error {
	if w.groupReady.Load() {
		return nil
	}
	err := w.rdb.XGroupCreateMkStream(ctx, w.stream, wbGroup, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return w.redisFailed(ctx, "xgroup create", err)
	}
	w.groupReady.Store(true)
	return nil
}

// lastID returns the id of the stream's newest entry, "0-0" when empty.
func (w *WriteBehind[T]) lastID(ctx context.Context) (string, error) {
	msgs, err := w.rdb.XRevRangeN(ctx, w.stream, "+", "-", 1).Result()
	if err != nil {
		return "", w.redisFailed(ctx, "xrevrange", err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

// reapConsumers removes consumers of dead processes once they own nothing.
func (w *WriteBehind[T]) reapConsumers(ctx context.Context) {
	idle := 4 * max(w.opt.ClaimIdle, w.opt.FlushInterval)
	err := wbReapConsumers.Run(ctx, w.rdb, []string{w.stream}, wbGroup, idle.Milliseconds(), w.opt.Consumer).Err()
	if err != nil {
		w.metrics.Error(ctx, w.resource.Kind, PatternWriteBehind, "reap consumers", w.stream, err)
	}
}

// redisFailed counts and logs a Redis failure and returns it wrapping
// ErrQueueUnavailable.
func (w *WriteBehind[T]) redisFailed(ctx context.Context, op string, err error) error {
	if strings.HasPrefix(err.Error(), "NOGROUP") {
		w.groupReady.Store(false) // the stream was deleted: recreate the group next time
	}
	w.metrics.Error(ctx, w.resource.Kind, PatternWriteBehind, op, w.stream, err)
	return fmt.Errorf("%w: %s %s: %w", ErrQueueUnavailable, op, w.stream, err)
}

// distinctIDs splits entries into the first occurrence of each id and the rest.
func distinctIDs[T any](entries []wbEntry[T]) (first, rest []wbEntry[T]) {
	seen := make(map[string]struct{}, len(entries))
	for _, e := range entries {
		if _, dup := seen[e.ID]; dup {
			rest = append(rest, e)
			continue
		}
		seen[e.ID] = struct{}{}
		first = append(first, e)
	}
	return first, rest
}

// insertIsolating inserts round in one statement. When the store rejects
// the statement for a reason other than being unavailable, it bisects, so
// the rows that can be committed are, and each poison row ends alone in
// failed with its error. ok lists the entries committed (inserted or
// already present); err is an outage, with ok what was committed before it.
// The changes the statements logged are appended to changes.
func (w *WriteBehind[T]) insertIsolating(ctx context.Context, round []wbEntry[T], changes *[]int64) (ok []wbEntry[T], inserted map[string]bool, failed []wbEntry[T], err error) {
	items := make([]T, len(round))
	for i := range round {
		items[i] = round[i].Value
	}
	ids, change, err := w.store.InsertMissing(ctx, items)
	if change != 0 {
		*changes = append(*changes, change)
	}
	if err == nil {
		inserted = make(map[string]bool, len(ids))
		for _, id := range ids {
			inserted[id] = true
		}
		return round, inserted, nil, nil
	}
	if wbTransient(ctx, err) {
		return nil, nil, nil, fmt.Errorf("insert %d %s entities: %w", len(round), w.resource.Kind, err)
	}
	if len(round) == 1 {
		round[0].Err = fmt.Errorf("insert %s %s: %w", w.resource.Kind, round[0].ID, err)
		return nil, nil, round, nil
	}
	mid := len(round) / 2
	ok, inserted, failed, err = w.insertIsolating(ctx, round[:mid], changes)
	if err != nil {
		return ok, inserted, failed, err
	}
	ok2, inserted2, failed2, err := w.insertIsolating(ctx, round[mid:], changes)
	if inserted == nil {
		inserted = inserted2
	} else {
		for id := range inserted2 {
			inserted[id] = true
		}
	}
	return append(ok, ok2...), inserted, append(failed, failed2...), err
}

// wbTransient reports whether err says nothing about the entries: the
// store unavailable (ErrStoreUnavailable), or this call's context ended.
// Those are retried, never counted against an entry.
func wbTransient(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, ErrStoreUnavailable)
}

// settle runs after a commit: it tells lists which groups changed (settling
// the round's changes in the Log: applied, or announced when Redis refused),
// then acknowledges the entries and settles their cache keys in one script.
// The notification comes first so that a crash in between leaves the
// entries pending, and their redelivery (notifyAll) notifies again.
func (w *WriteBehind[T]) settle(ctx context.Context, r wbRound[T], notifyAll bool) (int, error) {
	ok, inserted := r.ok, r.inserted
	// The commit happened: finish its bookkeeping even if ctx is being cancelled.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	groups := make([]string, 0, 4)
	seen := make(map[string]struct{}, 4)
	changed := false // some entry's row is new (or may be: notifyAll)
	for _, e := range ok {
		if !notifyAll && !inserted[e.ID] {
			continue
		}
		changed = true
		g := w.ent.Group(e.Value)
		if _, dup := seen[g]; g != "" && !dup {
			seen[g] = struct{}{}
			groups = append(groups, g)
		}
	}
	apply := func(ctx context.Context) error {
		// The resource's lists change even when no inserted row has a group
		// (its namespace is bumped all the same).
		if !changed || w.lists == nil {
			return nil
		}
		return w.lists.Changed(ctx, groups...)
	}
	if w.opt.Log != nil {
		w.opt.Log.Commit(ctx, apply, r.changes...)
	} else {
		_ = apply(ctx) // counted and logged by lists
	}
	if w.afterCommit != nil {
		if err := w.afterCommit(); err != nil {
			return 0, err
		}
	}
	keys := make([]string, 1, 1+len(ok))
	keys[0] = w.stream
	args := make([]any, 1, 1+3*len(ok))
	args[0] = wbGroup
	for _, e := range ok {
		flag := "0"
		if inserted[e.ID] {
			flag = "1"
		}
		keys = append(keys, w.keys.Entity(w.resource.Kind, e.ID))
		args = append(args, e.StreamID, flag, e.Raw)
	}
	n, err := wbSettle.Run(ctx, w.rdb, keys, args...).Int()
	if err != nil {
		return 0, w.redisFailed(ctx, "settle", fmt.Errorf("acknowledge %d committed entries: %w", len(ok), err))
	}
	w.metrics.Flushed(w.resource.Kind, n)
	return n, nil
}

// reject handles an entry that failed on its own (undecodable, or rejected
// by the store): once it was delivered MaxAttempts times it moves to the
// dead-letter stream; before that it stays pending, to be claimed again
// after ClaimIdle (maybe by a process that can decode it).
func (w *WriteBehind[T]) reject(ctx context.Context, e wbEntry[T]) error {
	pending, err := w.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: w.stream, Group: wbGroup, Start: e.StreamID, End: e.StreamID, Count: 1,
	}).Result()
	if err != nil {
		return w.redisFailed(ctx, "xpending", err)
	}
	if len(pending) == 0 {
		return nil // another flusher handled it meanwhile
	}
	attempts := pending[0].RetryCount
	if attempts < int64(w.opt.MaxAttempts) {
		w.metrics.Retried(w.resource.Kind, 1)
		w.log.LogAttrs(ctx, slog.LevelWarn, "write-behind entry failed; will retry",
			slog.String("stream_id", e.StreamID), slog.String("id", e.ID), slog.Int64("attempts", attempts), slog.Any("error", e.Err))
		return nil
	}
	keys := []string{w.stream, w.dead}
	if e.ID != "" {
		// Unlinked only while it holds this entry's exact bytes (wbDeadLetter).
		keys = append(keys, w.keys.Entity(w.resource.Kind, e.ID))
	}
	moved, err := wbDeadLetter.Run(ctx, w.rdb, keys, wbGroup, e.StreamID, e.ID, e.Raw,
		e.Err.Error(), attempts, w.opt.Consumer).Int()
	if err != nil {
		return w.redisFailed(ctx, "dead-letter", err)
	}
	if moved == 1 {
		w.metrics.DeadLettered(w.resource.Kind, 1)
		w.log.LogAttrs(ctx, slog.LevelError, "write-behind entry dead-lettered",
			slog.String("stream_id", e.StreamID), slog.String("id", e.ID), slog.String("dead_letter", w.dead),
			slog.Int64("attempts", attempts), slog.Any("error", e.Err))
	}
	return nil
}

// streamIDLess compares two stream ids "ms-seq".
func streamIDLess(a, b string) bool {
	am, as := splitStreamID(a)
	bm, bs := splitStreamID(b)
	return am < bm || (am == bm && as < bs)
}

func splitStreamID(id string) (ms, seq uint64) {
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}

// wbBackoff is exponential with jitter: the n-th wait is drawn from
// [d/2, d], d = 50ms·2^(n-1) up to a cap of flushInterval bounded to
// [100ms, 5s]. backoff draws from [i(1-f), i(1+f)]: i = 3d/4 and f = 1/3
// give that range.
func wbBackoff(flushInterval time.Duration) backoff.ExponentialBackOff {
	ceiling := min(max(flushInterval, 100*time.Millisecond), 5*time.Second)
	return backoff.ExponentialBackOff{
		InitialInterval:     50 * time.Millisecond * 3 / 4,
		RandomizationFactor: 1.0 / 3,
		Multiplier:          2,
		MaxInterval:         ceiling * 3 / 4,
	}
}

// wbSleep waits d or until ctx ends; it reports whether d elapsed.
func wbSleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

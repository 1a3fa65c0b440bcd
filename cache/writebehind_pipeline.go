package cache

import (
	"context"
	"log/slog"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The flush pipeline. A batch goes through three stages, each overlapping
// the neighbouring batches' other stages:
//
//	fetch + decode (Redis, Go CPU)  →  commit (the store)  →  settle (Redis)
//
// While batch k commits, batch k+1 is read and decrypted and batch k-1 is
// acknowledged and settled. What the overlap keeps:
//   - XACK only after commit: a batch is handed to the settle stage only
//     once its INSERT returned.
//   - One commit at a time in this process (flushMu), and the settles of
//     one pipeline run one after another, in commit order.
//   - Settling batch k-1 while batch k commits changes nothing about the
//     cache's outcome: the settle script decides from what is cached and
//     from whether this flush inserted the row, and an id that is in both
//     batches was inserted by k-1 (k finds the row there) whichever settle
//     runs first (writebehind_scripts.go, wbSettle).
//   - Nothing is left running: flushAhead returns only after its fetch and
//     its settle in flight have finished.
//   - A batch fetched ahead of a failure is not flushed: it stays pending on
//     this consumer, where the next start (own pending entries) or a claim
//     finds it, as every batch that fails does.

// wbFetched is one batch read (or claimed) and decoded ahead of its commit.
type wbFetched[T any] struct {
	entries []wbEntry[T]
	more    bool // fetch again after this batch
	err     error
}

// flushAhead flushes the batches fetch returns until fetch says there are
// no more or a flush fails, pipelined as the comment above describes (an
// empty batch with more after it, an XAUTOCLAIM page with nothing idle
// enough, is skipped). fetch is called from one goroutine at a time.
// redelivered says the entries may have been committed before (a crash
// between commit and acknowledgement), so every owner is notified, not
// only those of inserted rows. With retry, failures that are not about an
// entry (the store or Redis unavailable) are retried with backoff until
// they succeed or ctx ends. It returns how many entries it acknowledged.
func (w *WriteBehind[T]) flushAhead(ctx context.Context, redelivered, retry bool, fetch func(context.Context) ([]redis.XMessage, bool, error)) (int, error) {
	next := make(chan wbFetched[T], 1)
	get := func() {
		msgs, more, err := fetch(ctx)
		next <- wbFetched[T]{entries: w.decodeEntries(msgs), more: more, err: err}
	}
	go get()
	var settling wbSettling
	total := 0
	for {
		b := <-next
		if b.err != nil || (len(b.entries) == 0 && !b.more) {
			n, err := settling.wait()
			if b.err != nil {
				err = b.err
			}
			return total + n, err
		}
		if b.more {
			go get()
		}
		if len(b.entries) == 0 {
			continue // a page with nothing to claim, more after it
		}
		n, err := w.flushBatch(ctx, b.entries, redelivered, retry, &settling)
		total += n
		if err != nil || !b.more {
			if b.more {
				<-next // the fetch in flight; its entries stay pending
			}
			n, serr := settling.wait()
			if err == nil {
				err = serr
			}
			return total + n, err
		}
	}
}

// decodeEntries opens every message of a batch.
func (w *WriteBehind[T]) decodeEntries(msgs []redis.XMessage) []wbEntry[T] {
	if len(msgs) == 0 {
		return nil
	}
	entries := make([]wbEntry[T], len(msgs))
	for i, m := range msgs {
		entries[i] = w.decodeEntry(m)
	}
	return entries
}

// flushBatch commits entries, then waits for the previous batch's settle
// and starts this one's in settling. A commit that fails for a reason that
// is not about an entry is retried with backoff when retry is set (what it
// committed before failing is settled meanwhile). It returns the entries
// acknowledged by the settles it waited for.
func (w *WriteBehind[T]) flushBatch(ctx context.Context, entries []wbEntry[T], redelivered, retry bool, settling *wbSettling) (n int, err error) {
	ctx, span := w.opt.Tracer.Start(ctx, "write-behind flush", trace.WithAttributes(attribute.Int("write_behind.batch.entries", len(entries))))
	defer func() {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}()
	bo := wbBackoff(w.opt.FlushInterval)
	total := 0
	for attempt := 0; ; attempt++ {
		c, err := w.commit(ctx, entries, redelivered || attempt > 0)
		if w.afterBatchCommit != nil {
			w.afterBatchCommit()
		}
		n, serr := settling.wait()
		total += n
		if serr != nil {
			return total, serr // c stays pending, to be redelivered
		}
		if !c.empty() {
			settling.start(func() (int, error) { return w.settleCommit(ctx, c, retry) })
		}
		if err == nil {
			return total, nil
		}
		w.metrics.Retried(w.resource.Kind, len(entries)-c.committed())
		if !retry || ctx.Err() != nil {
			return total, err
		}
		w.log.LogAttrs(ctx, slog.LevelWarn, "write-behind flush failed; retrying",
			slog.Int("entries", len(entries)), slog.Int("attempt", attempt+1), slog.Any("error", err))
		if !wbSleep(ctx, bo.NextBackOff()) {
			return total, err
		}
	}
}

// wbCommit is what one batch's commit leaves to the settle stage.
type wbCommit[T any] struct {
	rounds    []wbRound[T]
	failed    []wbEntry[T] // failed on their own: undecodable, or rejected by the store
	notifyAll bool
}

// wbRound is one committed statement's entries (distinct ids).
type wbRound[T any] struct {
	ok       []wbEntry[T]    // committed: inserted, or the id was there
	inserted map[string]bool // ids this statement inserted
	changes  []int64         // what the statements logged in the invalidation log
}

func (c *wbCommit[T]) empty() bool { return len(c.rounds) == 0 && len(c.failed) == 0 }

// committed counts the entries whose rows are in the store.
func (c *wbCommit[T]) committed() int {
	n := 0
	for _, r := range c.rounds {
		n += len(r.ok)
	}
	return n
}

// commit inserts entries under flushMu, in rounds of distinct ids: the
// first occurrence of an id in stream order wins, later ones find the row
// there. On an outage it returns what was committed before it, without
// the entries that failed on their own (the retry or a redelivery deals
// with those).
func (w *WriteBehind[T]) commit(ctx context.Context, entries []wbEntry[T], notifyAll bool) (wbCommit[T], error) {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	c := wbCommit[T]{notifyAll: notifyAll}
	good := make([]wbEntry[T], 0, len(entries))
	for _, e := range entries {
		if e.Err != nil {
			c.failed = append(c.failed, e)
		} else {
			good = append(good, e)
		}
	}
	for len(good) > 0 {
		round, later := distinctIDs(good)
		var changes []int64
		ok, inserted, failed, err := w.insertIsolating(ctx, round, &changes)
		if len(ok) > 0 {
			c.rounds = append(c.rounds, wbRound[T]{ok: ok, inserted: inserted, changes: changes})
		}
		if err != nil {
			c.failed = nil
			return c, err
		}
		c.failed = append(c.failed, failed...)
		good = later
	}
	return c, nil
}

// settleCommit acknowledges and settles what c committed, round by round,
// then deals with the entries that failed on their own. With retry, a
// Redis failure is retried with backoff until it succeeds or ctx ends; a
// repeated settle acknowledges nothing twice (XACK), so it is harmless.
func (w *WriteBehind[T]) settleCommit(ctx context.Context, c wbCommit[T], retry bool) (int, error) {
	bo := wbBackoff(w.opt.FlushInterval)
	total := 0
	for attempt := 0; ; attempt++ {
		n, err := w.settleOnce(ctx, c)
		total += n
		if err == nil || !retry || ctx.Err() != nil {
			return total, err
		}
		w.metrics.Retried(w.resource.Kind, max(c.committed()-n, 0))
		w.log.LogAttrs(ctx, slog.LevelWarn, "write-behind settle failed; retrying",
			slog.Int("entries", c.committed()), slog.Int("attempt", attempt+1), slog.Any("error", err))
		if !wbSleep(ctx, bo.NextBackOff()) {
			return total, err
		}
	}
}

func (w *WriteBehind[T]) settleOnce(ctx context.Context, c wbCommit[T]) (int, error) {
	total := 0
	for _, r := range c.rounds {
		n, err := w.settle(ctx, r, c.notifyAll)
		total += n
		if err != nil {
			return total, err
		}
	}
	for _, e := range c.failed {
		if err := w.reject(ctx, e); err != nil {
			return total, err
		}
	}
	return total, nil
}

// wbSettling is the settle stage of one pipeline: at most one settle in
// flight, waited for before the next starts.
type wbSettling struct {
	done chan wbSettled // nil when nothing is in flight
}

type wbSettled struct {
	n   int
	err error
}

// start runs settle in a goroutine; the previous one must have been waited for.
func (s *wbSettling) start(settle func() (int, error)) {
	done := make(chan wbSettled, 1)
	s.done = done
	go func() {
		n, err := settle()
		done <- wbSettled{n, err}
	}()
}

// wait returns the result of the settle in flight, (0, nil) when none is.
func (s *wbSettling) wait() (int, error) {
	if s.done == nil {
		return 0, nil
	}
	r := <-s.done
	s.done = nil
	return r.n, r.err
}

package cache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/internal/testenv"
)

// wbFast are options for tests: short waits, claims right after a failure.
var wbFast = WriteBehindOptions{BatchSize: 100, FlushInterval: 50 * time.Millisecond, ClaimIdle: time.Hour, MaxAttempts: 1}

func TestWriteBehindEnqueueHitThenFlushOnce(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	wb, m := f.writeBehind("a", wbFast)
	owner := uuid.New()
	items := []domain.Analysis{newWBItem(owner, "one"), newWBItem(owner, "two"), newWBItem(owner, "three")}
	if err := wb.Enqueue(ctx, items, nil); err != nil {
		t.Fatal(err)
	}
	for _, a := range items {
		e, ok := f.cached(t, a.ID)
		if !ok || e.Kind != KindWriteBehind || e.Version != 1 {
			t.Fatalf("cache of %s right after Enqueue: %+v present=%v, want a W entry of version 1", a.ID, e, ok)
		}
		if want := a.AppendJSON(nil); !bytes.Equal(e.Body, want) {
			t.Fatalf("cached body\n%s\nwant\n%s", e.Body, want)
		}
		if ttl := f.rdb.PTTL(ctx, f.key(a.ID)).Val(); ttl <= 0 {
			t.Fatalf("cache entry of %s has no TTL (%v)", a.ID, ttl)
		}
	}
	// Notes never reach Redis in plain text, neither in the cache nor in the stream.
	msgs := f.rdb.XRange(ctx, f.stream(), "-", "+").Val()
	for i, a := range items {
		raw := f.rdb.Get(ctx, f.key(a.ID)).Val() + fmt.Sprint(msgs[i].Values)
		if strings.Contains(raw, *a.Notes) {
			t.Fatalf("notes of %s are in Redis in plain text", a.ID)
		}
	}
	if n, err := wb.Pending(ctx); err != nil || n != 3 {
		t.Fatalf("Pending = %d, %v; want 3", n, err)
	}
	nsBefore := f.rdb.Get(ctx, f.keys.Namespace(wbResource.Lists)).Val()

	n, err := wb.Flush(ctx)
	if err != nil || n != 3 {
		t.Fatalf("Flush = %d, %v; want 3", n, err)
	}
	if got := f.rowCount(t, wbIDs(items)); got != 3 {
		t.Fatalf("%d rows in Postgres, want 3", got)
	}
	for _, a := range items {
		row, err := f.repo.Get(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := row.AppendJSON(nil), a.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("row\n%s\nwant what was cached\n%s", got, want)
		}
		if e, ok := f.cached(t, a.ID); !ok || !bytes.Equal(e.Body, a.AppendJSON(nil)) {
			t.Fatalf("cache of %s after the flush no longer holds the row", a.ID)
		}
	}
	if f.xlen(t, f.stream()) != 0 || f.groupPending(t) != 0 {
		t.Fatalf("stream still holds %d entries, %d pending", f.xlen(t, f.stream()), f.groupPending(t))
	}
	if m.WBFlushed.Load() != 3 {
		t.Fatalf("flushed counter %d, want 3", m.WBFlushed.Load())
	}
	if nsAfter := f.rdb.Get(ctx, f.keys.Namespace(wbResource.Lists)).Val(); nsAfter == nsBefore {
		t.Fatalf("list namespace not bumped by the flush (still %q)", nsAfter)
	}
	// A second flush has nothing to do.
	if n, err := wb.Flush(ctx); err != nil || n != 0 {
		t.Fatalf("second Flush = %d, %v; want 0", n, err)
	}
}

func TestWriteBehindDuplicatesReplayAndExistingIDs(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	wb, _ := f.writeBehind("a", wbFast)
	owner := uuid.New()

	// The same id twice in one call: the first wins, in the cache and in Postgres.
	first, second := newWBItem(owner, "first"), newWBItem(owner, "second")
	second.ID = first.ID
	if err := wb.Enqueue(ctx, []domain.Analysis{first, second}, nil); err != nil {
		t.Fatal(err)
	}
	// And again in a later call (across batches), with other content.
	third := newWBItem(owner, "third")
	third.ID = first.ID
	if err := wb.Enqueue(ctx, []domain.Analysis{third}, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := wb.Flush(ctx); err != nil || n != 3 {
		t.Fatalf("Flush = %d, %v; want 3 entries acknowledged", n, err)
	}
	row, err := f.repo.Get(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row.Title != "first" || row.Version != 1 {
		t.Fatalf("row is %q v%d, want the first entry (v1)", row.Title, row.Version)
	}
	if e, ok := f.cached(t, first.ID); ok && !bytes.Equal(e.Body, row.AppendJSON(nil)) {
		t.Fatalf("cache disagrees with Postgres:\n%s\n%s", e.Body, row.AppendJSON(nil))
	}

	// An id that already exists in Postgres (not cached): the ingest is
	// never cached, and the row is unchanged after the flush.
	existing := newWBItem(owner, "existing")
	if _, err := f.repo.Create(ctx, &existing); err != nil {
		t.Fatal(err)
	}
	intruder := newWBItem(owner, "intruder")
	intruder.ID = existing.ID
	if err := wb.Enqueue(ctx, []domain.Analysis{intruder}, nil); err != nil {
		t.Fatal(err)
	}
	if e, ok := f.cached(t, existing.ID); ok {
		t.Fatalf("before the flush the cache answers the ingest of an existing id: %c%d %s", e.Kind, e.Version, e.Body)
	}
	if _, err := wb.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	row, err = f.repo.Get(ctx, existing.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row.Title != "existing" {
		t.Fatalf("existing row changed to %q", row.Title)
	}
	if e, ok := f.cached(t, existing.ID); ok {
		t.Fatalf("cache still answers the losing ingest: %s", e.Body)
	}

	// An existing id with a cached value: the cache is not overwritten.
	cachedRow := newWBItem(owner, "cached")
	if _, err := f.repo.Create(ctx, &cachedRow); err != nil {
		t.Fatal(err)
	}
	real := f.codec.Value(cachedRow.Version, cachedRow.AppendJSON(nil))
	f.rdb.Set(ctx, f.key(cachedRow.ID), real, time.Minute)
	other := newWBItem(owner, "other")
	other.ID = cachedRow.ID
	if err := wb.Enqueue(ctx, []domain.Analysis{other}, nil); err != nil {
		t.Fatal(err)
	}
	if got := f.rdb.Get(ctx, f.key(cachedRow.ID)).Val(); got != string(real) {
		t.Fatal("Enqueue overwrote a real cached value")
	}
	if _, err := wb.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.rdb.Get(ctx, f.key(cachedRow.ID)).Val(); got != string(real) {
		t.Fatal("the flush touched a real cached value")
	}

	// A replayed batch (the same stream entries again) creates nothing.
	replay := []domain.Analysis{newWBItem(owner, "r1"), newWBItem(owner, "r2")}
	if err := wb.Enqueue(ctx, replay, nil); err != nil {
		t.Fatal(err)
	}
	entries := f.rdb.XRange(ctx, f.stream(), "-", "+").Val()
	if _, err := wb.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		f.rdb.XAdd(ctx, &redis.XAddArgs{Stream: f.stream(), Values: e.Values})
	}
	var before int64
	f.repo.DB().Raw("SELECT count(*) FROM analyses WHERE owner_id = ?", owner).Scan(&before)
	if n, err := wb.Flush(ctx); err != nil || n != len(entries) {
		t.Fatalf("replay Flush = %d, %v; want %d acknowledged", n, err, len(entries))
	}
	var after int64
	f.repo.DB().Raw("SELECT count(*) FROM analyses WHERE owner_id = ?", owner).Scan(&after)
	if after != before {
		t.Fatalf("replay created %d rows", after-before)
	}
}

// TestWriteBehindSettlesCacheToPostgres checks every cache state an
// inserted id can be found in after its commit.
func TestWriteBehindSettlesCacheToPostgres(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	wb, _ := f.writeBehind("a", wbFast)
	owner := uuid.New()
	items := make([]domain.Analysis, 9)
	for i := range items {
		items[i] = newWBItem(owner, fmt.Sprint("s", i))
	}
	// 5 to 8 are ingested at version 3: the guard compares with the
	// entity's own version, not with 1.
	for i := 5; i < len(items); i++ {
		items[i].Version = 3
	}
	if err := wb.Enqueue(ctx, items, nil); err != nil {
		t.Fatal(err)
	}
	key := func(i int) string { return f.key(items[i].ID) }
	// 0: the V entry expired and a read cached "not found" → must go.
	f.rdb.Set(ctx, key(0), f.codec.Negative(0), time.Minute)
	// 1: a fill holds a lease (it may have loaded before the commit) → must go.
	f.rdb.Set(ctx, key(1), f.codec.Lease("tok"), time.Minute)
	// 2: a write-through after the commit (v2) → kept.
	v2 := f.codec.Value(2, []byte(`{"v":2}`))
	f.rdb.Set(ctx, key(2), v2, time.Minute)
	// 3: another ingest's value of this id (W v1, other bytes) → must go.
	f.rdb.Set(ctx, key(3), f.codec.WrittenBehind(1, []byte(`{"other":1}`)), time.Minute)
	// 4: untouched → kept.
	// 5: a write-through of v4 → kept; 6: a value of v3, other bytes → must go.
	v4 := f.codec.Value(4, []byte(`{"v":4}`))
	f.rdb.Set(ctx, key(5), v4, time.Minute)
	f.rdb.Set(ctx, key(6), f.codec.Value(3, []byte(`{"other":3}`)), time.Minute)
	// 7: a tombstone of v3 → kept; 8: a tombstone of v2 (older) → must go.
	n3 := f.codec.Negative(3)
	f.rdb.Set(ctx, key(7), n3, time.Minute)
	f.rdb.Set(ctx, key(8), f.codec.Negative(2), time.Minute)
	if _, err := wb.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 1, 3, 6, 8} {
		if e, ok := f.cached(t, items[i].ID); ok {
			t.Errorf("item %d: stale entry %c v%d survived the flush", i, e.Kind, e.Version)
		}
	}
	if got := f.rdb.Get(ctx, key(2)).Val(); got != string(v2) {
		t.Error("item 2: a newer write-through was dropped")
	}
	if e, ok := f.cached(t, items[4].ID); !ok || e.Kind != KindWriteBehind || !bytes.Equal(e.Body, items[4].AppendJSON(nil)) {
		t.Error("item 4: the ingest's own value was dropped")
	}
	if got := f.rdb.Get(ctx, key(5)).Val(); got != string(v4) {
		t.Error("item 5: a newer write-through was dropped")
	}
	if got := f.rdb.Get(ctx, key(7)).Val(); got != string(n3) {
		t.Error("item 7: the tombstone of its version was dropped")
	}
}

func TestWriteBehindPoisonIsDeadLetteredWithoutBlockingOthers(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	opt := wbFast
	opt.MaxAttempts = 2
	wb, m := f.writeBehind("a", opt)
	owner := uuid.New()
	items := make([]domain.Analysis, 9)
	for i := range items {
		items[i] = newWBItem(owner, fmt.Sprint("p", i))
	}
	bad := 5.0 // violates analyses_score_check: rejected by Postgres, not by decoding
	items[4].Score = &bad
	if err := wb.Enqueue(ctx, items, nil); err != nil {
		t.Fatal(err)
	}
	// An entry that does not decode at all.
	f.rdb.XAdd(ctx, &redis.XAddArgs{Stream: f.stream(), Values: []any{"id", "not-a-uuid", "v", "garbage"}})

	// First delivery: the 8 good rows are committed, the two poisons stay pending.
	n, err := wb.Flush(ctx)
	if err != nil || n != 8 {
		t.Fatalf("Flush = %d, %v; want the 8 good entries", n, err)
	}
	good := append(wbIDs(items[:4]), wbIDs(items[5:])...)
	if got := f.rowCount(t, good); got != 8 {
		t.Fatalf("%d good rows in Postgres, want 8", got)
	}
	if f.groupPending(t) != 2 || f.xlen(t, f.dead()) != 0 {
		t.Fatalf("after one attempt: %d pending, %d dead; want 2 pending, 0 dead", f.groupPending(t), f.xlen(t, f.dead()))
	}
	// Second delivery reaches MaxAttempts: both go to the dead-letter stream.
	if _, err := wb.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	dead := f.rdb.XRange(ctx, f.dead(), "-", "+").Val()
	if len(dead) != 2 || m.WBDeadLettered.Load() != 2 {
		t.Fatalf("%d dead letters, counter %d; want 2", len(dead), m.WBDeadLettered.Load())
	}
	for _, d := range dead {
		if d.Values["error"] == "" || d.Values["attempts"] != "2" {
			t.Fatalf("dead letter without its error or attempts: %v", d.Values)
		}
	}
	if f.xlen(t, f.stream()) != 0 || f.groupPending(t) != 0 {
		t.Fatal("poison entries still in the stream")
	}
	if _, ok := f.cached(t, items[4].ID); ok {
		t.Fatal("the dead-lettered analysis is still served from the cache")
	}
	if got := f.rowCount(t, []uuid.UUID{items[4].ID}); got != 0 {
		t.Fatal("the poison row was stored")
	}
}

func TestWriteBehindPostgresOutageLosesNothing(t *testing.T) {
	env := testenv.Get(t)
	proxy := startWBProxy(t, wbPGTarget(t, env.DatabaseURL))
	f := newWBFixture(t)
	f.repo = openWBRepo(t, wbViaProxy(t, env.DatabaseURL, proxy))
	ctx := context.Background()
	wb, m := f.writeBehind("a", wbFast)
	items := make([]domain.Analysis, 20)
	for i := range items {
		items[i] = newWBItem(uuid.New(), fmt.Sprint("o", i))
	}

	proxy.cut()
	// Postgres down: ingest still succeeds.
	if err := wb.Enqueue(ctx, items, nil); err != nil {
		t.Fatalf("Enqueue with Postgres down: %v", err)
	}
	// An admin flush reports the outage and keeps everything.
	if _, err := wb.Flush(ctx); !errors.Is(err, ErrStoreUnavailable) {
		t.Fatalf("Flush with Postgres down = %v, want ErrStoreUnavailable", err)
	}
	// The flusher retries (counted), dead-letters nothing.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- wb.Run(runCtx) }()
	wbWaitFor(t, "retries", func() bool { return m.WBRetried.Load() >= 3*int64(len(items)) })
	if n := f.xlen(t, f.stream()); n != int64(len(items)) {
		t.Fatalf("stream holds %d entries during the outage, want %d", n, len(items))
	}
	proxy.restore()
	wbWaitFor(t, "the backlog to drain", func() bool { n, _ := wb.Pending(ctx); return n == 0 })
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := f.rowCount(t, wbIDs(items)); got != int64(len(items)) {
		t.Fatalf("%d rows after the outage, want %d", got, len(items))
	}
	if m.WBDeadLettered.Load() != 0 || f.xlen(t, f.dead()) != 0 {
		t.Fatal("an outage dead-lettered entries")
	}
}

func TestWriteBehindClaimsFromDeadConsumer(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	a, _ := f.writeBehind("a", wbFast)
	items := []domain.Analysis{newWBItem(uuid.New(), "c1"), newWBItem(uuid.New(), "c2")}
	if err := a.Enqueue(ctx, items, nil); err != nil {
		t.Fatal(err)
	}
	// Consumer a reads the entries and dies before flushing them.
	if err := a.ensureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	if msgs, err := a.read(ctx, ">", -1); err != nil || len(msgs) != 2 {
		t.Fatalf("a read %d, %v", len(msgs), err)
	}
	// Consumer b claims them once idle and flushes; it never reads them as new.
	opt := wbFast
	opt.ClaimIdle = 100 * time.Millisecond
	b, bm := f.writeBehind("b", opt)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	wbWaitFor(t, "b to flush a's entries", func() bool { return bm.WBFlushed.Load() == 2 })
	stop()
	<-done
	if got := f.rowCount(t, wbIDs(items)); got != 2 {
		t.Fatalf("%d rows, want 2", got)
	}
	if f.groupPending(t) != 0 || f.xlen(t, f.stream()) != 0 {
		t.Fatal("entries left in the stream")
	}
}

// TestWriteBehindCrashBetweenCommitAndAck forces the crash window: rows
// committed, entries not acknowledged. The redelivery must acknowledge them
// without inserting again, and still invalidate the owners' lists.
func TestWriteBehindCrashBetweenCommitAndAck(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	a, am := f.writeBehind("a", wbFast)
	a.afterCommit = func() error { return errors.New("simulated crash after commit") }
	owner := uuid.New()
	items := []domain.Analysis{newWBItem(owner, "k1"), newWBItem(owner, "k2")}
	if err := a.Enqueue(ctx, items, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Flush(ctx); err == nil {
		t.Fatal("the simulated crash did not fail the flush")
	}
	if f.rowCount(t, wbIDs(items)) != 2 || f.groupPending(t) != 2 || am.WBFlushed.Load() != 0 {
		t.Fatal("setup: want rows committed and entries still pending")
	}
	tag := f.rdb.Get(ctx, f.keys.TagGeneration(wbResource.GroupTag(owner.String()))).Val()
	b, bm := f.writeBehind("b", wbFast)
	if n, err := b.Flush(ctx); err != nil || n != 2 {
		t.Fatalf("b.Flush = %d, %v; want 2", n, err)
	}
	if f.rowCount(t, wbIDs(items)) != 2 || f.groupPending(t) != 0 || bm.WBFlushed.Load() != 2 {
		t.Fatal("redelivery did not settle the committed entries exactly once")
	}
	if got := f.rdb.Get(ctx, f.keys.TagGeneration(wbResource.GroupTag(owner.String()))).Val(); got == tag {
		t.Fatal("redelivery of committed entries did not invalidate the owner's lists")
	}
}

// TestWriteBehindConcurrentFlushersSettleOnce forces two flushers onto the
// same entries: a holds them between commit and acknowledgement while b
// flushes them. Each entry is acknowledged (and counted) exactly once.
func TestWriteBehindConcurrentFlushersSettleOnce(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	a, am := f.writeBehind("a", wbFast)
	b, bm := f.writeBehind("b", wbFast)
	items := []domain.Analysis{newWBItem(uuid.New(), "x1"), newWBItem(uuid.New(), "x2"), newWBItem(uuid.New(), "x3")}
	if err := a.Enqueue(ctx, items, nil); err != nil {
		t.Fatal(err)
	}
	committed, release := make(chan struct{}), make(chan struct{})
	a.afterCommit = func() error { close(committed); <-release; return nil }
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _, _ = a.Flush(ctx) }()
	<-committed
	if n, err := b.Flush(ctx); err != nil || n != 3 {
		t.Fatalf("b.Flush = %d, %v; want 3", n, err)
	}
	close(release)
	wg.Wait()
	if total := am.WBFlushed.Load() + bm.WBFlushed.Load(); total != 3 {
		t.Fatalf("entries acknowledged %d times in total, want 3", total)
	}
	// b found the rows already committed by a, so it dropped the cached
	// values (a miss); whatever is left must agree with Postgres.
	for _, it := range items {
		row, err := f.repo.Get(ctx, it.ID)
		if err != nil {
			t.Fatal(err)
		}
		if e, ok := f.cached(t, it.ID); ok && !bytes.Equal(e.Body, row.AppendJSON(nil)) {
			t.Fatalf("cache of %s disagrees with Postgres", it.ID)
		}
	}
}

func TestWriteBehindBackpressure(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	opt := wbFast
	opt.MaxPending = 10
	wb, _ := f.writeBehind("a", opt)

	// Concurrent ingests never overshoot: the check and the append are one script.
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted, full := 0, 0
	for i := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := wb.Enqueue(ctx, []domain.Analysis{newWBItem(uuid.New(), fmt.Sprint("b", i))}, nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				accepted++
			case errors.Is(err, ErrQueueFull):
				full++
			default:
				t.Errorf("Enqueue: %v", err)
			}
		}()
	}
	wg.Wait()
	if accepted != 10 || full != 20 || f.xlen(t, f.stream()) != 10 {
		t.Fatalf("accepted %d, full %d, stream %d; want 10, 20, 10", accepted, full, f.xlen(t, f.stream()))
	}
	// A refused batch writes nothing, not even its cache entries.
	refused := newWBItem(uuid.New(), "refused")
	err := wb.Enqueue(ctx, []domain.Analysis{refused}, nil)
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Enqueue over the limit = %v", err)
	}
	if _, ok := f.cached(t, refused.ID); ok {
		t.Fatal("a refused item was cached")
	}
	// Flushed entries leave the backlog, so ingest is accepted again.
	if _, err := wb.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := wb.Enqueue(ctx, []domain.Analysis{refused}, nil); err != nil {
		t.Fatalf("Enqueue after the flush: %v", err)
	}

	// Redis unreachable.
	closed := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer closed.Close()
	downBackend := f.backend(NewMetrics(nil, wbQuietLog))
	downBackend.Redis = closed
	down := NewWriteBehind[domain.Analysis](downBackend, wbResource, wbStore{f.repo}, wbAnalyses{}, f.lists, wbFast)
	err = down.Enqueue(ctx, []domain.Analysis{newWBItem(uuid.New(), "down")}, nil)
	if !errors.Is(err, ErrQueueUnavailable) {
		t.Fatalf("Enqueue with Redis down = %v, want ErrQueueUnavailable", err)
	}
}

func TestWriteBehindStopDrainsWithoutLeaks(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	opt := wbFast
	opt.FlushInterval = time.Second
	wb, _ := f.writeBehind("a", opt)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- wb.Run(runCtx) }()
	items := make([]domain.Analysis, 50)
	for i := range items {
		items[i] = newWBItem(uuid.New(), fmt.Sprint("d", i))
	}
	if err := wb.Enqueue(ctx, items, nil); err != nil {
		t.Fatal(err)
	}
	stopCtx, cancelStop := context.WithTimeout(ctx, 60*time.Second)
	defer cancelStop()
	if err := wb.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := f.rowCount(t, wbIDs(items)); got != int64(len(items)) {
		t.Fatalf("%d rows after Stop, want %d", got, len(items))
	}
	if n, _ := wb.Pending(ctx); n != 0 {
		t.Fatalf("%d entries left after Stop", n)
	}
}

// TestWriteBehindRunAfterStopReturns: a Run that starts after Stop began
// (the goroutine started before Stop but scheduled after it, as at a
// shutdown right after start-up) returns at once instead of flushing
// forever unseen by Stop.
func TestWriteBehindRunAfterStopReturns(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	wb, _ := f.writeBehind("a", wbFast)
	if err := wb.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- wb.Run(ctx) }() // ctx is never cancelled
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after Stop: %v, want nil", err)
		}
	case <-time.After(30 * time.Second): // far above a return "at once", even on a loaded machine
		t.Fatal("Run after Stop is still running: nothing will ever stop it")
	}
}

// TestWriteBehindUndecodableAfterKeyChange: entries sealed with a key the
// flusher does not have (a key dropped from CACHE_ENCRYPTION_KEY) are
// dead-lettered, never silently dropped, and never block the others.
func TestWriteBehindUndecodableAfterKeyChange(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	old, _ := f.writeBehind("old", wbFast)
	lost := newWBItem(uuid.New(), "lost")
	if err := old.Enqueue(ctx, []domain.Analysis{lost}, nil); err != nil {
		t.Fatal(err)
	}
	restarted := newWBFixtureOn(t, f.rdb, f.repo, f.keys) // same Redis and prefix, new key
	wb, m := restarted.writeBehind("new", wbFast)
	kept := newWBItem(uuid.New(), "kept")
	if err := wb.Enqueue(ctx, []domain.Analysis{kept}, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := wb.Flush(ctx); err != nil || n != 1 {
		t.Fatalf("Flush = %d, %v; want 1", n, err)
	}
	if m.WBDeadLettered.Load() != 1 || f.xlen(t, f.dead()) != 1 || f.rowCount(t, []uuid.UUID{kept.ID}) != 1 {
		t.Fatal("want the undecodable entry dead-lettered and the other one flushed")
	}
}

// TestWriteBehindEntriesAreWriteBehindHits follows an ingested id through
// cache-aside: a HIT reported as write-behind before and after the flush,
// never overwritten by a second ingest, replaced by a later write-through
// (v2) and by a tombstone of the same version.
func TestWriteBehindEntriesAreWriteBehindHits(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	wb, _ := f.writeBehind("a", wbFast)
	aside := NewAside(f.backend(f.metrics), wbResource, AsideOptions{})
	noLoad := func(context.Context) ([]byte, int64, error) {
		t.Fatal("cache-aside went to Postgres for an ingested id")
		return nil, 0, nil
	}
	get := func(what string, a domain.Analysis, pattern string, version int64) {
		t.Helper()
		res, err := aside.Get(ctx, a.ID.String(), noLoad)
		if err != nil || res.Status != Hit || res.Pattern != pattern || res.Version != version {
			t.Fatalf("%s: Get = %+v, %v; want HIT %s v%d", what, res, err, pattern, version)
		}
		if version == 1 && !bytes.Equal(res.Body, a.AppendJSON(nil)) {
			t.Fatalf("%s: body\n%s\nwant\n%s", what, res.Body, a.AppendJSON(nil))
		}
	}
	owner := uuid.New()
	patched, deleted := newWBItem(owner, "patched"), newWBItem(owner, "deleted")
	items := []domain.Analysis{patched, deleted}
	if err := wb.Enqueue(ctx, items, nil); err != nil {
		t.Fatal(err)
	}
	get("right after the ingest", patched, PatternWriteBehind, 1)

	// A second ingest of the same id keeps the first one's entry.
	again := newWBItem(owner, "again")
	again.ID = patched.ID
	if err := wb.Enqueue(ctx, []domain.Analysis{again}, nil); err != nil {
		t.Fatal(err)
	}
	get("after a second ingest of the id", patched, PatternWriteBehind, 1)

	if _, err := wb.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The row that won is the entry's: the W stays and is still a hit.
	get("after the flush", patched, PatternWriteBehind, 1)
	get("after the flush", deleted, PatternWriteBehind, 1)

	// A PATCH (version 2) goes through the guard and replaces the W.
	if err := aside.Set(ctx, patched.ID.String(), 2, []byte(`{"version":2}`)); err != nil {
		t.Fatal(err)
	}
	if e, ok := f.cached(t, patched.ID); !ok || e.Kind != KindValue || e.Version != 2 {
		t.Fatalf("after a PATCH to v2 the cache holds %+v (present %v), want V2", e, ok)
	}
	get("after the PATCH", patched, PatternAside, 2)

	// A DELETE of version 1 tombstones the W of version 1.
	if err := aside.Tombstone(ctx, deleted.ID.String(), 1); err != nil {
		t.Fatal(err)
	}
	if e, ok := f.cached(t, deleted.ID); !ok || e.Kind != KindNegative || e.Version != 1 {
		t.Fatalf("after a DELETE of v1 the cache holds %+v (present %v), want N1", e, ok)
	}
}

// TestWriteBehindClientIDsNeverShadowCommittedRows: with the flusher
// stopped, a bulk item whose client-given id names a committed row (its
// cache entry expired) is never served in place of that row, whether
// Postgres answered the lookup or not. New client-given ids are still
// write-behind hits when Postgres answers, and generated ids always are.
func TestWriteBehindClientIDsNeverShadowCommittedRows(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	proxy := startWBProxy(t, wbPGTarget(t, env.DatabaseURL))
	f := newWBFixture(t)
	direct := f.repo // what readers load from
	f.repo = openWBRepo(t, wbViaProxy(t, env.DatabaseURL, proxy))
	wb, _ := f.writeBehind("a", wbFast) // never Run: nothing is flushed
	aside := NewAside(f.backend(f.metrics), wbResource, AsideOptions{})
	owner := uuid.New()
	load := func(id uuid.UUID) func(context.Context) ([]byte, int64, error) {
		return func(ctx context.Context) ([]byte, int64, error) {
			a, err := direct.Get(ctx, id)
			if err != nil {
				return nil, 0, err
			}
			return a.AppendJSON(nil), a.Version, nil
		}
	}
	// committed returns a row of Postgres, with no cache entry (expired).
	committed := func(title string) domain.Analysis {
		a := newWBItem(owner, title)
		if _, err := direct.Create(ctx, &a); err != nil {
			t.Fatal(err)
		}
		return a
	}
	// clash returns a bulk item carrying row's id with other content.
	clash := func(row domain.Analysis) domain.Analysis {
		a := newWBItem(owner, "ingested-over-"+row.Title)
		a.ID = row.ID
		return a
	}
	// servesRow checks that a read of row's id answers the committed row.
	servesRow := func(what string, row domain.Analysis) {
		t.Helper()
		res, err := aside.Get(ctx, row.ID.String(), load(row.ID))
		if err != nil || !bytes.Equal(res.Body, row.AppendJSON(nil)) || res.Version != row.Version {
			t.Errorf("%s: Get = %s %s v%d %q, %v; want the committed row v%d", what, res.Status, res.Pattern, res.Version, res.Body, err, row.Version)
		}
	}
	isWriteBehindHit := func(what string, a domain.Analysis) {
		t.Helper()
		res, err := aside.Get(ctx, a.ID.String(), func(context.Context) ([]byte, int64, error) {
			return nil, 0, errors.New("went to Postgres")
		})
		if err != nil || res.Status != Hit || res.Pattern != PatternWriteBehind || !bytes.Equal(res.Body, a.AppendJSON(nil)) {
			t.Errorf("%s: Get = %+v, %v; want a write-behind HIT of the ingest", what, res, err)
		}
	}

	// Postgres answers: the existing id gets no W, a new client-given id does.
	rowUp := committed("up")
	fresh := newWBItem(owner, "fresh")
	items := []domain.Analysis{clash(rowUp), fresh}
	if err := wb.Enqueue(ctx, items, nil); err != nil {
		t.Fatal(err)
	}
	servesRow("existing id, Postgres up", rowUp)
	isWriteBehindHit("new client-given id, Postgres up", items[1])

	// Postgres does not answer: no client-given id gets a W (a stale
	// "not found" at its key goes too); a generated id still does.
	rowDown, rowNegative := committed("down"), committed("negative")
	f.rdb.Set(ctx, f.key(rowNegative.ID), f.codec.Negative(0), time.Hour)
	generated := newWBItem(owner, "generated")
	proxy.cut()
	items = []domain.Analysis{clash(rowDown), clash(rowNegative), generated}
	if err := wb.Enqueue(ctx, items, []bool{false, false, true}); err != nil {
		t.Fatalf("Enqueue with Postgres down: %v", err)
	}
	servesRow("existing id, Postgres down", rowDown)
	servesRow("existing id cached as not found, Postgres down", rowNegative)
	isWriteBehindHit("generated id, Postgres down", items[2])
	if n := f.xlen(t, f.stream()); n != 5 {
		t.Fatalf("stream holds %d entries, want 5 (every item is queued)", n)
	}
}

// Flush answers how many of the entries pending when it was called are in
// Postgres when it returns, whoever committed them: entries another
// flusher commits while this call runs count too, and entries added after
// the call arrived do not.
func TestWriteBehindFlushCountsWhatOthersCommitted(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	wb, _ := f.writeBehind("caller", wbFast)
	other, _ := f.writeBehind("background", wbFast)
	owner := uuid.New()
	items := []domain.Analysis{newWBItem(owner, "one"), newWBItem(owner, "two")}
	if err := wb.Enqueue(ctx, items, nil); err != nil {
		t.Fatal(err)
	}
	late := newWBItem(owner, "late")
	wb.afterFlushArrival = func() {
		// Another flusher commits and acknowledges both entries first, and
		// a new entry arrives after the call.
		if n, err := other.Flush(ctx); err != nil || n != 2 {
			t.Errorf("the other flusher: %d, %v; want 2", n, err)
		}
		if err := wb.Enqueue(ctx, []domain.Analysis{late}, nil); err != nil {
			t.Error(err)
		}
	}
	n, err := wb.Flush(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Flush = %d, %v; want 2: both pending entries are in Postgres, the late one is not counted", n, err)
	}
	if got := f.rowCount(t, wbIDs(items)); got != 2 {
		t.Fatalf("%d rows in Postgres, want 2", got)
	}
}

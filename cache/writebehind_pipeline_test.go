package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/domain"
)

// TestWriteBehindPipelineSettlesWhileNextBatchCommits forces the overlap
// the pipeline exists for: the settle of batch 1 is held until batch 2 has
// committed. It checks that this happens (a serial flush deadlocks here
// and fails), that batch 2 is not acknowledged before its own commit nor
// settled before batch 1 (one settle at a time, in commit order), and that
// the outcome is the same as a serial flush: every row once, every entry
// acknowledged, the W entries left as the committed rows.
func TestWriteBehindPipelineSettlesWhileNextBatchCommits(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	opt := wbFast
	opt.BatchSize = 2
	wb, m := f.writeBehind("a", opt)
	owner := uuid.New()
	var items []domain.Analysis
	for i := range 6 {
		items = append(items, newWBItem(owner, fmt.Sprint("p", i)))
	}
	if err := wb.Enqueue(ctx, items, nil); err != nil {
		t.Fatal(err)
	}

	var (
		commits, settles, inSettle atomic.Int32
		secondCommitted            = make(chan struct{})
		mu                         sync.Mutex
		problems                   []string
	)
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	wb.afterBatchCommit = func() {
		if commits.Add(1) == 2 {
			// Batch 2 is committed; batch 1's settle is still held, so
			// neither batch may be acknowledged yet.
			if n := f.groupPending(t); n < 4 {
				report("after the second commit only %d entries pending, want at least 4 (acknowledged before settling)", n)
			}
			close(secondCommitted)
		}
	}
	wb.afterCommit = func() error {
		if inSettle.Add(1) > 1 {
			report("two settles at once")
		}
		defer inSettle.Add(-1)
		if settles.Add(1) == 1 {
			select {
			case <-secondCommitted:
			case <-time.After(60 * time.Second): // liveness bound: a serial flush never gets there
				report("batch 2 never committed while batch 1 was settling: no overlap")
			}
		}
		return nil
	}

	n, err := wb.Flush(ctx)
	for _, p := range problems {
		t.Error(p)
	}
	if err != nil || n != len(items) {
		t.Fatalf("Flush = %d, %v; want %d", n, err, len(items))
	}
	if got := f.rowCount(t, wbIDs(items)); got != int64(len(items)) {
		t.Fatalf("%d rows, want %d", got, len(items))
	}
	if f.groupPending(t) != 0 || f.xlen(t, f.stream()) != 0 {
		t.Fatal("entries left in the stream")
	}
	if m.WBFlushed.Load() != int64(len(items)) {
		t.Fatalf("flushed metric %d, want %d", m.WBFlushed.Load(), len(items))
	}
	for _, a := range items {
		if e, ok := f.cached(t, a.ID); !ok || e.Kind != KindWriteBehind {
			t.Fatalf("cache of %s after the flush: %+v present=%v, want the W entry kept", a.ID, e, ok)
		}
	}
}

// TestWriteBehindPipelineKeepsBatchFetchedAheadOfFailure: when a settle
// fails (a crash between commit and acknowledgement), the batch read ahead
// of it is not flushed and not lost: it stays pending on the consumer and
// the next flush takes everything, inserting nothing twice.
func TestWriteBehindPipelineKeepsBatchFetchedAheadOfFailure(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	opt := wbFast
	opt.BatchSize = 2
	wb, _ := f.writeBehind("a", opt)
	owner := uuid.New()
	var items []domain.Analysis
	for i := range 6 {
		items = append(items, newWBItem(owner, fmt.Sprint("f", i)))
	}
	if err := wb.Enqueue(ctx, items, nil); err != nil {
		t.Fatal(err)
	}
	crash := errors.New("simulated crash after commit")
	wb.afterCommit = func() error { return crash }
	if _, err := wb.Flush(ctx); !errors.Is(err, crash) {
		t.Fatalf("Flush with a failing settle: %v, want the crash", err)
	}
	if n := f.xlen(t, f.stream()); n != int64(len(items)) {
		t.Fatalf("%d entries in the stream after the failure, want all %d", n, len(items))
	}
	wb.afterCommit = nil
	if _, err := wb.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.rowCount(t, wbIDs(items)); got != int64(len(items)) {
		t.Fatalf("%d rows, want %d", got, len(items))
	}
	if f.groupPending(t) != 0 || f.xlen(t, f.stream()) != 0 {
		t.Fatal("entries left in the stream")
	}
}

// TestWriteBehindStreamNames: each resource gets its own pair of streams
// by default, always under "wb:" (never deleted by invalidation), and
// analyses keep the names of every earlier release.
func TestWriteBehindStreamNames(t *testing.T) {
	k := Keys{Prefix: "app:"}
	for _, c := range []struct{ streams, kind, stream, dead string }{
		{"", "project", "app:wb:project:stream", "app:wb:project:dead"},
		{"wb:", "analysis", "app:wb:stream", "app:wb:dead"},
		{"bulk:", "analysis", "app:wb:bulk:stream", "app:wb:bulk:dead"},
	} {
		p := streamsOf(WriteBehindOptions{Streams: c.streams}, c.kind)
		if s, d := streamKey(k, p), deadLetterKey(k, p); s != c.stream || d != c.dead {
			t.Errorf("Streams %q, kind %q: %s and %s, want %s and %s", c.streams, c.kind, s, d, c.stream, c.dead)
		}
	}
}

// TestWriteBehindNeedsATrackedResource: a write-behind whose Log does not
// track its resource is refused when it is built, not when its first
// unsettled change would wait forever for a process to apply it.
func TestWriteBehindNeedsATrackedResource(t *testing.T) {
	log := NewLog(nil, Backend{}, LogOptions{})
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), `"widget"`) {
			t.Fatalf("NewWriteBehind with an untracked resource: recovered %v, want a panic naming it", r)
		}
	}()
	NewWriteBehind[domain.Analysis](Backend{}, Resource{Kind: "widget"}, nil, nil, nil, WriteBehindOptions{Log: log})
}

// groupless is an entity codec whose entities belong to no group.
type groupless struct{ wbAnalyses }

func (groupless) Group(domain.Analysis) string { return "" }

// countingLists records the calls of Changed.
type countingLists struct {
	mu    sync.Mutex
	calls [][]string
}

func (c *countingLists) Changed(_ context.Context, groups ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, groups)
	return nil
}

// TestWriteBehindInvalidatesListsOfGrouplessEntities: rows whose entities
// have no group still change the resource's lists (its namespace), so a
// flush that inserted any tells the lists, with no group.
func TestWriteBehindInvalidatesListsOfGrouplessEntities(t *testing.T) {
	f := newWBFixture(t)
	ctx := context.Background()
	lists := &countingLists{}
	wb := NewWriteBehind[domain.Analysis](f.backend(NewMetrics(nil, wbQuietLog)), wbResource, wbStore{f.repo}, groupless{}, lists, wbFast)
	if err := wb.Enqueue(ctx, []domain.Analysis{newWBItem(uuid.New(), "groupless")}, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := wb.Flush(ctx); err != nil || n != 1 {
		t.Fatalf("flush: %d, %v; want 1", n, err)
	}
	lists.mu.Lock()
	defer lists.mu.Unlock()
	if len(lists.calls) != 1 || len(lists.calls[0]) != 0 {
		t.Fatalf("Changed calls %v, want one, with no group", lists.calls)
	}
}

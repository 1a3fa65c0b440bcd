package cache

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/internal/testenv"
	"github.com/analysis-cache/service/repository"
	"github.com/analysis-cache/service/repository/repotest"
)

// logProcess is one process's view of the invalidation log: its own gate,
// Aside and Log, on the package's Postgres and on rdb.
type logProcess struct {
	gate  *Gate
	aside *Aside
	lists *ListInvalidation
	log   *Log
}

// logFixture is two processes sharing Postgres and a key prefix; A writes
// through a Redis client of its own, B through another.
type logFixture struct {
	pg      *repository.Postgres
	keys    Keys
	codec   *Codec
	metrics *Metrics
	redis   *redis.Client // the real Redis, for inspection
}

// logMu serializes the tests of the log: they share the package's
// cache_outbox table, and each one's Log applies every pending change.
var logMu sync.Mutex

func newLogFixture(t *testing.T) *logFixture {
	t.Helper()
	logMu.Lock()
	t.Cleanup(logMu.Unlock)
	env := testenv.Get(t)
	opt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	pg := listsPostgres(t)
	if err := pg.DB().Exec("DELETE FROM cache_outbox").Error; err != nil {
		t.Fatal(err)
	}
	return &logFixture{pg: pg, keys: Keys{Prefix: env.RedisPrefix + "log-" + listsRandom(t) + ":"},
		codec: mustCodec(t), metrics: NewMetrics(nil, quietLog), redis: rdb}
}

// process starts a process on rdb; with run, its Log runs until the test ends.
func (f *logFixture) process(t *testing.T, rdb Client, run bool, opt LogOptions) *logProcess {
	t.Helper()
	p := &logProcess{gate: NewGate()}
	b := f.backend(rdb, p.gate)
	p.aside = NewAside(b, testResource, AsideOptions{})
	p.lists = NewListInvalidation(b, testResource)
	p.log = NewLog(f.pg, b, opt)
	p.log.Track(p.aside, p.lists, storedAnalyses(f.pg))
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); p.log.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })
		testenv.PollUntil(t, "the process caught up at start", p.gate.Open)
	}
	return p
}

// backend is a process's Backend on rdb with its gate.
func (f *logFixture) backend(rdb Client, gate *Gate) Backend {
	return Backend{Redis: rdb, Keys: f.keys, Codec: f.codec, Metrics: f.metrics, Gate: gate, Logger: quietLog}
}

// entity is the key of the entry of analysis id.
func (f *logFixture) entity(id uuid.UUID) string {
	return f.keys.Entity(testResource.Kind, id.String())
}

// cachedVersion returns the kind and version of the entry of id, 0 when none.
func (f *logFixture) cachedVersion(t *testing.T, id uuid.UUID) (byte, int64) {
	t.Helper()
	raw, err := f.redis.Get(context.Background(), f.entity(id)).Bytes()
	if err == redis.Nil {
		return 0, 0
	}
	if err != nil {
		t.Fatal(err)
	}
	e, err := f.codec.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	return e.Kind, e.Version
}

// pending reports whether any of ids is still pending in the log.
func (f *logFixture) pending(t *testing.T, ids ...int64) bool {
	t.Helper()
	changes, err := f.pg.Pending(context.Background(), nil, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if slices.Contains(ids, c.ID) {
			return true
		}
	}
	return false
}

func (f *logFixture) read(t *testing.T, p *logProcess, id uuid.UUID) Result {
	t.Helper()
	res, err := p.aside.Get(context.Background(), id.String(), func(ctx context.Context) ([]byte, int64, error) {
		a, err := f.pg.Get(ctx, id)
		if domain.ErrorCode(err) == domain.ENOTFOUND {
			return nil, 0, ErrNotFound
		}
		if err != nil {
			return nil, 0, err
		}
		return a.AppendJSON(nil), a.Version, nil
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	return res
}

// A writer whose Redis refuses announces its change: the other process,
// whose Redis works, closes its gate (its reads bypass the stale entry),
// applies the change and serves the new version from Redis again.
func TestLogAnnouncedChangeReachesOtherProcess(t *testing.T) {
	f := newLogFixture(t)
	ctx := context.Background()
	// Grace is long: only the announcement can make B apply the change.
	b := f.process(t, f.redis, true, LogOptions{Grace: time.Hour})
	a := f.process(t, listsDeadRedis(t), false, LogOptions{})

	row := repotest.NewAnalysis(uuid.New(), "v1")
	if _, err := f.pg.Create(ctx, &row); err != nil {
		t.Fatal(err)
	}
	if r := f.read(t, b, row.ID); r.Status != Miss || r.Version != 1 {
		t.Fatalf("B's first read: %s v%d", r.Status, r.Version)
	}
	updated, change, err := f.pg.Update(ctx, row.ID, domain.AnalysisPatch{Title: ptr("v2")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.log.Commit(ctx, func(ctx context.Context) error {
		return a.aside.Set(ctx, row.ID.String(), updated.Version, updated.AppendJSON(nil))
	}, change.ID)

	testenv.PollUntil(t, "B applied the announced change", func() bool {
		_, v := f.cachedVersion(t, row.ID)
		return v == 2
	})
	testenv.PollUntil(t, "B's gate reopened", b.gate.Open)
	if r := f.read(t, b, row.ID); r.Status != Hit || r.Version != 2 {
		t.Fatalf("B after the catch-up: %s v%d, want HIT v2", r.Status, r.Version)
	}
	if f.pending(t, change.ID) {
		t.Fatalf("change %d still pending after B applied it", change.ID)
	}
}

// A writer that died between its commit and its cache work leaves the
// change pending; any process's sweep applies it once it is Grace old.
func TestLogSweepsChangesOfDeadWriters(t *testing.T) {
	f := newLogFixture(t)
	ctx := context.Background()
	b := f.process(t, f.redis, true, LogOptions{Grace: 50 * time.Millisecond, SweepEvery: 20 * time.Millisecond})
	row := repotest.NewAnalysis(uuid.New(), "v1")
	if _, err := f.pg.Create(ctx, &row); err != nil {
		t.Fatal(err)
	}
	f.read(t, b, row.ID) // caches v1
	if _, _, err := f.pg.Delete(ctx, row.ID, nil); err != nil {
		t.Fatal(err)
	}
	// No Commit: the writer is gone.
	testenv.PollUntil(t, "the sweep tombstoned the deleted analysis", func() bool {
		k, v := f.cachedVersion(t, row.ID)
		return k == KindNegative && v == 1
	})
	if r := f.read(t, b, row.ID); r.Status != Hit || r.Body != nil {
		t.Fatalf("read after the sweep: %+v; want a 404 HIT from the tombstone", r)
	}
}

// A Redis that restarted may have lost applied write-throughs (an AOF
// restart loses up to a second): a process that sees the new run_id
// replays the retained log before serving from Redis.
func TestLogReplaysRetainedChangesAfterRestart(t *testing.T) {
	f := newLogFixture(t)
	ctx := context.Background()
	b := f.process(t, f.redis, true, LogOptions{Grace: time.Hour, Retention: time.Hour})
	row := repotest.NewAnalysis(uuid.New(), "v1")
	created, err := f.pg.Create(ctx, &row)
	if err != nil {
		t.Fatal(err)
	}
	// Applied by its writer (the first read fills the entry).
	b.log.Commit(ctx, func(context.Context) error { return nil }, created.ID)
	f.read(t, b, row.ID)
	old, _ := f.redis.Get(ctx, f.entity(row.ID)).Bytes()
	updated, change, err := f.pg.Update(ctx, row.ID, domain.AnalysisPatch{Title: ptr("v2")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.log.Commit(ctx, func(ctx context.Context) error {
		return b.aside.Set(ctx, row.ID.String(), updated.Version, updated.AppendJSON(nil))
	}, change.ID)
	testenv.PollUntil(t, "the changes marked applied", func() bool {
		return !f.pending(t, created.ID, change.ID)
	})
	// The restart brings back the entry as it was before the write-through.
	if err := f.redis.Set(ctx, f.entity(row.ID), old, 0).Err(); err != nil {
		t.Fatal(err)
	}
	b.gate.Restarted()
	testenv.PollUntil(t, "the replay restored v2", func() bool {
		_, v := f.cachedVersion(t, row.ID)
		return v == 2
	})
	testenv.PollUntil(t, "the gate reopened", b.gate.Open)
	if r := f.read(t, b, row.ID); r.Version != 2 {
		t.Fatalf("read after the replay: %s v%d, want v2", r.Status, r.Version)
	}
}

// Applied changes are purged after Retention, so the log stays small.
func TestLogPurgesAppliedChanges(t *testing.T) {
	f := newLogFixture(t)
	ctx := context.Background()
	b := f.process(t, f.redis, false, LogOptions{})
	var ids []int64
	for range 5 {
		row := repotest.NewAnalysis(uuid.New(), "p")
		change, err := f.pg.Create(ctx, &row)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, change.ID)
	}
	if err := b.log.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if f.pending(t, ids...) {
		t.Fatalf("changes %v pending after a catch-up", ids)
	}
	n, err := f.pg.Purge(ctx, 0)
	if err != nil || n != int64(len(ids)) {
		t.Fatalf("purge: %d, %v; want %d", n, err, len(ids))
	}
}

// Applying a change invalidates the lists of its resource: the namespace
// of filtered pages is bumped and the group of each changed entity (the
// owner) has its read-through lists dropped. Fails when the Log's apply
// skips the ChangeListener or loses the change's groups.
func TestLogAppliesListInvalidations(t *testing.T) {
	f := newLogFixture(t)
	ctx := context.Background()
	p := f.process(t, f.redis, false, LogOptions{})
	b := f.backend(f.redis, p.gate)
	ns := NewNamespace(b, testResource, PageOptions{TTL: time.Minute})
	users := newOwnerLists(b, f.pg, PageOptions{TTL: time.Minute})
	owner := uuid.New()
	row := listsCreate(t, f.pg, owner, "listed")
	if err := p.log.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	filtered := func(context.Context) ([]byte, error) { return []byte("filtered page"), nil }
	for range 2 { // fill, then hit
		if _, err := ns.Get(ctx, "q", filtered); err != nil {
			t.Fatal(err)
		}
		if _, err := users.Get(ctx, owner.String(), 0, 20); err != nil {
			t.Fatal(err)
		}
	}
	if r, _ := ns.Get(ctx, "q", filtered); r.Status != Hit {
		t.Fatalf("filtered page before the change: %s, want HIT", r.Status)
	}
	if r, _ := users.Get(ctx, owner.String(), 0, 20); r.Status != Hit {
		t.Fatalf("owner's page before the change: %s, want HIT", r.Status)
	}

	if _, _, err := f.pg.Delete(ctx, row.ID, nil); err != nil {
		t.Fatal(err)
	}
	p.gate.Close() // as an announcement of the change would
	if err := p.log.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := ns.Get(ctx, "q", filtered); r.Status != Miss {
		t.Fatalf("filtered page after the change: %s, want MISS (namespace bumped)", r.Status)
	}
	page, r, err := users.GetValue(ctx, owner.String(), 0, 20)
	if err != nil || r.Status != Miss || len(page.Data) != 0 {
		t.Fatalf("owner's page after the delete: %s %+v, %v; want a MISS without the deleted analysis", r.Status, page, err)
	}
}

// TestLogLeavesUntrackedResourcesToOthers: a process applies only the
// changes of the resources it tracks. Another resource's pending change
// neither blocks its catch-up (the gate reopens, its own changes are
// applied) nor is marked applied by it; a process that tracks that
// resource applies it.
func TestLogLeavesUntrackedResourcesToOthers(t *testing.T) {
	f := newLogFixture(t)
	ctx := context.Background()
	p := f.process(t, f.redis, false, LogOptions{})
	widgetRow := listsCreate(t, f.pg, uuid.New(), "widget")
	changes, err := f.pg.Pending(ctx, nil, 0, 1<<20)
	if err != nil || len(changes) != 1 {
		t.Fatalf("pending: %+v, %v; want the one create", changes, err)
	}
	widgetChange := changes[0].ID
	// The same change, logged as another resource's, ahead of one of ours.
	if err := f.pg.DB().Exec("UPDATE cache_outbox SET resource = 'widget' WHERE id = ?", widgetChange).Error; err != nil {
		t.Fatal(err)
	}
	ours := listsCreate(t, f.pg, uuid.New(), "ours")

	p.gate.Close()
	if err := p.log.CatchUp(ctx); err != nil {
		t.Fatalf("CatchUp with another resource's change pending: %v", err)
	}
	if !p.gate.Open() {
		t.Fatal("another resource's change holds the gate closed")
	}
	if k, v := f.cachedVersion(t, ours.ID); k != KindValue || v != 1 {
		t.Fatalf("our change was not applied behind the other's: entry %c%d", k, v)
	}
	if !f.pending(t, widgetChange) {
		t.Fatalf("change %d of an untracked resource was marked applied", widgetChange)
	}

	// A process that tracks widgets applies it.
	q := f.process(t, f.redis, false, LogOptions{})
	widgets := NewAside(f.backend(f.redis, q.gate), Resource{Kind: "widget"}, AsideOptions{})
	q.log.Track(widgets, nil, storedAnalyses(f.pg))
	if err := q.log.CatchUp(ctx); err != nil {
		t.Fatalf("CatchUp of a process that tracks widgets: %v", err)
	}
	if f.pending(t, widgetChange) {
		t.Fatalf("change %d still pending after a process tracking widgets caught up", widgetChange)
	}
	raw, err := f.redis.Get(ctx, widgets.Key(widgetRow.ID.String())).Bytes()
	if err != nil {
		t.Fatalf("the widget's entry: %v", err)
	}
	if e, err := f.codec.Decode(raw); err != nil || e.Kind != KindValue || e.Version != 1 {
		t.Fatalf("the widget's entry: %+v, %v; want V1", e, err)
	}
}

// TestLogAppliesChangesOfSeveralResources: one catch-up applies a batch
// that mixes resources, each through its own Aside and lists, and marks
// them all applied.
func TestLogAppliesChangesOfSeveralResources(t *testing.T) {
	f := newLogFixture(t)
	ctx := context.Background()
	p := f.process(t, f.redis, false, LogOptions{})
	b := f.backend(f.redis, p.gate)
	widgetRes := Resource{Kind: "widget", Lists: "widgets"}
	widgets := NewAside(b, widgetRes, AsideOptions{})
	p.log.Track(widgets, NewListInvalidation(b, widgetRes), storedAnalyses(f.pg))

	analysis := listsCreate(t, f.pg, uuid.New(), "an analysis")
	widget := listsCreate(t, f.pg, uuid.New(), "a widget")
	changes, err := f.pg.Pending(ctx, nil, 0, 1<<20)
	if err != nil || len(changes) != 2 {
		t.Fatalf("pending: %+v, %v; want the two creates", changes, err)
	}
	if err := f.pg.DB().Exec("UPDATE cache_outbox SET resource = 'widget' WHERE id = ?", changes[1].ID).Error; err != nil {
		t.Fatal(err)
	}
	nsBefore := map[string]string{}
	for _, ns := range []string{testResource.Lists, widgetRes.Lists} {
		nsBefore[ns], _ = f.redis.Get(ctx, f.keys.Namespace(ns)).Result()
	}

	p.gate.Close()
	if err := p.log.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if f.pending(t, changes[0].ID, changes[1].ID) {
		t.Fatal("a change of the mixed batch is still pending")
	}
	if k, v := f.cachedVersion(t, analysis.ID); k != KindValue || v != 1 {
		t.Fatalf("the analysis entry: %c%d, want V1", k, v)
	}
	if raw, err := f.redis.Get(ctx, widgets.Key(widget.ID.String())).Bytes(); err != nil {
		t.Fatalf("the widget's entry: %v", err)
	} else if e, err := f.codec.Decode(raw); err != nil || e.Kind != KindValue {
		t.Fatalf("the widget's entry: %+v, %v", e, err)
	}
	for ns, before := range nsBefore {
		if after, _ := f.redis.Get(ctx, f.keys.Namespace(ns)).Result(); after == before {
			t.Fatalf("namespace %s not bumped (%q)", ns, after)
		}
	}
}

func ptr[T any](v T) *T { return &v }

package cache

import (
	"bytes"
	"context"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/repository/repotest"
)

// The decorator keeps the repository's contract: the shared suite, with
// every ListByOwner answered twice (the second from the cache) and the two
// answers required to be equal.
func TestReadThroughPassesRepositorySuite(t *testing.T) {
	pg := listsPostgres(t)
	repotest.RunSuite(t, func(t *testing.T) domain.AnalysisRepository {
		sqlDB, err := pg.DB().DB()
		if err != nil {
			t.Fatal(err)
		}
		repotest.TruncateAnalyses(t, sqlDB)
		f := newListsFixture(t)
		return readTwice{t: t, ReadThrough: NewReadThrough(pg, f.rdb, f.keys, f.codec, f.metrics, f.gate, time.Minute, 0.1)}
	})
}

// readTwice answers every ListByOwner from the cache: it reads twice and
// checks that the second read is a HIT equal to the first.
type readTwice struct {
	t *testing.T
	*ReadThrough
}

func (r readTwice) ListByOwner(ctx context.Context, owner uuid.UUID, skip, limit int) (domain.Page, error) {
	first, err := r.ReadThrough.ListByOwner(ctx, owner, skip, limit)
	if err != nil {
		return first, err
	}
	ctx, rs := WithStatus(ctx)
	second, err := r.ReadThrough.ListByOwner(ctx, owner, skip, limit)
	if err != nil {
		return second, err
	}
	if rs.Status != Hit {
		r.t.Errorf("second ListByOwner(%s, %d, %d): %s, want HIT", owner, skip, limit, rs.Status)
	}
	if !reflect.DeepEqual(first, second) {
		r.t.Errorf("cached page differs from the loaded one:\n got %+v\nwant %+v", second, first)
	}
	return second, nil
}

func TestReadThroughHitIsByteIdenticalAndEncrypted(t *testing.T) {
	f := newListsFixture(t)
	pg := listsPostgres(t)
	rt := NewReadThrough(pg, f.rdb, f.keys, f.codec, f.metrics, f.gate, time.Minute, 0)
	ctx := context.Background()
	owner := uuid.New()
	a := repotest.NewAnalysis(owner, "ünïcödé \"quoted\" \\ \n")
	a.Score = new(float64)
	*a.Score = 0.1 + 0.2 // 0.30000000000000004: float repr must round-trip
	if _, err := pg.Create(ctx, &a); err != nil {
		t.Fatal(err)
	}
	b := repotest.NewAnalysis(owner, "second")
	b.Summary, b.Score, b.Notes, b.Tags = nil, nil, nil, []string{}
	if _, err := pg.Create(ctx, &b); err != nil {
		t.Fatal(err)
	}

	mctx, miss := WithStatus(ctx)
	loaded, err := rt.ListByOwner(mctx, owner, 0, 20)
	if err != nil || miss.Status != Miss {
		t.Fatalf("first read: %s %v; want MISS", miss.Status, err)
	}
	hctx, hit := WithStatus(ctx)
	cached, err := rt.ListByOwner(hctx, owner, 0, 20)
	if err != nil || hit.Status != Hit {
		t.Fatalf("second read: %s %v; want HIT", hit.Status, err)
	}
	bctx, bodyOnly := WithStatus(ctx)
	bodyOnly.BodyOnly = true
	if _, err := rt.ListByOwner(bctx, owner, 0, 20); err != nil || bodyOnly.Status != Hit {
		t.Fatalf("body-only read: %s %v; want HIT", bodyOnly.Status, err)
	}
	fresh, err := pg.ListByOwner(ctx, owner, 0, 20)
	if err != nil {
		t.Fatal(err)
	}
	want := fresh.AppendJSON(nil)
	for what, got := range map[string][]byte{
		"MISS body": miss.Body, "HIT body": hit.Body, "body-only HIT body": bodyOnly.Body,
		"loaded page": loaded.AppendJSON(nil), "cached page": cached.AppendJSON(nil),
	} {
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n%s\nwant (uncached):\n%s", what, got, want)
		}
	}
	if !reflect.DeepEqual(cached, fresh) {
		t.Errorf("cached Page %+v, want %+v", cached, fresh)
	}
	raw := f.rdb.Get(ctx, f.keys.UserList(owner, 0, 20)).Val()
	if bytes.Contains([]byte(raw), []byte("secret notes")) {
		t.Fatal("notes reached Redis in plain text")
	}
	for _, tag := range []string{UserTag(owner), AllUserListsTag} {
		if !f.rdb.SIsMember(ctx, f.keys.Tag(tag), f.keys.UserList(owner, 0, 20)).Val() {
			t.Errorf("page is not a member of tag %s", tag)
		}
	}
}

// Every write through the decorator is visible to the next ListByOwner.
func TestReadThroughWritesInvalidateTheOwnersLists(t *testing.T) {
	f := newListsFixture(t)
	pg := listsPostgres(t)
	rt := NewReadThrough(pg, f.rdb, f.keys, f.codec, f.metrics, f.gate, time.Minute, 0)
	ctx := context.Background()
	owner := uuid.New()
	seen := func(id uuid.UUID, title string) bool {
		t.Helper()
		// Prime, then read again: the second read is the one a stale cache would answer.
		if _, err := rt.ListByOwner(ctx, owner, 0, 20); err != nil {
			t.Fatal(err)
		}
		p, err := rt.ListByOwner(ctx, owner, 0, 20)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range p.Data {
			if a.ID == id {
				return a.Title == title
			}
		}
		return false
	}
	a := repotest.NewAnalysis(owner, "created")
	seen(uuid.Nil, "")
	if _, err := rt.Create(ctx, &a); err != nil {
		t.Fatal(err)
	}
	if !seen(a.ID, "created") {
		t.Fatal("list after Create misses the analysis")
	}
	title := "updated"
	if _, _, err := rt.Update(ctx, a.ID, domain.AnalysisPatch{Title: &title}, nil); err != nil {
		t.Fatal(err)
	}
	if !seen(a.ID, "updated") {
		t.Fatal("list after Update shows the old title")
	}
	if _, _, err := rt.Delete(ctx, a.ID, nil); err != nil {
		t.Fatal(err)
	}
	if seen(a.ID, "updated") {
		t.Fatal("list after Delete still shows the analysis")
	}
	bulk := repotest.NewAnalysis(owner, "bulk")
	if _, _, err := rt.InsertMissing(ctx, []domain.Analysis{bulk}); err != nil {
		t.Fatal(err)
	}
	if !seen(bulk.ID, "bulk") {
		t.Fatal("list after InsertMissing misses the analysis")
	}
}

// A fill whose load raced a write and its tag invalidation must not put the
// stale page back: the reader reads the tag generations, loads, then
// (forced here) a writer updates and invalidates, then the reader fills.
// Fails without the generation check in the fill script.
func TestReadThroughFillRacingInvalidationIsDropped(t *testing.T) {
	f := newListsFixture(t)
	pg := listsPostgres(t)
	rt := NewReadThrough(pg, f.rdb, f.keys, f.codec, f.metrics, f.gate, time.Minute, 0)
	inv := NewListInvalidation(f.rdb, f.keys, f.metrics)
	ctx := context.Background()
	owner := uuid.New()
	a := listsCreate(t, pg, owner, "before")

	rt.afterLoad = func() {
		rt.afterLoad = nil
		title := "after"
		if _, _, err := pg.Update(ctx, a.ID, domain.AnalysisPatch{Title: &title}, nil); err != nil {
			t.Error(err)
		}
		inv.AnalysesChanged(ctx, owner)
	}
	if p, err := rt.ListByOwner(ctx, owner, 0, 20); err != nil || p.Data[0].Title != "before" {
		t.Fatalf("racing read: %v (it loaded before the write)", err)
	}
	sctx, rs := WithStatus(ctx)
	p, err := rt.ListByOwner(sctx, owner, 0, 20)
	if err != nil {
		t.Fatal(err)
	}
	if p.Data[0].Title != "after" {
		t.Fatalf("read after the write: %s with title %q: the racing fill resurrected the stale page", rs.Status, p.Data[0].Title)
	}
}

// A closed gate keeps user lists off Redis: a cached page is not served
// until the invalidation log has been caught up, even a fresh one.
func TestReadThroughClosedGateBypasses(t *testing.T) {
	f := newListsFixture(t)
	pg := listsPostgres(t)
	rt := NewReadThrough(pg, f.rdb, f.keys, f.codec, f.metrics, f.gate, time.Minute, 0)
	ctx := context.Background()
	owner := uuid.New()
	listsCreate(t, pg, owner, "one")
	for want, s := range []Status{Miss, Hit} {
		sctx, rs := WithStatus(ctx)
		if _, err := rt.ListByOwner(sctx, owner, 0, 20); err != nil || rs.Status != s {
			t.Fatalf("read %d: %s, %v; want %s", want, rs.Status, err, s)
		}
	}
	f.gate.Close()
	var calls atomic.Int64
	f.rdb.AddHook(countCommands{&calls})
	sctx, rs := WithStatus(ctx)
	if _, err := rt.ListByOwner(sctx, owner, 0, 20); err != nil || rs.Status != Bypass {
		t.Fatalf("with the gate closed: %s, %v; want BYPASS", rs.Status, err)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d Redis commands with the gate closed, want none", n)
	}
}

// countCommands counts the commands (and pipelines) a client sends.
type countCommands struct{ n *atomic.Int64 }

func (countCommands) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countCommands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.n.Add(1); return next(ctx, cmd) }
}
func (h countCommands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.n.Add(1); return next(ctx, cmds) }
}

func TestReadThroughRedisDown(t *testing.T) {
	f := newListsFixture(t)
	pg := listsPostgres(t)
	rt := NewReadThrough(pg, listsDeadRedis(t), f.keys, f.codec, f.metrics, f.gate, time.Minute, 0)
	ctx := context.Background()
	owner := uuid.New()
	a := repotest.NewAnalysis(owner, "down")
	if _, err := rt.Create(ctx, &a); err != nil {
		t.Fatalf("a write must succeed with Redis down: %v", err)
	}
	sctx, rs := WithStatus(ctx)
	p, err := rt.ListByOwner(sctx, owner, 0, 20)
	if err != nil || rs.Status != Bypass || len(p.Data) != 1 || p.Data[0].ID != a.ID {
		t.Fatalf("read with Redis down: %s %+v %v; want BYPASS from Postgres", rs.Status, p, err)
	}
	if _, _, errs := f.metrics.Totals(); errs == 0 {
		t.Fatal("Redis errors were not counted")
	}
}

// A page whose tag set was lost (evicted under memory pressure) cannot be
// found by the invalidation; it must still not be served after the
// generation bump. Fails without the generation check on reads.
func TestReadThroughPageOutlivingItsTagSetIsNotServed(t *testing.T) {
	f := newListsFixture(t)
	pg := listsPostgres(t)
	rt := NewReadThrough(pg, f.rdb, f.keys, f.codec, f.metrics, f.gate, time.Minute, 0)
	inv := NewListInvalidation(f.rdb, f.keys, f.metrics)
	ctx := context.Background()
	owner := uuid.New()
	a := listsCreate(t, pg, owner, "before")
	if _, err := rt.ListByOwner(ctx, owner, 0, 20); err != nil {
		t.Fatal(err)
	}
	f.rdb.Del(ctx, f.keys.Tag(UserTag(owner)), f.keys.Tag(AllUserListsTag))

	title := "after"
	if _, _, err := pg.Update(ctx, a.ID, domain.AnalysisPatch{Title: &title}, nil); err != nil {
		t.Fatal(err)
	}
	inv.AnalysesChanged(ctx, owner)
	sctx, rs := WithStatus(ctx)
	p, err := rt.ListByOwner(sctx, owner, 0, 20)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Status != Miss || p.Data[0].Title != "after" {
		t.Fatalf("read after the write: %s with title %q; the page of the old generation was served", rs.Status, p.Data[0].Title)
	}
}

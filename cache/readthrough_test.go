package cache

import (
	"bytes"
	"context"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/repository/repotest"
)

func TestReadThroughHitIsByteIdenticalAndEncrypted(t *testing.T) {
	f := newListsFixture(t)
	pg := listsPostgres(t)
	rt := newOwnerLists(f.backend(), pg, PageOptions{TTL: time.Minute})
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

	group := owner.String()
	loaded, miss, err := rt.GetValue(ctx, group, 0, 20)
	if err != nil || miss.Status != Miss || miss.Pattern != PatternReadThrough {
		t.Fatalf("first read: %+v %v; want MISS read-through", miss, err)
	}
	cached, hit, err := rt.GetValue(ctx, group, 0, 20)
	if err != nil || hit.Status != Hit || hit.Pattern != PatternReadThrough {
		t.Fatalf("second read: %+v %v; want HIT read-through", hit, err)
	}
	bodyOnly, err := rt.Get(ctx, group, 0, 20)
	if err != nil || bodyOnly.Status != Hit {
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
	key := f.keys.Prefix + "analysis-list:" + group + ":0:20"
	if got := f.keys.GroupList(testResource.Kind, group, 0, 20); got != key {
		t.Fatalf("GroupList = %q, want %q", got, key)
	}
	raw := f.rdb.Get(ctx, key).Val()
	if raw == "" || bytes.Contains([]byte(raw), []byte("secret notes")) {
		t.Fatalf("page %q: missing, or notes in plain text", raw)
	}
	for _, tag := range []string{"user:" + group, "analyses"} {
		if !f.rdb.SIsMember(ctx, f.keys.Tag(tag), key).Val() {
			t.Errorf("page is not a member of tag %s", tag)
		}
	}
}

// Every committed write, followed by ListInvalidation.Changed of its
// owner (what the service and the Log do), is visible to the next read of
// the owner's lists; another owner's lists stay cached.
func TestListInvalidationChangedInvalidatesTheGroupsLists(t *testing.T) {
	f := newListsFixture(t)
	pg := listsPostgres(t)
	rt := newOwnerLists(f.backend(), pg, PageOptions{TTL: time.Minute})
	inv := NewListInvalidation(f.backend(), testResource)
	ctx := context.Background()
	owner, other := uuid.New(), uuid.New()
	changed := func() {
		t.Helper()
		if err := inv.Changed(ctx, owner.String()); err != nil {
			t.Fatal(err)
		}
	}
	seen := func(id uuid.UUID, title string) bool {
		t.Helper()
		// Prime, then read again: the second read is the one a stale cache would answer.
		if _, err := rt.Get(ctx, owner.String(), 0, 20); err != nil {
			t.Fatal(err)
		}
		p, _, err := rt.GetValue(ctx, owner.String(), 0, 20)
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
	listsCreate(t, pg, other, "other")
	if _, err := rt.Get(ctx, other.String(), 0, 20); err != nil {
		t.Fatal(err)
	}

	a := repotest.NewAnalysis(owner, "created")
	seen(uuid.Nil, "")
	if _, err := pg.Create(ctx, &a); err != nil {
		t.Fatal(err)
	}
	changed()
	if !seen(a.ID, "created") {
		t.Fatal("list after Create misses the analysis")
	}
	title := "updated"
	if _, _, err := pg.Update(ctx, a.ID, domain.AnalysisPatch{Title: &title}, nil); err != nil {
		t.Fatal(err)
	}
	changed()
	if !seen(a.ID, "updated") {
		t.Fatal("list after Update shows the old title")
	}
	if _, _, err := pg.Delete(ctx, a.ID, nil); err != nil {
		t.Fatal(err)
	}
	changed()
	if seen(a.ID, "updated") {
		t.Fatal("list after Delete still shows the analysis")
	}
	bulk := repotest.NewAnalysis(owner, "bulk")
	if _, _, err := pg.InsertMissing(ctx, []domain.Analysis{bulk}); err != nil {
		t.Fatal(err)
	}
	changed()
	if !seen(bulk.ID, "bulk") {
		t.Fatal("list after InsertMissing misses the analysis")
	}
	// A change of one group leaves the other groups' lists alone (the
	// AllGroups tag is not invalidated by writes).
	if r, err := rt.Get(ctx, other.String(), 0, 20); err != nil || r.Status != Hit {
		t.Fatalf("another owner's list after the changes: %s, %v; want HIT", r.Status, err)
	}
}

// ListInvalidation.Changed with Redis down returns the error (for the Log
// to settle the change) and counts it under the resource.
func TestListInvalidationRedisDownReturnsTheError(t *testing.T) {
	f := newListsFixture(t)
	reg := prometheus.NewRegistry()
	b := f.backendOn(listsDeadRedis(t))
	b.Metrics = NewMetrics(reg, quietLog)
	inv := NewListInvalidation(b, testResource)
	if err := inv.Changed(context.Background(), uuid.NewString()); err == nil {
		t.Fatal("Changed with Redis down: nil error; the Log must learn the change was not applied")
	}
	labels := map[string]string{"resource": testResource.Kind, "pattern": PatternNamespace, "op": "invalidate_lists"}
	if v := counterValue(t, reg, "cache_errors_total", labels); v != 1 {
		t.Fatalf("cache_errors_total%v = %v, want 1", labels, v)
	}
}

// A fill whose load raced a write and its tag invalidation must not put the
// stale page back: the reader reads the tag generations, loads, then
// (forced here) a writer updates and invalidates, then the reader fills.
// Fails without the generation check in the fill script (the stale page is
// written) and when the generations are read after the load (it is served).
func TestReadThroughFillRacingInvalidationIsDropped(t *testing.T) {
	f := newListsFixture(t)
	pg := listsPostgres(t)
	rt := newOwnerLists(f.backend(), pg, PageOptions{TTL: time.Minute})
	inv := NewListInvalidation(f.backend(), testResource)
	ctx := context.Background()
	owner := uuid.New()
	a := listsCreate(t, pg, owner, "before")

	rt.afterLoad = func() {
		rt.afterLoad = nil
		title := "after"
		if _, _, err := pg.Update(ctx, a.ID, domain.AnalysisPatch{Title: &title}, nil); err != nil {
			t.Error(err)
		}
		if err := inv.Changed(ctx, owner.String()); err != nil {
			t.Error(err)
		}
	}
	if p, _, err := rt.GetValue(ctx, owner.String(), 0, 20); err != nil || p.Data[0].Title != "before" {
		t.Fatalf("racing read: %v (it loaded before the write)", err)
	}
	if rt.afterLoad != nil {
		t.Fatal("the hook did not run")
	}
	if n := f.rdb.Exists(ctx, f.keys.GroupList(testResource.Kind, owner.String(), 0, 20)).Val(); n != 0 {
		t.Fatal("the racing fill wrote its page after the invalidation")
	}
	p, rs, err := rt.GetValue(ctx, owner.String(), 0, 20)
	if err != nil {
		t.Fatal(err)
	}
	if p.Data[0].Title != "after" {
		t.Fatalf("read after the write: %s with title %q: the racing fill resurrected the stale page", rs.Status, p.Data[0].Title)
	}
}

// A closed gate keeps group lists off Redis: a cached page is not served
// until the invalidation log has been caught up, even a fresh one.
func TestReadThroughClosedGateBypasses(t *testing.T) {
	f := newListsFixture(t)
	pg := listsPostgres(t)
	rt := newOwnerLists(f.backend(), pg, PageOptions{TTL: time.Minute})
	ctx := context.Background()
	owner := uuid.New()
	listsCreate(t, pg, owner, "one")
	for want, s := range []Status{Miss, Hit} {
		if rs, err := rt.Get(ctx, owner.String(), 0, 20); err != nil || rs.Status != s {
			t.Fatalf("read %d: %s, %v; want %s", want, rs.Status, err, s)
		}
	}
	f.gate.Close()
	var calls atomic.Int64
	f.rdb.AddHook(countCommands{&calls})
	if rs, err := rt.Get(ctx, owner.String(), 0, 20); err != nil || rs.Status != Bypass {
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

// With Redis down a read is served by the source with BYPASS, the same
// bytes, and the Redis error is counted.
func TestReadThroughRedisDown(t *testing.T) {
	f := newListsFixture(t)
	pg := listsPostgres(t)
	rt := newOwnerLists(f.backendOn(listsDeadRedis(t)), pg, PageOptions{TTL: time.Minute})
	ctx := context.Background()
	owner := uuid.New()
	a := listsCreate(t, pg, owner, "down")
	p, rs, err := rt.GetValue(ctx, owner.String(), 0, 20)
	if err != nil || rs.Status != Bypass || len(p.Data) != 1 || p.Data[0].ID != a.ID {
		t.Fatalf("read with Redis down: %s %+v %v; want BYPASS from Postgres", rs.Status, p, err)
	}
	if !bytes.Equal(rs.Body, p.AppendJSON(nil)) {
		t.Fatalf("BYPASS body %s, want the page's", rs.Body)
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
	rt := newOwnerLists(f.backend(), pg, PageOptions{TTL: time.Minute})
	inv := NewListInvalidation(f.backend(), testResource)
	ctx := context.Background()
	owner := uuid.New()
	a := listsCreate(t, pg, owner, "before")
	if _, err := rt.Get(ctx, owner.String(), 0, 20); err != nil {
		t.Fatal(err)
	}
	f.rdb.Del(ctx, f.keys.Tag(testResource.GroupTag(owner.String())), f.keys.Tag(testResource.AllGroups))

	title := "after"
	if _, _, err := pg.Update(ctx, a.ID, domain.AnalysisPatch{Title: &title}, nil); err != nil {
		t.Fatal(err)
	}
	if err := inv.Changed(ctx, owner.String()); err != nil {
		t.Fatal(err)
	}
	p, rs, err := rt.GetValue(ctx, owner.String(), 0, 20)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Status != Miss || p.Data[0].Title != "after" {
		t.Fatalf("read after the write: %s with title %q; the page of the old generation was served", rs.Status, p.Data[0].Title)
	}
}

// TestReadThroughWithoutAllGroupsTag: a resource whose lists carry no
// all-groups tag caches and invalidates them by the group's tag alone, and
// never joins an unnamed tag that every such resource would share.
func TestReadThroughWithoutAllGroupsTag(t *testing.T) {
	f := newListsFixture(t)
	pg := listsPostgres(t)
	res := Resource{Kind: "gadget", Group: "maker"}
	rt := NewReadThrough(f.backend(), res, ownerLists(pg), pageEncoding{}, PageOptions{TTL: time.Minute})
	inv := NewListInvalidation(f.backend(), res)
	ctx := context.Background()
	owner := uuid.New()
	listsCreate(t, pg, owner, "first")
	for i, want := range []Status{Miss, Hit} {
		if r, err := rt.Get(ctx, owner.String(), 0, 20); err != nil || r.Status != want {
			t.Fatalf("read %d: %s, %v; want %s", i+1, r.Status, err, want)
		}
	}
	if n := f.rdb.Exists(ctx, f.keys.Tag(""), f.keys.TagGeneration("")).Val(); n != 0 {
		t.Fatalf("%d keys of the unnamed tag exist", n)
	}
	if err := inv.Changed(ctx, owner.String()); err != nil {
		t.Fatal(err)
	}
	if r, err := rt.Get(ctx, owner.String(), 0, 20); err != nil || r.Status != Miss {
		t.Fatalf("read after the group changed: %s, %v; want MISS", r.Status, err)
	}
}

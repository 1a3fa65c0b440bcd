package cache

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/domain"
)

// ownerPage loads owner's analyses as a namespace load function does.
func ownerPage(repo domain.AnalysisRepository, owner uuid.UUID) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		p, err := repo.List(ctx, domain.ListFilter{OwnerID: &owner, Limit: 20})
		if err != nil {
			return nil, err
		}
		return p.AppendJSON(nil), nil
	}
}

func TestNamespaceMissThenHitEncryptedWithTTL(t *testing.T) {
	f := newListsFixture(t)
	repo := listsPostgres(t)
	ns := NewNamespace(f.backend(), testResource, PageOptions{TTL: time.Minute, Jitter: 0.1})
	ctx := context.Background()
	owner := uuid.New()
	listsCreate(t, repo, owner, "first")
	query := "owner=" + owner.String()

	miss, err := ns.Get(ctx, query, ownerPage(repo, owner))
	if err != nil || miss.Status != Miss || miss.Pattern != PatternNamespace {
		t.Fatalf("first Get: %+v, %v; want MISS version", miss, err)
	}
	hit, err := ns.Get(ctx, query, func(context.Context) ([]byte, error) {
		t.Fatal("a hit must not load")
		return nil, nil
	})
	if err != nil || hit.Status != Hit || !bytes.Equal(hit.Body, miss.Body) {
		t.Fatalf("second Get: %s %q, %v; want HIT with the same body", hit.Status, hit.Body, err)
	}

	version, err := ns.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key := f.keys.NamespacePage(testResource.Lists, version, QueryHash(query))
	raw, err := f.rdb.Get(ctx, key).Bytes()
	if err != nil {
		t.Fatalf("page %s: %v", key, err)
	}
	if bytes.Contains(raw, []byte("secret notes")) || bytes.Contains(raw, []byte(`"title"`)) {
		t.Fatal("page stored in plain text")
	}
	pttl := f.rdb.PTTL(ctx, key).Val()
	if pttl < 53*time.Second || pttl > 66*time.Second {
		t.Fatalf("page PTTL %v, want 1m ±10%%", pttl)
	}
	if h, m, _ := f.metrics.Totals(); h != 1 || m != 1 {
		t.Fatalf("hits %d misses %d, want 1 and 1", h, m)
	}
}

func TestNamespaceBumpMakesEveryPageUnreachable(t *testing.T) {
	f := newListsFixture(t)
	ns := NewNamespace(f.backend(), testResource, PageOptions{TTL: time.Minute})
	ctx := context.Background()
	body := func(b string) func(context.Context) ([]byte, error) {
		return func(context.Context) ([]byte, error) { return []byte(b), nil }
	}
	for _, q := range []string{"a", "b"} {
		if r, _ := ns.Get(ctx, q, body("old "+q)); r.Status != Miss {
			t.Fatalf("fill %s: %s", q, r.Status)
		}
		if r, _ := ns.Get(ctx, q, body("unused")); r.Status != Hit {
			t.Fatalf("hit %s: %s", q, r.Status)
		}
	}
	if _, err := ns.Bump(ctx); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"a", "b"} {
		r, err := ns.Get(ctx, q, body("new "+q))
		if err != nil || r.Status != Miss || string(r.Body) != "new "+q {
			t.Fatalf("after bump %s: %s %q %v; want MISS with the new body", q, r.Status, r.Body, err)
		}
	}
}

// A fill whose load raced a write must not be served after the write's bump:
// the reader reads the version, loads, then (forced here) a writer commits
// and bumps, then the reader fills. The next read must see the write.
// Fails when the version is read after the load.
func TestNamespaceFillRacingBumpIsNeverServed(t *testing.T) {
	f := newListsFixture(t)
	repo := listsPostgres(t)
	ns := NewNamespace(f.backend(), testResource, PageOptions{TTL: time.Minute})
	inv := NewListInvalidation(f.backend(), testResource)
	ctx := context.Background()
	owner := uuid.New()
	listsCreate(t, repo, owner, "before")
	query := "owner=" + owner.String()

	var written domain.Analysis
	ns.afterLoad = func() {
		ns.afterLoad = nil
		written = listsCreate(t, repo, owner, "during")
		if err := inv.Changed(ctx, owner.String()); err != nil {
			t.Error(err)
		}
	}
	stale, err := ns.Get(ctx, query, ownerPage(repo, owner))
	if err != nil || stale.Status != Miss || bytes.Contains(stale.Body, []byte(written.ID.String())) {
		t.Fatalf("racing read: %s %v (it loaded before the write)", stale.Status, err)
	}
	after, err := ns.Get(ctx, query, ownerPage(repo, owner))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(after.Body, []byte(written.ID.String())) {
		t.Fatalf("read after the write answered %s without the written analysis: the racing fill was served", after.Status)
	}
}

// A version counter that vanished (eviction, an admin deleting ns:*) must
// not restart at a value whose pages may still be alive.
func TestNamespaceLostCounterNeverRepeatsAVersion(t *testing.T) {
	f := newListsFixture(t)
	ns := NewNamespace(f.backend(), testResource, PageOptions{TTL: time.Minute})
	ctx := context.Background()
	load := func(b string) func(context.Context) ([]byte, error) {
		return func(context.Context) ([]byte, error) { return []byte(b), nil }
	}
	if _, err := ns.Bump(ctx); err != nil {
		t.Fatal(err)
	}
	if r, _ := ns.Get(ctx, "q", load("old")); r.Status != Miss {
		t.Fatalf("fill: %s", r.Status)
	}
	before, _ := ns.Version(ctx)
	f.rdb.Del(ctx, f.keys.Namespace(testResource.Lists))
	if _, err := ns.Bump(ctx); err != nil {
		t.Fatal(err)
	}
	after, _ := ns.Version(ctx)
	if after <= before {
		t.Fatalf("version after losing the counter %d, before %d: it went back", after, before)
	}
	if r, _ := ns.Get(ctx, "q", load("new")); r.Status != Miss || string(r.Body) != "new" {
		t.Fatalf("after a lost counter: %s %q; the old page was served", r.Status, r.Body)
	}
}

func TestNamespaceRedisDownServesDatabaseWithBypass(t *testing.T) {
	f := newListsFixture(t)
	ns := NewNamespace(f.backendOn(listsDeadRedis(t)), testResource, PageOptions{TTL: time.Minute})
	r, err := ns.Get(context.Background(), "q", func(context.Context) ([]byte, error) { return []byte("db"), nil })
	if err != nil || r.Status != Bypass || string(r.Body) != "db" {
		t.Fatalf("Get with Redis down: %+v %v; want BYPASS from the database", r, err)
	}
	if _, _, errs := f.metrics.Totals(); errs != 1 {
		t.Fatalf("errors counted %d, want 1", errs)
	}
}

func TestNamespaceClosedGateBypassesRedis(t *testing.T) {
	f := newListsFixture(t)
	ns := NewNamespace(f.backend(), testResource, PageOptions{TTL: time.Minute})
	ctx := context.Background()
	if r, _ := ns.Get(ctx, "q", func(context.Context) ([]byte, error) { return []byte("old"), nil }); r.Status != Miss {
		t.Fatalf("fill: %s", r.Status)
	}
	f.gate.Close()
	r, _ := ns.Get(ctx, "q", func(context.Context) ([]byte, error) { return []byte("db"), nil })
	if r.Status != Bypass || string(r.Body) != "db" {
		t.Fatalf("with the gate closed: %s %q; want BYPASS from the database", r.Status, r.Body)
	}
	epoch, _ := f.gate.beginCatchUp()
	f.gate.reopen(epoch)
	r, _ = ns.Get(ctx, "q", func(context.Context) ([]byte, error) { return []byte("new"), nil })
	if r.Status != Hit || string(r.Body) != "old" {
		t.Fatalf("gate open again: %s %q; want the cached page", r.Status, r.Body)
	}
}

func TestQueryHashIsHexSHA256(t *testing.T) {
	h := QueryHash("owner=-")
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" || h == QueryHash("owner=- ") {
		t.Fatalf("QueryHash = %q", h)
	}
}

// A fill that raced a bump writes nothing, not even an unreachable page
// under the version it read: the fill script compares the version.
func TestNamespaceFillRacingBumpWritesNothing(t *testing.T) {
	f := newListsFixture(t)
	ns := NewNamespace(f.backend(), testResource, PageOptions{TTL: time.Minute})
	ctx := context.Background()
	const query = "owner=racing"
	var read int64
	ns.afterLoad = func() {
		ns.afterLoad = nil
		v, err := ns.Version(ctx) // the version the reader read before its load
		if err != nil {
			t.Error(err)
		}
		read = v
		if _, err := ns.Bump(ctx); err != nil {
			t.Error(err)
		}
	}
	r, err := ns.Get(ctx, query, func(context.Context) ([]byte, error) { return []byte("loaded before the bump"), nil })
	if err != nil || r.Status != Miss {
		t.Fatalf("racing read: %s, %v; want MISS", r.Status, err)
	}
	if read == 0 {
		t.Fatal("the hook did not run")
	}
	if n := f.rdb.Exists(ctx, f.keys.NamespacePage(ns.Name(), read, QueryHash(query))).Val(); n != 0 {
		t.Fatalf("the racing fill wrote its page under the retired version %d", read)
	}
	pages, _, err := f.rdb.Scan(ctx, 0, EscapeGlob(f.keys.namespacePages(ns.Name()))+"*", 1000).Result()
	if err != nil || len(pages) != 0 {
		t.Fatalf("pages after a racing fill: %q, %v; want none", pages, err)
	}
}

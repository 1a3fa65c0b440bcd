package cache

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/internal/testenv"
)

func TestInvalidatorKeysCountsWhatExisted(t *testing.T) {
	f := newListsFixture(t)
	inv := NewInvalidator(f.backend(), testResource.Lists)
	ctx := context.Background()
	for _, k := range []string{"analysis:a", "analysis:b", "wb:stream", "lock:stats:analyses", "tag:user:x"} {
		f.rdb.Set(ctx, f.keys.Prefix+k, "v", time.Minute)
	}
	n, err := inv.Invalidate(ctx, Selector{Keys: []string{"analysis:a", "analysis:b", "analysis:missing", "wb:stream", "lock:stats:analyses", "tag:user:x"}})
	if err != nil || n != 2 {
		t.Fatalf("Keys = %d, %v; want 2", n, err)
	}
	for _, k := range []string{"wb:stream", "lock:stats:analyses", "tag:user:x"} {
		if f.rdb.Exists(ctx, f.keys.Prefix+k).Val() != 1 {
			t.Errorf("structural key %s was deleted", k)
		}
	}
}

func TestInvalidatorTagsCountsDeletedMembers(t *testing.T) {
	f := newListsFixture(t)
	pg := listsPostgres(t)
	rt := newOwnerLists(f.backend(), pg, PageOptions{TTL: time.Minute})
	inv := NewInvalidator(f.backend(), testResource.Lists)
	ctx := context.Background()
	owner, other := uuid.NewString(), uuid.NewString()
	for _, page := range [][2]int{{0, 20}, {0, 5}, {5, 5}} {
		if _, err := rt.Get(ctx, owner, page[0], page[1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rt.Get(ctx, other, 0, 20); err != nil {
		t.Fatal(err)
	}
	userTag := testResource.GroupTag(owner)
	n, err := inv.Invalidate(ctx, Selector{Tags: []string{userTag}})
	if err != nil || n != 3 {
		t.Fatalf("Tags(user) = %d, %v; want 3", n, err)
	}
	if n, err := inv.Invalidate(ctx, Selector{Tags: []string{userTag}}); err != nil || n != 0 {
		t.Fatalf("Tags(user) again = %d, %v; want 0", n, err)
	}
	// The "analyses" tag reaches every user list: the other owner's page is left.
	if n, err := inv.Invalidate(ctx, Selector{Tags: []string{testResource.AllGroups}}); err != nil || n != 1 {
		t.Fatalf("Tags(analyses) = %d, %v; want 1", n, err)
	}
}

func TestInvalidatorNamespaceCountsRetiredPages(t *testing.T) {
	f := newListsFixture(t)
	ns := NewNamespace(f.backend(), testResource, PageOptions{TTL: time.Minute})
	inv := NewInvalidator(f.backend(), testResource.Lists)
	ctx := context.Background()
	for _, q := range []string{"a", "b", "c"} {
		if _, err := ns.Get(ctx, q, func(context.Context) ([]byte, error) { return []byte(q), nil }); err != nil {
			t.Fatal(err)
		}
	}
	name := testResource.Lists
	if n, err := inv.Invalidate(ctx, Selector{Namespace: &name}); err != nil || n != 3 {
		t.Fatalf("Namespace = %d, %v; want 3", n, err)
	}
	if r, _ := ns.Get(ctx, "a", func(context.Context) ([]byte, error) { return []byte("new"), nil }); r.Status != Miss {
		t.Fatalf("after the namespace invalidation: %s, want MISS", r.Status)
	}
	if n, err := inv.Invalidate(ctx, Selector{Namespace: &name}); err != nil || n != 1 {
		t.Fatalf("Namespace again = %d, %v; want 1 (the page filled since)", n, err)
	}
	unknown := "nope"
	if n, err := inv.Invalidate(ctx, Selector{Namespace: &unknown}); err != nil || n != 0 {
		t.Fatalf("unknown namespace = %d, %v; want 0", n, err)
	}
	if f.rdb.Exists(ctx, f.keys.Namespace(unknown)).Val() != 0 {
		t.Fatal("an unknown namespace created a counter")
	}
}

// A namespace selector reaches only the namespaces the Invalidator was
// built with: another one, even one that exists in Redis, is left alone.
func TestInvalidatorNamespaceAcceptsOnlyItsNamespaces(t *testing.T) {
	f := newListsFixture(t)
	ctx := context.Background()
	widgets := Resource{Kind: "widget", Lists: "widgets"}
	analyses := NewNamespace(f.backend(), testResource, PageOptions{TTL: time.Minute})
	widgetPages := NewNamespace(f.backend(), widgets, PageOptions{TTL: time.Minute})
	load := func(context.Context) ([]byte, error) { return []byte("page"), nil }
	for _, ns := range []*Namespace{analyses, widgetPages} {
		if _, err := ns.Get(ctx, "q", load); err != nil {
			t.Fatal(err)
		}
	}
	before, err := analyses.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}

	inv := NewInvalidator(f.backend(), widgets.Lists)
	name := testResource.Lists
	if n, err := inv.Namespace(ctx, name); err != nil || n != 0 {
		t.Fatalf("Namespace(%s) of an Invalidator of widgets = %d, %v; want 0", name, n, err)
	}
	if after, _ := analyses.Version(ctx); after != before {
		t.Fatalf("namespace %s bumped from %d to %d by an Invalidator not given it", name, before, after)
	}
	if r, _ := analyses.Get(ctx, "q", load); r.Status != Hit {
		t.Fatalf("page of %s after the refused invalidation: %s, want HIT", name, r.Status)
	}
	if n, err := inv.Namespace(ctx, widgets.Lists); err != nil || n != 1 {
		t.Fatalf("Namespace(%s) = %d, %v; want 1", widgets.Lists, n, err)
	}
	if r, _ := widgetPages.Get(ctx, "q", load); r.Status != Miss {
		t.Fatalf("page of %s after its invalidation: %s, want MISS", widgets.Lists, r.Status)
	}
}

func TestInvalidatorRejectsSelectorsWithoutExactlyOneField(t *testing.T) {
	f := newListsFixture(t)
	inv := NewInvalidator(f.backend(), testResource.Lists)
	p := "*"
	for _, s := range []Selector{{}, {Keys: []string{"a"}, Pattern: &p}} {
		var se *SelectorError
		if _, err := inv.Invalidate(context.Background(), s); !errors.As(err, &se) {
			t.Errorf("Invalidate(%+v): %v, want a *SelectorError", s, err)
		}
	}
}

// Whatever the pattern, nothing outside the prefix and no structural key
// is deleted. The service prefix itself holds glob characters, so an
// unescaped prefix would match the sibling keys seeded beside it.
func TestInvalidatorPatternNeverLeavesThePrefix(t *testing.T) {
	env := testenv.Get(t)
	f := newListsFixture(t)
	base := f.keys.Prefix
	f.keys = Keys{Prefix: base + `svc[1]*?\:`}
	inv := NewInvalidator(f.backend(), testResource.Lists)
	ctx := context.Background()

	outside := []string{
		base + "svc1X:analysis:a", // matched by the prefix if its glob chars were live
		base + `svc[1]*?\`,        // the prefix without its last byte
		base + "other-prefix:analysis:a",
		env.RedisPrefix + "analysis:a",
		base + "analysis:a",
	}
	structural := []string{"wb:stream", "wb:dead", "lock:stats:analyses", "tag:user:x"}
	inside := []string{"analysis:a", "analysis:b", "ulist:o:0:20", "analyses:v1:abc", "../x", "*", "\xff\xfe", "other-prefix:x"}
	seed := func() {
		t.Helper()
		pipe := f.rdb.Pipeline()
		for _, k := range outside {
			pipe.Set(ctx, k, "outside", time.Minute)
		}
		for _, k := range inside {
			pipe.Set(ctx, f.keys.Prefix+k, "inside", time.Minute)
		}
		for _, k := range structural[:2] {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: f.keys.Prefix + k, Values: []any{"f", "v"}})
			pipe.PExpire(ctx, f.keys.Prefix+k, time.Minute)
		}
		for _, k := range structural[2:] {
			pipe.Set(ctx, f.keys.Prefix+k, "structural", time.Minute)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { f.rdb.Del(context.Background(), outside...) })

	hostile := []string{
		"*", "../*", `\*`, "[a-z]*", "*]", "[", `\`, "?*", "*other-prefix*", "\xff*", "*\x00*",
		strings.Repeat("*", MaxPatternLength), strings.Repeat("a*", MaxPatternLength/2-1) + "*",
		"*" + base + "*", "*test:*",
	}
	for _, p := range hostile {
		seed()
		n, err := inv.Pattern(ctx, p)
		if err != nil {
			t.Errorf("pattern %q: %v", p, err)
		}
		for _, k := range outside {
			if f.rdb.Exists(ctx, k).Val() != 1 {
				t.Fatalf("pattern %q deleted %q outside the prefix", p, k)
			}
		}
		for _, k := range structural {
			if f.rdb.Exists(ctx, f.keys.Prefix+k).Val() != 1 {
				t.Fatalf("pattern %q deleted structural key %q", p, k)
			}
		}
		if p == "*" && n != int64(len(inside)) {
			t.Errorf("pattern * deleted %d, want the %d keys inside", n, len(inside))
		}
	}
	var se *SelectorError
	if _, err := inv.Pattern(ctx, strings.Repeat("*", MaxPatternLength+1)); !errors.As(err, &se) {
		t.Errorf("over-long pattern: %v, want a *SelectorError", err)
	}

	seed()
	if n, err := inv.Pattern(ctx, "analysis:*"); err != nil || n != 2 {
		t.Fatalf("pattern analysis:* = %d, %v; want 2", n, err)
	}
}

func TestEscapeGlob(t *testing.T) {
	for in, want := range map[string]string{"app:": "app:", `a*b?c[d]e\f`: `a\*b\?c\[d\]e\\f`} {
		if got := EscapeGlob(in); got != want {
			t.Errorf("EscapeGlob(%q) = %q, want %q", in, got, want)
		}
	}
}

// A Redis that cannot be reached makes every invalidation an error wrapping
// ErrUnavailable (503 "Cache unavailable"), never an internal error.
func TestInvalidatorRedisDownIsCacheUnavailable(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	m := NewMetrics(nil, quietLog)
	inv := NewInvalidator(Backend{Redis: rdb, Keys: Keys{Prefix: "down:"}, Metrics: m, Logger: quietLog}, testResource.Lists)
	pattern, namespace := "analysis:*", testResource.Lists
	for _, s := range []Selector{
		{Keys: []string{"analysis:a"}},
		{Pattern: &pattern},
		{Tags: []string{testResource.GroupTag(uuid.NewString())}},
		{Namespace: &namespace},
	} {
		n, err := inv.Invalidate(context.Background(), s)
		if !errors.Is(err, ErrUnavailable) || n != 0 {
			t.Errorf("Invalidate(%+v) with Redis down = %d, %v; want 0, ErrUnavailable", s, n, err)
		}
	}
	if got := m.Snapshot().Errors; got < 4 {
		t.Errorf("%d Redis errors counted, want at least 4", got)
	}
}

// scanIgnoringMatch is a client whose SCAN answers broad instead of the
// MATCH it is given: a stand-in for a match that fails to confine (a bug in
// escaping the prefix, a proxy that drops MATCH).
type scanIgnoringMatch struct {
	redis.UniversalClient
	broad string
}

func (c scanIgnoringMatch) Scan(ctx context.Context, cursor uint64, _ string, count int64) *redis.ScanCmd {
	return c.UniversalClient.Scan(ctx, cursor, c.broad, count)
}

// Even when SCAN returns keys outside the prefix, a pattern invalidation
// deletes only keys inside it: every key is checked against the prefix.
func TestInvalidatorPatternChecksEveryScannedKey(t *testing.T) {
	f := newListsFixture(t)
	base := f.keys.Prefix
	keys := Keys{Prefix: base + "svc:"}
	rdb := scanIgnoringMatch{UniversalClient: f.rdb, broad: EscapeGlob(base) + "*"}
	b := f.backendOn(rdb)
	b.Keys = keys
	inv := NewInvalidator(b)
	ctx := context.Background()
	outside := []string{base + "other-service:analysis:a", base + "svc-sibling:analysis:b"}
	inside := []string{keys.Prefix + "analysis:a", keys.Prefix + "analysis:b"}
	for _, k := range append(append([]string{}, outside...), inside...) {
		f.rdb.Set(ctx, k, "v", time.Minute)
	}
	n, err := inv.Pattern(ctx, "analysis:*")
	if err != nil || n != int64(len(inside)) {
		t.Errorf("Pattern = %d, %v; want %d", n, err, len(inside))
	}
	for _, k := range outside {
		if f.rdb.Exists(ctx, k).Val() != 1 {
			t.Errorf("%q outside the prefix was deleted", k)
		}
	}
	for _, k := range inside {
		if f.rdb.Exists(ctx, k).Val() != 0 {
			t.Errorf("%q inside the prefix survived", k)
		}
	}
}

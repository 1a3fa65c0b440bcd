package cache

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/internal/testenv"
)

func TestInvalidatorKeysCountsWhatExisted(t *testing.T) {
	f := newListsFixture(t)
	inv := NewInvalidator(f.rdb, f.keys, f.metrics, NewTags(f.rdb, f.keys, f.metrics))
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
	rt := NewReadThrough(pg, f.rdb, f.keys, f.codec, f.metrics, f.gate, time.Minute, 0)
	inv := NewInvalidator(f.rdb, f.keys, f.metrics, rt.tags)
	ctx := context.Background()
	owner, other := uuid.New(), uuid.New()
	for _, page := range [][2]int{{0, 20}, {0, 5}, {5, 5}} {
		if _, err := rt.ListByOwner(ctx, owner, page[0], page[1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := rt.ListByOwner(ctx, other, 0, 20); err != nil {
		t.Fatal(err)
	}
	n, err := inv.Invalidate(ctx, Selector{Tags: []string{UserTag(owner)}})
	if err != nil || n != 3 {
		t.Fatalf("Tags(user) = %d, %v; want 3", n, err)
	}
	if n, err := inv.Invalidate(ctx, Selector{Tags: []string{UserTag(owner)}}); err != nil || n != 0 {
		t.Fatalf("Tags(user) again = %d, %v; want 0", n, err)
	}
	// The "analyses" tag reaches every user list: the other owner's page is left.
	if n, err := inv.Invalidate(ctx, Selector{Tags: []string{AllUserListsTag}}); err != nil || n != 1 {
		t.Fatalf("Tags(analyses) = %d, %v; want 1", n, err)
	}
}

func TestInvalidatorNamespaceCountsRetiredPages(t *testing.T) {
	f := newListsFixture(t)
	ns := NewNamespace(f.rdb, f.keys, f.codec, f.metrics, f.gate, time.Minute, 0)
	inv := NewInvalidator(f.rdb, f.keys, f.metrics, NewTags(f.rdb, f.keys, f.metrics))
	ctx := context.Background()
	for _, q := range []string{"a", "b", "c"} {
		if _, err := ns.Get(ctx, q, func(context.Context) ([]byte, error) { return []byte(q), nil }); err != nil {
			t.Fatal(err)
		}
	}
	name := AnalysesNamespace
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

func TestInvalidatorRejectsSelectorsWithoutExactlyOneField(t *testing.T) {
	f := newListsFixture(t)
	inv := NewInvalidator(f.rdb, f.keys, f.metrics, NewTags(f.rdb, f.keys, f.metrics))
	p := "*"
	for _, s := range []Selector{{}, {Keys: []string{"a"}, Pattern: &p}} {
		if _, err := inv.Invalidate(context.Background(), s); domain.ErrorCode(err) != domain.EINVALID {
			t.Errorf("Invalidate(%+v): %v, want EINVALID", s, err)
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
	inv := NewInvalidator(f.rdb, f.keys, f.metrics, NewTags(f.rdb, f.keys, f.metrics))
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
	if _, err := inv.Pattern(ctx, strings.Repeat("*", MaxPatternLength+1)); domain.ErrorCode(err) != domain.EINVALID {
		t.Errorf("over-long pattern: %v, want EINVALID", err)
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

// A Redis that cannot be reached makes every invalidation ECACHEUNAVAILABLE
// (503 "Cache unavailable"), never an internal error.
func TestInvalidatorRedisDownIsCacheUnavailable(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { rdb.Close() })
	keys := Keys{Prefix: "down:"}
	m := NewMetrics(nil, wbQuietLog)
	inv := NewInvalidator(rdb, keys, m, NewTags(rdb, keys, m))
	pattern, namespace := "analysis:*", AnalysesNamespace
	for _, s := range []Selector{
		{Keys: []string{"analysis:a"}},
		{Pattern: &pattern},
		{Tags: []string{UserTag(uuid.New())}},
		{Namespace: &namespace},
	} {
		n, err := inv.Invalidate(context.Background(), s)
		if domain.ErrorCode(err) != domain.ECACHEUNAVAILABLE || n != 0 {
			t.Errorf("Invalidate(%+v) with Redis down = %d, %v; want 0, ECACHEUNAVAILABLE", s, n, err)
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
	inv := NewInvalidator(rdb, keys, f.metrics, NewTags(rdb, keys, f.metrics))
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

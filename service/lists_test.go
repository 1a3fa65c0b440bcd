package service

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/internal/testenv"
	"github.com/analysis-cache/service/repository"
	"github.com/analysis-cache/service/repository/repotest"
)

// listsStack is the service wired as cmd/api wires it, on the real Postgres
// and Redis, under a key prefix of its own.
type listsStack struct {
	pg       *repository.Postgres
	backend  cache.Backend
	metrics  *cache.Metrics
	lists    *Lists
	analyses *Analyses
}

func newListsStack(tb testing.TB, rdb *redis.Client) *listsStack {
	tb.Helper()
	env := testenv.Get(tb)
	if rdb == nil {
		opt, err := redis.ParseURL(env.RedisURL)
		if err != nil {
			tb.Fatal(err)
		}
		rdb = redis.NewClient(opt)
		tb.Cleanup(func() { _ = rdb.Close() })
	}
	suffix := make([]byte, 6)
	key := make([]byte, 32)
	_, _ = crand.Read(suffix)
	_, _ = crand.Read(key)
	codec, err := cache.NewCodec(key)
	if err != nil {
		tb.Fatal(err)
	}
	metrics := cache.NewMetrics(nil, nil)
	s := &listsStack{
		pg: openRepo(tb), metrics: metrics,
		backend: cache.Backend{
			Redis: rdb, Keys: cache.Keys{Prefix: env.RedisPrefix + "lists-" + hex.EncodeToString(suffix) + ":"},
			Codec: codec, Metrics: metrics, Gate: &cache.Gate{},
		},
	}
	s.lists = NewLists(s.backend, s.pg, cache.PageOptions{TTL: time.Minute, Jitter: 0.1})
	aside := cache.NewAside(s.backend, AnalysisResource, cache.AsideOptions{})
	inv := cache.NewListInvalidation(s.backend, AnalysisResource)
	s.analyses = NewAnalyses(s.pg, aside, inv, cache.NewLog(s.pg, s.backend, cache.LogOptions{}))
	return s
}

// For every write (create, update, delete, write-behind flush) and every
// list read (filtered list, owner filter, tag filter, user list): once the
// write has answered, a read that was cached before it reflects it.
func TestListsReflectEveryWriteAtOnce(t *testing.T) {
	s := newListsStack(t, nil)
	ctx := context.Background()
	owner := uuid.New()
	tag := "t-" + owner.String()[:8]
	reads := map[string]func() (cache.Result, error){
		"owner filter": func() (cache.Result, error) {
			return s.lists.List(ctx, domain.ListFilter{OwnerID: &owner, Limit: 100})
		},
		"tag filter": func() (cache.Result, error) { return s.lists.List(ctx, domain.ListFilter{Tag: &tag, Limit: 100}) },
		"no filter":  func() (cache.Result, error) { return s.lists.List(ctx, domain.ListFilter{Limit: 100}) },
		"user list":  func() (cache.Result, error) { return s.lists.ListByOwner(ctx, owner, 0, 100) },
	}
	// check primes every read into the cache, runs write, then requires
	// each read to satisfy want.
	check := func(what string, write func(), want func(body []byte) bool) {
		t.Helper()
		for name, read := range reads {
			if _, err := read(); err != nil {
				t.Fatalf("%s: prime %s: %v", what, name, err)
			}
			if r, _ := read(); r.Status != cache.Hit {
				t.Fatalf("%s: %s not cached before the write (%s)", what, name, r.Status)
			}
		}
		write()
		for name, read := range reads {
			r, err := read()
			if err != nil {
				t.Fatalf("%s: %s: %v", what, name, err)
			}
			if !want(r.Body) {
				t.Errorf("after %s, %s (%s) does not reflect it", what, name, r.Status)
			}
		}
	}

	a := repotest.NewAnalysis(owner, "created")
	a.Tags = []string{tag}
	a.ID = uuid.Nil
	check("create", func() {
		if _, err := s.analyses.Create(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}, func(b []byte) bool { return bytes.Contains(b, []byte(a.ID.String())) })

	title := "updated-" + owner.String()
	check("update", func() {
		if _, err := s.analyses.Update(ctx, a.ID, domain.AnalysisPatch{Title: &title}, nil); err != nil {
			t.Fatal(err)
		}
	}, func(b []byte) bool { return bytes.Contains(b, []byte(title)) })

	check("delete", func() {
		if err := s.analyses.Delete(ctx, a.ID, nil); err != nil {
			t.Fatal(err)
		}
	}, func(b []byte) bool { return !bytes.Contains(b, []byte(a.ID.String())) })

	// A write-behind flush: rows inserted, then the change listener, as the
	// flusher does after its commit.
	bulk := repotest.NewAnalysis(owner, "bulk")
	bulk.Tags = []string{tag}
	check("write-behind flush", func() {
		if _, _, err := s.pg.InsertMissing(ctx, []domain.Analysis{bulk}); err != nil {
			t.Fatal(err)
		}
		_ = cache.NewListInvalidation(s.backend, AnalysisResource).Changed(ctx, owner.String())
	}, func(b []byte) bool { return bytes.Contains(b, []byte(bulk.ID.String())) })
}

// A cached response is byte-identical to an uncached one, for both lists.
func TestListsCachedBodiesAreByteIdentical(t *testing.T) {
	s := newListsStack(t, nil)
	ctx := context.Background()
	owner := uuid.New()
	for i, title := range []string{"plain", "ünïcödé ✓", `quote " backslash \ tab	`} {
		a := repotest.NewAnalysis(owner, title)
		score := []float64{0.1 + 0.2, 1e-05, 1}[i]
		a.Score = &score
		if i == 1 {
			a.Summary, a.Notes, a.Tags = nil, nil, []string{}
		}
		if _, err := s.analyses.Create(ctx, &a); err != nil {
			t.Fatal(err)
		}
	}
	filter := domain.ListFilter{OwnerID: &owner, Limit: 2, Skip: 1}
	fresh, err := s.pg.List(ctx, filter)
	if err != nil {
		t.Fatal(err)
	}
	freshUser, err := s.pg.ListByOwner(ctx, owner, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		read func() (cache.Result, error)
		want []byte
	}{
		"list":      {func() (cache.Result, error) { return s.lists.List(ctx, filter) }, fresh.AppendJSON(nil)},
		"user list": {func() (cache.Result, error) { return s.lists.ListByOwner(ctx, owner, 1, 2) }, freshUser.AppendJSON(nil)},
	} {
		for _, want := range []cache.Status{cache.Miss, cache.Hit} {
			r, err := c.read()
			if err != nil || r.Status != want {
				t.Fatalf("%s: %s %v, want %s", name, r.Status, err, want)
			}
			if !bytes.Equal(r.Body, c.want) {
				t.Errorf("%s %s body:\n%s\nwant the uncached body:\n%s", name, want, r.Body, c.want)
			}
		}
	}
}

func TestListsPatternsAndBypass(t *testing.T) {
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = dead.Close() })
	s := newListsStack(t, dead)
	ctx := context.Background()
	owner := uuid.New()
	if _, err := s.analyses.Create(ctx, &domain.Analysis{OwnerID: owner, URL: "https://x", Title: "x", Status: domain.StatusPending, Tags: []string{}}); err != nil {
		t.Fatalf("create with Redis down: %v", err)
	}
	r, err := s.lists.List(ctx, domain.ListFilter{OwnerID: &owner, Limit: 20})
	if err != nil || r.Status != cache.Bypass || r.Pattern != cache.PatternNamespace || !bytes.Contains(r.Body, []byte(`"count":1`)) {
		t.Fatalf("List with Redis down: %s %s %s %v", r.Status, r.Pattern, r.Body, err)
	}
	r, err = s.lists.ListByOwner(ctx, owner, 0, 20)
	if err != nil || r.Status != cache.Bypass || r.Pattern != cache.PatternReadThrough || !bytes.Contains(r.Body, []byte(`"count":1`)) {
		t.Fatalf("ListByOwner with Redis down: %s %s %s %v", r.Status, r.Pattern, r.Body, err)
	}
	if _, _, errs := s.metrics.Totals(); errs == 0 {
		t.Fatal("Redis errors were not counted")
	}
}

func TestCanonicalListQuery(t *testing.T) {
	owner := uuid.New()
	st := domain.StatusFailed
	tagA, tagB, empty := "a&skip=1", "a", ""
	seen := map[string]domain.ListFilter{}
	for _, f := range []domain.ListFilter{
		{Limit: 20}, {Limit: 21}, {Skip: 1, Limit: 20}, {OwnerID: &owner, Limit: 20},
		{Status: &st, Limit: 20}, {Tag: &tagA, Limit: 20}, {Tag: &tagB, Skip: 1, Limit: 20}, {Tag: &empty, Limit: 20},
	} {
		q := CanonicalListQuery(f)
		if prev, dup := seen[q]; dup {
			t.Errorf("filters %+v and %+v share the query %q", prev, f, q)
		}
		seen[q] = f
	}
	same := owner
	if CanonicalListQuery(domain.ListFilter{OwnerID: &owner, Limit: 5}) != CanonicalListQuery(domain.ListFilter{OwnerID: &same, Limit: 5}) {
		t.Error("equal filters give different queries")
	}
}

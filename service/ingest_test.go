package service

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/internal/testenv"
	"github.com/analysis-cache/service/repository"
)

// newIngestOn returns an Ingest on the real Redis and Postgres of the
// package, under a prefix of its own, with maxPending as the backlog limit.
func newIngestOn(t *testing.T, maxPending int64) (*Ingest, *cache.Codec, *redis.Client, cache.Keys, *repository.Postgres) {
	t.Helper()
	env := testenv.Get(t)
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	repo, err := repository.Open(ctx, env.DatabaseURL, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	if err := repo.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ropt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	t.Cleanup(func() { rdb.Close() })
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	codec, err := cache.NewCodec(key)
	if err != nil {
		t.Fatal(err)
	}
	keys := cache.Keys{Prefix: env.UniquePrefix("ingest")}
	m := cache.NewMetrics(nil, quiet)
	wb := cache.NewWriteBehind(rdb, keys, codec, repo, cache.NewListInvalidation(rdb, keys, m), m, quiet,
		cache.WriteBehindOptions{MaxPending: maxPending})
	return NewIngest(wb), codec, rdb, keys, repo
}

func TestIngestAssignsIDsAndDefaults(t *testing.T) {
	s, codec, rdb, keys, repo := newIngestOn(t, 1000)
	ctx := context.Background()
	given := uuid.New()
	items := []domain.Analysis{
		{OwnerID: uuid.New(), URL: "https://a.example", Title: "generated"},
		{ID: given, OwnerID: uuid.New(), URL: "https://b.example", Title: "given"},
	}
	got, err := s.Ingest(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] == uuid.Nil || got[1] != given {
		t.Fatalf("ids %v: want a generated id then %s, in item order", got, given)
	}
	raw, err := rdb.Get(ctx, keys.Analysis(got[0])).Bytes()
	if err != nil {
		t.Fatalf("ingested id not readable from the cache at once: %v", err)
	}
	e, err := codec.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := `"status":"pending","summary":null,"score":null,"tags":[],"notes":null,"version":1`
	if !strings.Contains(string(e.Body), want) {
		t.Fatalf("cached body %s lacks the defaults %s", e.Body, want)
	}
	if n, err := s.Flush(ctx); err != nil || n != 2 {
		t.Fatalf("Flush = %d, %v; want 2", n, err)
	}
	for _, id := range got {
		if _, err := repo.Get(ctx, id); err != nil {
			t.Fatalf("%s not in Postgres after Flush: %v", id, err)
		}
	}
}

func TestIngestQueueFullReturnsNoIDs(t *testing.T) {
	s, _, _, _, _ := newIngestOn(t, 1)
	items := []domain.Analysis{
		{OwnerID: uuid.New(), URL: "https://a.example", Title: "a"},
		{OwnerID: uuid.New(), URL: "https://b.example", Title: "b"},
	}
	got, err := s.Ingest(context.Background(), items)
	if domain.ErrorCode(err) != domain.EQUEUEFULL || got != nil {
		t.Fatalf("Ingest over the limit = %v, %v; want EQUEUEFULL and no ids", got, err)
	}
}

// TestIngestedIDsAreWriteBehindHits is the requirement: right after
// the bulk ingest answers, GET of each id is a HIT reported as write-behind
// (before and after the flush), a PATCH then makes it cache-aside, and a
// negative hit is reported as cache-aside.
func TestIngestedIDsAreWriteBehindHits(t *testing.T) {
	s, codec, rdb, keys, repo := newIngestOn(t, 1000)
	ctx := context.Background()
	m := cache.NewMetrics(nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	aside := cache.NewAside(rdb, keys, codec, m, &cache.Gate{}, cache.AsideOptions{})
	lists := cache.NewListInvalidation(rdb, keys, m)
	svc := NewAnalyses(repo, aside, keys, lists, cache.NewLog(repo, &cache.Gate{}, aside, lists, keys, m, nil, cache.LogOptions{}))
	owner := uuid.New()
	items := []domain.Analysis{
		{OwnerID: owner, URL: "https://a.example", Title: "one"},
		{OwnerID: owner, URL: "https://b.example", Title: "two"},
	}
	ids, err := s.Ingest(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for i, id := range ids {
			res, err := svc.Get(ctx, id)
			if err != nil || res.Status != cache.Hit || res.Pattern != cache.PatternWriteBehind || res.Version != 1 {
				t.Fatalf("%s: Get(%s) = %+v, %v; want HIT write-behind v1", when, id, res, err)
			}
			if want := items[i].AppendJSON(nil); string(res.Body) != string(want) {
				t.Fatalf("%s: body\n%s\nwant\n%s", when, res.Body, want)
			}
		}
	}
	check("right after the ingest")
	if _, err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	check("after the flush")

	title := "patched"
	if _, err := svc.Update(ctx, ids[0], domain.AnalysisPatch{Title: &title}, nil); err != nil {
		t.Fatal(err)
	}
	if res, err := svc.Get(ctx, ids[0]); err != nil || res.Status != cache.Hit || res.Pattern != cache.PatternAside || res.Version != 2 {
		t.Fatalf("after a PATCH: %+v, %v; want HIT cache-aside v2", res, err)
	}

	missing := uuid.New()
	for _, status := range []cache.Status{cache.Miss, cache.Hit} {
		res, err := svc.Get(ctx, missing)
		if !errors.Is(err, domain.ErrAnalysisNotFound) || res.Status != status || res.Pattern != cache.PatternAside {
			t.Fatalf("unknown id: %+v, %v; want 404 %s cache-aside", res, err, status)
		}
	}
}

package service

import (
	"context"
	"crypto/rand"
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
	keys := cache.Keys{Prefix: env.RedisPrefix + "ingest-" + t.Name() + ":"}
	m := cache.NewMetrics(nil, quiet)
	wb := cache.NewWriteBehind(rdb, keys, codec, repo, cache.NewListInvalidation(rdb, keys, m, &cache.Backlog{}), m, quiet,
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

package service

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/internal/testenv"
	"github.com/analysis-cache/service/repository"
)

// newIngestOn returns an Ingest on the real Redis and Postgres of the
// package, under a prefix of its own, with maxPending as the backlog limit.
func newIngestOn(t *testing.T, maxPending int64) (*Ingest, cache.Backend, *repository.Postgres) {
	t.Helper()
	env := testenv.Get(t)
	ropt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	t.Cleanup(func() { rdb.Close() })
	repo := openRepo(t)
	s, b := newIngestWith(t, rdb, repo, maxPending)
	return s, b, repo
}

// newIngestWith returns an Ingest on rdb flushing into repo.
func newIngestWith(t *testing.T, rdb redis.UniversalClient, repo domain.AnalysisRepository, maxPending int64) (*Ingest, cache.Backend) {
	t.Helper()
	env := testenv.Get(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	codec, err := cache.NewCodec(key)
	if err != nil {
		t.Fatal(err)
	}
	b := cache.Backend{Redis: rdb, Keys: cache.Keys{Prefix: env.UniquePrefix("ingest")}, Codec: codec,
		Metrics: cache.NewMetrics(nil, quiet), Gate: &cache.Gate{}, Logger: quiet}
	wb := cache.NewWriteBehind(b, AnalysisResource, AnalysisBulkStore(repo), AnalysisEntities{},
		cache.NewListInvalidation(b, AnalysisResource), cache.WriteBehindOptions{MaxPending: maxPending})
	return NewIngest(wb), b
}

func TestIngestAssignsIDsAndDefaults(t *testing.T) {
	s, b, repo := newIngestOn(t, 1000)
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
	raw, err := b.Redis.Get(ctx, b.Keys.Entity(AnalysisResource.Kind, got[0].String())).Bytes()
	if err != nil {
		t.Fatalf("ingested id not readable from the cache at once: %v", err)
	}
	e, err := b.Codec.Decode(raw)
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
	s, _, _ := newIngestOn(t, 1)
	items := []domain.Analysis{
		{OwnerID: uuid.New(), URL: "https://a.example", Title: "a"},
		{OwnerID: uuid.New(), URL: "https://b.example", Title: "b"},
	}
	got, err := s.Ingest(context.Background(), items)
	if domain.ErrorCode(err) != domain.EQUEUEFULL || domain.ErrorMessage(err) != "Write-behind queue is full" || got != nil {
		t.Fatalf("Ingest over the limit = %v, %v; want EQUEUEFULL and no ids", got, err)
	}
}

// TestIngestedIDsAreWriteBehindHits is the requirement: right after
// the bulk ingest answers, GET of each id is a HIT reported as write-behind
// (before and after the flush), a PATCH then makes it cache-aside, and a
// negative hit is reported as cache-aside.
func TestIngestedIDsAreWriteBehindHits(t *testing.T) {
	s, b, repo := newIngestOn(t, 1000)
	ctx := context.Background()
	aside := cache.NewAside(b, AnalysisResource, cache.AsideOptions{})
	lists := cache.NewListInvalidation(b, AnalysisResource)
	svc := NewAnalyses(repo, aside, lists, cache.NewLog(repo, b, cache.LogOptions{}))
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

// TestIngestItemsAreStampedVersionOne: Ingest, not the cache, sets version 1
// and created_at = updated_at = now, in UTC microseconds, on every item.
func TestIngestItemsAreStampedVersionOne(t *testing.T) {
	s, _, _ := newIngestOn(t, 1000)
	before := time.Now().UTC().Truncate(time.Microsecond)
	items := []domain.Analysis{
		{OwnerID: uuid.New(), URL: "https://a.example", Title: "a", Version: 7},
		{ID: uuid.New(), OwnerID: uuid.New(), URL: "https://b.example", Title: "b"},
	}
	if _, err := s.Ingest(context.Background(), items); err != nil {
		t.Fatal(err)
	}
	for _, a := range items {
		if a.Version != 1 || a.CreatedAt.IsZero() || !a.CreatedAt.Equal(a.UpdatedAt) || a.CreatedAt.Before(before) ||
			a.CreatedAt.Location() != time.UTC || a.CreatedAt.Nanosecond()%1000 != 0 {
			t.Fatalf("item %s: version %d, created_at %v, updated_at %v; want 1 and the same UTC microsecond",
				a.ID, a.Version, a.CreatedAt, a.UpdatedAt)
		}
	}
}

// unreachableRepo is a repository whose bulk insert finds Postgres down.
type unreachableRepo struct{ domain.AnalysisRepository }

func (unreachableRepo) InsertMissing(context.Context, []domain.Analysis) ([]uuid.UUID, domain.Change, error) {
	return nil, domain.Change{}, domain.DatabaseUnavailable(errors.New("connection refused"))
}

// TestIngestErrorsKeepTheContract: the cache's write-behind errors reach
// the API as the contract's codes and messages: a Postgres outage on flush
// is EUNAVAILABLE "Database unavailable" (the entries stay queued), Redis
// down is EQUEUEUNAVAILABLE "Write-behind queue unavailable".
func TestIngestErrorsKeepTheContract(t *testing.T) {
	ctx := context.Background()
	env := testenv.Get(t)
	ropt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	t.Cleanup(func() { rdb.Close() })
	s, _ := newIngestWith(t, rdb, unreachableRepo{openRepo(t)}, 1000)
	if _, err := s.Ingest(ctx, []domain.Analysis{{OwnerID: uuid.New(), URL: "https://a.example", Title: "a"}}); err != nil {
		t.Fatal(err)
	}
	n, err := s.Flush(ctx)
	if n != 0 || domain.ErrorCode(err) != domain.EUNAVAILABLE || domain.ErrorMessage(err) != "Database unavailable" {
		t.Fatalf("Flush with Postgres down = %d, %v; want EUNAVAILABLE Database unavailable", n, err)
	}
	if pending, err := s.wb.Pending(ctx); err != nil || pending != 1 {
		t.Fatalf("Pending after the failed flush = %d, %v; want the entry kept", pending, err)
	}

	closed := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { closed.Close() })
	down, _ := newIngestWith(t, closed, openRepo(t), 1000)
	ids, err := down.Ingest(ctx, []domain.Analysis{{OwnerID: uuid.New(), URL: "https://a.example", Title: "a"}})
	if ids != nil || domain.ErrorCode(err) != domain.EQUEUEUNAVAILABLE || domain.ErrorMessage(err) != "Write-behind queue unavailable" {
		t.Fatalf("Ingest with Redis down = %v, %v; want EQUEUEUNAVAILABLE Write-behind queue unavailable", ids, err)
	}
	if _, err := down.Flush(ctx); domain.ErrorCode(err) != domain.EQUEUEUNAVAILABLE {
		t.Fatalf("Flush with Redis down = %v, want EQUEUEUNAVAILABLE", err)
	}
}

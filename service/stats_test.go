package service

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/internal/testenv"
	"github.com/analysis-cache/service/repository"
)

// statsRepo is the real repository with the aggregation counted, and able
// to fail as if Postgres were down.
type statsRepo struct {
	domain.AnalysisRepository
	calls atomic.Int64
	down  atomic.Bool
}

func (r *statsRepo) Stats(ctx context.Context) (*domain.Stats, error) {
	r.calls.Add(1)
	if r.down.Load() {
		return nil, domain.DatabaseUnavailable(errors.New("connection refused"))
	}
	return r.AnalysisRepository.Stats(ctx)
}

type statsFixture struct {
	svc   *Stats
	repo  *statsRepo
	pg    *repository.Postgres
	clock *statsClock
	rdb   *redis.Client
}

type statsClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *statsClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *statsClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newStatsFixture(t *testing.T) *statsFixture {
	t.Helper()
	env := testenv.Get(t)
	ctx := context.Background()
	pg := openRepo(t)
	opt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	keys := cache.Keys{Prefix: env.RedisPrefix}
	// Each test starts cold: remove the value this package's earlier tests left.
	if err := rdb.Del(ctx, keys.Stampede(StatsKey)).Err(); err != nil {
		t.Fatal(err)
	}
	clock := &statsClock{now: time.Now()}
	guard := cache.NewStampedeGuard(cache.Backend{Redis: rdb, Keys: keys, Metrics: cache.NewMetrics(nil, nil)},
		cache.StampedeOptions{Resource: "stats", TTL: time.Minute, Beta: -1, Now: clock.Now})
	t.Cleanup(guard.Close)
	repo := &statsRepo{AnalysisRepository: pg}
	return &statsFixture{svc: NewStats(repo, guard), repo: repo, pg: pg, clock: clock, rdb: rdb}
}

type statsBody struct {
	Total    int64            `json:"total"`
	ByStatus map[string]int64 `json:"by_status"`
	AvgScore *float64         `json:"avg_score"`
	TopTags  []struct {
		Tag   string `json:"tag"`
		Count int64  `json:"count"`
	} `json:"top_tags"`
	ComputedAt string `json:"computed_at"`
}

// The stats body is the repository's aggregation in the contract's shape,
// cached: the second read is a HIT with the same bytes and no aggregation.
func TestStatsCachesTheAggregation(t *testing.T) {
	f := newStatsFixture(t)
	ctx := context.Background()
	tag := "stats-" + uuid.NewString()[:8]
	score := 0.5
	for range 3 {
		a := &domain.Analysis{ID: uuid.New(), OwnerID: uuid.New(), URL: "https://example.com/s", Title: "s",
			Status: domain.StatusFailed, Score: &score, Tags: []string{tag}}
		if _, err := f.pg.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	want, err := f.pg.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}

	first, err := f.svc.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != cache.Miss || first.Pattern != cache.PatternStampede {
		t.Fatalf("first read: %s %q, want MISS stampede-protection", first.Status, first.Pattern)
	}
	var got statsBody
	if err := json.Unmarshal(first.Body, &got); err != nil {
		t.Fatalf("body %s: %v", first.Body, err)
	}
	if got.Total != want.Total || got.ByStatus["failed"] != want.ByStatus[domain.StatusFailed] || len(got.ByStatus) != 4 {
		t.Errorf("body %s, want total %d and failed %d", first.Body, want.Total, want.ByStatus[domain.StatusFailed])
	}
	if got.ComputedAt == "" {
		t.Errorf("body %s has no computed_at", first.Body)
	}

	second, err := f.svc.Stats(ctx)
	if err != nil || second.Status != cache.Hit || string(second.Body) != string(first.Body) {
		t.Fatalf("second read: %s %s %v, want the same body as HIT", second.Body, second.Status, err)
	}
	if n := f.repo.calls.Load(); n != 1 {
		t.Errorf("aggregations = %d, want 1", n)
	}
}

// Postgres down: with no value the error keeps EUNAVAILABLE (503); with a
// stale value readers get it, never an error.
func TestStatsPostgresDown(t *testing.T) {
	f := newStatsFixture(t)
	ctx := context.Background()
	f.repo.down.Store(true)
	if _, err := f.svc.Stats(ctx); domain.ErrorCode(err) != domain.EUNAVAILABLE {
		t.Fatalf("cold with Postgres down: err = %v, want EUNAVAILABLE", err)
	}
	f.repo.down.Store(false)
	fresh, err := f.svc.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.repo.down.Store(true)
	f.clock.Advance(2 * time.Minute)
	for range 3 {
		res, err := f.svc.Stats(ctx)
		if err != nil || res.Status != cache.Stale || string(res.Body) != string(fresh.Body) {
			t.Fatalf("stale with Postgres down: %s %s %v, want the last value STALE", res.Body, res.Status, err)
		}
	}
}

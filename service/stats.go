package service

import (
	"context"
	"fmt"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
)

// StatsKey is the logical key of the stats value (docs/design.md); its
// lock is cache.Keys.Lock(StatsKey).
const StatsKey = "stats:analyses"

// Stats is the use case of GET /api/v1/analyses/stats: the aggregation over
// every analysis (repo.Stats, expensive by design) behind a
// cache.StampedeGuard. However many requests arrive over however many
// processes, one aggregation runs per expiry; readers of an expired value
// get it STALE at once while one refresh runs. The answer may lag the
// database by up to the guard's TTL (STATS_TTL), as the contract allows.
type Stats struct {
	repo  domain.AnalysisRepository
	guard *cache.StampedeGuard
}

// NewStats returns the stats use case on repo, guarded by g.
func NewStats(repo domain.AnalysisRepository, g *cache.StampedeGuard) *Stats {
	return &Stats{repo: repo, guard: g}
}

// Stats returns the exact AnalysisStats body, with Pattern
// cache.PatternStampede and Status HIT, STALE, MISS or BYPASS. It fails only
// when no value, fresh or stale, exists and the aggregation fails; the
// error keeps the repository's domain code (EUNAVAILABLE when Postgres is down).
func (s *Stats) Stats(ctx context.Context) (cache.Result, error) {
	res, err := s.guard.Get(ctx, StatsKey, s.compute)
	if err != nil {
		return cache.Result{}, fmt.Errorf("analysis stats: %w", err)
	}
	return res, nil
}

// compute runs the aggregation and encodes it as FastAPI would.
func (s *Stats) compute(ctx context.Context) ([]byte, error) {
	st, err := s.repo.Stats(ctx)
	if err != nil {
		return nil, err
	}
	return st.AppendJSON(make([]byte, 0, 512)), nil
}

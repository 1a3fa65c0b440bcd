package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
)

// Admin serves the cache admin API: the counters of this process with the
// write-behind backlog read from Redis, and invalidation by keys, pattern,
// tags or namespace with true counts (see cache.Invalidator). Admin is safe
// for concurrent use.
type Admin struct {
	metrics    *cache.Metrics
	invalidate *cache.Invalidator
	pending    func(context.Context) (int64, error)
}

// NewAdmin returns the admin use cases. pending reports the write-behind
// entries not yet in Postgres (the lead passes WriteBehind.Pending).
func NewAdmin(m *cache.Metrics, inv *cache.Invalidator, pending func(context.Context) (int64, error)) *Admin {
	return &Admin{metrics: m, invalidate: inv, pending: pending}
}

// Stats returns this process's cache counters and the write-behind backlog.
// Returns ECACHEUNAVAILABLE when the backlog cannot be read from Redis.
func (a *Admin) Stats(ctx context.Context) (cache.Stats, error) {
	s := a.metrics.Snapshot()
	if a.pending != nil {
		n, err := a.pending(ctx)
		if err != nil {
			return s, domain.CacheUnavailable(fmt.Errorf("cache stats: %w", err))
		}
		s.WriteBehind.Pending = n
	}
	return s, nil
}

// Invalidate carries out the selector and returns how many entries it
// invalidated. Returns EINVALID for a selector with no field or several, or
// a pattern over cache.MaxPatternLength; ECACHEUNAVAILABLE when Redis failed.
func (a *Admin) Invalidate(ctx context.Context, s cache.Selector) (int64, error) {
	n, err := a.invalidate.Invalidate(ctx, s)
	var bad *cache.SelectorError
	switch {
	case errors.As(err, &bad):
		return n, domain.Errorf(domain.EINVALID, "%s", bad.Reason)
	case errors.Is(err, cache.ErrUnavailable):
		return n, domain.CacheUnavailable(err)
	}
	return n, err
}

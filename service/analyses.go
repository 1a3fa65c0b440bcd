// Package service holds the use cases behind the endpoints, one method per
// endpoint; each picks the caching pattern that serves it. No gin, no SQL.
package service

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
)

// Analyses is the single-analysis use cases: reads through cache-aside with
// leases and negative caching, writes through the version-guarded
// write-through of cache.Aside. Every write commits in Postgres first, then
// updates the entry and invalidates the lists before it returns, so the
// writer reads its own write from every endpoint at once.
type Analyses struct {
	repo  domain.AnalysisRepository
	aside *cache.Aside
	keys  cache.Keys
	lists cache.ChangeListener
}

// NewAnalyses returns the use cases on repo, caching single analyses in
// aside under keys and telling lists about every change. lists must not be nil.
func NewAnalyses(repo domain.AnalysisRepository, aside *cache.Aside, keys cache.Keys, lists cache.ChangeListener) *Analyses {
	return &Analyses{repo: repo, aside: aside, keys: keys, lists: lists}
}

// Create stores a (a new id when a.ID is zero; Version 1 and timestamps
// set by the repository), writes it through to the cache and invalidates
// the lists of its owner. Returns ECONFLICT when the id is taken.
func (s *Analyses) Create(ctx context.Context, a *domain.Analysis) (*domain.Analysis, error) {
	if a.ID == uuid.Nil {
		a.ID = uuid.New()
	}
	if err := s.repo.Create(ctx, a); err != nil {
		return nil, fmt.Errorf("create analysis: %w", err)
	}
	if err := s.aside.Set(ctx, s.keys.Analysis(a.ID), a.Version, a.AppendJSON(nil)); err != nil {
		return nil, fmt.Errorf("write through analysis %s: %w", a.ID, err)
	}
	s.lists.AnalysesChanged(ctx, a.OwnerID)
	return a, nil
}

// Get returns the exact AnalysisPublic body of id and its version, from
// Redis when it holds it (HIT) or from Postgres (MISS, BYPASS when Redis
// failed). The Result's Pattern is cache.PatternWriteBehind when the entry
// was written by a bulk ingest, cache.PatternAside otherwise. For an
// unknown id it returns the Result (its Status says whether the 404 came
// from the negative cache) and domain.ErrAnalysisNotFound.
func (s *Analyses) Get(ctx context.Context, id uuid.UUID) (cache.Result, error) {
	res, err := s.aside.Get(ctx, s.keys.Analysis(id), func(ctx context.Context) ([]byte, int64, error) {
		a, err := s.repo.Get(ctx, id)
		if err != nil {
			return nil, 0, err
		}
		return a.AppendJSON(nil), a.Version, nil
	})
	// res.Pattern is the Aside's: "write-behind" for an entry a bulk ingest
	// wrote, "cache-aside" for everything else (a negative hit included).
	if domain.ErrorCode(err) == domain.ENOTFOUND {
		return res, domain.ErrAnalysisNotFound
	}
	if err != nil {
		return res, fmt.Errorf("get analysis %s: %w", id, err)
	}
	return res, nil
}

// Update applies p to id (EPRECONDITION when ifMatch names another
// version, ENOTFOUND when there is no such analysis). When the version
// changed, the new version is written through and the owner's lists are
// invalidated before it returns.
func (s *Analyses) Update(ctx context.Context, id uuid.UUID, p domain.AnalysisPatch, ifMatch *int64) (*domain.Analysis, error) {
	a, err := s.repo.Update(ctx, id, p, ifMatch)
	if err != nil {
		return nil, fmt.Errorf("update analysis %s: %w", id, err)
	}
	if !mayHaveChanged(p, ifMatch, a) {
		return a, nil
	}
	// The guard makes this a no-op when the version did not change after all.
	if err := s.aside.Set(ctx, s.keys.Analysis(id), a.Version, a.AppendJSON(nil)); err != nil {
		return nil, fmt.Errorf("write through analysis %s: %w", id, err)
	}
	s.lists.AnalysesChanged(ctx, a.OwnerID)
	return a, nil
}

// mayHaveChanged reports whether the update may have produced a new
// version. The repository returns the analysis unchanged for a no-op
// patch without saying so; with If-Match we know the previous version
// exactly, otherwise an empty patch is the only sure no-op.
func mayHaveChanged(p domain.AnalysisPatch, ifMatch *int64, a *domain.Analysis) bool {
	if ifMatch != nil {
		return a.Version != *ifMatch
	}
	return p.URL != nil || p.Title != nil || p.Status != nil || p.Tags != nil ||
		p.Summary.Set || p.Score.Set || p.Notes.Set
}

// Delete removes id (EPRECONDITION when ifMatch names another version,
// ENOTFOUND when there is none), tombstones its entry at the deleted
// version so no delayed write-through or racing fill can bring it back,
// and invalidates the owner's lists before it returns.
func (s *Analyses) Delete(ctx context.Context, id uuid.UUID, ifMatch *int64) error {
	old, err := s.repo.Delete(ctx, id, ifMatch)
	if err != nil {
		return fmt.Errorf("delete analysis %s: %w", id, err)
	}
	if err := s.aside.Tombstone(ctx, s.keys.Analysis(id), old.Version); err != nil {
		return fmt.Errorf("tombstone analysis %s: %w", id, err)
	}
	s.lists.AnalysesChanged(ctx, old.OwnerID)
	return nil
}

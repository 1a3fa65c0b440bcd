// Package service holds the use cases behind the endpoints, one method per
// endpoint; each picks the caching pattern that serves it. No gin, no SQL.
package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
)

// Analyses is the single-analysis use cases: reads through cache-aside with
// leases and negative caching, writes through the version-guarded
// write-through of cache.Aside. Every write commits in Postgres first, in
// one statement that also records its invalidation in the log, then
// updates the entry and invalidates the lists before it returns (settled
// by cache.Log: when Redis refuses, every process bypasses Redis until the
// change is applied), so no read started after the write answered returns
// older data, from any process.
type Analyses struct {
	repo   domain.AnalysisRepository
	aside  *cache.Aside
	writes *cache.WriteThrough
}

// AnalysisResource is how the cache holds analyses: entries
// "analysis:{id}", filtered list pages in the namespace "analyses", and
// per-owner lists tagged "user:{owner}" and "analyses".
var AnalysisResource = cache.Resource{Kind: domain.AnalysisKind, Lists: "analyses", Group: "user", AllGroups: "analyses"}

// NewAnalyses returns the use cases on repo, caching single analyses in
// aside (of AnalysisResource), telling lists about every change and
// settling each change in log, which it makes track analyses. lists and log
// must not be nil.
func NewAnalyses(repo domain.AnalysisRepository, aside *cache.Aside, lists cache.ChangeListener, log *cache.Log) *Analyses {
	s := &Analyses{repo: repo, aside: aside}
	s.writes = cache.NewWriteThrough(aside, lists, log, s.stored)
	return s
}

// stored returns the stored bodies of ids, for the Log to apply changes.
func (s *Analyses) stored(ctx context.Context, ids []string) ([]cache.Stored, error) {
	parsed := make([]uuid.UUID, 0, len(ids))
	for _, id := range ids {
		u, err := uuid.Parse(id)
		if err != nil {
			return nil, fmt.Errorf("analysis id %q in the invalidation log: %w", id, err)
		}
		parsed = append(parsed, u)
	}
	rows, err := s.repo.Rows(ctx, parsed)
	if err != nil {
		return nil, err
	}
	out := make([]cache.Stored, len(rows))
	for i, a := range rows {
		out[i] = cache.Stored{ID: a.ID.String(), Version: a.Version, Body: a.AppendJSON(nil)}
	}
	return out, nil
}

// Create stores a (a new id when a.ID is zero; Version 1 and timestamps
// set by the repository), writes it through to the cache and invalidates
// the lists of its owner. Returns ECONFLICT when the id is taken.
func (s *Analyses) Create(ctx context.Context, a *domain.Analysis) (*domain.Analysis, error) {
	if a.ID == uuid.Nil {
		a.ID = uuid.New()
	}
	change, err := s.repo.Create(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("create analysis: %w", err)
	}
	s.writeThrough(ctx, a, change)
	return a, nil
}

// writeThrough writes a (just committed) through to its entry and
// invalidates its owner's lists, settling change in the log.
func (s *Analyses) writeThrough(ctx context.Context, a *domain.Analysis, change domain.Change) {
	s.writes.Written(ctx, change.ID, a.ID.String(), a.OwnerID.String(), a.Version, a.AppendJSON(nil))
}

// Get returns the exact AnalysisPublic body of id and its version, from
// Redis when it holds it (HIT) or from Postgres (MISS, BYPASS when Redis
// failed). The Result's Pattern is cache.PatternWriteBehind when the entry
// was written by a bulk ingest, cache.PatternAside otherwise. For an
// unknown id it returns the Result (its Status says whether the 404 came
// from the negative cache) and domain.ErrAnalysisNotFound.
func (s *Analyses) Get(ctx context.Context, id uuid.UUID) (cache.Result, error) {
	res, err := s.aside.Get(ctx, id.String(), func(ctx context.Context) ([]byte, int64, error) {
		a, err := s.repo.Get(ctx, id)
		if domain.ErrorCode(err) == domain.ENOTFOUND {
			return nil, 0, cache.ErrNotFound
		}
		if err != nil {
			return nil, 0, err
		}
		return a.AppendJSON(nil), a.Version, nil
	})
	// res.Pattern is the Aside's: "write-behind" for an entry a bulk ingest
	// wrote, "cache-aside" for everything else (a negative hit included).
	if errors.Is(err, cache.ErrNotFound) {
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
	a, change, err := s.repo.Update(ctx, id, p, ifMatch)
	if err != nil {
		return nil, fmt.Errorf("update analysis %s: %w", id, err)
	}
	if change.ID != 0 { // a no-op patch changed and logged nothing
		s.writeThrough(ctx, a, change)
	}
	return a, nil
}

// Delete removes id (EPRECONDITION when ifMatch names another version,
// ENOTFOUND when there is none), tombstones its entry at the deleted
// version so no delayed write-through or racing fill can bring it back,
// and invalidates the owner's lists before it returns.
func (s *Analyses) Delete(ctx context.Context, id uuid.UUID, ifMatch *int64) error {
	old, change, err := s.repo.Delete(ctx, id, ifMatch)
	if err != nil {
		return fmt.Errorf("delete analysis %s: %w", id, err)
	}
	s.writes.Deleted(ctx, change.ID, id.String(), old.OwnerID.String(), old.Version)
	return nil
}

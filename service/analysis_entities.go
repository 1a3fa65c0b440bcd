package service

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
)

// AnalysisEntities is the cache.EntityCodec of analyses: an analysis is
// cached as its exact JSON body (domain.Analysis.AppendJSON), under its
// id, at its version, in the lists of its owner.
type AnalysisEntities struct{}

var _ cache.EntityCodec[domain.Analysis] = AnalysisEntities{}

// ID is a's id.
func (AnalysisEntities) ID(a domain.Analysis) string { return a.ID.String() }

// Group is a's owner: its lists are the owner's.
func (AnalysisEntities) Group(a domain.Analysis) string { return a.OwnerID.String() }

// Version is a's version.
func (AnalysisEntities) Version(a domain.Analysis) int64 { return a.Version }

// Append appends a's JSON body to dst.
func (AnalysisEntities) Append(dst []byte, a domain.Analysis) []byte { return a.AppendJSON(dst) }

// Parse reads a body Append wrote.
func (AnalysisEntities) Parse(body []byte) (domain.Analysis, error) {
	return domain.ParseAnalysisJSON(body)
}

// AnalysisBulkStore returns repo as the cache.BulkStore write-behind
// flushes analyses into: ids as strings, the logged change as its id, and
// EUNAVAILABLE (Postgres unreachable) wrapped with cache.ErrStoreUnavailable
// so the flusher retries it; the domain error stays in the chain.
func AnalysisBulkStore(repo domain.AnalysisRepository) cache.BulkStore[domain.Analysis] {
	return analysisBulkStore{repo: repo}
}

type analysisBulkStore struct{ repo domain.AnalysisRepository }

// InsertMissing is repo.InsertMissing.
func (s analysisBulkStore) InsertMissing(ctx context.Context, items []domain.Analysis) ([]string, int64, error) {
	ids, change, err := s.repo.InsertMissing(ctx, items)
	return idStrings(ids), change.ID, storeError(err)
}

// ExistingIDs is repo.ExistingIDs; an id that is not a UUID cannot exist.
func (s analysisBulkStore) ExistingIDs(ctx context.Context, ids []string) ([]string, error) {
	uids := make([]uuid.UUID, 0, len(ids))
	for _, id := range ids {
		if u, err := uuid.Parse(id); err == nil {
			uids = append(uids, u)
		}
	}
	found, err := s.repo.ExistingIDs(ctx, uids)
	return idStrings(found), storeError(err)
}

// storeError marks a Postgres outage as cache.ErrStoreUnavailable.
func storeError(err error) error {
	if domain.ErrorCode(err) == domain.EUNAVAILABLE {
		return fmt.Errorf("%w: %w", cache.ErrStoreUnavailable, err)
	}
	return err
}

func idStrings(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

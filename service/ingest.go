package service

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
)

// Ingest is the bulk ingest use case (POST /api/v1/analyses/bulk) and the
// admin flush: write-behind through cache.WriteBehind.
//
// Guarantees: Ingest answers only once every item is durable in Redis
// (in the stream, and cached for a new id; one round trip); a client-given
// id is kept, so resending a batch creates nothing new, and it never
// shadows an existing row in the cache (cache.WriteBehind.Enqueue looks it
// up; ids Ingest generated are not looked up); ids come back in item order.
type Ingest struct {
	wb *cache.WriteBehind[domain.Analysis]
}

// NewIngest returns the ingest use case on w, a WriteBehind built with
// AnalysisEntities and AnalysisBulkStore.
func NewIngest(w *cache.WriteBehind[domain.Analysis]) *Ingest { return &Ingest{wb: w} }

// Ingest assigns a random id to every item without one, applies the
// defaults of AnalysisCreate (status pending, no tags), sets version 1 and
// created_at = updated_at = now (UTC, microseconds), and queues them. It
// returns the ids in item order. Returns EQUEUEFULL when the write-behind
// backlog is over WRITE_BEHIND_MAX_PENDING and EQUEUEUNAVAILABLE when Redis
// failed; in both cases no id is returned. items is modified in place.
func (s *Ingest) Ingest(ctx context.Context, items []domain.Analysis) ([]uuid.UUID, error) {
	ids := make([]uuid.UUID, len(items))
	generated := make([]bool, len(items))
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i := range items {
		a := &items[i]
		if a.ID == uuid.Nil {
			a.ID, generated[i] = uuid.New(), true
		}
		if a.Status == "" {
			a.Status = domain.StatusPending
		}
		if a.Tags == nil {
			a.Tags = []string{}
		}
		a.Version, a.CreatedAt, a.UpdatedAt = 1, now, now
		ids[i] = a.ID
	}
	if err := s.wb.Enqueue(ctx, items, generated); err != nil {
		return nil, queueError(err)
	}
	return ids, nil
}

// Flush writes everything queued to Postgres now and returns how many
// entries it committed, once they are committed (see cache.WriteBehind.Flush).
// A Postgres outage returns EUNAVAILABLE, a Redis failure EQUEUEUNAVAILABLE.
func (s *Ingest) Flush(ctx context.Context) (int, error) {
	n, err := s.wb.Flush(ctx)
	return n, queueError(err)
}

// queueError maps the write-behind queue's errors to the contract's; a
// Postgres outage already carries EUNAVAILABLE (AnalysisBulkStore).
func queueError(err error) error {
	switch {
	case errors.Is(err, cache.ErrQueueFull):
		return domain.Wrap(domain.EQUEUEFULL, "Write-behind queue is full", err)
	case errors.Is(err, cache.ErrQueueUnavailable):
		return domain.Wrap(domain.EQUEUEUNAVAILABLE, "Write-behind queue unavailable", err)
	}
	return err
}

package service

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
)

func TestAdminStatsAddsWriteBehindPending(t *testing.T) {
	s := newListsStack(t, nil)
	ctx := context.Background()
	owner := uuid.New()
	for range 3 { // one MISS, two HITs
		if _, err := s.lists.ListByOwner(ctx, owner, 0, 20); err != nil {
			t.Fatal(err)
		}
	}
	admin := NewAdmin(s.metrics, nil, func(context.Context) (int64, error) { return 7, nil })
	st, err := admin.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Hits != 2 || st.Misses != 1 || st.HitRatio < 0.66 || st.HitRatio > 0.67 || st.WriteBehind.Pending != 7 {
		t.Fatalf("Stats = %+v; want 2 hits, 1 miss, ratio 2/3, pending 7", st)
	}
	failing := NewAdmin(s.metrics, nil, func(context.Context) (int64, error) { return 0, errors.New("redis down") })
	if _, err := failing.Stats(ctx); domain.ErrorCode(err) != domain.ECACHEUNAVAILABLE {
		t.Fatalf("Stats with the queue unreadable: %v, want ECACHEUNAVAILABLE", err)
	}
}

func TestAdminInvalidateDropsTheSelectedLists(t *testing.T) {
	s := newListsStack(t, nil)
	ctx := context.Background()
	owner := uuid.New()
	admin := NewAdmin(s.metrics, cache.NewInvalidator(s.backend, AnalysisResource.Lists), nil)
	read := func() cache.Status {
		r, err := s.lists.ListByOwner(ctx, owner, 0, 20)
		if err != nil {
			t.Fatal(err)
		}
		return r.Status
	}
	read()
	n, err := admin.Invalidate(ctx, cache.Selector{Tags: []string{AnalysisResource.GroupTag(owner.String())}})
	if err != nil || n != 1 {
		t.Fatalf("Invalidate(tag) = %d, %v; want 1", n, err)
	}
	if st := read(); st != cache.Miss {
		t.Fatalf("after invalidating the tag: %s, want MISS", st)
	}
	pattern := "analysis-list:" + owner.String() + ":*"
	if n, err := admin.Invalidate(ctx, cache.Selector{Pattern: &pattern}); err != nil || n != 1 {
		t.Fatalf("Invalidate(pattern) = %d, %v; want 1", n, err)
	}
	if st := read(); st != cache.Miss {
		t.Fatalf("after invalidating by pattern: %s, want MISS", st)
	}
}

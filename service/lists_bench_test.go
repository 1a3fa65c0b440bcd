package service

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/repository/repotest"
)

// The list endpoints through the service, cached and uncached, on the real
// Postgres and Redis: a page of 20 analyses of one owner among 200.
//
//	go test -run '^$' -bench 'List' -benchtime 2000x ./service/
//
// Each benchmark reports req/s and, for the cached paths, the hit ratio.
func benchListsStack(b *testing.B) (*listsStack, uuid.UUID) {
	s := newListsStack(b, nil)
	ctx := context.Background()
	owner := uuid.New()
	items := make([]domain.Analysis, 200)
	for i := range items {
		items[i] = repotest.NewAnalysis(owner, "bench")
	}
	if _, _, err := s.pg.InsertMissing(ctx, items); err != nil {
		b.Fatal(err)
	}
	return s, owner
}

func reportLists(b *testing.B, s *listsStack) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	if h, m, _ := s.metrics.Totals(); h+m > 0 {
		b.ReportMetric(float64(h)/float64(h+m), "hit-ratio")
	}
}

func BenchmarkListCached(b *testing.B) {
	s, owner := benchListsStack(b)
	f := domain.ListFilter{OwnerID: &owner, Limit: 20}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.lists.List(context.Background(), f); err != nil {
				b.Error(err)
			}
		}
	})
	reportLists(b, s)
}

func BenchmarkListUncached(b *testing.B) {
	s, owner := benchListsStack(b)
	f := domain.ListFilter{OwnerID: &owner, Limit: 20}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := s.pg.List(context.Background(), f)
			if err != nil {
				b.Error(err)
			}
			_ = p.AppendJSON(nil)
		}
	})
	reportLists(b, s)
}

func BenchmarkListByOwnerCached(b *testing.B) {
	s, owner := benchListsStack(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.lists.ListByOwner(context.Background(), owner, 0, 20); err != nil {
				b.Error(err)
			}
		}
	})
	reportLists(b, s)
}

func BenchmarkListByOwnerUncached(b *testing.B) {
	s, owner := benchListsStack(b)
	// A closed gate keeps every read off Redis: each one loads from Postgres.
	off := s.backend
	off.Gate = cache.NewGate()
	uncached := NewLists(off, s.pg, cache.PageOptions{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := uncached.ListByOwner(context.Background(), owner, 0, 20); err != nil {
				b.Error(err)
			}
		}
	})
	reportLists(b, s)
}

// BenchmarkListCachedWithWrites mixes one write (and its namespace bump)
// every 50 reads: the hit ratio a write-heavy list sees.
func BenchmarkListCachedWithWrites(b *testing.B) {
	s, owner := benchListsStack(b)
	inv := cache.NewListInvalidation(s.backend, AnalysisResource)
	f := domain.ListFilter{OwnerID: &owner, Limit: 20}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%50 == 49 {
			inv.Changed(ctx, owner.String())
		}
		if _, err := s.lists.List(ctx, f); err != nil {
			b.Error(err)
		}
	}
	reportLists(b, s)
}

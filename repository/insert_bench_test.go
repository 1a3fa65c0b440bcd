package repository

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/repository/repotest"
)

// BenchmarkInsertMissing compares InsertMissing with a raw COPY into the
// table (the ceiling: no conflict handling, no RETURNING), for
// write-behind sized batches (100, 1000) and bulk loads (10k). Every
// iteration inserts fresh ids; rows/s is the figure to compare.
//
//	go test -bench InsertMissing -run '^$' ./repository/
func BenchmarkInsertMissing(b *testing.B) {
	p := openTestRepo(b, nil)
	ctx := context.Background()
	impls := []struct {
		name   string
		insert func(context.Context, []domain.Analysis) (int, error)
	}{
		{"unnest", func(ctx context.Context, items []domain.Analysis) (int, error) {
			ids, _, err := p.InsertMissing(ctx, items)
			return len(ids), err
		}},
		{"rawCopy", func(ctx context.Context, items []domain.Analysis) (int, error) {
			n, err := p.CopyAnalyses(ctx, items)
			return int(n), err
		}},
	}
	for _, size := range []int{100, 1000, 10000} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("%s/%d", impl.name, size), func(b *testing.B) {
				repotest.TruncateAnalyses(b, p.sql)
				owner := uuid.New()
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					items := seedItems(size, owner)
					b.StartTimer()
					n, err := impl.insert(ctx, items)
					if err != nil || n != size {
						b.Fatalf("inserted %d of %d: %v", n, size, err)
					}
				}
				b.ReportMetric(float64(size*b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

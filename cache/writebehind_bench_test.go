package cache

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/domain"
	"github.com/analysis-cache/service/internal/testenv"
)

const wbBenchBatch = 1000

// wbBenchGenerated marks every id of a bench batch as generated (the path
// of a bulk without client ids: no lookup in Postgres).
var wbBenchGenerated = func() []bool {
	g := make([]bool, wbBenchBatch)
	for i := range g {
		g[i] = true
	}
	return g
}()

func newWBBench(b *testing.B) (*wbFixture, *WriteBehind[domain.Analysis]) {
	b.Helper()
	env := testenv.Get(b)
	ropt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(ropt)
	b.Cleanup(func() { rdb.Close() })
	f := newWBFixtureOn(b, rdb, openWBRepo(b, env.DatabaseURL), Keys{Prefix: env.UniquePrefix("wb-bench")})
	wb, _ := f.writeBehind("bench", WriteBehindOptions{BatchSize: wbBenchBatch, MaxPending: 1 << 40, FlushInterval: 0})
	b.Cleanup(func() { rdb.Del(context.Background(), f.stream()) })
	return f, wb
}

func wbBenchItems(n int) []domain.Analysis {
	owner := uuid.New()
	items := make([]domain.Analysis, n)
	for i := range items {
		items[i] = newWBItem(owner, fmt.Sprint("bench-", i))
	}
	return items
}

// BenchmarkWriteBehindEnqueue1000 is one bulk request: 1000 items cached
// and appended in one script.
func BenchmarkWriteBehindEnqueue1000(b *testing.B) {
	f, wb := newWBBench(b)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		items := wbBenchItems(wbBenchBatch)
		f.rdb.Del(ctx, f.stream())
		b.StartTimer()
		if err := wb.Enqueue(ctx, items, wbBenchGenerated); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(wbBenchBatch*b.N)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkWriteBehindFlush1000 is the flusher's side: read 1000 entries,
// decrypt, insert (ON CONFLICT DO NOTHING), settle and acknowledge.
func BenchmarkWriteBehindFlush1000(b *testing.B) {
	_, wb := newWBBench(b)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		if err := wb.Enqueue(ctx, wbBenchItems(wbBenchBatch), wbBenchGenerated); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if n, err := wb.Flush(ctx); err != nil || n != wbBenchBatch {
			b.Fatalf("Flush = %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(wbBenchBatch*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkRawCopyFrom1000 is the ceiling: the same rows through COPY
// straight into the table, with no queue and no conflict handling.
func BenchmarkRawCopyFrom1000(b *testing.B) {
	f, _ := newWBBench(b)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		items := wbBenchItems(wbBenchBatch)
		b.StartTimer()
		if _, err := f.repo.CopyAnalyses(ctx, items); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(wbBenchBatch*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// wbBenchBacklog is the backlog BenchmarkWriteBehindFlushBacklog drains:
// enough batches for reading ahead to matter, as in `make bench`.
const wbBenchBacklog = 10 * wbBenchBatch

// BenchmarkWriteBehindFlushBacklog drains a backlog of ten batches with one
// Flush: the next batch is read and decoded while the current one commits.
// Compare with BenchmarkRawCopyFrom10000.
func BenchmarkWriteBehindFlushBacklog(b *testing.B) {
	_, wb := newWBBench(b)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		for range wbBenchBacklog / wbBenchBatch {
			if err := wb.Enqueue(ctx, wbBenchItems(wbBenchBatch), wbBenchGenerated); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if n, err := wb.Flush(ctx); err != nil || n != wbBenchBacklog {
			b.Fatalf("Flush = %d, %v", n, err)
		}
	}
	b.ReportMetric(float64(wbBenchBacklog*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkRawCopyFrom10000 is the ceiling of BenchmarkWriteBehindFlushBacklog:
// as many rows in one COPY.
func BenchmarkRawCopyFrom10000(b *testing.B) {
	f, _ := newWBBench(b)
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		items := wbBenchItems(wbBenchBacklog)
		b.StartTimer()
		if _, err := f.repo.CopyAnalyses(ctx, items); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(wbBenchBacklog*b.N)/b.Elapsed().Seconds(), "rows/s")
}

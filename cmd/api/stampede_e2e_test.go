package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/internal/testenv"
	"github.com/analysis-cache/service/repository"
	"github.com/analysis-cache/service/service"
)

// seedStatsRows inserts n analyses of one fresh owner with generate_series
// (server-side, so a million rows take seconds) and deletes them when the
// test ends. It returns the row count of the table after seeding.
func seedStatsRows(t *testing.T, n int) int64 {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testenv.Get(t).DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	owner := uuid.New()
	if _, err := conn.Exec(ctx, `
INSERT INTO analyses (id, owner_id, url, title, status, score, tags, version, created_at, updated_at)
SELECT gen_random_uuid(), $1, 'https://example.com/' || i, 'seed ' || i,
       (ARRAY['pending','processing','completed','failed'])[1 + i % 4],
       CASE WHEN i % 3 = 0 THEN NULL ELSE (i % 100) / 100.0 END,
       ARRAY['tag' || (i % 25), 'seed'], 1, now(), now()
FROM generate_series(1, $2::int) AS i`, owner, n); err != nil {
		t.Fatalf("seed %d rows: %v", n, err)
	}
	if _, err := conn.Exec(ctx, `ANALYZE analyses`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), testenv.Get(t).DatabaseURL)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), `DELETE FROM analyses WHERE owner_id = $1`, owner); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	var total int64
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM analyses`).Scan(&total); err != nil {
		t.Fatal(err)
	}
	return total
}

// forgetStats removes the stats value and lock so the next read is cold.
func forgetStats(t *testing.T) {
	t.Helper()
	env := testenv.Get(t)
	opt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	keys := cache.Keys{Prefix: env.RedisPrefix}
	if err := rdb.Del(context.Background(), keys.Stampede(service.StatsKey), keys.Lock(service.StatsKey)).Err(); err != nil {
		t.Fatal(err)
	}
}

// stampedeCounters reads CacheStats.stampede of one process.
func stampedeCounters(t *testing.T, base string) (computations, coalesced, lockTimeouts int64) {
	t.Helper()
	resp, body := call(t, "GET", base+"/api/v1/cache/stats", "", "Authorization", "Bearer "+testAdminToken)
	expect(t, resp, body, http.StatusOK)
	var s struct {
		Stampede struct {
			Computations int64 `json:"computations"`
			Coalesced    int64 `json:"coalesced"`
			LockTimeouts int64 `json:"lock_timeouts"`
		} `json:"stampede"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("cache stats %s: %v", body, err)
	}
	return s.Stampede.Computations, s.Stampede.Coalesced, s.Stampede.LockTimeouts
}

type statsReply struct {
	status  int
	xcache  string
	pattern string
	body    string
	latency time.Duration
	done    time.Time
	err     error
}

// stampedeStats sends n concurrent GET /api/v1/analyses/stats, alternating
// between the processes, released together by one barrier.
func stampedeStats(bases []string, n int) []statsReply {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n}}
	defer client.CloseIdleConnections()
	replies := make([]statsReply, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			began := time.Now()
			resp, err := client.Get(bases[i%len(bases)] + "/api/v1/analyses/stats")
			if err != nil {
				replies[i].err = err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			replies[i] = statsReply{status: resp.StatusCode, xcache: resp.Header.Get("X-Cache"),
				pattern: resp.Header.Get("X-Cache-Pattern"), body: string(b), latency: time.Since(began), done: time.Now(), err: err}
		}()
	}
	close(start)
	wg.Wait()
	return replies
}

// Two server processes on one database of ~10k rows, a cold stats key and
// 200 concurrent requests over both: exactly one aggregation in total, every
// request answered 200 with the same body. The processes run with the
// service's default Redis timeouts: a burst on a busy machine waits for a
// pooled connection, it is not an outage (no BYPASS).
func TestStampedeTwoProcessesOneComputation(t *testing.T) {
	defaults := map[string]string{"REDIS_TIMEOUT": "", "WRITE_BEHIND_REDIS_TIMEOUT": ""}
	a := startProcess(t, defaults) // migrates the database
	total := seedStatsRows(t, 10_000)
	b := startProcess(t, defaults)
	forgetStats(t)

	replies := stampedeStats([]string{a.Base, b.Base}, 200)
	for i, r := range replies {
		if r.err != nil || r.status != http.StatusOK {
			t.Fatalf("request %d: %d %v: %s", i, r.status, r.err, r.body)
		}
		if r.xcache != "MISS" && r.xcache != "HIT" {
			t.Errorf("request %d: X-Cache %q, want MISS or HIT", i, r.xcache)
		}
		if r.pattern != "stampede-protection" {
			t.Errorf("request %d: X-Cache-Pattern %q", i, r.pattern)
		}
		if r.body != replies[0].body {
			t.Fatalf("request %d body %s differs from %s", i, r.body, replies[0].body)
		}
	}
	var stats struct {
		Total int64 `json:"total"`
	}
	if err := json.Unmarshal([]byte(replies[0].body), &stats); err != nil || stats.Total != total {
		t.Fatalf("stats %s (%v), want total %d", replies[0].body, err, total)
	}
	ca, coa, lta := stampedeCounters(t, a.Base)
	cb, cob, ltb := stampedeCounters(t, b.Base)
	if ca+cb != 1 {
		t.Fatalf("computations: %d + %d, want exactly 1 over both processes", ca, cb)
	}
	if lta+ltb != 0 {
		t.Errorf("lock timeouts: %d + %d, want 0", lta, ltb)
	}
	t.Logf("computations %d+%d, coalesced %d+%d", ca, cb, coa, cob)
}

// TestStampedeMeasure is the measurement of the stampede note, opt-in:
//
//	STAMPEDE_MEASURE_ROWS=1000000 go test -race=false -run TestStampedeMeasure -v ./cmd/api
//
// It seeds the rows, times the aggregation alone, then sends 500 concurrent
// cold requests over two processes and reports the computations and the
// waiters' latency p50/p99 against the aggregation time.
func TestStampedeMeasure(t *testing.T) {
	rows, _ := strconv.Atoi(os.Getenv("STAMPEDE_MEASURE_ROWS"))
	if rows <= 0 {
		t.Skip("set STAMPEDE_MEASURE_ROWS (e.g. 1000000) to measure")
	}
	const requests = 500
	a := startProcess(t, map[string]string{"STATS_TTL": "10m"})
	seedStart := time.Now()
	total := seedStatsRows(t, rows)
	t.Logf("seeded %d rows in %v (table: %d rows)", rows, time.Since(seedStart).Round(time.Millisecond), total)
	b := startProcess(t, map[string]string{"STATS_TTL": "10m"})

	repo, err := repository.Open(context.Background(), testenv.Get(t).DatabaseURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	var aggregations []time.Duration
	for range 5 {
		began := time.Now()
		if _, err := repo.Stats(context.Background()); err != nil {
			t.Fatal(err)
		}
		aggregations = append(aggregations, time.Since(began))
	}
	slices.Sort(aggregations)
	computation := aggregations[len(aggregations)/2]

	forgetStats(t)
	replies := stampedeStats([]string{a.Base, b.Base}, requests)
	var latencies []time.Duration
	var computed time.Time // when the first answer carrying the computation left its process
	for i, r := range replies {
		if r.err != nil || r.status != http.StatusOK {
			t.Fatalf("request %d: %d %v: %s", i, r.status, r.err, r.body)
		}
		latencies = append(latencies, r.latency)
		if r.xcache == "MISS" && (computed.IsZero() || r.done.Before(computed)) {
			computed = r.done
		}
	}
	// How long after the computation's first answer the others got theirs:
	// the cost of coalescing and of the cross-process notification,
	// independent of when the client managed to send each request.
	var after []time.Duration
	for _, r := range replies {
		after = append(after, max(0, r.done.Sub(computed)))
	}
	slices.Sort(latencies)
	slices.Sort(after)
	p50, p99 := latencies[len(latencies)/2], latencies[len(latencies)*99/100]
	ca, _, lta := stampedeCounters(t, a.Base)
	cb, _, ltb := stampedeCounters(t, b.Base)
	report := fmt.Sprintf("rows=%d aggregation(median of 5)=%v requests=%d computations=%d lock_timeouts=%d "+
		"latency p50=%v p99=%v (p99-aggregation=%v); answered after the computation's first answer: p50=%v p99=%v",
		total, computation.Round(time.Millisecond), requests, ca+cb, lta+ltb,
		p50.Round(time.Millisecond), p99.Round(time.Millisecond), (p99 - computation).Round(time.Millisecond),
		after[len(after)/2].Round(100*time.Microsecond), after[len(after)*99/100].Round(100*time.Microsecond))
	t.Log(report)
	if ca+cb != 1 {
		t.Errorf("computations = %d, want 1", ca+cb)
	}
}

package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/internal/testenv"
)

// redisGetService is an AnalysisService whose Get is exactly one Redis GET,
// so the benchmarks below compare the router against bare gin doing the
// same round trip: the difference is the cost of this package.
type redisGetService struct {
	fakeServices
	rdb cache.Client
	key string
}

func (s *redisGetService) Get(ctx context.Context, _ uuid.UUID) (cache.Result, error) {
	b, err := s.rdb.Get(ctx, s.key).Bytes()
	if err != nil {
		return cache.Result{}, err
	}
	return cache.Result{Body: b, Version: 3, Status: cache.Hit, Pattern: cache.PatternAside}, nil
}

func benchRedis(b *testing.B) (cache.Client, string) {
	env := testenv.Get(b)
	opt, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	b.Cleanup(func() { _ = rdb.Close() })
	key := cache.Keys{Prefix: env.RedisPrefix}.Entity("analysis", fixedID.String())
	if err := rdb.Set(context.Background(), key, sampleBody, 0).Err(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rdb.Del(context.Background(), key) })
	return rdb, key
}

func runGets(b *testing.B, h http.Handler) {
	path := "/api/v1/analyses/" + fixedID.String()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("GET", path, nil)
		for pb.Next() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != 200 {
				b.Errorf("status %d", w.Code)
				return
			}
		}
	})
}

// BenchmarkBareGinRedisGet is the ceiling: gin with one handler doing one
// Redis GET and writing the bytes.
func BenchmarkBareGinRedisGet(b *testing.B) {
	rdb, key := benchRedis(b)
	r := gin.New()
	r.GET("/api/v1/analyses/:analysis_id", func(c *gin.Context) {
		v, err := rdb.Get(c.Request.Context(), key).Bytes()
		if err != nil {
			c.Status(500)
			return
		}
		c.Data(200, "application/json", v)
	})
	runGets(b, r)
}

// BenchmarkRouterCachedGet is the same request through NewRouter: request
// id, access log (JSON to io.Discard), metrics, UUID parsing, ETag, X-Cache.
func BenchmarkRouterCachedGet(b *testing.B) {
	rdb, key := benchRedis(b)
	svc := &redisGetService{rdb: rdb, key: key}
	h := NewRouter(Deps{Analyses: svc, Lists: svc, Stats: statsService{&svc.fakeServices}, Ingest: svc,
		Admin: adminService{&svc.fakeServices}, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	runGets(b, h)
}

// TestMetricsUnderConcurrentRequests sends concurrent requests that create
// new metric series at the same time; -race fails if the series cache is
// not synchronised.
func TestMetricsUnderConcurrentRequests(t *testing.T) {
	f, h, _ := newTestRouter(t)
	f.getResult = cache.Result{Body: []byte(sampleBody), Version: 3, Status: cache.Hit}
	paths := []string{"/health", "/nope", "/api/v1/analyses/" + fixedID.String(), "/api/v1/analyses/x", "/ready", "/api/v1/analyses/stats"}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		for _, p := range paths {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start // release every request at once so first-time series creation overlaps
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
			}()
		}
	}
	close(start)
	wg.Wait()
	m := (req{method: "GET", path: "/metrics"}).do(h).Body.String()
	for _, want := range []string{`route="/health",status="200"} 4`, `route="unmatched",status="404"} 4`} {
		if !contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// BenchmarkBareGinNoIO and BenchmarkRouterNoIO isolate this package's cost
// per cached GET (no Redis round trip in either), to compare with the
// round trip measured above.
func BenchmarkBareGinNoIO(b *testing.B) {
	body := []byte(sampleBody)
	r := gin.New()
	r.GET("/api/v1/analyses/:analysis_id", func(c *gin.Context) { c.Data(200, "application/json", body) })
	runGets(b, r)
}

func BenchmarkRouterNoIO(b *testing.B) {
	f := &fakeServices{getResult: cache.Result{Body: []byte(sampleBody), Version: 3, Status: cache.Hit, Pattern: cache.PatternAside}}
	h := NewRouter(Deps{Analyses: f, Lists: f, Stats: statsService{f}, Ingest: f, Admin: adminService{f},
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	runGets(b, h)
}

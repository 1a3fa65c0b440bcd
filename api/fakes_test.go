package api

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
)

// fakeServices implements every service interface and records what the
// handlers passed, so tests check both the HTTP answer and the call.
type fakeServices struct {
	mu sync.Mutex

	created   *domain.Analysis
	patch     domain.AnalysisPatch
	ifMatch   *int64
	deleted   uuid.UUID
	filter    domain.ListFilter
	owner     uuid.UUID
	skip, lim int
	ingested  []domain.Analysis
	selector  cache.Selector
	calls     int

	getResult cache.Result
	err       error
	version   int64
}

var (
	fixedID    = uuid.MustParse("0b5e6a1c-3d2f-4e8a-9c7b-1a2b3c4d5e6f")
	fixedOwner = uuid.MustParse("9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f")
	fixedTime  = time.Date(2026, 11, 26, 10, 20, 30, 123456000, time.UTC)
)

func (f *fakeServices) record() { f.mu.Lock(); f.calls++; f.mu.Unlock() }

func (f *fakeServices) Create(_ context.Context, a *domain.Analysis) (*domain.Analysis, error) {
	f.record()
	f.created = a
	if f.err != nil {
		return nil, f.err
	}
	out := *a
	out.ID, out.Version, out.CreatedAt, out.UpdatedAt = fixedID, 1, fixedTime, fixedTime
	return &out, nil
}

func (f *fakeServices) Get(_ context.Context, id uuid.UUID) (cache.Result, error) {
	f.record()
	return f.getResult, f.err
}

func (f *fakeServices) Update(_ context.Context, id uuid.UUID, p domain.AnalysisPatch, ifMatch *int64) (*domain.Analysis, error) {
	f.record()
	f.patch, f.ifMatch = p, ifMatch
	if f.err != nil {
		return nil, f.err
	}
	a := sampleAnalysis()
	p.Apply(a)
	a.Version = f.version
	return a, nil
}

func (f *fakeServices) Delete(_ context.Context, id uuid.UUID, ifMatch *int64) error {
	f.record()
	f.deleted, f.ifMatch = id, ifMatch
	return f.err
}

func (f *fakeServices) List(_ context.Context, filter domain.ListFilter) (cache.Result, error) {
	f.record()
	f.filter = filter
	return f.getResult, f.err
}

func (f *fakeServices) ListByOwner(_ context.Context, owner uuid.UUID, skip, limit int) (cache.Result, error) {
	f.record()
	f.owner, f.skip, f.lim = owner, skip, limit
	return f.getResult, f.err
}

// statsService is a separate type: StatsService and AdminService both have Stats.
type statsService struct{ f *fakeServices }

func (s statsService) Stats(context.Context) (cache.Result, error) {
	s.f.record()
	return s.f.getResult, s.f.err
}

func (f *fakeServices) Ingest(_ context.Context, items []domain.Analysis) ([]uuid.UUID, error) {
	f.record()
	f.ingested = items
	if f.err != nil {
		return nil, f.err
	}
	ids := make([]uuid.UUID, len(items))
	for i, it := range items {
		ids[i] = it.ID
		if it.ID == uuid.Nil {
			ids[i] = fixedID
		}
	}
	return ids, nil
}

func (f *fakeServices) Flush(context.Context) (int, error) { f.record(); return 7, f.err }

type adminService struct{ f *fakeServices }

func (a adminService) Stats(context.Context) (cache.Stats, error) {
	a.f.record()
	return cache.Stats{Hits: 3, Misses: 1, HitRatio: 0.75, Errors: 2,
		WriteBehind: cache.WriteBehindStats{Pending: 4, Flushed: 5, Retried: 6, DeadLettered: 7},
		Stampede:    cache.StampedeStats{Computations: 8, Coalesced: 9, LockTimeouts: 10}}, a.f.err
}

func (a adminService) Invalidate(_ context.Context, s cache.Selector) (int64, error) {
	a.f.record()
	a.f.selector = s
	return 12, a.f.err
}

func sampleAnalysis() *domain.Analysis {
	return &domain.Analysis{ID: fixedID, OwnerID: fixedOwner, URL: "https://example.com/a", Title: "A",
		Status: domain.StatusPending, Tags: []string{}, Version: 3, CreatedAt: fixedTime, UpdatedAt: fixedTime}
}

const testToken = "s3cret-token"

// newTestRouter returns a router over fresh fakes, logging into logs.
func newTestRouter(t testing.TB) (*fakeServices, http.Handler, *bytes.Buffer) {
	t.Helper()
	f := &fakeServices{version: 4}
	logs := &bytes.Buffer{}
	r := NewRouter(Deps{
		Analyses: f, Lists: f, Stats: statsService{f}, Ingest: f, Admin: adminService{f},
		Ready:        func(context.Context) map[string]string { return map[string]string{"postgres": "ok", "redis": "ok"} },
		Log:          slog.New(slog.NewJSONHandler(&lockedWriter{w: logs}, nil)),
		MaxBodyBytes: 64 << 10, MaxBulkBodyBytes: 1 << 20, AdminToken: testToken,
	})
	return f, r, logs
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// req describes one request; headers are "Name: value" lines.
type req struct {
	method, path, body string
	headers            []string
}

func (r req) do(h http.Handler) *httptest.ResponseRecorder {
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	for _, line := range r.headers {
		k, v, _ := strings.Cut(line, ": ")
		if k == "Host" {
			hr.Host = v // net/http keeps Host out of Header
			continue
		}
		hr.Header.Add(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hr)
	return w
}

// jsonReq is a request with Content-Type: application/json.
func jsonReq(method, path, body string, headers ...string) req {
	return req{method: method, path: path, body: body, headers: append([]string{"Content-Type: application/json"}, headers...)}
}

type contextT = context.Context

func httptestRequest(r req) *http.Request {
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	for _, line := range r.headers {
		k, v, _ := strings.Cut(line, ": ")
		hr.Header.Add(k, v)
	}
	return hr
}

func serveRequest(h http.Handler, hr *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hr)
	return w
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

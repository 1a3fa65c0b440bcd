package api

import (
	"context"
	"log/slog"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/domain"
)

// AnalysisService is the single-analysis use cases (cache-aside reads,
// write-through writes, event-based invalidation on delete).
type AnalysisService interface {
	// Create stores a; a.ID zero means the service assigns it. Returns
	// ECONFLICT when the id is taken, EUNAVAILABLE when Postgres is down.
	Create(ctx context.Context, a *domain.Analysis) (*domain.Analysis, error)
	// Get returns the AnalysisPublic body. Result.Status is set even with
	// ErrAnalysisNotFound (a negative cache entry answers 404 HIT).
	Get(ctx context.Context, id uuid.UUID) (cache.Result, error)
	// Update applies p; ifMatch, when not nil, must equal the stored version
	// (EPRECONDITION otherwise). Returns ENOTFOUND.
	Update(ctx context.Context, id uuid.UUID, p domain.AnalysisPatch, ifMatch *int64) (*domain.Analysis, error)
	// Delete removes the analysis; ifMatch as in Update. Returns ENOTFOUND.
	Delete(ctx context.Context, id uuid.UUID, ifMatch *int64) error
}

// ListService is the list use cases: the global list (namespace
// invalidation) and one owner's list (read-through with tags).
type ListService interface {
	// List returns the AnalysesPublic body of the page f selects.
	List(ctx context.Context, f domain.ListFilter) (cache.Result, error)
	// ListByOwner returns the AnalysesPublic body of one owner's page.
	ListByOwner(ctx context.Context, owner uuid.UUID, skip, limit int) (cache.Result, error)
}

// StatsService is the stampede-protected aggregation.
type StatsService interface {
	// Stats returns the AnalysisStats body, at most STATS_TTL old.
	Stats(ctx context.Context) (cache.Result, error)
}

// IngestService is write-behind bulk ingest.
type IngestService interface {
	// Ingest queues items (a zero ID is assigned) and returns their ids in
	// item order once they are durable in Redis. Returns EQUEUEFULL or
	// EQUEUEUNAVAILABLE.
	Ingest(ctx context.Context, items []domain.Analysis) ([]uuid.UUID, error)
	// Flush writes every queued item to Postgres and returns how many it wrote.
	Flush(ctx context.Context) (int, error)
}

// AdminService is the cache administration behind the admin token.
type AdminService interface {
	// Stats returns this process's cache counters.
	Stats(ctx context.Context) (cache.Stats, error)
	// Invalidate removes what s selects inside the service's prefix and
	// returns how many entries it removed.
	Invalidate(ctx context.Context, s cache.Selector) (int64, error)
}

// Deps is everything the router needs; the lead wires every field.
type Deps struct {
	Analyses AnalysisService
	Lists    ListService
	Stats    StatsService
	Ingest   IngestService
	Admin    AdminService
	// Ready checks the dependencies for /ready: "postgres" and "redis" map
	// to "ok" or a short error.
	Ready func(ctx context.Context) map[string]string
	// Log receives the access log and internal errors (nil: slog.Default()).
	Log *slog.Logger
	// Registry is gathered by /metrics; the HTTP metrics are registered on
	// it (nil: a private registry).
	Registry *prometheus.Registry
	// MaxBodyBytes caps every body, MaxBulkBodyBytes the bulk body
	// (zero: 1 MiB and 10 MiB).
	MaxBodyBytes, MaxBulkBodyBytes int64
	// AdminToken is the bearer token of /api/v1/cache/...; empty disables
	// the admin API (503).
	AdminToken string
	// TracerProvider, when set, traces every request but the probes and the
	// scrape (see tracing); nil: no tracing middleware at all.
	TracerProvider trace.TracerProvider
	// Propagator reads the request's trace context (nil: W3C trace context
	// and baggage).
	Propagator propagation.TextMapPropagator
}

package api

// The types below are the OpenAPI component schemas of the contract. They
// exist for the document: swag reads their fields and tags, and
// docs/cmd/openapi-fastapi reshapes the result the way FastAPI writes it.
// Responses are still written by domain's hand-made encoders, so a field
// here never changes a response byte; the tests in openapi_test.go keep the
// two in line with the contract.
//
// The fields of AnalysisPublic, AnalysisCreate, AnalysisUpdate,
// AnalysisIngest and BulkIngest carry no constraint, format, default or
// nullability: the generator writes those from the field declarations in
// domain/rules.go and refuses a tag that states one.
//
// Tag conventions the generator relies on:
//   - `validate:"required"` marks a required property (every property of a
//     response schema; only the fields without a default in a request schema),
//     and, outside the schemas above, `validate:"max=N"`/`min=N` give an
//     array's maxItems/minItems (swag ignores a maxItems tag);
//   - `extensions:"x-nullable"` marks a property that may be null; the
//     generator rewrites it to anyOf [{...}, {"type": "null"}] as Pydantic v2 does;
//   - uuid.UUID and time.Time are spelled `swaggertype:"string" format:"uuid"`
//     and `format:"date-time"` because swag knows neither;
//   - a status is an AnalysisStatus, never an inline enum, so the document
//     has one AnalysisStatus component that every status refers to, as
//     Pydantic writes an Enum class.

// AnalysisStatus is the lifecycle of an analysis. Its constants are read by
// swag for the component's enum (openapi_test.go keeps them equal to
// domain.Statuses); the service itself uses domain.Status.
type AnalysisStatus string

// The values of AnalysisStatus, in the contract's order.
const (
	statusPending    AnalysisStatus = "pending"
	statusProcessing AnalysisStatus = "processing"
	statusCompleted  AnalysisStatus = "completed"
	statusFailed     AnalysisStatus = "failed"
)

// AnalysisPublic is an analysis as every read and write endpoint returns it.
type AnalysisPublic struct {
	ID        string         `json:"id" validate:"required" example:"3fa85f64-5717-4562-b3fc-2c963f66afa6"`
	OwnerID   string         `json:"owner_id" validate:"required" example:"7c9e6679-7425-40de-944b-e07fc1f90ae7"`
	URL       string         `json:"url" validate:"required" example:"https://example.com/article"`
	Title     string         `json:"title" validate:"required" example:"Caching strategies for read-heavy APIs"`
	Status    AnalysisStatus `json:"status" validate:"required"`
	Summary   *string        `json:"summary" validate:"required" example:"Redis in front of Postgres: cache-aside reads, write-behind bulk ingest."`
	Score     *float64       `json:"score" validate:"required" example:"0.87"`
	Tags      []string       `json:"tags" validate:"required" example:"caching,redis"`
	Notes     *string        `json:"notes" validate:"required" example:"Reviewed by the platform team."`
	Version   int64          `json:"version" validate:"required" example:"1"`
	CreatedAt string         `json:"created_at" validate:"required" example:"2025-01-15T09:30:00Z"`
	UpdatedAt string         `json:"updated_at" validate:"required" example:"2025-01-15T09:30:00Z"`
} // @name AnalysisPublic

// AnalysesPublic is one page of analyses; Count is the number of all
// matching rows, not the length of Data.
type AnalysesPublic struct {
	Data  []AnalysisPublic `json:"data" validate:"required"`
	Count int64            `json:"count" validate:"required"`
} // @name AnalysesPublic

// AnalysisCreate is the body of POST /api/v1/analyses.
type AnalysisCreate struct {
	OwnerID string         `json:"owner_id" validate:"required" example:"7c9e6679-7425-40de-944b-e07fc1f90ae7"`
	URL     string         `json:"url" validate:"required" example:"https://example.com/article"`
	Title   string         `json:"title" validate:"required" example:"Caching strategies for read-heavy APIs"`
	Status  AnalysisStatus `json:"status"`
	Summary *string        `json:"summary" example:"Redis in front of Postgres: cache-aside reads, write-behind bulk ingest."`
	Score   *float64       `json:"score" example:"0.87"`
	Tags    []string       `json:"tags" example:"caching,redis"`
	Notes   *string        `json:"notes" example:"Reviewed by the platform team."`
} // @name AnalysisCreate

// AnalysisUpdate is the body of PATCH /api/v1/analyses/{analysis_id}: only
// the fields sent change; null clears summary, score and notes.
type AnalysisUpdate struct {
	URL     string         `json:"url" example:"https://example.com/article"`
	Title   string         `json:"title" example:"Caching strategies for read-heavy APIs"`
	Status  AnalysisStatus `json:"status"`
	Summary *string        `json:"summary" example:"Redis in front of Postgres: cache-aside reads, write-behind bulk ingest."`
	Score   *float64       `json:"score" example:"0.87"`
	Tags    []string       `json:"tags" example:"caching,redis"`
	Notes   *string        `json:"notes" example:"Reviewed by the platform team."`
} // @name AnalysisUpdate

// AnalysisIngest is one item of a bulk ingest: AnalysisCreate plus an
// optional client-given id that makes the item idempotent.
type AnalysisIngest struct {
	OwnerID string         `json:"owner_id" validate:"required" example:"7c9e6679-7425-40de-944b-e07fc1f90ae7"`
	URL     string         `json:"url" validate:"required" example:"https://example.com/article"`
	Title   string         `json:"title" validate:"required" example:"Caching strategies for read-heavy APIs"`
	Status  AnalysisStatus `json:"status"`
	Summary *string        `json:"summary" example:"Redis in front of Postgres: cache-aside reads, write-behind bulk ingest."`
	Score   *float64       `json:"score" example:"0.87"`
	Tags    []string       `json:"tags" example:"caching,redis"`
	Notes   *string        `json:"notes" example:"Reviewed by the platform team."`
	ID      *string        `json:"id"`
} // @name AnalysisIngest

// BulkIngest is the body of POST /api/v1/analyses/bulk.
type BulkIngest struct {
	Items []AnalysisIngest `json:"items" validate:"required"`
} // @name BulkIngest

// BulkAccepted answers a bulk ingest: the ids in the order of the items.
type BulkAccepted struct {
	Accepted int64    `json:"accepted" validate:"required"`
	IDs      []string `json:"ids" validate:"required" format:"uuid"`
} // @name BulkAccepted

// StatusCounts is AnalysisStats.by_status: one count per status, zero included.
type StatusCounts struct {
	Pending    int64 `json:"pending" validate:"required"`
	Processing int64 `json:"processing" validate:"required"`
	Completed  int64 `json:"completed" validate:"required"`
	Failed     int64 `json:"failed" validate:"required"`
} // @name StatusCounts

// TagCount is one entry of AnalysisStats.top_tags.
type TagCount struct {
	Tag   string `json:"tag" validate:"required"`
	Count int64  `json:"count" validate:"required"`
} // @name TagCount

// AnalysisStats is the aggregation over all analyses; it may lag writes by
// at most STATS_TTL.
type AnalysisStats struct {
	Total      int64        `json:"total" validate:"required"`
	ByStatus   StatusCounts `json:"by_status" validate:"required"`
	AvgScore   *float64     `json:"avg_score" validate:"required" extensions:"x-nullable"`
	TopTags    []TagCount   `json:"top_tags" validate:"required,max=10"`
	ComputedAt string       `json:"computed_at" validate:"required" format:"date-time"`
} // @name AnalysisStats

// WriteBehindStats is CacheStats.write_behind.
type WriteBehindStats struct {
	Pending      int64 `json:"pending" validate:"required"`
	Flushed      int64 `json:"flushed" validate:"required"`
	Retried      int64 `json:"retried" validate:"required"`
	DeadLettered int64 `json:"dead_lettered" validate:"required"`
} // @name WriteBehindStats

// StampedeStats is CacheStats.stampede.
type StampedeStats struct {
	Computations int64 `json:"computations" validate:"required"`
	Coalesced    int64 `json:"coalesced" validate:"required"`
	LockTimeouts int64 `json:"lock_timeouts" validate:"required"`
} // @name StampedeStats

// CacheStats is this process's cache counters since start.
type CacheStats struct {
	Hits        int64            `json:"hits" validate:"required"`
	Misses      int64            `json:"misses" validate:"required"`
	HitRatio    float64          `json:"hit_ratio" validate:"required"`
	Errors      int64            `json:"errors" validate:"required"`
	WriteBehind WriteBehindStats `json:"write_behind" validate:"required"`
	Stampede    StampedeStats    `json:"stampede" validate:"required"`
} // @name CacheStats

// CacheInvalidate is the body of POST /api/v1/cache/invalidate: exactly
// one of the four selectors must be given.
type CacheInvalidate struct {
	Keys      []string `json:"keys" extensions:"x-nullable"`
	Pattern   *string  `json:"pattern" extensions:"x-nullable"`
	Tags      []string `json:"tags" extensions:"x-nullable"`
	Namespace *string  `json:"namespace" extensions:"x-nullable"`
} // @name CacheInvalidate

// CacheInvalidated answers an invalidation with the number of entries removed.
type CacheInvalidated struct {
	Invalidated int64 `json:"invalidated" validate:"required"`
} // @name CacheInvalidated

// WriteBehindFlushed answers a write-behind flush with the number of entries now in Postgres.
type WriteBehindFlushed struct {
	Flushed int64 `json:"flushed" validate:"required"`
} // @name WriteBehindFlushed

// HealthStatus is the liveness answer, always {"status":"ok"}.
type HealthStatus struct {
	Status string `json:"status" validate:"required"`
} // @name HealthStatus

// ReadyChecks is ReadyStatus.checks: "ok" or a short error per dependency.
type ReadyChecks struct {
	Postgres string `json:"postgres" validate:"required"`
	Redis    string `json:"redis" validate:"required"`
} // @name ReadyChecks

// ReadyStatus is the readiness answer; Status is "ok" or "unavailable".
type ReadyStatus struct {
	Status string      `json:"status" validate:"required" enums:"ok,unavailable"`
	Checks ReadyChecks `json:"checks" validate:"required"`
} // @name ReadyStatus

// HTTPError is every error the application raises: {"detail": "<message>"}.
type HTTPError struct {
	Detail string `json:"detail" validate:"required"`
} // @name HTTPError

// ValidationError is one entry of a 422's detail, as FastAPI defines it.
// The generator replaces its schema with FastAPI's verbatim (loc items are
// strings or integers, which swag cannot express).
type ValidationError struct {
	Loc   []string       `json:"loc" validate:"required"`
	Msg   string         `json:"msg" validate:"required"`
	Type  string         `json:"type" validate:"required"`
	Input any            `json:"input"`
	Ctx   map[string]any `json:"ctx"`
} // @name ValidationError

// HTTPValidationError is the body of every 422.
type HTTPValidationError struct {
	Detail []ValidationError `json:"detail"`
} // @name HTTPValidationError

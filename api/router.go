// Package api is the HTTP layer: gin handlers that answer byte for byte
// what the FastAPI original answers. It guarantees:
//
//   - Routing like Starlette: routes are tried in declaration order, each
//     has one method (no implicit HEAD); an unknown path is 404, a known path
//     with another method is 405 with the Allow of the first route whose path
//     matches, and a path that matches only with or without trailing slashes
//     is a 307 to the absolute URL (fallback.go).
//   - Request bodies are read, limited (413), decoded and validated as
//     FastAPI with Pydantic v2 (lax mode) does, with the same error types,
//     messages, locations, inputs, ctx and order (body.go, jsonparse.go,
//     validation.go, models.go, params.go).
//   - One table maps domain error codes to statuses (errors.go); only
//     internal errors are logged, and they answer a plain 500.
//   - Cached reads carry X-Cache and X-Cache-Pattern; single reads and
//     PATCH carry ETag, with If-None-Match (304) and If-Match (412).
//   - Admin routes check the bearer token in constant time, before body
//     validation and after body decoding, as FastAPI's dependency order does.
//   - Every request gets an X-Request-ID, an access-log line and the
//     http_requests_total / http_request_duration_seconds metrics, without
//     per-request allocations beyond what gin needs (middleware.go).
//   - With a TracerProvider, every request but the probes and the scrape
//     gets a server span named "{method} {route}", continuing the trace of
//     the request's traceparent and answering with a traceparent of its own
//     span (middleware.go); without one, no tracing code runs.
package api

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Default body limits, as config documents them.
const (
	defaultMaxBodyBytes     = 1 << 20
	defaultMaxBulkBodyBytes = 10 << 20
)

// handlers holds what every handler needs.
type handlers struct {
	d       Deps
	log     *slog.Logger
	metrics *httpMetrics
	ids     *requestIDs
}

// route is one FastAPI route: a single method on a path pattern.
type route struct {
	method, path string
	handler      gin.HandlerFunc
}

// NewRouter returns the gin engine serving the contract: the API routes in
// FastAPI's declaration order, the docs routes, /health, /ready and
// /metrics, with the Starlette fallback for everything else.
func NewRouter(d Deps) *gin.Engine {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.MaxBodyBytes <= 0 {
		d.MaxBodyBytes = defaultMaxBodyBytes
	}
	if d.MaxBulkBodyBytes <= 0 {
		d.MaxBulkBodyBytes = defaultMaxBulkBodyBytes
	}
	h := &handlers{d: d, log: d.Log, metrics: newHTTPMetrics(d.Registry), ids: newRequestIDs()}

	r := gin.New()
	// Starlette decides redirects and 405s itself (fallback.go); gin's own
	// versions answer differently (301, text bodies).
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = false
	if d.TracerProvider != nil {
		// Before observe, so the access log line is written inside the span.
		r.Use(tracing(d.TracerProvider, d.Propagator)...)
	}
	r.Use(h.observe)

	routes := h.routes()
	fb := &fallback{}
	for _, rt := range routes {
		handler := rt.handler
		if strings.Contains(rt.path, "/:") {
			handler = fb.nonEmptyParams(handler)
		}
		r.Handle(rt.method, rt.path, handler)
	}
	registerDocs(r)
	fb.build(routes, r.Routes())
	r.NoRoute(fb.handle)
	return r
}

// routes lists the routes in FastAPI's declaration order, which decides
// both matching (stats before {analysis_id}) and the 405 Allow header.
func (h *handlers) routes() []route {
	metrics := promhttp.HandlerFor(h.d.Registry, promhttp.HandlerOpts{})
	return []route{
		{http.MethodPost, "/api/v1/analyses", h.createAnalysis},
		{http.MethodGet, "/api/v1/analyses", h.listAnalyses},
		{http.MethodPost, "/api/v1/analyses/bulk", h.ingestAnalyses},
		{http.MethodGet, "/api/v1/analyses/stats", h.readAnalysisStats},
		{http.MethodGet, "/api/v1/analyses/:analysis_id", h.readAnalysis},
		{http.MethodPatch, "/api/v1/analyses/:analysis_id", h.updateAnalysis},
		{http.MethodDelete, "/api/v1/analyses/:analysis_id", h.deleteAnalysis},
		{http.MethodGet, "/api/v1/users/:owner_id/analyses", h.listUserAnalyses},
		{http.MethodGet, "/api/v1/cache/stats", h.readCacheStats},
		{http.MethodPost, "/api/v1/cache/invalidate", h.invalidateCache},
		{http.MethodPost, "/api/v1/cache/write-behind/flush", h.flushWriteBehind},
		{http.MethodGet, "/health", h.health},
		{http.MethodGet, "/ready", h.ready},
		{http.MethodGet, "/metrics", gin.WrapH(metrics)},
	}
}

package api

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// requestIDHeader is X-Request-ID in canonical form, so reading and writing
// it does not re-canonicalise (and allocate) on every request.
const requestIDHeader = "X-Request-Id"

// unmatchedRoute labels requests no route matched (404, 405, 307), so the
// route label stays bounded whatever paths clients send.
const unmatchedRoute = "unmatched"

// observe is the one middleware: it gives the request an id, recovers a
// panic into Starlette's 500, and records the access log line and the HTTP
// metrics. It is a single function so a cached GET pays for one deferred
// call, not a chain.
func (h *handlers) observe(c *gin.Context) {
	start := time.Now()
	id := c.Request.Header[requestIDHeader]
	var rid string
	if len(id) > 0 && validRequestID(id[0]) {
		rid = id[0]
		c.Writer.Header()[requestIDHeader] = id[:1]
	} else {
		rid = h.ids.next()
		c.Writer.Header()[requestIDHeader] = []string{rid}
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.log.LogAttrs(c.Request.Context(), slog.LevelError, "panic",
				slog.String("request_id", rid), slog.Any("panic", p))
			if !c.Writer.Written() {
				writeInternal(c)
			}
		}
		route := c.FullPath()
		if route == "" {
			route = unmatchedRoute
		}
		status := c.Writer.Status()
		elapsed := time.Since(start)
		h.metrics.observe(c.Request.Method, route, status, elapsed)
		// Checked first: building the attributes costs an allocation per
		// request even when LOG_LEVEL drops the line.
		level := accessLogLevel(route)
		if h.log.Enabled(c.Request.Context(), level) {
			h.log.LogAttrs(c.Request.Context(), level, "request",
				slog.String("request_id", rid), slog.String("method", c.Request.Method),
				slog.String("route", route), slog.Int("status", status), slog.Duration("duration", elapsed))
		}
	}()
	c.Next()
}

// accessLogLevel is the level of a request's access log line: debug for
// the probes and the scrape (/health, /ready, /metrics), which a load
// balancer and Prometheus call every few seconds, info for the rest.
func accessLogLevel(route string) slog.Level {
	switch route {
	case "/health", "/ready", "/metrics":
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// validRequestID accepts a client id of 1..128 visible ASCII characters;
// anything else is replaced, so the header cannot inject into logs.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// requestIDs generates ids unique across restarts and processes: a random
// per-process prefix and a counter, cheaper than a random UUID per request.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return &requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

func (g *requestIDs) next() string {
	var buf [40]byte
	b := append(buf[:0], g.prefix...)
	b = strconv.AppendUint(b, g.n.Add(1), 16)
	return string(b)
}

// httpMetrics holds http_requests_total{method,route,status} and
// http_request_duration_seconds{method,route}. The children of each label
// set are cached in a map after the first request, so the hot path is a
// read-locked map lookup with no label hashing or string building.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	mu     sync.RWMutex // guards series
	series map[seriesKey]seriesObs
}

type seriesKey struct {
	method, route string
	status        int
}

type seriesObs struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "http_request_duration_seconds", Help: "HTTP request duration by method and route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"method", "route"}),
		series: map[seriesKey]seriesObs{},
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

func (m *httpMetrics) observe(method, route string, status int, d time.Duration) {
	method = metricMethod(method)
	k := seriesKey{method, route, status}
	m.mu.RLock()
	s, ok := m.series[k]
	m.mu.RUnlock()
	if !ok {
		s = seriesObs{
			requests: m.requests.WithLabelValues(method, route, strconv.Itoa(status)),
			duration: m.duration.WithLabelValues(method, route),
		}
		m.mu.Lock()
		m.series[k] = s
		m.mu.Unlock()
	}
	s.requests.Inc()
	s.duration.Observe(d.Seconds())
}

// metricMethod bounds the method label: custom methods become OTHER.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete, http.MethodPut,
		http.MethodHead, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// tracing is the tracing middleware: otelgin's server span, named
// "{method} {route}" (just "{method}" when no route matched), child of the
// request's traceparent when it has one, then the span's own traceparent
// on the response, so a client can find the trace of any answer. The
// probes and the scrape are not traced: a load balancer and Prometheus
// would otherwise make most of the traces.
func tracing(tp trace.TracerProvider, prop propagation.TextMapPropagator) []gin.HandlerFunc {
	if prop == nil {
		prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	span := otelgin.Middleware("",
		otelgin.WithTracerProvider(tp),
		otelgin.WithPropagators(prop),
		otelgin.WithMeterProvider(noop.NewMeterProvider()), // Prometheus has the HTTP metrics
		otelgin.WithGinFilter(func(c *gin.Context) bool { return accessLogLevel(c.FullPath()) != slog.LevelDebug }),
		otelgin.WithSpanNameFormatter(func(c *gin.Context) string {
			method := metricMethod(c.Request.Method)
			if method == "OTHER" {
				method = "HTTP" // the semantic conventions' name for an unknown method
			}
			if route := c.FullPath(); route != "" {
				return method + " " + route
			}
			return method
		}),
	)
	// Only traceparent and tracestate go back: baggage is the caller's.
	var respond propagation.TraceContext
	answer := func(c *gin.Context) {
		if sc := trace.SpanContextFromContext(c.Request.Context()); sc.IsValid() {
			respond.Inject(c.Request.Context(), propagation.HeaderCarrier(c.Writer.Header()))
		}
		c.Next()
	}
	return []gin.HandlerFunc{span, answer}
}

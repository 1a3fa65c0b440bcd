package api

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// The probes and the scrape log their access line at debug, every other
// route at info: at the default LOG_LEVEL=info a load balancer polling
// /health does not flood the log.
func TestAccessLogLevels(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var logs bytes.Buffer
		f := &fakeServices{version: 4}
		h := NewRouter(Deps{
			Analyses: f, Lists: f, Stats: statsService{f}, Ingest: f, Admin: adminService{f},
			Ready: func(context.Context) map[string]string { return map[string]string{"postgres": "ok", "redis": "ok"} },
			Log:   slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs}, &slog.HandlerOptions{Level: level})),
		})
		for _, path := range []string{"/health", "/ready", "/metrics", "/nope", "/docs"} {
			req{method: "GET", path: path}.do(h)
		}
		for _, probe := range []string{"/health", "/ready", "/metrics"} {
			line := `"level":"DEBUG","msg":"request","request_id":`
			has := strings.Contains(logs.String(), `"route":"`+probe+`"`)
			if level == slog.LevelInfo && has {
				t.Errorf("%s logged at info: %s", probe, logs.String())
			}
			if level == slog.LevelDebug && (!has || !strings.Contains(logs.String(), line)) {
				t.Errorf("%s not logged at debug: %s", probe, logs.String())
			}
		}
		for _, route := range []string{`"level":"INFO","msg":"request"`, `"route":"unmatched"`, `"route":"/docs"`} {
			if !strings.Contains(logs.String(), route) {
				t.Errorf("level %v: no info access line with %s: %s", level, route, logs.String())
			}
		}
	}
}

// A request to the disabled admin API logs how to enable it.
func TestAdminDisabledLogSaysSetAdminToken(t *testing.T) {
	var logs bytes.Buffer
	f := &fakeServices{}
	h := NewRouter(Deps{Analyses: f, Lists: f, Stats: statsService{f}, Ingest: f, Admin: adminService{f},
		Log: slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs}, nil))})
	if w := (req{method: "GET", path: "/api/v1/cache/stats"}).do(h); w.Code != 503 {
		t.Fatalf("status %d", w.Code)
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"admin API is disabled: set ADMIN_TOKEN to enable it"`) {
		t.Fatalf("log: %s", logs.String())
	}
}

// With a tracer provider, a request gets a server span named
// "{method} {route}" ("{method}" when no route matched) and answers with
// its traceparent; the probes and the scrape get neither.
func TestTracingSpansButNotProbes(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	f := &fakeServices{}
	h := NewRouter(Deps{Analyses: f, Lists: f, Stats: statsService{f}, Ingest: f, Admin: adminService{f},
		Ready: func(context.Context) map[string]string { return map[string]string{"postgres": "ok", "redis": "ok"} },
		Log:   slog.New(slog.DiscardHandler), TracerProvider: tp})
	parent := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	for _, path := range []string{"/health", "/ready", "/metrics", "/nope", "/api/v1/analyses/stats"} {
		w := req{method: "GET", path: path, headers: []string{"Traceparent: " + parent}}.do(h)
		got := w.Header().Get("Traceparent")
		probe := path == "/health" || path == "/ready" || path == "/metrics"
		if probe != (got == "") || (!probe && !strings.HasPrefix(got, "00-0af7651916cd43dd8448eb211c80319c-")) {
			t.Errorf("GET %s answered traceparent %q", path, got)
		}
	}
	var names []string
	for _, s := range exp.GetSpans() {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "GET,GET /api/v1/analyses/stats" {
		t.Fatalf("spans %s", got)
	}
}

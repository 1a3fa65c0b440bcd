package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/analysis-cache/service/cache"
	"github.com/analysis-cache/service/internal/testenv"
)

// otelVariables are every variable that can switch tracing on; the tests
// clear them so the machine's environment cannot.
var otelVariables = []string{
	"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
	"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
	"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
}

func clearOTel(t *testing.T) {
	for _, v := range otelVariables {
		t.Setenv(v, "")
	}
}

// traceparent returns a sampled W3C traceparent with a random trace id.
func traceparent() (header string, traceID trace.TraceID, parent trace.SpanID) {
	u1, u2 := uuid.New(), uuid.New()
	copy(traceID[:], u1[:])
	copy(parent[:], u2[:8])
	return "00-" + traceID.String() + "-" + parent.String() + "-01", traceID, parent
}

// logRecords parses the JSON log lines.
func logRecords(s string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(s, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			out = append(out, rec)
		}
	}
	return out
}

func startedLine(t *testing.T, logs string) map[string]any {
	t.Helper()
	for _, rec := range logRecords(logs) {
		if rec["msg"] == "started" {
			return rec
		}
	}
	t.Fatalf("no start-up line:\n%s", logs)
	return nil
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value.String()
		}
	}
	return ""
}

// A GET that misses, sent with a traceparent, is one trace under the
// caller's trace id: the server span "GET /api/v1/analyses/:analysis_id"
// (child of the caller's span), Redis and Postgres client spans under it
// with the current semantic conventions and without the key, the bound id
// or the cached value; the response's traceparent names that trace and the
// server span; the access log line carries trace_id and span_id. The
// write-behind flush and the stampede-protected computation have spans of
// their own with their Postgres statements under them.
func TestTracingOneTracePerRequest(t *testing.T) {
	clearOTel(t)
	env := testenv.Get(t)
	prefix := env.UniquePrefix("otel")
	exp := tracetest.NewInMemoryExporter()
	m := NewMain(testConfig(t, map[string]string{"LOG_LEVEL": "info", "CACHE_PREFIX": prefix}))
	m.SpanExporter = keepOnShutdown{exp}
	var logs syncBuffer
	m.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	base, stop := runUntilStopped(t, m)

	owner := uuid.NewString()
	a := createAnalysis(t, base, owner, "traced-title-5521")
	opts, err := redis.ParseURL(env.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	key := cache.Keys{Prefix: prefix}.Entity("analysis", a.ID)
	if n, err := rdb.Del(context.Background(), key).Result(); err != nil || n != 1 {
		t.Fatalf("DEL %s: %d, %v", key, n, err)
	}

	tp, traceID, parent := traceparent()
	resp, body := call(t, "GET", base+"/api/v1/analyses/"+a.ID, "", "traceparent", tp)
	expect(t, resp, body, http.StatusOK)
	if got := resp.Header.Get("X-Cache"); got != "MISS" {
		t.Fatalf("X-Cache %q, want MISS", got)
	}
	answer := resp.Header.Get("Traceparent")

	// The flush batch and the computation, each under a request of its own.
	resp, body = call(t, "POST", base+"/api/v1/analyses/bulk",
		`{"items":[{"owner_id":"`+owner+`","url":"https://example.com/b","title":"bulk-title-5521"}]}`)
	expect(t, resp, body, http.StatusAccepted)
	flushTP, _, _ := traceparent()
	resp, body = call(t, "POST", base+"/api/v1/cache/write-behind/flush", "",
		"Authorization", "Bearer "+testAdminToken, "traceparent", flushTP)
	expect(t, resp, body, http.StatusOK)
	statsTP, statsTrace, _ := traceparent()
	resp, body = call(t, "GET", base+"/api/v1/analyses/stats", "", "traceparent", statsTP)
	expect(t, resp, body, http.StatusOK)
	stop()

	spans := exp.GetSpans().Snapshots()
	var server sdktrace.ReadOnlySpan
	var redisSpans, pgSpans []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanContext().TraceID() != traceID {
			continue
		}
		switch {
		case s.SpanKind() == trace.SpanKindServer:
			server = s
		case attr(s, "db.system.name") == "redis":
			redisSpans = append(redisSpans, s)
		case attr(s, "db.system.name") == "postgresql":
			pgSpans = append(pgSpans, s)
		}
		for _, kv := range s.Attributes() {
			if v := kv.Value.String(); strings.Contains(v, "traced-title-5521") || strings.Contains(v, "secret note") {
				t.Errorf("span %q attribute %s holds the cached value: %s", s.Name(), kv.Key, v)
			}
		}
	}
	if server == nil {
		t.Fatalf("no server span in trace %s; spans: %v", traceID, spanNames(spans))
	}
	if server.Name() != "GET /api/v1/analyses/:analysis_id" || server.Parent().SpanID() != parent || !server.Parent().IsRemote() {
		t.Errorf("server span %q, parent %v (remote %v), want child of %v", server.Name(), server.Parent().SpanID(), server.Parent().IsRemote(), parent)
	}
	if want := "00-" + traceID.String() + "-" + server.SpanContext().SpanID().String() + "-01"; answer != want {
		t.Errorf("response traceparent %q, want %q", answer, want)
	}
	if len(redisSpans) == 0 || len(pgSpans) == 0 {
		t.Fatalf("trace %s: %d Redis and %d Postgres spans, want both: %v", traceID, len(redisSpans), len(pgSpans), spanNames(spans))
	}
	for _, s := range append(append([]sdktrace.ReadOnlySpan{}, redisSpans...), pgSpans...) {
		if attr(s, "db.operation.name") == "" && s.Name() != "connect" { // a dial runs no operation
			t.Errorf("span %q has no db.operation.name: %v", s.Name(), s.Attributes())
		}
		for _, kv := range s.Attributes() {
			if v := kv.Value.String(); strings.Contains(v, a.ID) || strings.Contains(v, prefix) {
				t.Errorf("span %q attribute %s holds the key or the bound id: %s", s.Name(), kv.Key, v)
			}
		}
		if strings.Contains(s.Name(), a.ID) || strings.Contains(s.Name(), prefix) {
			t.Errorf("span name %q holds the key", s.Name())
		}
	}

	var accessLine map[string]any
	for _, rec := range logRecords(logs.String()) {
		if rec["msg"] == "request" && rec["route"] == "/api/v1/analyses/:analysis_id" {
			accessLine = rec
		}
	}
	if accessLine["trace_id"] != traceID.String() || accessLine["span_id"] != server.SpanContext().SpanID().String() {
		t.Errorf("access log line %v, want trace_id %s span_id %s", accessLine, traceID, server.SpanContext().SpanID())
	}
	if started := startedLine(t, logs.String()); started["tracing"] != true {
		t.Errorf("start-up line says tracing %v", started["tracing"])
	}

	// A flush span with a Postgres statement under it (the flusher may have
	// taken the entry before the admin flush did: either span will do).
	// The computation: under the stats request's server span, with the
	// aggregation's statement under it.
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	var flushed, settled, computed bool
	for _, s := range spans {
		p, ok := byID[s.Parent().SpanID()]
		if ok && p.Name() == "write-behind flush" && attr(s, "db.system.name") == "redis" {
			settled = true // the settle script runs under the batch's span
		}
		if !ok || attr(s, "db.system.name") != "postgresql" {
			continue
		}
		if p.Name() == "write-behind flush" && attr(p, "write_behind.batch.entries") == "1" {
			flushed = true
		}
		if p.Name() == "stampede compute" && p.SpanContext().TraceID() == statsTrace {
			if srv, ok := byID[p.Parent().SpanID()]; ok && srv.Name() == "GET /api/v1/analyses/stats" {
				computed = true
			}
		}
	}
	if !flushed || !settled || !computed {
		t.Errorf("flush span with a Postgres child %v and a Redis child %v, stampede compute span under the stats request with a Postgres child %v: %v",
			flushed, settled, computed, spanNames(spans))
	}
}

// keepOnShutdown keeps the in-memory exporter's spans when the server
// shuts the exporter down (its own Shutdown forgets them).
type keepOnShutdown struct{ *tracetest.InMemoryExporter }

func (keepOnShutdown) Shutdown(context.Context) error { return nil }

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	out := make([]string, len(spans))
	for i, s := range spans {
		p := ""
		if s.Parent().IsValid() {
			p = " <- " + s.Parent().SpanID().String()
		}
		out[i] = fmt.Sprintf("%s [%s %s%s]", s.Name(), s.SpanContext().TraceID(), s.SpanContext().SpanID(), p)
	}
	return out
}

// Without any OTEL_* variable tracing is off: the start-up line says so,
// a request's traceparent is neither continued nor answered, and log lines
// carry no trace_id.
func TestTracingOffWithoutVariables(t *testing.T) {
	clearOTel(t)
	m := NewMain(testConfig(t, map[string]string{"LOG_LEVEL": "info"}))
	var logs syncBuffer
	m.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	base, stop := runUntilStopped(t, m)
	tp, _, _ := traceparent()
	resp, body := call(t, "GET", base+"/api/v1/analyses/"+uuid.NewString(), "", "traceparent", tp)
	expect(t, resp, body, http.StatusNotFound)
	stop()
	if got := resp.Header.Get("Traceparent"); got != "" {
		t.Errorf("traceparent %q answered with tracing off", got)
	}
	if started := startedLine(t, logs.String()); started["tracing"] != false {
		t.Errorf("start-up line says tracing %v", started["tracing"])
	}
	if strings.Contains(logs.String(), "trace_id") {
		t.Errorf("trace_id logged with tracing off:\n%s", logs.String())
	}
}

// OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME alone switch tracing
// on: the spans reach an OTLP/HTTP receiver as protobuf, under that
// service name, the server span in the caller's trace.
func TestTracingExportsOverOTLPHTTP(t *testing.T) {
	clearOTel(t)
	var (
		mu       sync.Mutex
		received []*collectortrace.ExportTraceServiceRequest
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		req := &collectortrace.ExportTraceServiceRequest{}
		if err != nil || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(b, req) != nil {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		received = append(received, req)
		mu.Unlock()
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	defer receiver.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.URL)
	t.Setenv("OTEL_SERVICE_NAME", "analysis-api-test")

	m := NewMain(testConfig(t, nil))
	m.Log = slog.New(slog.DiscardHandler)
	base, stop := runUntilStopped(t, m)
	tp, traceID, _ := traceparent()
	resp, body := call(t, "GET", base+"/api/v1/analyses/"+uuid.NewString(), "", "traceparent", tp)
	expect(t, resp, body, http.StatusNotFound)
	stop() // flushes the batch

	mu.Lock()
	defer mu.Unlock()
	found := false
	for _, req := range received {
		for _, rs := range req.ResourceSpans {
			service := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.Key == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					if trace.TraceID(s.TraceId) == traceID && s.Name == "GET /api/v1/analyses/:analysis_id" {
						found = true
						if service != "analysis-api-test" {
							t.Errorf("service.name %q", service)
						}
					}
				}
			}
		}
	}
	if !found {
		t.Fatalf("no server span of trace %s among %d exports", traceID, len(received))
	}
}

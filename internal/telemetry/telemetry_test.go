package telemetry

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// Tracing is on only when an exporter is configured, and the switches
// that turn it off win.
func TestConfigured(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_SERVICE_NAME": "api", "OTEL_TRACES_SAMPLER": "always_on"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, false},
	} {
		if got := Configured(env(tc.vars)); got != tc.want {
			t.Errorf("Configured(%v) = %v, want %v", tc.vars, got, tc.want)
		}
	}
}

// Off: no SDK, nothing to attach.
func TestStartOffWithoutVariables(t *testing.T) {
	for _, v := range []string{"OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		t.Setenv(v, "")
	}
	tr, err := Start(context.Background(), Options{ServiceName: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Enabled() || tr.HTTP() != nil || tr.Postgres() != nil || tr.Tracer("x") != nil || tr.InstrumentRedis(nil) != nil {
		t.Fatal("tracing attaches something while off")
	}
	if _, span := tr.Provider.Tracer("x").Start(context.Background(), "s"); span.IsRecording() {
		t.Fatal("the off provider records")
	}
}

// An exporter or protocol the service cannot honour is refused, naming the variable.
func TestStartRefusesUnsupported(t *testing.T) {
	for _, tc := range []struct{ name, value, variable string }{
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "thrift", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
		{"OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
			t.Setenv(tc.name, tc.value)
			_, err := Start(context.Background(), Options{})
			if err == nil || !strings.HasPrefix(err.Error(), tc.variable+": ") {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// A client span without a parent (a background poll) is not exported; one
// under a server span is, and so are root spans of other kinds.
func TestOrphanClientSpansDropped(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := Start(context.Background(), Options{Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	tracer := tr.Provider.Tracer("test")
	_, orphan := tracer.Start(context.Background(), "orphan", trace.WithSpanKind(trace.SpanKindClient))
	orphan.End()
	ctx, server := tracer.Start(context.Background(), "server", trace.WithSpanKind(trace.SpanKindServer))
	_, child := tracer.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindClient))
	child.End()
	server.End()
	_, internal := tracer.Start(context.Background(), "flush")
	internal.End()
	if err := tr.sdk.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range exp.GetSpans() {
		names = append(names, s.Name)
	}
	if got := strings.Join(names, ","); got != "child,server,flush" {
		t.Fatalf("exported %s, want child,server,flush", got)
	}
}

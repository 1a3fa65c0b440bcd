// Package telemetry sets up OpenTelemetry tracing from the standard OTEL_*
// variables. It guarantees:
//
//   - Tracing is off unless an exporter is configured (Configured): then
//     Provider is a no-op, Postgres and InstrumentRedis attach nothing, and
//     the request path pays nothing for tracing.
//   - When on, spans go over OTLP, HTTP/protobuf by default or gRPC per
//     OTEL_EXPORTER_OTLP_TRACES_PROTOCOL / OTEL_EXPORTER_OTLP_PROTOCOL; the
//     endpoint, headers, timeout and compression, the sampler
//     (OTEL_TRACES_SAMPLER, default parentbased_always_on), the resource
//     (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) and batching (OTEL_BSP_*)
//     are read by the SDK as the specification says.
//   - Propagation is W3C trace context plus baggage.
//   - Client spans without a parent (the background loops' Redis polls,
//     which would otherwise make a root trace every few milliseconds) are
//     not exported; client spans under a request, a flush batch or a
//     computation are.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Tracing is the service's tracer provider and propagator.
type Tracing struct {
	// Provider creates the tracers: the SDK's when tracing is on, a no-op otherwise.
	Provider trace.TracerProvider
	// Propagator reads and writes traceparent, tracestate and baggage.
	Propagator propagation.TextMapPropagator

	sdk *sdktrace.TracerProvider // nil when off
}

// Options are what Start needs besides the OTEL_* variables.
type Options struct {
	// ServiceName is service.name unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES set it.
	ServiceName string
	// ServiceVersion is service.version.
	ServiceVersion string
	// Exporter, when set, turns tracing on whatever the variables say and
	// receives the spans (tests use tracetest's in-memory exporter).
	Exporter sdktrace.SpanExporter
}

// Configured reports whether getenv configures trace export: an OTLP
// endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
// or OTEL_TRACES_EXPORTER=otlp, unless OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none.
func Configured(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	switch strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")) {
	case "none":
		return false
	case "otlp":
		return true
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Start returns the tracing the environment configures (see the package
// comment), or a disabled Tracing when nothing is configured. It fails on
// an unsupported OTEL_TRACES_EXPORTER or protocol, naming the variable.
func Start(ctx context.Context, opts Options) (*Tracing, error) {
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	exp := opts.Exporter
	if exp == nil {
		if !Configured(os.Getenv) {
			return &Tracing{Provider: noop.NewTracerProvider(), Propagator: prop}, nil
		}
		var err error
		if exp, err = newExporter(ctx, os.Getenv); err != nil {
			return nil, err
		}
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(opts.ServiceName), semconv.ServiceVersion(opts.ServiceVersion)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		// No WithSampler: the SDK reads OTEL_TRACES_SAMPLER and _ARG.
		sdktrace.WithSpanProcessor(orphanClientFilter{sdktrace.NewBatchSpanProcessor(exp)}),
	)
	return &Tracing{Provider: sdk, Propagator: prop, sdk: sdk}, nil
}

// newExporter builds the OTLP exporter of the protocol getenv names; the
// exporter itself reads the endpoint, headers, timeout and compression.
func newExporter(ctx context.Context, getenv func(string) string) (sdktrace.SpanExporter, error) {
	if e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e != "" && e != "otlp" {
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER: %q is not supported (otlp or none)", e)
	}
	name, proto := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		name, proto = "OTEL_EXPORTER_OTLP_PROTOCOL", getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch strings.TrimSpace(proto) {
	case "", "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	default:
		return nil, fmt.Errorf("%s: %q is not supported (http/protobuf or grpc)", name, proto)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	return exp, nil
}

// Enabled reports whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t.sdk != nil }

// Shutdown exports the spans still buffered and stops the exporter, within
// ctx. It does nothing when tracing is off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing shutdown: %w", err)
	}
	return nil
}

// HTTP returns the provider for the HTTP middleware, or nil when tracing is
// off (the router then installs none).
func (t *Tracing) HTTP() trace.TracerProvider {
	if t.sdk == nil {
		return nil
	}
	return t.sdk
}

// Tracer returns the named tracer, or nil when tracing is off (the cache
// options then fall back to a no-op tracer).
func (t *Tracing) Tracer(name string) trace.Tracer {
	if t.sdk == nil {
		return nil
	}
	return t.sdk.Tracer(name)
}

// orphanClientFilter drops client spans that have no parent before they
// reach the exporter.
type orphanClientFilter struct{ sdktrace.SpanProcessor }

// OnEnd implements sdktrace.SpanProcessor.
func (f orphanClientFilter) OnEnd(s sdktrace.ReadOnlySpan) {
	if s.SpanKind() == trace.SpanKindClient && !s.Parent().IsValid() {
		return
	}
	f.SpanProcessor.OnEnd(s)
}

package telemetry

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
)

// TracingOptions choose where the gateway's spans go.
type TracingOptions struct {
	// Exporter is "none", "otlp" (the protocol from
	// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or OTEL_EXPORTER_OTLP_PROTOCOL:
	// "grpc" or "http/protobuf", the default), "otlp-http", "otlp-grpc" or
	// "stdout". Default "": $OTEL_TRACES_EXPORTER ("console" meaning stdout),
	// else "none". The OTLP exporters read their endpoint, headers and TLS
	// settings from the standard OTEL_EXPORTER_OTLP_* variables.
	Exporter string
	// SampleRatio is the fraction of new traces (requests arriving without a
	// sampled parent) that are recorded; a sampled parent is always followed.
	// Default -1: as $OTEL_TRACES_SAMPLER and $OTEL_TRACES_SAMPLER_ARG say
	// (samplerRatio), else 1 with an exporter, 0 without.
	SampleRatio float64
	// Stdout receives the "stdout" exporter's spans. Default os.Stdout.
	Stdout io.Writer
}

// NewTracerProvider builds the tracer provider TracingOptions describe.
// Shut it down to flush the exporter.
func NewTracerProvider(ctx context.Context, opts TracingOptions) (*Provider, error) {
	exp, err := newExporter(ctx, opts)
	if err != nil {
		return nil, err
	}
	ratio := opts.SampleRatio
	if ratio < 0 {
		ratio = 0
		if exp != nil {
			ratio = 1
		}
		if r, ok, err := samplerRatio(os.Getenv); err != nil {
			return nil, err
		} else if ok {
			ratio = r
		}
	}
	// The service's name is the environment's when it gives one
	// (OTEL_SERVICE_NAME, or service.name in OTEL_RESOURCE_ATTRIBUTES, which
	// resource.Default reads), else "wasmesh".
	res := resource.Default()
	if !envServiceName(os.Getenv) {
		if merged, err := resource.Merge(res, resource.NewSchemaless(semconv.ServiceName("wasmesh"))); err == nil {
			res = merged
		}
	}
	return newProvider(ratio, res, exp, os.Getenv)
}

// envServiceName reports whether the environment names the service.
func envServiceName(getenv func(string) string) bool {
	if strings.TrimSpace(getenv("OTEL_SERVICE_NAME")) != "" {
		return true
	}
	for kv := range strings.SplitSeq(getenv("OTEL_RESOURCE_ATTRIBUTES"), ",") {
		if k, _, ok := strings.Cut(kv, "="); ok && strings.TrimSpace(k) == "service.name" {
			return true
		}
	}
	return false
}

// samplerRatio is the ratio of new traces OTEL_TRACES_SAMPLER (and
// OTEL_TRACES_SAMPLER_ARG) ask to record, and whether they ask: the
// gateway's sampler follows a sampled parent whatever the ratio, so
// "traceidratio" and "always_on"/"always_off" are taken as their
// parent-based forms. An unknown sampler, or a ratio that is no number
// from 0 to 1, is an error naming the variable.
func samplerRatio(getenv func(string) string) (float64, bool, error) {
	name := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER"))
	switch name {
	case "":
		return 0, false, nil
	case "always_on", "parentbased_always_on":
		return 1, true, nil
	case "always_off", "parentbased_always_off":
		return 0, true, nil
	case "traceidratio", "parentbased_traceidratio":
		arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG"))
		if arg == "" {
			return 1, true, nil // the specification's default
		}
		r, err := strconv.ParseFloat(arg, 64)
		if err != nil || r < 0 || r > 1 {
			return 0, false, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG=%q: want a ratio from 0 to 1", arg)
		}
		return r, true, nil
	}
	return 0, false, fmt.Errorf("OTEL_TRACES_SAMPLER=%q: want always_on, always_off, traceidratio or their parentbased_ forms", name)
}

// NewUnrecordedProvider returns a provider that records no span: a span
// has its own span ID and follows its parent's sampled flag, and a new
// trace is not sampled. It is what the gateway traces with when it is not
// given a provider.
func NewUnrecordedProvider() *Provider {
	p, _ := newProvider(0, nil, nil, func(string) string { return "" })
	return p
}

// sdkExporter hands the provider's spans to one of the SDK's exporters.
type sdkExporter struct {
	exp sdktrace.SpanExporter
	buf []sdktrace.ReadOnlySpan
}

func (e *sdkExporter) export(ctx context.Context, spans []*span) error {
	for _, s := range spans {
		e.buf = append(e.buf, s.stub().Snapshot())
	}
	err := e.exp.ExportSpans(ctx, e.buf)
	clear(e.buf)
	e.buf = e.buf[:0]
	return err
}

func (e *sdkExporter) shutdown(ctx context.Context) error { return e.exp.Shutdown(ctx) }

// stub is the SDK's description of an ended span.
func (s *span) stub() tracetest.SpanStub {
	attrs := s.attrs
	if len(attrs) == 0 {
		attrs = nil
	}
	return tracetest.SpanStub{
		Name: s.name, SpanContext: s.sc, Parent: s.parent, SpanKind: s.kind, StartTime: s.start, EndTime: s.end,
		Attributes: attrs, Events: s.events, Links: s.links, Status: s.status,
		DroppedAttributes: s.droppedAttrs, DroppedEvents: s.droppedEvents, DroppedLinks: s.droppedLinks,
		Resource: s.tracer.p.res, InstrumentationScope: s.tracer.scope,
	}
}

func newExporter(ctx context.Context, opts TracingOptions) (spanExporter, error) {
	name := opts.Exporter
	if name == "" {
		name = os.Getenv("OTEL_TRACES_EXPORTER")
	}
	if name == "otlp" {
		proto := firstEnv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
		switch proto {
		case "", "http/protobuf":
			name = "otlp-http"
		case "grpc":
			name = "otlp-grpc"
		default:
			return nil, fmt.Errorf("OTLP protocol %q: want grpc or http/protobuf", proto)
		}
	}
	switch strings.ToLower(name) {
	case "", "none":
		return nil, nil
	case "otlp-http":
		return newOTLPHTTP(os.Getenv, os.ReadFile)
	case "otlp-grpc":
		exp, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, err
		}
		return &sdkExporter{exp: exp}, nil
	case "stdout", "console":
		w := opts.Stdout
		if w == nil {
			w = os.Stdout
		}
		exp, err := stdouttrace.New(stdouttrace.WithWriter(w))
		if err != nil {
			return nil, err
		}
		return &sdkExporter{exp: exp}, nil
	}
	return nil, fmt.Errorf("trace exporter %q: want none, otlp, otlp-http, otlp-grpc or stdout", name)
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

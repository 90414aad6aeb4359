package telemetry

import (
	"context"
	"fmt"
	"io"
	"os"
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
	// Default -1: 1 with an exporter, 0 without.
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
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName("wasmesh")))
	if err != nil {
		res = resource.Default()
	}
	return newProvider(ratio, res, exp, os.Getenv)
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

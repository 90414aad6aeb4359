package telemetry

import (
	"compress/gzip"
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/google/go-cmp/cmp"

	"github.com/wasmesh/wasmesh/internal/testutil"
)

// testSpans makes spans through a Provider that use every part of OTLP's
// Span the encoder writes: a remote parent with a trace state, every kind
// of attribute value (zero values, negative numbers, lists, maps, bytes),
// values long enough that a message's length takes two and three bytes,
// events, links, both status codes, two instrumentation scopes.
func testSpans(t testing.TB) []*span {
	t.Helper()
	rec := &recordingExporter{}
	tp, err := newProvider(1, testResource(t), rec, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	spanScript(t, tp)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return rec.spans
}

func testResource(t testing.TB) *resource.Resource {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", "wasmesh"), attribute.Int("replica", 0)))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// remoteTraceID is the trace of spanScript's remote parent.
var remoteTraceID = trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

// spanScript makes testSpans' spans through tp.
func spanScript(t testing.TB, tp trace.TracerProvider) {
	mesh := tp.Tracer("github.com/wasmesh/wasmesh/mesh")
	other := tp.Tracer("other", trace.WithInstrumentationVersion("1.2.3"), trace.WithSchemaURL("https://opentelemetry.io/schemas/1.26.0"),
		trace.WithInstrumentationAttributes(attribute.String("scope.attr", "x")))

	ts, err := trace.ParseTraceState("vendor=value,other=1")
	if err != nil {
		t.Fatal(err)
	}
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: remoteTraceID, SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8},
		TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true,
	})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
	ctx, server := mesh.Start(ctx, "wasmesh.request", trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		attribute.Bool("false", false), attribute.Bool("true", true), attribute.Int("zero", 0), attribute.Int64("negative", -42),
		attribute.Float64("float", 3.25), attribute.Float64("float.zero", 0), attribute.String("empty", ""), attribute.String("s", "hello"),
		attribute.String("two-byte length", strings.Repeat("a", 300)), attribute.String("three-byte length", strings.Repeat("b", 20000)),
		attribute.BoolSlice("bools", []bool{true, false}), attribute.IntSlice("ints", []int{-1, 0, 1 << 40}),
		attribute.Float64Slice("floats", []float64{0.5, -2}), attribute.StringSlice("strings", []string{"a", "", "c"}),
		attribute.ByteSlice("bytes", []byte{0, 1, 255}),
		attribute.Slice("mixed", attribute.IntValue(1), attribute.StringValue("two"), attribute.BoolSliceValue([]bool{true})),
		attribute.Map("map", attribute.String("k", "v"), attribute.Int("n", 7)),
	))
	server.AddEvent("an event", trace.WithAttributes(attribute.String("e", "v")), trace.WithTimestamp(time.Unix(1700000000, 5)))
	server.AddEvent("no attributes")
	_, client := mesh.Start(ctx, "wasmesh.http_call", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}, SpanID: trace.SpanID{8, 8, 8, 8, 8, 8, 8, 8}, Remote: true,
		}), Attributes: []attribute.KeyValue{attribute.String("link", "attr")}}))
	client.SetStatus(codes.Error, "upstream reset")
	client.End()
	_, internal := other.Start(ctx, "internal work")
	internal.SetStatus(codes.Ok, "")
	internal.End()
	server.End()
	_, root := mesh.Start(context.Background(), "root, no parent")
	root.End()
}

// recordingExporter keeps what it is given.
type recordingExporter struct {
	mu      sync.Mutex
	spans   []*span
	batches []int
	block   chan struct{} // when set, an export waits for it to close
}

func (r *recordingExporter) export(_ context.Context, spans []*span) error {
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.spans = append(r.spans, spans...)
	r.batches = append(r.batches, len(spans))
	return nil
}

func (r *recordingExporter) shutdown(context.Context) error { return nil }

// snapshots are spans as the SDK's exporters take them.
func snapshots(spans []*span) []sdktrace.ReadOnlySpan {
	out := make([]sdktrace.ReadOnlySpan, len(spans))
	for i, s := range spans {
		out[i] = s.stub().Snapshot()
	}
	return out
}

// receiver is an OTLP/HTTP receiver on loopback that keeps what it is
// sent, decoded, and answers with the status a test sets.
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []*http.Request
	bodies   []*coltrace.ExportTraceServiceRequest
	statuses []int // answered in turn; 200 when none are left
	header   http.Header
}

func newReceiver(t *testing.T, tlsServer bool) *receiver {
	r := &receiver{header: http.Header{}}
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(req.Body)
			if err != nil {
				t.Errorf("receiver: %v", err)
				return
			}
			body = gz
		}
		data, err := io.ReadAll(body)
		if err != nil {
			t.Errorf("receiver: %v", err)
		}
		var export coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(data, &export); err != nil {
			t.Errorf("receiver: the body does not decode: %v", err)
		}
		r.mu.Lock()
		r.requests = append(r.requests, req)
		r.bodies = append(r.bodies, &export)
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		for k, v := range r.header {
			w.Header()[k] = v
		}
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(status)
	})
	if tlsServer {
		r.srv = httptest.NewTLSServer(h)
	} else {
		r.srv = httptest.NewServer(h)
	}
	t.Cleanup(r.srv.Close)
	return r
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// TestOTLPEncodingMatchesOtlptracehttp: the same spans, sent by
// opentelemetry-go's own OTLP/HTTP exporter and by ours to a receiver on
// loopback, decode to equal messages.
func TestOTLPEncodingMatchesOtlptracehttp(t *testing.T) {
	spans := testSpans(t)
	recv := newReceiver(t, false)

	ref, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(recv.srv.URL+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ref.ExportSpans(context.Background(), snapshots(spans)); err != nil {
		t.Fatalf("otlptracehttp: %v", err)
	}
	ours, err := newOTLPHTTP(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.srv.URL}), os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := ours.export(context.Background(), spans); err != nil {
		t.Fatalf("ours: %v", err)
	}
	// Twice: the second encoding reuses the first's buffers.
	if err := ours.export(context.Background(), spans); err != nil {
		t.Fatalf("ours, again: %v", err)
	}
	if len(recv.bodies) != 3 {
		t.Fatalf("the receiver got %d requests, want 3", len(recv.bodies))
	}
	for i, got := range recv.bodies[1:] {
		if diff := cmp.Diff(recv.bodies[0], got, protocmp.Transform()); diff != "" {
			t.Errorf("export %d differs from otlptracehttp's (-theirs +ours):\n%s", i+1, diff)
		}
	}
	var n int
	for _, rs := range recv.bodies[1].ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			n += len(ss.Spans)
		}
	}
	if n != len(spans) || len(recv.bodies[1].ResourceSpans[0].ScopeSpans) != 2 {
		t.Errorf("%d spans in %d scopes sent, want %d in 2", n, len(recv.bodies[1].ResourceSpans[0].ScopeSpans), len(spans))
	}
	if got := recv.requests[1].Header.Get("Content-Type"); got != "application/x-protobuf" {
		t.Errorf("Content-Type %q", got)
	}
}

// TestOTLPHTTPConfig: the variables' path, headers, compression and
// retries, against a receiver on loopback.
func TestOTLPHTTPConfig(t *testing.T) {
	spans := testSpans(t)
	recv := newReceiver(t, false)
	recv.statuses = []int{http.StatusServiceUnavailable, http.StatusBadRequest}
	recv.header.Set("Retry-After", "1")
	e, err := newOTLPHTTP(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://wrong.invalid:1",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": recv.srv.URL + "/custom/path",
		"OTEL_EXPORTER_OTLP_HEADERS":         "x-general=1",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS":  "api-key=a%20b%2Cc, x-tenant = t1",
		"OTEL_EXPORTER_OTLP_COMPRESSION":     "gzip",
	}), os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	// 503 with Retry-After: 1, then 400: tried twice, then refused.
	began := time.Now()
	err = e.export(context.Background(), spans)
	if err == nil || !strings.Contains(err.Error(), "400 Bad Request") || !strings.Contains(err.Error(), "spans dropped") {
		t.Errorf("a refused batch: %v, want the receiver's 400 and the spans dropped", err)
	}
	if took := time.Since(began); took < time.Second {
		t.Errorf("the second try came %v after the first, before the receiver's Retry-After of 1 s", took)
	}
	if err := e.export(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	if len(recv.requests) != 3 {
		t.Fatalf("%d requests, want 3", len(recv.requests))
	}
	for i, req := range recv.requests {
		if req.URL.Path != "/custom/path" || req.Header.Get("Api-Key") != "a b,c" || req.Header.Get("X-Tenant") != "t1" ||
			req.Header.Get("X-General") != "" || req.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("request %d: path %q, header %v; want the traces endpoint as it is, its headers only, gzip", i, req.URL.Path, req.Header)
		}
		if len(recv.bodies[i].ResourceSpans) == 0 {
			t.Errorf("request %d carried no spans", i)
		}
	}

	// The general endpoint gets /v1/traces after its own path.
	recv2 := newReceiver(t, false)
	e, err = newOTLPHTTP(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv2.srv.URL + "/base/"}), os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.export(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	if len(recv2.requests) != 1 || recv2.requests[0].URL.Path != "/base/v1/traces" {
		t.Errorf("requests to the general endpoint: %d, path %v", len(recv2.requests), recv2.requests)
	}

	// A receiver that keeps answering 503 is tried while the context
	// leaves time for the next wait (1 s, then 2 s).
	recv3 := newReceiver(t, false)
	recv3.statuses = []int{503, 503, 503, 503}
	e, err = newOTLPHTTP(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv3.srv.URL}), os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err = e.export(ctx, spans)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "deadline would pass") || ctx.Err() != nil {
		t.Errorf("a receiver answering 503 throughout: %v (context: %v), want its 503 given up before the deadline", err, ctx.Err())
	}
	if n := len(recv3.requests); n != 2 {
		t.Errorf("%d tries in 1.5 s, want 2 (at once and after 1 s)", n)
	}
	// A receiver that is not there is tried again too, within TIMEOUT.
	gone := "http://" + testutil.RefusedAddr(t)
	e, err = newOTLPHTTP(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": gone, "OTEL_EXPORTER_OTLP_TIMEOUT": "1500"}), os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	began = time.Now()
	err = e.export(context.Background(), spans)
	if took := time.Since(began); err == nil || !strings.Contains(err.Error(), "refused") || took < time.Second || took > 1500*time.Millisecond {
		t.Errorf("a receiver that is gone: %v after %v, want connection refused, tried again after 1 s and given up within the 1.5 s timeout", err, took)
	}
	if err := e.shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.export(context.Background(), spans); err == nil {
		t.Error("an export after Shutdown was accepted")
	}
}

// TestOTLPHTTPTLS: an https receiver whose CA is OTEL_EXPORTER_OTLP_CERTIFICATE.
func TestOTLPHTTPTLS(t *testing.T) {
	recv := newReceiver(t, true)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: recv.srv.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	spans := testSpans(t)
	e, err := newOTLPHTTP(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.srv.URL}), os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.export(context.Background(), spans); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("an export to a receiver whose CA is unknown: %v, want a certificate error", err)
	}
	e, err = newOTLPHTTP(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": recv.srv.URL, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": caFile}), os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.export(context.Background(), spans); err != nil {
		t.Fatal(err)
	}
	if len(recv.requests) != 1 {
		t.Errorf("%d requests reached the receiver, want 1", len(recv.requests))
	}
}

// TestOTLPHTTPConfigErrors: each bad variable is refused, named.
func TestOTLPHTTPConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"}, `OTEL_EXPORTER_OTLP_ENDPOINT="localhost:4318": want an http:// or https:// URL`},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "grpc://collector:4317"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"},
		{map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "api-key"}, `OTEL_EXPORTER_OTLP_HEADERS: "api-key" is not a header`},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "bad name=1"}, "OTEL_EXPORTER_OTLP_TRACES_HEADERS"},
		{map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "k=%zz"}, `the value of "k"`},
		{map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "10s"}, `OTEL_EXPORTER_OTLP_TIMEOUT="10s": want a positive number of milliseconds`},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "zstd"}, `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION="zstd": want gzip or none`},
		{map[string]string{"OTEL_EXPORTER_OTLP_INSECURE": "maybe"}, "OTEL_EXPORTER_OTLP_INSECURE"},
		{map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"}, "OTEL_EXPORTER_OTLP_CERTIFICATE: open /nonexistent/ca.pem"},
		{map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": "/x.pem"}, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY go together"},
	} {
		_, err := newOTLPHTTP(env(tc.vars), os.ReadFile)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error saying %q", tc.vars, err, tc.want)
		}
	}
}

// BenchmarkOTLPEncode: a batch of 512 spans like a gateway's, encoded by
// ours and by what otlptracehttp does (transform to the protobuf structs,
// marshal), side by side.
func BenchmarkOTLPEncode(b *testing.B) {
	rec := &recordingExporter{}
	tp, err := newProvider(1, testResource(b), rec, env(nil))
	if err != nil {
		b.Fatal(err)
	}
	tr := tp.Tracer("github.com/wasmesh/wasmesh/mesh")
	for i := 0; i < 256; i++ {
		ctx, s := tr.Start(context.Background(), "wasmesh.request", trace.WithSpanKind(trace.SpanKindServer))
		_, g := tr.Start(ctx, "wasmesh.guest")
		g.SetAttributes(attribute.Float64("wasmesh.guest.instantiate_ms", 0), attribute.Float64("wasmesh.guest.run_ms", 0.004),
			attribute.Int("wasmesh.guest.memory_pages", 17), attribute.Int("wasmesh.guest.exit_code", 0), attribute.Bool("wasmesh.guest.reused", true))
		g.End()
		s.SetAttributes(attribute.String("http.request.method", "GET"), attribute.String("url.path", "/rust/hi"),
			attribute.Int("http.response.status_code", 200), attribute.String("wasmesh.request_id", "ba73da737e186a77"),
			attribute.String("http.route", "rust"), attribute.String("wasmesh.service", "rust"), attribute.String("wasmesh.version", "sha256:9084be8d3daf"))
		s.End()
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
	spans := rec.spans
	b.Run("ours", func(b *testing.B) {
		var e traceEncoder
		b.ReportAllocs()
		for b.Loop() {
			e.encode(spans)
		}
	})
	b.Run("otlptracehttp", func(b *testing.B) {
		// The reference's encoding, through its exporter to a receiver
		// that does nothing: the transform, the marshal, one POST.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
		defer srv.Close()
		ref, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"))
		if err != nil {
			b.Fatal(err)
		}
		snap := snapshots(spans)
		b.ReportAllocs()
		for b.Loop() {
			if err := ref.ExportSpans(context.Background(), snap); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ours+POST", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
		defer srv.Close()
		e, err := newOTLPHTTP(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}), os.ReadFile)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := e.export(context.Background(), spans); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestOTLPHTTPEarlyAnswer: a receiver that answers before reading the body
// (a 413, a 400) leaves the transport still sending it when Do returns;
// the next batch reuses the buffer, which the body must no longer read
// (run with -race).
func TestOTLPHTTPEarlyAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		http.Error(w, "too large", http.StatusRequestEntityTooLarge)
	}))
	defer srv.Close()
	spans := testSpans(t)
	for len(spans) < 400 { // a body of megabytes: still being written when the answer comes
		spans = append(spans, spans...)
	}
	e, err := newOTLPHTTP(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}), os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := e.export(context.Background(), spans[:len(spans)-i]); err == nil || !strings.Contains(err.Error(), "413") {
			t.Fatalf("export %d: %v, want the receiver's 413", i, err)
		}
	}
}

// TestOTLPHTTPShutdown: Shutdown gives up a batch being sent at once.
func TestOTLPHTTPShutdown(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // read all, so that the server sees the client go
		arrived <- struct{}{}
		<-r.Context().Done() // never answers
	}))
	defer srv.Close()
	e, err := newOTLPHTTP(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}), os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- e.export(context.Background(), testSpans(t)) }()
	<-arrived
	began := time.Now()
	if err := e.shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("a batch given up at shutdown reported no error")
		}
		if took := time.Since(began); took > 2*time.Second {
			t.Errorf("the export ended %v after Shutdown", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the export went on 5 s after Shutdown")
	}
}

// TestProviderCountsPartialSuccess: a batch the receiver took but for
// some of its spans (OTLP's partial success, from a real OTLP/HTTP answer)
// counts those alone as failed.
func TestProviderCountsPartialSuccess(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		b, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{PartialSuccess: &coltrace.ExportTracePartialSuccess{RejectedSpans: 2, ErrorMessage: "too old"}})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(b)
	}))
	defer srv.Close()
	e, err := newOTLPHTTP(env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": srv.URL}), os.ReadFile)
	if err != nil {
		t.Fatal(err)
	}
	if e, f := sevenSpans(t, e); e != 5 || f != 2 {
		t.Errorf("7 spans, 2 of them rejected: %d exported, %d failed; want 5, 2", e, f)
	}
}

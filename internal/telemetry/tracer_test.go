package telemetry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/internal/testutil"
)

// TestProviderMatchesSDK: the same spans made through the SDK's provider
// and through ours come out the same, but for their new IDs and times:
// names, kinds, parents (by position), attributes (set again, invalid,
// given at start), status rules, events, errors, links, scopes, resource,
// and what a span ignores after its end.
func TestProviderMatchesSDK(t *testing.T) {
	script := func(tp trace.TracerProvider) {
		spanScript(t, tp)
		tr := tp.Tracer("more")
		ctx, s := tr.Start(context.Background(), "attributes and status", trace.WithAttributes(attribute.String("a", "1")))
		s.SetAttributes(attribute.String("a", "2"), attribute.String("", "no key"), attribute.Int("b", 3), attribute.String("a", "3"))
		s.SetStatus(codes.Error, "first")
		s.SetStatus(codes.Unset, "ignored")
		s.SetStatus(codes.Error, "second")
		s.RecordError(errors.New("it broke"), trace.WithTimestamp(time.Unix(1, 0)))
		s.RecordError(fmt.Errorf("wrapped: %w", context.Canceled), trace.WithTimestamp(time.Unix(2, 0)))
		s.RecordError(nil)
		s.AddLink(trace.Link{}) // nothing in it: not kept
		s.AddLink(trace.Link{Attributes: []attribute.KeyValue{attribute.Int("n", 1), attribute.Int("n", 2)}})
		s.SetName("renamed")
		_, child := tr.Start(ctx, "child", trace.WithSpanKind(trace.SpanKindProducer))
		child.SetStatus(codes.Ok, "dropped: only errors have a description")
		child.SetStatus(codes.Error, "too late: Ok is final")
		child.End()
		_, root := tr.Start(ctx, "new root", trace.WithNewRoot())
		root.End()
		s.End()
		s.SetAttributes(attribute.String("after", "end"))
		s.SetName("after end")
		s.AddEvent("after end")
		s.End() // a second time: nothing
		many := make([]attribute.KeyValue, 140)
		for i := range many {
			many[i] = attribute.Int(fmt.Sprint("k", i), i)
		}
		_, big := tr.Start(context.Background(), "over the limits", trace.WithAttributes(many[:100]...))
		big.SetAttributes(many...)
		for i := 0; i < 130; i++ {
			big.AddEvent("e")
		}
		big.End()
	}

	res := testResource(t)
	rec := tracetest.NewSpanRecorder()
	sdk := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(1))))
	script(sdk)
	want := tracetest.SpanStubsFromReadOnlySpans(rec.Ended())

	ours := &recordingExporter{}
	tp, err := newProvider(1, res, ours, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	script(tp)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got tracetest.SpanStubs
	for _, s := range ours.spans {
		got = append(got, s.stub())
	}
	if len(got) != len(want) || len(got) < 8 {
		t.Fatalf("%d spans, the SDK's %d", len(got), len(want))
	}
	normalise(t, want)
	normalise(t, got)
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(tracetest.SpanStub{}, "ChildSpanCount", "InstrumentationLibrary"),
		cmp.AllowUnexported(attribute.Value{}), cmp.Comparer(func(a, b attribute.Set) bool { return a.Equals(&b) }),
		cmp.Comparer(func(a, b *resource.Resource) bool { return a.Equal(b) }),
		cmp.Comparer(func(a, b trace.SpanContext) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("our spans differ from the SDK's (-SDK +ours):\n%s", diff)
	}
}

// normalise replaces the IDs the provider made with ones numbered in the
// order the spans ended (IDs from outside stay), and the times it took
// with zero, after checking that each span ends after it starts.
func normalise(t *testing.T, spans tracetest.SpanStubs) {
	number := map[trace.SpanID]byte{}
	traces := map[trace.TraceID]byte{}
	for i, s := range spans {
		number[s.SpanContext.SpanID()] = byte(i + 1)
	}
	renumber := func(sc trace.SpanContext) trace.SpanContext {
		n, ok := number[sc.SpanID()]
		if !ok {
			return sc
		}
		tid := sc.TraceID()
		if tid != remoteTraceID { // not the test's remote parent's
			if _, ok := traces[tid]; !ok {
				traces[tid] = byte(len(traces) + 1)
			}
			tid = trace.TraceID{0xee, traces[tid]}
		}
		return sc.WithSpanID(trace.SpanID{0xff, n}).WithTraceID(tid)
	}
	for i := range spans {
		s := &spans[i]
		if s.EndTime.Before(s.StartTime) || s.StartTime.IsZero() {
			t.Errorf("span %q: start %v, end %v", s.Name, s.StartTime, s.EndTime)
		}
		s.SpanContext, s.Parent = renumber(s.SpanContext), renumber(s.Parent)
		s.StartTime, s.EndTime = time.Time{}, time.Time{}
		for j := range s.Events {
			if s.Events[j].Time.After(time.Unix(1e9, 0)) { // taken by the provider, not given
				s.Events[j].Time = time.Time{}
			}
		}
	}
}

// TestProviderSampling: a new trace is sampled as the SDK's
// TraceIDRatioBased decides for the same trace ID, about ratio of them; a
// child follows its parent's flag; an unsampled span has its own span ID
// in its parent's trace; a provider without exporter records nothing.
func TestProviderSampling(t *testing.T) {
	rec := &recordingExporter{}
	tp, err := newProvider(0.25, nil, rec, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown(context.Background())
	ref := sdktrace.TraceIDRatioBased(0.25)
	tr := tp.Tracer("t")
	sampled := 0
	const n = 20000
	for i := 0; i < n; i++ {
		_, s := tr.Start(context.Background(), "root")
		sc := s.SpanContext()
		want := ref.ShouldSample(sdktrace.SamplingParameters{TraceID: sc.TraceID()}).Decision == sdktrace.RecordAndSample
		if sc.IsSampled() != want || s.IsRecording() != want {
			t.Fatalf("trace %s: sampled %v, recording %v; the SDK's ratio sampler says %v", sc.TraceID(), sc.IsSampled(), s.IsRecording(), want)
		}
		if !sc.IsValid() {
			t.Fatalf("span context %v is not valid", sc)
		}
		if want {
			sampled++
		}
	}
	if got := float64(sampled) / n; got < 0.23 || got > 0.27 {
		t.Errorf("%.3f of new traces sampled at ratio 0.25", got)
	}

	for _, parentSampled := range []bool{true, false} {
		flags := trace.TraceFlags(0).WithSampled(parentSampled)
		parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{7}, TraceFlags: flags, Remote: true})
		ctx := trace.ContextWithRemoteSpanContext(context.Background(), parent)
		ctx, s := tr.Start(ctx, "child")
		sc := s.SpanContext()
		if sc.TraceID() != parent.TraceID() || sc.SpanID() == parent.SpanID() || !sc.SpanID().IsValid() || sc.IsSampled() != parentSampled || s.IsRecording() != parentSampled {
			t.Errorf("parent sampled %v: child %v (recording %v)", parentSampled, sc, s.IsRecording())
		}
		if !trace.SpanContextFromContext(ctx).Equal(sc) {
			t.Errorf("parent sampled %v: the context carries %v, not the span's", parentSampled, trace.SpanContextFromContext(ctx))
		}
	}

	// An unrecorded span's provider is the one that made it.
	_, un := tr.Start(trace.ContextWithRemoteSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{8}, SpanID: trace.SpanID{8}, Remote: true})), "unsampled")
	if un.TracerProvider() != trace.TracerProvider(tp) {
		t.Errorf("an unsampled span's TracerProvider is %T, not the provider", un.TracerProvider())
	}

	off := NewUnrecordedProvider()
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{7}, TraceFlags: trace.FlagsSampled, Remote: true})
	_, s := off.Tracer("t").Start(trace.ContextWithRemoteSpanContext(context.Background(), parent), "child")
	if s.IsRecording() || !s.SpanContext().IsSampled() || s.SpanContext().SpanID() == parent.SpanID() {
		t.Errorf("without an exporter: recording %v, %v", s.IsRecording(), s.SpanContext())
	}
	_, s = off.Tracer("t").Start(context.Background(), "root")
	if s.IsRecording() || s.SpanContext().IsSampled() || !s.SpanContext().IsValid() {
		t.Errorf("without an exporter, a new trace: recording %v, %v", s.IsRecording(), s.SpanContext())
	}
}

// TestProviderBatching: full batches go at once, the rest at ForceFlush or
// on the schedule; a full queue drops spans; Shutdown sends what waits and
// drops what ends after it.
func TestProviderBatching(t *testing.T) {
	rec := &recordingExporter{}
	tp, err := newProvider(1, nil, rec, env(map[string]string{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10", "OTEL_BSP_MAX_QUEUE_SIZE": "30", "OTEL_BSP_SCHEDULE_DELAY": "3600000"}))
	if err != nil {
		t.Fatal(err)
	}
	tr := tp.Tracer("t")
	end := func(n int) {
		for i := 0; i < n; i++ {
			_, s := tr.Start(context.Background(), "s")
			s.End()
		}
	}
	exported := func() (int, []int) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return len(rec.spans), append([]int(nil), rec.batches...)
	}
	end(25)
	testutil.WaitFor(t, "two full batches exported", func() bool { n, _ := exported(); return n >= 20 })
	if n, batches := exported(); n != 20 || !slicesAll(batches, 10) {
		t.Fatalf("after 25 spans with batches of 10 (and an hour's delay): %d exported in %v, want 20 in batches of 10", n, batches)
	}
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, batches := exported(); n != 25 || batches[len(batches)-1] != 5 {
		t.Fatalf("after ForceFlush: %d exported in %v, want 25, the last batch 5", n, batches)
	}

	rec.block = make(chan struct{}) // the exporter stalls: the queue fills
	end(10)                         // a full batch: the loop takes it and waits in export
	testutil.WaitFor(t, "the loop to take the full batch", func() bool {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		return len(tp.queue) == 0
	})
	end(35) // 30 fit in the queue, 5 are dropped
	tp.mu.Lock()
	queued, dropped := len(tp.queue), tp.dropped
	tp.mu.Unlock()
	if queued != 30 || dropped != 5 {
		t.Errorf("a stalled exporter with a queue of 30 and 35 more spans: %d queued, %d dropped", queued, dropped)
	}
	_, late := tr.Start(context.Background(), "started before Shutdown, ended after")
	close(rec.block)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, _ := exported(); n != 25+10+30 {
		t.Errorf("after Shutdown: %d exported, want %d", n, 25+10+30)
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Errorf("a second Shutdown: %v", err)
	}
	late.End()
	_, after := tr.Start(context.Background(), "started after Shutdown")
	if after.IsRecording() || !after.SpanContext().IsValid() {
		t.Errorf("a span started after Shutdown: recording %v, %v", after.IsRecording(), after.SpanContext())
	}
	after.End()
	if n, _ := exported(); n != 65 {
		t.Errorf("spans ended after Shutdown were exported: %d", n)
	}
	if e, f, d := tp.exported.Load(), tp.failed.Load(), tp.droppedTotal.Load(); e != 65 || f != 0 || d != 6 {
		t.Errorf("counted %d exported, %d failed, %d dropped; want 65, 0, 6 (5 on a full queue, 1 ended after Shutdown)", e, f, d)
	}
	want := `
# HELP wasmesh_trace_spans_total Recorded spans by what came of them: exported (the exporter took them), failed (its export failed: they are lost), dropped (the queue was full, or the provider shut down).
# TYPE wasmesh_trace_spans_total counter
wasmesh_trace_spans_total{result="dropped"} 6
wasmesh_trace_spans_total{result="exported"} 65
wasmesh_trace_spans_total{result="failed"} 0
`
	if err := promtest.CollectAndCompare(tp, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if err := tp.ForceFlush(context.Background()); err != nil {
		t.Errorf("ForceFlush after Shutdown: %v", err)
	}
}

// TestProviderSchedule: spans short of a batch go on the schedule, without
// a flush.
func TestProviderSchedule(t *testing.T) {
	rec := &recordingExporter{}
	tp, err := newProvider(1, nil, rec, env(map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "20"}))
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown(context.Background())
	for round := 1; round <= 3; round++ {
		_, s := tp.Tracer("t").Start(context.Background(), "s")
		s.End()
		testutil.WaitFor(t, fmt.Sprintf("round %d: its span exported on a schedule of 20 ms", round), func() bool {
			rec.mu.Lock()
			defer rec.mu.Unlock()
			return len(rec.spans) == round
		})
	}
}

func slicesAll(s []int, v int) bool {
	for _, x := range s {
		if x != v {
			return false
		}
	}
	return len(s) > 0
}

// TestProviderEnvErrors: a malformed batching variable is refused by name.
func TestProviderEnvErrors(t *testing.T) {
	for _, name := range []string{"OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_EXPORT_TIMEOUT", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"} {
		for _, v := range []string{"x", "0", "-5", "1.5"} {
			_, err := newProvider(1, nil, &recordingExporter{}, env(map[string]string{name: v}))
			if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), v) {
				t.Errorf("%s=%s: %v, want an error naming the variable and its value", name, v, err)
			}
		}
	}
}

// BenchmarkRequestSpans: what a traced request's two spans (the server's
// and the guest's, with the gateway's attributes) cost on its path,
// through our provider and through the SDK's with its batch processor,
// side by side; both export to nothing.
func BenchmarkRequestSpans(b *testing.B) {
	run := func(b *testing.B, tp trace.TracerProvider) {
		tr := tp.Tracer("github.com/wasmesh/wasmesh/mesh")
		server := trace.WithSpanKind(trace.SpanKindServer)
		b.ReportAllocs()
		for b.Loop() {
			ctx, s := tr.Start(context.Background(), "wasmesh.request", server)
			s.SetAttributes(attribute.String("http.request.method", "GET"), attribute.String("url.path", "/rust/hi"))
			_, g := tr.Start(ctx, "wasmesh.guest")
			g.SetAttributes(attribute.Float64("wasmesh.guest.instantiate_ms", 0), attribute.Float64("wasmesh.guest.run_ms", 0.004),
				attribute.Int("wasmesh.guest.memory_pages", 17), attribute.Int("wasmesh.guest.exit_code", 0), attribute.Bool("wasmesh.guest.reused", true))
			g.End()
			s.SetAttributes(attribute.Int("http.response.status_code", 200), attribute.String("wasmesh.request_id", "ba73da737e186a77"),
				attribute.String("http.route", "rust"), attribute.String("wasmesh.service", "rust"), attribute.String("wasmesh.version", "sha256:9084be8d3daf"))
			s.End()
		}
	}
	b.Run("ours", func(b *testing.B) {
		tp, err := newProvider(1, nil, discardExporter{}, env(nil))
		if err != nil {
			b.Fatal(err)
		}
		defer tp.Shutdown(context.Background())
		run(b, tp)
	})
	b.Run("sdk", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(1))),
			sdktrace.WithBatcher(sdkDiscard{}))
		defer tp.Shutdown(context.Background())
		run(b, tp)
	})
}

type discardExporter struct{}

func (discardExporter) export(context.Context, []*span) error { return nil }
func (discardExporter) transient()                            {}
func (discardExporter) shutdown(context.Context) error        { return nil }

type sdkDiscard struct{}

func (sdkDiscard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (sdkDiscard) Shutdown(context.Context) error                             { return nil }

// TestProviderSDKExporter: the SDK's exporters (here stdouttrace) get the
// provider's spans whole.
func TestProviderSDKExporter(t *testing.T) {
	var out strings.Builder
	tp, err := NewTracerProvider(context.Background(), TracingOptions{Exporter: "stdout", SampleRatio: -1, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	ctx, s := tp.Tracer("github.com/wasmesh/wasmesh/mesh").Start(context.Background(), "wasmesh.request", trace.WithSpanKind(trace.SpanKindServer))
	_, g := tp.Tracer("github.com/wasmesh/wasmesh/mesh").Start(ctx, "wasmesh.guest")
	g.SetAttributes(attribute.Int("wasmesh.guest.exit_code", 3))
	g.SetStatus(codes.Error, "exit 3")
	g.End()
	s.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"Name":"wasmesh.request"`, `"Name":"wasmesh.guest"`, `"Key":"wasmesh.guest.exit_code"`,
		`"Description":"exit 3"`, `"service.name"`, `"SpanID":"` + s.SpanContext().SpanID().String(), `"InstrumentationScope":{"Name":"github.com/wasmesh/wasmesh/mesh"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stdout exporter's output has no %s:\n%s", want, out.String())
		}
	}
}

// failingExporter refuses every batch.
type failingExporter struct{}

func (failingExporter) export(context.Context, []*span) error {
	return errors.New("the receiver is down")
}
func (failingExporter) shutdown(context.Context) error { return nil }

// TestProviderCountsFailedExports: spans whose export failed are counted
// as failed, not exported.
func TestProviderCountsFailedExports(t *testing.T) {
	if e, f := sevenSpans(t, failingExporter{}); e != 0 || f != 7 {
		t.Errorf("7 spans to an exporter that fails: %d exported, %d failed", e, f)
	}
}

// sevenSpans ends seven spans of a provider exporting to exp, shuts it
// down, and returns how many it counted exported and failed.
func sevenSpans(t *testing.T, exp spanExporter) (exported, failed uint64) {
	t.Helper()
	tp, err := newProvider(1, nil, exp, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 7; i++ {
		_, s := tp.Tracer("t").Start(context.Background(), "s")
		s.End()
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	return tp.exported.Load(), tp.failed.Load()
}

// orderExporter records whether it was shut down during an export, and
// exports after its shutdown; an export waits for its context's end.
type orderExporter struct{ inExport, shutDuring, shut, afterShut atomic.Int32 }

func (e *orderExporter) export(ctx context.Context, spans []*span) error {
	if e.shut.Load() != 0 {
		e.afterShut.Add(1)
	}
	e.inExport.Add(1)
	defer e.inExport.Add(-1)
	<-ctx.Done()
	time.Sleep(20 * time.Millisecond)
	return ctx.Err()
}

func (e *orderExporter) shutdown(context.Context) error {
	if e.inExport.Load() != 0 {
		e.shutDuring.Store(1)
	}
	e.shut.Store(1)
	return nil
}

// TestProviderShutdownOrder: a Shutdown whose context ends while an export
// waits gives that export up, counts what it did not send as dropped, and
// shuts the exporter down only after the export returned, never calling
// it again.
func TestProviderShutdownOrder(t *testing.T) {
	exp := &orderExporter{}
	tp, err := newProvider(1, nil, exp, env(map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "1", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	tr := tp.Tracer("t")
	_, s := tr.Start(context.Background(), "a")
	s.End()
	testutil.WaitFor(t, "the first export", func() bool { return exp.inExport.Load() == 1 })
	for i := 0; i < 3; i++ {
		_, s = tr.Start(context.Background(), "b")
		s.End()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if err := tp.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown past its context: %v", err)
	}
	if exp.shutDuring.Load() != 0 || exp.afterShut.Load() != 0 || exp.shut.Load() != 1 {
		t.Errorf("exporter shut down during an export: %v; exports after its shutdown: %d", exp.shutDuring.Load() != 0, exp.afterShut.Load())
	}
	if f, d := tp.failed.Load(), tp.droppedTotal.Load(); f != 1 || d != 3 {
		t.Errorf("%d failed, %d dropped; want 1 (the export given up) and 3 (never sent)", f, d)
	}
}

// TestUnrecordedContext: an unrecorded span's context is one allocation
// with its span in it, which the trace package finds as it finds one that
// trace.ContextWithSpan put there; the parent's values pass through, and a
// span put over it hides it.
func TestUnrecordedContext(t *testing.T) {
	if spanKey == nil {
		t.Fatal("the trace package's span key was not found")
	}
	type key struct{}
	tr := NewUnrecordedProvider().Tracer("t")
	parent := context.WithValue(context.Background(), key{}, "v")
	ctx, s := tr.Start(parent, "request")
	if got := trace.SpanFromContext(ctx); got != s {
		t.Errorf("SpanFromContext = %v, want the span Start returned", got)
	}
	if !trace.SpanContextFromContext(ctx).Equal(s.SpanContext()) || !s.SpanContext().IsValid() {
		t.Errorf("SpanContextFromContext = %v, span's %v", trace.SpanContextFromContext(ctx), s.SpanContext())
	}
	if ctx.Value(key{}) != "v" {
		t.Error("the parent's value is lost")
	}
	child, cs := tr.Start(ctx, "guest")
	if cs.SpanContext().TraceID() != s.SpanContext().TraceID() || trace.SpanFromContext(child) != cs {
		t.Errorf("child %v of %v", cs.SpanContext(), s.SpanContext())
	}
	other := trace.ContextWithSpan(ctx, trace.SpanFromContext(context.Background()))
	if trace.SpanFromContext(other) == s {
		t.Error("a span put over the unrecorded one does not hide it")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = tr.Start(parent, "request") }); n != 1 {
		t.Errorf("Start of an unrecorded span allocates %.0f times, want 1", n)
	}
}

// copyingExporter is a transient exporter: it keeps a copy of what it
// exports, and the bodies it was given (by pointer, never read again).
type copyingExporter struct {
	spans  []tracetest.SpanStub
	bodies []*span
}

func (e *copyingExporter) export(_ context.Context, spans []*span) error {
	for _, s := range spans {
		st := s.stub()
		st.Attributes = slices.Clone(st.Attributes)
		st.Events = slices.Clone(st.Events)
		e.spans = append(e.spans, st)
		e.bodies = append(e.bodies, s)
	}
	return nil
}

func (*copyingExporter) shutdown(context.Context) error { return nil }
func (*copyingExporter) transient()                     {}

// TestSpanBodyReused: once exported, a span's body goes to a later span,
// and what a reference to the first does then (set attributes, a name, a
// status, an event; end again) changes nothing of the later one, which is
// exported as made; the first no longer records.
func TestSpanBodyReused(t *testing.T) {
	exp := &copyingExporter{}
	tp, err := newProvider(1, nil, exp, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown(context.Background())
	tr := tp.Tracer("test")
	ctx := context.Background()
	reused := 0
	for i := range 50 {
		var old [3]trace.Span
		for k := range old {
			_, old[k] = tr.Start(ctx, "old")
			old[k].End()
		}
		if err := tp.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
		before := len(exp.bodies)
		var fresh [3]trace.Span
		for k := range fresh {
			_, fresh[k] = tr.Start(ctx, fmt.Sprintf("fresh-%d-%d", i, k), trace.WithAttributes(attribute.Int("k", k)))
		}
		for _, s := range old {
			s.SetAttributes(attribute.String("stale", "yes"))
			s.SetName("stale")
			s.SetStatus(codes.Error, "stale")
			s.AddEvent("stale")
			s.RecordError(errors.New("stale"))
			s.AddLink(trace.Link{SpanContext: s.SpanContext()})
			s.End()
			if s.IsRecording() {
				t.Fatal("an exported span is still recording")
			}
		}
		for _, s := range fresh {
			s.End()
		}
		if err := tp.ForceFlush(ctx); err != nil {
			t.Fatal(err)
		}
		if got := len(exp.bodies) - before; got != len(fresh) {
			t.Fatalf("round %d: %d spans exported after the stale ones ended again, want the %d fresh ones", i, got, len(fresh))
		}
		for k, st := range exp.spans[before:] {
			want := fmt.Sprintf("fresh-%d-%d", i, k)
			if st.Name != want || len(st.Attributes) != 1 || st.Attributes[0] != attribute.Int("k", k) ||
				st.Status.Code != codes.Unset || len(st.Events) != 0 || len(st.Links) != 0 {
				t.Fatalf("round %d: exported %q, attributes %v, status %v, %d events, %d links; want %q with k=%d only",
					i, st.Name, st.Attributes, st.Status, len(st.Events), len(st.Links), want, k)
			}
			if slices.Contains(exp.bodies[before-len(old):before], exp.bodies[before+k]) {
				reused++
			}
		}
	}
	if reused == 0 {
		t.Fatal("no span body was reused in 50 rounds")
	}
	t.Logf("%d of 150 bodies reused", reused)
}

// blockingExporter is a transient exporter whose exports wait for release
// to close.
type blockingExporter struct{ release chan struct{} }

func (e blockingExporter) export(context.Context, []*span) error { <-e.release; return nil }
func (blockingExporter) shutdown(context.Context) error          { return nil }
func (blockingExporter) transient()                              {}

// TestDroppedSpanBodyReused: a span dropped because the queue is full
// gives its body to a later span at once, and a reference to it changes
// nothing of that span.
func TestDroppedSpanBodyReused(t *testing.T) {
	exp := blockingExporter{release: make(chan struct{})}
	tp, err := newProvider(1, nil, exp, env(map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown(context.Background())
	defer close(exp.release)
	tr := tp.Tracer("test")
	ctx := context.Background()
	_, first := tr.Start(ctx, "first")
	first.End() // taken by the export, which waits
	testutil.WaitFor(t, "the first span's export", func() bool {
		tp.mu.Lock()
		defer tp.mu.Unlock()
		return len(tp.queue) == 0
	})
	_, queued := tr.Start(ctx, "queued")
	queued.End() // the queue is full now
	reused := 0
	for range 50 {
		_, dropped := tr.Start(ctx, "dropped")
		dropped.End()
		_, fresh := tr.Start(ctx, "fresh")
		dropped.SetAttributes(attribute.String("stale", "yes"))
		dropped.SetName("stale")
		dropped.End()
		if dropped.IsRecording() || !fresh.IsRecording() {
			t.Fatalf("dropped span recording %v, the next one %v", dropped.IsRecording(), fresh.IsRecording())
		}
		f := fresh.(*spanRef).s
		if f == dropped.(*spanRef).s {
			reused++
		}
		f.mu.Lock()
		name, attrs := f.name, len(f.attrs)
		f.mu.Unlock()
		if name != "fresh" || attrs != 0 {
			t.Fatalf("the span after a dropped one: name %q, %d attributes; want fresh, none", name, attrs)
		}
		fresh.End() // dropped too
	}
	if reused == 0 {
		t.Fatal("no dropped span's body was reused in 50 tries")
	}
	t.Logf("%d of 50 bodies reused", reused)
}

// TestSamplerFromEnv: OTEL_TRACES_SAMPLER and its argument give the ratio
// of new traces, in their parent-based forms; what is not one is refused,
// naming the variable.
func TestSamplerFromEnv(t *testing.T) {
	for _, tc := range []struct {
		sampler, arg string
		ratio        float64
		ok           bool
		err          string
	}{
		{"", "", 0, false, ""},
		{"parentbased_traceidratio", "0.01", 0.01, true, ""},
		{"traceidratio", "", 1, true, ""},
		{"always_off", "", 0, true, ""},
		{"parentbased_always_on", "", 1, true, ""},
		{"traceidratio", "2", 0, false, "OTEL_TRACES_SAMPLER_ARG"},
		{"jaeger_remote", "", 0, false, `OTEL_TRACES_SAMPLER="jaeger_remote"`},
	} {
		env := map[string]string{"OTEL_TRACES_SAMPLER": tc.sampler, "OTEL_TRACES_SAMPLER_ARG": tc.arg}
		r, ok, err := samplerRatio(func(k string) string { return env[k] })
		if r != tc.ratio || ok != tc.ok || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s %s: %v %v %v, want %v %v %q", tc.sampler, tc.arg, r, ok, err, tc.ratio, tc.ok, tc.err)
		}
	}
	if envServiceName(func(k string) string {
		return map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "team=a, service.name=edge"}[k]
	}) != true {
		t.Error("service.name in OTEL_RESOURCE_ATTRIBUTES not seen")
	}
}

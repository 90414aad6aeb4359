package telemetry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
	"go.opentelemetry.io/otel/trace/noop"
)

// Provider is the gateway's tracer provider: a trace.TracerProvider that
// records spans and hands them, in batches, to one exporter. It does what
// the SDK's provider with a parent-based ratio sampler and a batch span
// processor does, with the work on a request's path cut to what the
// gateway needs: a span's body has room for its attributes, is kept in the
// provider's queue when it ends, and the OTLP/HTTP exporter encodes it
// straight from there, after which the body is reused for a later span, so
// that Start allocates only the span's context, with its reference in it
// (with another exporter, a body too). (The SDK's pair of spans a traced
// request makes cost 3.8 µs and 14 allocations on its path, besides the
// batch processor's channel and the exporter's copy: 18% of a traced
// gateway's throughput.)
//
// Sampling: a span with a parent follows the parent's sampled flag; a new
// trace is sampled when the low 63 bits of its random trace ID fall under
// the ratio, as the SDK's TraceIDRatioBased decides. An unsampled span
// records nothing but has its own span ID, so that what it passes on
// (traceparent) names it.
//
// Limits, the SDK's defaults: 128 attributes a span (more are dropped),
// 128 events and links (more push out the oldest), 128 attributes an
// event or link; all counted as dropped. Batching, as the SDK's batch span
// processor, with its variables: OTEL_BSP_SCHEDULE_DELAY (ms between
// exports, default 5000), OTEL_BSP_MAX_QUEUE_SIZE (spans waiting beyond
// which new ones are dropped and counted, default 2048),
// OTEL_BSP_MAX_EXPORT_BATCH_SIZE (default 512; a full batch is exported
// at once), OTEL_BSP_EXPORT_TIMEOUT (ms one export may take, default
// 30000). Export errors and drops go to otel.Handle; the provider is a
// Prometheus collector of wasmesh_trace_spans_total by result (exported,
// failed, dropped).
type Provider struct {
	embedded.TracerProvider

	bound    uint64 // a new trace is sampled when its trace ID's low 63 bits are below
	res      *resource.Resource
	exp      spanExporter // nil: spans are not recorded
	reuse    bool         // exp keeps nothing of the spans it exported: their bodies are reused
	delay    time.Duration
	timeout  time.Duration
	maxQueue int
	maxBatch int

	tracersMu sync.Mutex
	tracers   map[instrumentation.Scope]*tracer

	// Spans by what came of them, for wasmesh_trace_spans_total.
	exported, failed, droppedTotal atomic.Uint64
	shut                           atomic.Bool // Shutdown was called: spans start unrecorded

	mu      sync.Mutex
	queue   []*span
	dropped uint64 // since the last export: reported then
	stopped bool
	kick    chan struct{}      // a full batch waits
	flushes chan chan struct{} // ForceFlush's: answered once the queue is exported
	stop    chan struct{}      // closed by Shutdown
	done    chan struct{}      // closed when the export loop returns
	stopCtx context.Context    // ended by Shutdown's own context ending
	cancel  context.CancelCauseFunc
	once    sync.Once
}

// spanExporter sends ended spans. Calls come one at a time.
type spanExporter interface {
	export(ctx context.Context, spans []*span) error
	shutdown(ctx context.Context) error
}

// transientExporter is a spanExporter that keeps nothing of the spans
// export is given once it returns (it encodes them): the provider reuses
// their bodies.
type transientExporter interface{ transient() }

// newProvider returns a provider that samples new traces at ratio (0 to
// 1) and exports to exp (nil: no span is recorded), its batching read
// from getenv.
func newProvider(ratio float64, res *resource.Resource, exp spanExporter, getenv func(string) string) (*Provider, error) {
	p := &Provider{
		res: res, exp: exp,
		delay: 5 * time.Second, timeout: 30 * time.Second, maxQueue: 2048, maxBatch: 512,
		tracers: map[instrumentation.Scope]*tracer{},
		kick:    make(chan struct{}, 1),
		flushes: make(chan chan struct{}),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	switch {
	case ratio >= 1:
		p.bound = 1 << 63
	case ratio > 0:
		p.bound = uint64(ratio * (1 << 63))
	}
	for _, v := range []struct {
		name string
		ms   *time.Duration
		n    *int
	}{
		{"OTEL_BSP_SCHEDULE_DELAY", &p.delay, nil},
		{"OTEL_BSP_EXPORT_TIMEOUT", &p.timeout, nil},
		{"OTEL_BSP_MAX_QUEUE_SIZE", nil, &p.maxQueue},
		{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", nil, &p.maxBatch},
	} {
		s := getenv(v.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive whole number", v.name, s)
		}
		if v.ms != nil {
			*v.ms = time.Duration(n) * time.Millisecond
		} else {
			*v.n = n
		}
	}
	p.maxBatch = min(p.maxBatch, p.maxQueue)
	_, p.reuse = exp.(transientExporter)
	p.queue = make([]*span, 0, p.maxBatch)
	p.stopCtx, p.cancel = context.WithCancelCause(context.Background())
	if exp != nil {
		go p.loop()
	} else {
		close(p.done)
	}
	return p, nil
}

// defaultTracerName is the scope of a tracer asked for with no name, the
// SDK's.
const defaultTracerName = "go.opentelemetry.io/otel/sdk/tracer"

// Tracer returns the tracer of an instrumentation scope ("" is the SDK's
// default name).
func (p *Provider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	if name == "" {
		name = defaultTracerName
	}
	c := trace.NewTracerConfig(opts...)
	scope := instrumentation.Scope{Name: name, Version: c.InstrumentationVersion(), SchemaURL: c.SchemaURL(), Attributes: c.InstrumentationAttributes()}
	p.tracersMu.Lock()
	defer p.tracersMu.Unlock()
	t := p.tracers[scope]
	if t == nil {
		t = &tracer{p: p, scope: scope}
		p.tracers[scope] = t
	}
	return t
}

// ForceFlush exports the spans that have ended, and returns when they are
// sent or ctx ends.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p.exp == nil {
		return nil
	}
	answer := make(chan struct{})
	select {
	case p.flushes <- answer:
	case <-p.done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	select {
	case <-answer:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Shutdown exports the spans that have ended and stops the exporter; spans
// ending later are dropped. An export still under way when ctx ends is
// given up.
func (p *Provider) Shutdown(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		p.mu.Lock()
		p.stopped = true
		p.mu.Unlock()
		p.shut.Store(true)
		close(p.stop)
		stopAfter := context.AfterFunc(ctx, func() { p.cancel(context.Cause(ctx)) })
		defer stopAfter()
		select {
		case <-p.done:
		case <-ctx.Done():
			err = context.Cause(ctx)
			// The export under way was given up with the context: the loop
			// returns at once, and the exporter is shut down after it, as
			// it is called one call at a time.
			select {
			case <-p.done:
			case <-time.After(time.Second):
			}
		}
		if p.exp != nil {
			err = errors.Join(err, p.exp.shutdown(ctx))
		}
	})
	return err
}

// end queues an ended span for the exporter.
func (p *Provider) end(s *span) {
	p.mu.Lock()
	if p.stopped || len(p.queue) >= p.maxQueue {
		p.dropped++
		p.mu.Unlock()
		p.droppedTotal.Add(1)
		p.releaseOne(s)
		return
	}
	p.queue = append(p.queue, s)
	full := len(p.queue) == p.maxBatch
	p.mu.Unlock()
	if full {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// loop exports the queue every delay, when a batch is full, on ForceFlush
// and at Shutdown.
func (p *Provider) loop() {
	defer close(p.done)
	t := time.NewTimer(p.delay)
	defer t.Stop()
	var batch []*span
	for {
		var answer chan struct{}
		stopping, all := false, true
		select {
		case <-t.C:
		case <-p.kick:
			all = false // only full batches: the rest waits for the schedule
		case answer = <-p.flushes:
		case <-p.stop:
			stopping = true
		}
		batch = p.exportQueue(batch, all)
		if answer != nil {
			close(answer)
		}
		if stopping {
			return
		}
		if all {
			t.Reset(p.delay)
		}
	}
}

// exportQueue exports the queue's full batches of maxBatch spans, and
// with all the rest too, and returns a spare slice for the next time.
func (p *Provider) exportQueue(spare []*span, all bool) []*span {
	for {
		p.mu.Lock()
		batch := p.queue
		n := len(batch)
		if !all {
			n -= n % p.maxBatch
		}
		p.queue = append(spare[:0], batch[n:]...) // what stays, at the head of the other slice
		clear(batch[n:])
		batch = batch[:n]
		taken := batch
		dropped := p.dropped
		p.dropped = 0
		p.mu.Unlock()
		if dropped > 0 {
			otel.Handle(fmt.Errorf("trace export: %d spans dropped: more than OTEL_BSP_MAX_QUEUE_SIZE=%d waited", dropped, p.maxQueue))
		}
		for len(batch) > 0 {
			if p.stopCtx.Err() != nil { // Shutdown's context ended: the rest is dropped
				p.droppedTotal.Add(uint64(len(batch)))
				p.release(batch)
				clear(batch)
				break
			}
			k := min(len(batch), p.maxBatch)
			ctx, cancel := context.WithTimeoutCause(p.stopCtx, p.timeout, fmt.Errorf("OTEL_BSP_EXPORT_TIMEOUT of %s passed", p.timeout))
			var partial *partialError
			if err := p.exp.export(ctx, batch[:k]); errors.As(err, &partial) {
				rejected := min(uint64(partial.rejected), uint64(k))
				p.failed.Add(rejected)
				p.exported.Add(uint64(k) - rejected)
				otel.Handle(err)
			} else if err != nil {
				p.failed.Add(uint64(k))
				otel.Handle(err)
			} else {
				p.exported.Add(uint64(k))
			}
			cancel()
			p.release(batch[:k])
			clear(batch[:k]) // the spans are garbage now, or reused
			batch = batch[k:]
		}
		spare = taken[:0]
		p.mu.Lock()
		more := len(p.queue) >= p.maxBatch
		p.mu.Unlock()
		if !more || p.stopCtx.Err() != nil {
			return spare
		}
	}
}

// release gives the bodies of spans exported or dropped to later spans,
// when the exporter keeps nothing of them: a reference to one of them acts
// as one to an ended span from now on.
func (p *Provider) release(spans []*span) {
	for _, s := range spans {
		p.releaseOne(s)
	}
}

func (p *Provider) releaseOne(s *span) {
	if p.reuse {
		// Nothing of the body changes until Start takes it: its span has
		// ended, which is all a reference to it looks at. What the span
		// referred to (its attributes' strings, events, links) stays
		// alive until then, or until a collection empties the pool:
		// clearing it here cost the export goroutine a write to every
		// body it had sent.
		spanBodies.Put(s)
	}
}

var spansDesc = prometheus.NewDesc("wasmesh_trace_spans_total",
	"Recorded spans by what came of them: exported (the exporter took them), failed (its export failed: they are lost), dropped (the queue was full, or the provider shut down).",
	[]string{"result"}, nil)

// Describe and Collect make the provider a Prometheus collector of
// wasmesh_trace_spans_total.
func (p *Provider) Describe(ch chan<- *prometheus.Desc) { ch <- spansDesc }

func (p *Provider) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(spansDesc, prometheus.CounterValue, float64(p.exported.Load()), "exported")
	ch <- prometheus.MustNewConstMetric(spansDesc, prometheus.CounterValue, float64(p.failed.Load()), "failed")
	ch <- prometheus.MustNewConstMetric(spansDesc, prometheus.CounterValue, float64(p.droppedTotal.Load()), "dropped")
}

// sampled says whether a new trace with ID tid is recorded.
func (p *Provider) sampled(tid trace.TraceID) bool {
	return binary.BigEndian.Uint64(tid[8:16])>>1 < p.bound
}

type tracer struct {
	embedded.Tracer
	p     *Provider
	scope instrumentation.Scope
}

// Start starts a span, a child of the span in ctx unless the options say
// it is a new root.
func (t *tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	c := trace.NewSpanStartConfig(opts...)
	var parent trace.SpanContext
	if !c.NewRoot() {
		parent = trace.SpanContextFromContext(ctx)
	}
	var tid trace.TraceID
	var flags trace.TraceFlags
	if parent.IsValid() {
		tid, flags = parent.TraceID(), parent.TraceFlags()
	} else {
		for !tid.IsValid() {
			binary.NativeEndian.PutUint64(tid[:8], rand.Uint64())
			binary.NativeEndian.PutUint64(tid[8:], rand.Uint64())
		}
		flags = flags.WithSampled(t.p.sampled(tid))
	}
	var sid trace.SpanID
	for !sid.IsValid() {
		binary.NativeEndian.PutUint64(sid[:], rand.Uint64())
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, TraceState: parent.TraceState()})
	if !flags.IsSampled() || t.p.exp == nil || t.p.shut.Load() {
		u := &spanContext[unrecorded, *unrecorded]{Context: ctx, span: unrecorded{sc: sc, p: t.p}}
		return u, &u.span
	}
	start := c.Timestamp()
	if start.IsZero() {
		start = time.Now()
	}
	kind := c.SpanKind()
	if kind < trace.SpanKindInternal || kind > trace.SpanKindConsumer { // unspecified, or not a kind: as the SDK
		kind = trace.SpanKindInternal
	}
	s, _ := spanBodies.Get().(*span)
	if s == nil {
		s = new(span)
	}
	s.mu.Lock()
	s.gen++ // a reference to the body's last span finds it gone
	s.tracer, s.sc, s.parent, s.name, s.kind, s.start, s.end = t, sc, parent, name, kind, start, time.Time{}
	s.attrs, s.events, s.links = s.inline[:0], nil, nil
	s.droppedAttrs, s.droppedEvents, s.droppedLinks = 0, 0, 0
	s.status, s.ended = sdktrace.Status{}, false
	s.setAttributes(c.Attributes())
	for _, l := range c.Links() {
		s.addLink(l)
	}
	gen := s.gen
	s.mu.Unlock()
	rc := &spanContext[spanRef, *spanRef]{Context: ctx, span: spanRef{s: s, gen: gen, sc: sc, tracer: t}}
	return rc, &rc.span
}

// unrecorded is a span that is not recorded (unsampled, or no exporter):
// it carries its context on, and its provider makes its children.
type unrecorded struct {
	noop.Span
	sc trace.SpanContext
	p  *Provider
}

func (u *unrecorded) SpanContext() trace.SpanContext       { return u.sc }
func (u *unrecorded) TracerProvider() trace.TracerProvider { return u.p }

// spanContext is a context with a span in it, as trace.ContextWithSpan
// makes, in one allocation with the span instead of two: every request
// starts one. S is the span (unrecorded, or a recorded span's spanRef), P
// its pointer, the trace.Span.
type spanContext[S any, P interface {
	*S
	trace.Span
}] struct {
	context.Context
	span S
}

func (c *spanContext[S, P]) Value(key any) any {
	if key == spanKey {
		return P(&c.span)
	}
	return c.Context.Value(key)
}

// spanKey is the key trace.ContextWithSpan keeps a span under (unexported
// by the trace package): the one trace.SpanFromContext asks for.
var spanKey = func() any {
	var p keyProbe
	trace.SpanFromContext(&p)
	return p.key
}()

// keyProbe is a context that records the key it is asked for.
type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	p.key = key
	return nil
}

const (
	maxAttributes = 128
	maxEvents     = 128
	maxLinks      = 128
)

// span is the body of a recorded span. Its fields are written under mu
// until it ends, and only read afterwards. A body the exporter is done
// with is reused for a later span (Provider.release): gen counts the spans
// it has been, and a spanRef of an earlier one finds it ended.
type span struct {
	tracer *tracer

	mu            sync.Mutex
	gen           uint64
	sc, parent    trace.SpanContext
	name          string
	kind          trace.SpanKind
	start, end    time.Time
	attrs         []attribute.KeyValue
	inline        [8]attribute.KeyValue // attrs' first home: a gateway span has up to eight
	droppedAttrs  int
	events        []sdktrace.Event
	droppedEvents int
	links         []sdktrace.Link
	droppedLinks  int
	status        sdktrace.Status
	ended         bool
}

// spanBodies are the bodies of spans exported (or dropped), for Start.
var spanBodies sync.Pool

// spanRef is a recorded span as Start gives it out: its context, and its
// body for as long as the body is this span's (gen). A reference kept
// after the span was exported acts as one to an ended span.
type spanRef struct {
	embedded.Span
	s      *span
	gen    uint64
	sc     trace.SpanContext
	tracer *tracer
}

// lock locks the span's body when the span has not ended (nor its body
// gone to another), and says whether it did.
func (r *spanRef) lock() bool {
	r.s.mu.Lock()
	if r.s.gen != r.gen || r.s.ended {
		r.s.mu.Unlock()
		return false
	}
	return true
}

func (r *spanRef) SpanContext() trace.SpanContext { return r.sc }

func (r *spanRef) TracerProvider() trace.TracerProvider { return r.tracer.p }

func (r *spanRef) IsRecording() bool {
	if !r.lock() {
		return false
	}
	r.s.mu.Unlock()
	return true
}

func (r *spanRef) End(opts ...trace.SpanEndOption) {
	end := time.Time{}
	if len(opts) > 0 {
		c := trace.NewSpanEndConfig(opts...)
		end = c.Timestamp()
	}
	if !r.lock() {
		return
	}
	s := r.s
	if end.IsZero() {
		// The start plus the time passed on the monotonic clock, as the
		// SDK does: one clock reading, not time.Now's two, and a duration
		// that a step of the wall clock does not change.
		end = s.start.Add(time.Since(s.start))
	}
	s.ended, s.end = true, end
	s.mu.Unlock()
	r.tracer.p.end(s)
}

func (r *spanRef) SetAttributes(kv ...attribute.KeyValue) {
	if r.lock() {
		r.s.setAttributes(kv)
		r.s.mu.Unlock()
	}
}

// setAttributes sets kv's valid attributes, a key set again taking its
// new value, as the SDK does.
func (s *span) setAttributes(kv []attribute.KeyValue) {
next:
	for _, a := range kv {
		if !a.Valid() {
			s.droppedAttrs++
			continue
		}
		for i := range s.attrs {
			if s.attrs[i].Key == a.Key {
				s.attrs[i] = a
				continue next
			}
		}
		if len(s.attrs) >= maxAttributes {
			s.droppedAttrs++
			continue
		}
		s.attrs = append(s.attrs, a)
	}
}

func (r *spanRef) SetStatus(code codes.Code, description string) {
	if !r.lock() {
		return
	}
	s := r.s
	defer s.mu.Unlock()
	if s.status.Code > code { // Ok is final; Error is not undone by Unset
		return
	}
	s.status = sdktrace.Status{Code: code}
	if code == codes.Error {
		s.status.Description = description
	}
}

func (r *spanRef) SetName(name string) {
	if r.lock() {
		r.s.name = name
		r.s.mu.Unlock()
	}
}

func (r *spanRef) AddEvent(name string, opts ...trace.EventOption) {
	c := trace.NewEventConfig(opts...)
	ts := c.Timestamp()
	if ts.IsZero() {
		ts = time.Now()
	}
	if !r.lock() {
		return
	}
	s := r.s
	defer s.mu.Unlock()
	ev := sdktrace.Event{Name: name, Time: ts}
	ev.Attributes, ev.DroppedAttributeCount = eventAttributes(c.Attributes())
	if len(s.events) >= maxEvents { // the oldest goes, as in the SDK
		s.droppedEvents++
		s.events = append(s.events[:0], s.events[1:]...)
	}
	s.events = append(s.events, ev)
}

// RecordError adds an "exception" event for err, as the SDK does.
func (r *spanRef) RecordError(err error, opts ...trace.EventOption) {
	if err == nil {
		return
	}
	t := reflect.TypeOf(err)
	typ := t.String()
	if t.PkgPath() != "" {
		typ = t.PkgPath() + "." + t.Name()
	}
	opts = append(opts, trace.WithAttributes(attribute.String("exception.type", typ), attribute.String("exception.message", err.Error())))
	r.AddEvent("exception", opts...)
}

func (r *spanRef) AddLink(l trace.Link) {
	if r.lock() {
		r.s.addLink(l)
		r.s.mu.Unlock()
	}
}

func (s *span) addLink(l trace.Link) {
	if !l.SpanContext.IsValid() && len(l.Attributes) == 0 && l.SpanContext.TraceState().Len() == 0 {
		return
	}
	sl := sdktrace.Link{SpanContext: l.SpanContext}
	sl.Attributes, sl.DroppedAttributeCount = eventAttributes(l.Attributes)
	if len(s.links) >= maxLinks { // the oldest goes, as in the SDK
		s.droppedLinks++
		s.links = append(s.links[:0], s.links[1:]...)
	}
	s.links = append(s.links, sl)
}

// eventAttributes is kv as an event or link keeps it: as given, at most
// maxAttributes of them, and how many were dropped.
func eventAttributes(kv []attribute.KeyValue) ([]attribute.KeyValue, int) {
	if len(kv) == 0 {
		return nil, 0
	}
	n := min(len(kv), maxAttributes)
	return slices.Clone(kv[:n]), len(kv) - n
}

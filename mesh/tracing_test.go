package mesh

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// frontendConfig is a Rust frontend calling the Zig hello as "users".
const frontendConfig = `
drain_delay: 0s
services:
  users: { versions: [ { path: $EX/hello/zig/hello.wasm } ] }
  frontend:
    versions: [ { path: $EX/frontend/rust/frontend.wasm } ]
    outbound: [ "wasmesh://users" ]
routes:
  - { match: { path_prefix: /users }, service: users }
  - { match: { path_prefix: / }, service: frontend }
`

func recordingFixture(t *testing.T, config string) (*fixture, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	return newFixtureWith(t, config, Options{TracerProvider: tp}), exp
}

// TestTraceThroughHTTPCall: the inbound trace id reaches the guest, its
// http_call, the called service and its guest, each span the child of the
// one before.
func TestTraceThroughHTTPCall(t *testing.T) {
	f, exp := recordingFixture(t, frontendConfig)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := f.get("/x", "Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if r.status != 200 || !strings.Contains(r.body, "(traceparent 00-"+traceID+"-") || !regexp.MustCompile(`-> 200 sha256:[0-9a-f]{64} hello from zig: GET /x 0 bytes\n$`).MatchString(r.body) {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	spans := exp.GetSpans()
	want := []string{"wasmesh.request", "wasmesh.guest", "wasmesh.http_call", "wasmesh.request", "wasmesh.guest"}
	chain := spanChain(t, spans, "00f067aa0ba902b7")
	if strings.Join(chain, " ") != strings.Join(want, " ") {
		t.Fatalf("span chain %v, want %v", chain, want)
	}
	for _, s := range spans {
		if s.SpanContext.TraceID().String() != traceID {
			t.Fatalf("span %s has trace %s, want %s", s.Name, s.SpanContext.TraceID(), traceID)
		}
		// Each server span continues a context that came over the wire (or,
		// in-process, as if it had): its parent is remote, as a sampler
		// sees it.
		if s.Name == "wasmesh.request" && !s.Parent.IsRemote() {
			t.Errorf("a %s span's parent is not remote", s.Name)
		}
	}
}

// TestModuleSeesItsOwnTraceContext: a module's HTTP_TRACEPARENT names the
// span it runs in (the wasmesh.guest span, in the client's trace), not the
// client's field as sent; a field the gateway refused is not passed on,
// and neither is the tracestate of a trace it did not continue.
func TestModuleSeesItsOwnTraceContext(t *testing.T) {
	f, exp := recordingFixture(t, `
services:
  env: { versions: [ { path: $EX/misbehave/rust/misbehave.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: env }
`)
	envVar := func(body, name string) string {
		for line := range strings.Lines(body) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+"="); ok {
				return v
			}
		}
		return ""
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := f.get("/?do=env", "Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01", "Tracestate", "vendor=1")
	var guest tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == "wasmesh.guest" {
			guest = s
		}
	}
	want := "00-" + traceID + "-" + guest.SpanContext.SpanID().String() + "-01"
	if got := envVar(r.body, "HTTP_TRACEPARENT"); got != want || envVar(r.body, "HTTP_TRACESTATE") != "vendor=1" {
		t.Errorf("HTTP_TRACEPARENT %q, HTTP_TRACESTATE %q; want %q (the guest's span), vendor=1", got, envVar(r.body, "HTTP_TRACESTATE"), want)
	}

	// A field the gateway refused, or two of them (which one would it
	// be?): the trace it started instead.
	for _, header := range [][]string{
		{"Traceparent", "ff-" + traceID + "-00f067aa0ba902b7-01", "Tracestate", "vendor=1"},
		{"Traceparent", "00-" + traceID + "-00f067aa0ba902b7-01", "Traceparent", "00-" + traceID + "-00f067aa0ba902b8-01", "Tracestate", "vendor=1"},
	} {
		r = f.get("/?do=env", header...)
		got := envVar(r.body, "HTTP_TRACEPARENT")
		if len(got) != 55 || strings.Contains(got, traceID) || envVar(r.body, "HTTP_TRACESTATE") != "" {
			t.Errorf("%q: HTTP_TRACEPARENT %q, HTTP_TRACESTATE %q; want a new trace's, none", header, got, envVar(r.body, "HTTP_TRACESTATE"))
		}
	}
}

// spanChain follows parent → child links from the span whose parent is root,
// returning the names in order; every span must be on the chain.
func spanChain(t *testing.T, spans tracetest.SpanStubs, root string) []string {
	t.Helper()
	children := map[string][]tracetest.SpanStub{}
	for _, s := range spans {
		children[s.Parent.SpanID().String()] = append(children[s.Parent.SpanID().String()], s)
	}
	var chain []string
	for parent := root; len(children[parent]) > 0; {
		kids := children[parent]
		if len(kids) != 1 {
			t.Fatalf("span %s has %d children, want 1", parent, len(kids))
		}
		chain = append(chain, kids[0].Name)
		parent = kids[0].SpanContext.SpanID().String()
	}
	if len(chain) != len(spans) {
		t.Fatalf("%d spans, %d on the chain from %s: orphans among %v", len(spans), len(chain), root, names(spans))
	}
	return chain
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name+"<-"+s.Parent.SpanID().String())
	}
	return out
}

// TestTraceNoCrossTalk: 1000 concurrent requests, each with its own trace,
// each fanning out through http_call: every span lands in its own trace.
func TestTraceNoCrossTalk(t *testing.T) {
	f, exp := recordingFixture(t, frontendConfig)
	const n = 1000
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			traceID := fmt.Sprintf("%032x", i+1)
			req, _ := http.NewRequest("GET", f.srv.URL+fmt.Sprintf("/req%d", i), nil)
			req.Header.Set("Traceparent", "00-"+traceID+"-00000000000000aa-01")
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				errs <- err
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), "traceparent 00-"+traceID+"-") || !strings.Contains(string(body), fmt.Sprintf("GET /req%d ", i)) {
				errs <- fmt.Errorf("request %d: %q", i, body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	byTrace := map[trace.TraceID]tracetest.SpanStubs{}
	for _, s := range exp.GetSpans() {
		byTrace[s.SpanContext.TraceID()] = append(byTrace[s.SpanContext.TraceID()], s)
	}
	if len(byTrace) != n {
		t.Fatalf("%d traces, want %d", len(byTrace), n)
	}
	for id, spans := range byTrace {
		if len(spans) != 5 {
			t.Fatalf("trace %s has %d spans, want 5: %v", id, len(spans), names(spans))
		}
		spanChain(t, spans, "00000000000000aa")
	}
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func TestOutboundDenied(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	counting := &countingListener{Listener: ln}
	upstream := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "leaked") }))
	upstream.Listener = counting
	upstream.Start()
	defer upstream.Close()
	f := newFixture(t, `
services:
  frontend:
    versions: [ { path: $EX/frontend/rust/frontend.wasm } ]
    env: { USERS_URL: "`+upstream.URL+`" }
    outbound: [ "http://127.0.0.1:1" ]
routes:
  - { match: { path_prefix: / }, service: frontend }
`)
	r := f.get("/x")
	if r.status != 502 || !strings.Contains(r.body, "DENIED (2)") {
		t.Fatalf("got %d %q, want 502 and DENIED", r.status, r.body)
	}
	if n := counting.n.Load(); n != 0 {
		t.Fatalf("%d connections reached the target the allow-list refused", n)
	}
}

func TestOutboundBoundedByCallerDeadline(t *testing.T) {
	released := make(chan struct{})
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
			close(released)
		}
	}))
	defer upstream.Close()
	f := newFixture(t, `
services:
  frontend:
    versions: [ { path: $EX/frontend/rust/frontend.wasm } ]
    env: { USERS_URL: "`+upstream.URL+`" }
    outbound: [ "`+upstream.URL+`" ]
    limits: { timeout: 200ms }
routes:
  - { match: { path_prefix: / }, service: frontend }
`)
	start := time.Now()
	r := f.get("/slow")
	if r.status != 504 {
		t.Fatalf("got %d %q, want 504", r.status, r.body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("the request took %s with a 200ms deadline", d)
	}
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("the outbound request was not cancelled at the deadline")
	}
}

func TestTraceContextInjectedWhateverTheGuestSets(t *testing.T) {
	var got atomic.Value
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Traceparent") + "|" + r.Header.Get("X-From"))
		io.WriteString(w, "ok\n")
	}))
	defer upstream.Close()
	f, _ := recordingFixture(t, `
services:
  frontend:
    versions: [ { path: $EX/frontend/go/frontend.wasm } ]
    env: { USERS_URL: "`+upstream.URL+`" }
    outbound: [ "`+upstream.URL+`" ]
    limits: { memory: 128MiB }
routes:
  - { match: { path_prefix: / }, service: frontend }
`)
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	r := f.get("/p", "Traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	if r.status != 200 || !strings.HasSuffix(r.body, "-> 200 - ok\n") {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	tp, from, _ := strings.Cut(got.Load().(string), "|")
	if !strings.HasPrefix(tp, "00-"+traceID+"-") || strings.Contains(tp, "b7ad6b7169203331") || from != "frontend-go" {
		t.Fatalf("upstream saw traceparent %q, X-From %q: want the trace continued by a new span", tp, from)
	}
}

// TestMetricsMove checks /metrics parses and the counters move by the right
// amounts for a known sequence of requests.
func TestMetricsMove(t *testing.T) {
	f := newFixture(t, frontendConfig)
	admin := newTestServer(t, f.g.AdminHandler())
	before := scrape(t, admin)
	for range 3 {
		f.get("/a")
	}
	f.get("/users/x")
	f.get("/users/x")
	after := scrape(t, admin)
	diff := func(name string, labels map[string]string) float64 {
		return value(after, name, labels) - value(before, name, labels)
	}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"wasmesh_requests_total", map[string]string{"route": "1:frontend", "service": "frontend", "status": "2xx"}, 3},
		{"wasmesh_requests_total", map[string]string{"route": "0:users", "service": "users", "status": "2xx"}, 2},
		{"wasmesh_requests_total", map[string]string{"route": "wasmesh://users", "service": "users", "status": "2xx"}, 3},
		{"wasmesh_outbound_calls_total", map[string]string{"service": "frontend", "target": "wasmesh://users", "result": "ok"}, 3},
		{"wasmesh_request_duration_seconds_count", map[string]string{"route": "1:frontend"}, 3},
		{"wasmesh_guest_run_seconds_count", map[string]string{"service": "users"}, 5},
		{"wasmesh_guest_instantiate_seconds_count", map[string]string{"service": "frontend"}, 3},
	}
	for _, c := range checks {
		if got := diff(c.name, c.labels); got != c.want {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if v := value(after, "wasmesh_compile_total", map[string]string{"result": "miss"}); v < 2 {
		t.Errorf("wasmesh_compile_total{result=miss} = %v, want ≥ 2", v)
	}
	if v := value(after, "wasmesh_guest_instances", nil); v != 0 {
		t.Errorf("wasmesh_guest_instances = %v at rest, want 0", v)
	}
}

type sample struct {
	labels map[string]string
	value  float64
}

// scrape fetches and parses /metrics with the Prometheus text parser.
func scrape(t *testing.T, admin string) map[string][]sample {
	t.Helper()
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	out := map[string][]sample{}
	for name, fam := range families {
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.Counter != nil:
				out[name] = append(out[name], sample{labels, m.GetCounter().GetValue()})
			case m.Gauge != nil:
				out[name] = append(out[name], sample{labels, m.GetGauge().GetValue()})
			case m.Histogram != nil:
				out[name+"_count"] = append(out[name+"_count"], sample{labels, float64(m.GetHistogram().GetSampleCount())})
			}
		}
	}
	return out
}

// value sums the samples of name whose labels include want.
func value(m map[string][]sample, name string, want map[string]string) float64 {
	total := 0.0
	for _, s := range m[name] {
		ok := true
		for k, v := range want {
			if s.labels[k] != v {
				ok = false
			}
		}
		if ok {
			total += s.value
		}
	}
	return total
}

// TestComponentFetchesInProcess: a componentize-js component's fetch() of
// http://users/… goes in-process to the users service, through the
// outbound list and with the trace carried on.
func TestComponentFetchesInProcess(t *testing.T) {
	f, exp := recordingFixture(t, `
services:
  users:
    versions: [ { path: $EX/hello/zig/hello.wasm } ]
  frontend:
    versions: [ { path: $EX/components/javascript-frontend/frontend.wasm } ]
    outbound: [ "wasmesh://users" ]
  closed:
    versions: [ { path: $EX/components/javascript-frontend/frontend.wasm } ]
routes:
  - { match: { path_prefix: /frontend }, service: frontend, strip_prefix: true }
  - { match: { path_prefix: /closed }, service: closed, strip_prefix: true }
`)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	r := f.get("/frontend/x", "Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	if r.status != 200 || !strings.Contains(r.body, "(traceparent 00-"+traceID+"-") || !strings.HasSuffix(r.body, "-> 200 hello from zig: GET /x 0 bytes\n") {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	want := []string{"wasmesh.request", "wasmesh.guest", "wasmesh.http_call", "wasmesh.request", "wasmesh.guest"}
	if chain := spanChain(t, exp.GetSpans(), "00f067aa0ba902b7"); strings.Join(chain, " ") != strings.Join(want, " ") {
		t.Fatalf("span chain %v, want %v", chain, want)
	}
	// A POST's body, which componentize-js writes after it hands the
	// request to the host, goes with it.
	if r := f.do("POST", "/frontend/x", strings.NewReader("hello")); r.status != 200 || !strings.HasSuffix(r.body, "-> 200 hello from zig: POST /x 5 bytes\n") {
		t.Fatalf("POST: got %d %q", r.status, r.body)
	}
	// Without users in its outbound list, the fetch is refused.
	if r := f.get("/closed/x"); r.status == 200 && strings.Contains(r.body, "hello from zig") {
		t.Fatalf("a component without the outbound entry reached users: %d %q", r.status, r.body)
	}
}

// TestOutboundHostCase: a call's host is matched in any case, as the
// allow-list matches it, and names the service of that name in lower
// case: an entry for wasmesh://users never reaches a service "Users".
func TestOutboundHostCase(t *testing.T) {
	f := newFixture(t, `
services:
  frontend:
    versions: [ { path: $EX/frontend/rust/frontend.wasm } ]
    env: { USERS_URL: "wasmesh://Users" }
    outbound: [ "wasmesh://users" ]
  users: { versions: [ { path: $EX/hello/zig/hello.wasm } ] }
  Users: { versions: [ { path: $EX/hello/c/hello.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: frontend }
`)
	r := f.get("/x")
	if r.status != 200 || !strings.Contains(r.body, "hello from zig") || strings.Contains(r.body, "hello from c") {
		t.Fatalf("got %d %q, want users' (zig) answer", r.status, r.body)
	}
}

package dataplane

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/router"
)

func TestCleanPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"rust", "/rust"},
		{"/rust/hi", "/rust/hi"},
		{"/rust/hi/", "/rust/hi/"},
		{"//rust//hi", "/rust/hi"},
		{"/rust/./hi/", "/rust/hi/"},
		{"/rust/../zig", "/zig"},
		{"/../../etc/passwd", "/etc/passwd"},
		{"/a/b/..", "/a"},
		{"/a/b/../", "/a/"},
		{"/./", "/"},
		{"/..", "/"},
	} {
		if got := cleanPath(tc.in); got != tc.want {
			t.Errorf("cleanPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	// A clean path, the common case, is returned as it is.
	for _, p := range []string{"/rust/hi", "/rust/hi/", "/"} {
		if n := testing.AllocsPerRun(100, func() { _ = cleanPath(p) }); n != 0 {
			t.Errorf("cleanPath(%q) allocates %.0f times, want 0", p, n)
		}
	}
}

func TestRequestCarrier(t *testing.T) {
	h := http.Header{}
	h.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	h.Add("Baggage", "a=1")
	h.Add("Baggage", "b=2")
	h.Set("X-B3-Traceid", "abc")
	c := requestCarrier(h)
	for _, k := range []string{"traceparent", "Traceparent", "tracestate", "x-b3-traceid"} {
		if got, want := c.Get(k), h.Get(k); got != want {
			t.Errorf("Get(%q) = %q, want %q", k, got, want)
		}
	}
	if got := c.Values("baggage"); len(got) != 2 || got[0] != "a=1" || got[1] != "b=2" {
		t.Errorf("Values(baggage) = %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { _ = c.Get("traceparent"); _ = c.Values("baggage") }); n != 0 {
		t.Errorf("Get and Values of the propagators' keys allocate %.0f times, want 0", n)
	}
}

// TestLimiterShared: requests that find a service's limiter missing at the
// same moment share the one that is stored, so max_concurrency holds from
// the first request on; a change of limits replaces it.
func TestLimiterShared(t *testing.T) {
	for round := 0; round < 50; round++ {
		p := &Plane{}
		svc := &config.Service{Name: "slow", Limits: config.Limits{MaxConcurrency: 1, MaxQueue: 1}}
		const n = 8
		got := make([]*limiter, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				got[i] = p.limiterFor(svc)
			}()
		}
		close(start)
		wg.Wait()
		stored, _ := p.limiters.Load("slow")
		for i, l := range got {
			if l != stored.(*limiter) {
				t.Fatalf("round %d: request %d got a limiter of its own, not the stored one", round, i)
			}
		}
		changed := &config.Service{Name: "slow", Limits: config.Limits{MaxConcurrency: 2, MaxQueue: 1}}
		if l := p.limiterFor(changed); l == stored.(*limiter) || l.max != 2 {
			t.Fatalf("round %d: limits changed to 2, limiter of max %d", round, l.max)
		}
	}
}

// TestComponentHeader: a component's request header, made when it asks for
// it, is the client's fields with the gateway's own: the version, the
// request id, the peer's SPIFFE ID (a client's own claim to one dropped),
// and the trace context of the guest's span, replacing the client's.
func TestComponentHeader(t *testing.T) {
	const clientTrace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Accept", "text/plain")
	r.Header.Set(PeerIDHeader, "spiffe://evil/spoofed")
	r.Header["X_spiffe_peer_id"] = []string{"spiffe://evil/underscored"} // one to a WSGI shim
	r.Header["X_request_id"] = []string{"forged"}
	r.Header["X_custom"] = []string{"kept"}
	r.Header.Set("Connection", "keep-alive, X-Hop") // the connection's, not the request's
	r.Header.Set("Keep-Alive", "timeout=5")
	r.Header.Set("X-Hop", "1")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Proxy-Authorization", "Basic eDp5")
	r.Header.Set("Traceparent", clientTrace)
	r.Header.Set("Tracestate", "vendor=1")
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled,
	})
	for _, peer := range []string{"", "spiffe://example.org/ns/default/sa/frontend"} {
		req := &Request{HTTP: r, ID: "req-1", PeerID: peer, Version: &config.Version{Digest: "sha256:abc"}, bag: "k=v"}
		cr := &componentRun{req: req}
		cr.ctx = guestContext{Context: trace.ContextWithSpanContext(context.Background(), sc), req: req}
		h := cr.header()
		want := http.Header{
			"Accept":             {"text/plain"},
			"X_custom":           {"kept"},
			router.VersionHeader: {"sha256:abc"},
			RequestIDHeader:      {"req-1"},
			"Traceparent":        {"00-01000000000000000000000000000000-0200000000000000-01"},
			"Baggage":            {"k=v"},
		}
		if peer != "" {
			want[PeerIDHeader] = []string{peer}
		}
		if !reflect.DeepEqual(h, want) {
			t.Errorf("peer %q: header %v, want %v", peer, h, want)
		}
	}
	if got := r.Header.Get("Traceparent"); got != clientTrace {
		t.Errorf("the client's header was changed: Traceparent %q", got)
	}
}

// TestComponentTrailer: the request trailers a component gets have none
// of the fields the gateway sets or a client could forge there.
func TestComponentTrailer(t *testing.T) {
	r := httptest.NewRequest("POST", "/x", nil)
	r.Trailer = http.Header{
		"X-Checksum":         {"abc"},
		PeerIDHeader:         {"spiffe://evil/spoofed"},
		"Traceparent":        {"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		RequestIDHeader:      {"forged"},
		router.VersionHeader: {"sha256:forged"},
		"Content-Length":     {"5"},
		"X_spiffe_peer_id":   {"spiffe://evil/underscored"},
		"X_forwarded_for":    {"6.6.6.6"},
	}
	cr := &componentRun{req: &Request{HTTP: r}}
	if got, want := cr.trailer(), (http.Header{"X-Checksum": {"abc"}}); !reflect.DeepEqual(got, want) {
		t.Errorf("trailer %v, want %v", got, want)
	}
}

// TestEscapeQuery: a component's query is a URI's: printable ASCII as
// sent, every other byte (a raw 0xff, which no string can carry, UTF-8,
// controls) percent-encoded.
func TestEscapeQuery(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a=1&b=%FF", "a=1&b=%FF"},
		{"q=\xff", "q=%FF"},
		{"q=caf\u00e9", "q=caf%C3%A9"},
		{"\x7f\x01", "%7F%01"},
		{"a b", "a%20b"},
	} {
		if got := escapeQuery(tc.in); got != tc.want {
			t.Errorf("escapeQuery(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestClientForDSCP: a version's http_calls go out with its DSCP of the
// moment: a reload that changes it (or gives its colour to a version of
// another DSCP) gets another client, whose connections carry the new one.
func TestClientForDSCP(t *testing.T) {
	col, err := bpf.New(bpf.Options{Mode: bpf.ModeOff})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	p := &Plane{opts: Options{Colourer: col}}
	client := func(c bpf.Colour, dscp int) *http.Client {
		cl, err := p.clientFor(c, dscp, "")
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	first := client(1, 20)
	if again := client(1, 20); again != first {
		t.Error("two clients for one colour and DSCP")
	}
	if client(1, 40) == first {
		t.Error("one client for DSCP 20 and 40 of colour 1: the second's connections carry the first's DSCP")
	}
}

func TestNewRequestID(t *testing.T) {
	// One id in sixteen starts with a zero digit; 4096 ids miss one with
	// probability (15/16)^4096, which is nil in practice.
	leadingZero := false
	for i := 0; i < 4096; i++ {
		id := newRequestID()
		if len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("newRequestID() = %q, want 16 lowercase hex digits", id)
		}
		leadingZero = leadingZero || id[0] == '0'
	}
	if !leadingZero {
		t.Fatal("no id of 4096 starts with 0: leading zeros are dropped")
	}
}

// TestAppendMethod: a request span's method is one of the HTTP
// conventions' or "_OTHER", the method sent kept beside it.
func TestAppendMethod(t *testing.T) {
	for _, tc := range []struct{ method, want string }{
		{"GET", "http.request.method=GET"},
		{"PATCH", "http.request.method=PATCH"},
		{"get", "http.request.method=_OTHER http.request.method_original=get"},
		{"M39408396", "http.request.method=_OTHER http.request.method_original=M39408396"},
	} {
		var got []string
		for _, kv := range appendMethod(nil, tc.method) {
			got = append(got, string(kv.Key)+"="+kv.Value.AsString())
		}
		if strings.Join(got, " ") != tc.want {
			t.Errorf("appendMethod(%q) = %v, want %s", tc.method, got, tc.want)
		}
	}
}

// TestTrapDetail: a trap is told with its likely cause (memory near the
// limit, the guest's last stderr line); other errors are left alone.
func TestTrapDetail(t *testing.T) {
	trap := &host.TrapError{Cause: "unreachable"}
	for _, tc := range []struct {
		name   string
		err    error
		pages  uint32
		limit  int64
		stderr string
		want   string
	}{
		{"oom", trap, 242, 16 << 20, "memory allocation of 1048576 bytes failed\n\n",
			"guest trapped: unreachable (its memory at 242 of the 256 pages of its limit: out of memory?; stderr: memory allocation of 1048576 bytes failed)"},
		{"panic", trap, 17, 16 << 20, "thread 'main' panicked at src/main.rs:3:5:\nboom\n", "guest trapped: unreachable (stderr: boom)"},
		{"bare", trap, 17, 16 << 20, "", "guest trapped: unreachable"},
		{"no limit", trap, 17, 0, "", "guest trapped: unreachable"},
		{"not a trap", host.ErrDeadline, 256, 16 << 20, "x", "deadline exceeded"},
	} {
		if got := trapDetail(tc.err, tc.pages, tc.limit, []byte(tc.stderr)).Error(); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestRedactedURL: a call's URL in spans and logs has no password.
func TestRedactedURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://svc:s3cr3t@host:8080/x?a=1": "http://REDACTED:REDACTED@host:8080/x?a=1",
		"https://host/p":                    "https://host/p",
	} {
		u, err := url.Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := redactedURL(u); got != want {
			t.Errorf("redactedURL(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestCarrierJoinsFields: tracestate sent as two fields is one list (W3C
// Trace Context, 3.3.1), and what Get returns shares no memory with the
// request's header.
func TestCarrierJoinsFields(t *testing.T) {
	h := http.Header{"Tracestate": {"a=1", "b=2"}}
	c := requestCarrier(h)
	if got := c.Get("tracestate"); got != "a=1,b=2" {
		t.Errorf("tracestate %q, want a=1,b=2", got)
	}
	h["Tracestate"] = []string{"vendor=abc"}
	if got := c.Get("tracestate"); got != "vendor=abc" || unsafe.StringData(got) == unsafe.StringData(h["Tracestate"][0]) {
		t.Errorf("tracestate %q: not a copy of the header's", got)
	}
}

// TestHeadLength: a guest's answer to a HEAD request keeps the
// Content-Length it declares (its body is empty, as a HEAD's is); a GET's
// is its body's, and a HEAD's malformed one is not taken.
func TestHeadLength(t *testing.T) {
	for _, tc := range []struct {
		method, declared, body, want string
	}{
		{"HEAD", "1000", "", "1000"},
		{"HEAD", "", "", "0"},
		{"HEAD", "-1", "", "0"},
		{"HEAD", "01", "", "0"},
		{"GET", "1000", "abc", "3"},
	} {
		w := httptest.NewRecorder()
		req := &Request{HTTP: httptest.NewRequest(tc.method, "/x", nil)}
		header := http.Header{}
		if tc.declared != "" {
			header.Set("Content-Length", tc.declared)
		}
		req.answer(w, 200, header, []byte(tc.body))
		if got := w.Header().Get("Content-Length"); got != tc.want {
			t.Errorf("%s declaring %q: Content-Length %q, want %q", tc.method, tc.declared, got, tc.want)
		}
	}
}

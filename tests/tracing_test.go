package tests

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// span is what the test keeps of an exported span.
type span struct {
	name, traceID, spanID, parentID, service string
	attrs                                    map[string]string // values as text
	status                                   string            // STATUS_CODE_UNSET, _OK or _ERROR
}

// otlpReceiver is a real OTLP/HTTP trace receiver: it decodes the protobuf
// export requests that gateways send it.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []span
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" {
			http.NotFound(w, req)
			return
		}
		var body io.Reader = req.Body
		if req.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(req.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			body = gz
		}
		data, _ := io.ReadAll(body)
		var export coltrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(data, &export); err != nil {
			t.Errorf("OTLP receiver: %v", err)
			http.Error(w, err.Error(), 400)
			return
		}
		r.mu.Lock()
		for _, rs := range export.ResourceSpans {
			service := ""
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					service = a.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					attrs := map[string]string{}
					for _, a := range s.Attributes {
						v := a.GetValue()
						switch v.Value.(type) {
						case *commonpb.AnyValue_StringValue:
							attrs[a.Key] = v.GetStringValue()
						case *commonpb.AnyValue_IntValue:
							attrs[a.Key] = strconv.FormatInt(v.GetIntValue(), 10)
						case *commonpb.AnyValue_BoolValue:
							attrs[a.Key] = strconv.FormatBool(v.GetBoolValue())
						case *commonpb.AnyValue_DoubleValue:
							attrs[a.Key] = strconv.FormatFloat(v.GetDoubleValue(), 'g', -1, 64)
						}
					}
					r.spans = append(r.spans, span{name: s.Name, traceID: hex.EncodeToString(s.TraceId),
						spanID: hex.EncodeToString(s.SpanId), parentID: hex.EncodeToString(s.ParentSpanId), service: service, attrs: attrs,
						status: s.GetStatus().GetCode().String()})
				}
			}
		}
		r.mu.Unlock()
		resp, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(resp)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *otlpReceiver) trace(id string) []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []span
	for _, s := range r.spans {
		if s.traceID == id {
			out = append(out, s)
		}
	}
	return out
}

func (r *otlpReceiver) env() []string {
	return []string{"OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + r.srv.URL, "OTEL_BSP_SCHEDULE_DELAY=50"}
}

// chain checks spans form one trace with a single root and every other span
// the child of another, each having one child, and returns their names from
// the root down.
func chain(t *testing.T, spans []span) []string {
	t.Helper()
	byParent := map[string][]span{}
	for _, s := range spans {
		byParent[s.parentID] = append(byParent[s.parentID], s)
	}
	roots := byParent[""]
	if len(roots) != 1 {
		t.Fatalf("%d root spans, want 1: %+v", len(roots), spans)
	}
	var names []string
	for cur := roots; len(cur) > 0; cur = byParent[cur[0].spanID] {
		if len(cur) != 1 {
			t.Fatalf("span %s has %d children, want 1: %+v", cur[0].parentID, len(cur), spans)
		}
		names = append(names, cur[0].name)
	}
	if len(names) != len(spans) {
		t.Fatalf("%d spans but a chain of %d: orphans in %+v", len(spans), len(names), spans)
	}
	return names
}

var traceIDIn = regexp.MustCompile(`traceparent 00-([0-9a-f]{32})-`)

// TestTraceAcrossHops: client → gateway A → Rust frontend → http_call
// wasmesh://users → Zig hello; and client → gateway A → Rust frontend →
// http_call over HTTP → gateway B → AssemblyScript hello. Each chain is one
// trace in which every span's parent is the span before it.
func TestTraceAcrossHops(t *testing.T) {
	recv := newOTLPReceiver(t)
	b := serve(t, `
drain_delay: 0s
services:
  ts: { versions: [ { path: $EX/hello/typescript/hello.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: ts }
`, recv.env()...)
	a := serve(t, `
drain_delay: 0s
services:
  users: { versions: [ { path: $EX/hello/zig/hello.wasm } ] }
  local:
    versions: [ { path: $EX/frontend/rust/frontend.wasm } ]
    outbound: [ "wasmesh://users" ]
  remote:
    versions: [ { path: $EX/frontend/rust/frontend.wasm } ]
    env: { USERS_URL: "`+b.url+`" }
    outbound: [ "`+b.url+`" ]
routes:
  - { match: { path_prefix: /local }, service: local, strip_prefix: true }
  - { match: { path_prefix: /remote }, service: remote, strip_prefix: true }
`, recv.env()...)

	tests := []struct {
		path, wantBody string
		wantChain      string
	}{
		{"/local/x", " hello from zig: GET /x 0 bytes\n",
			"wasmesh.request wasmesh.guest wasmesh.http_call wasmesh.request wasmesh.guest"},
		{"/remote/y", " hello from typescript: GET /y 0 bytes\n",
			"wasmesh.request wasmesh.guest wasmesh.http_call wasmesh.request wasmesh.guest"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			code, body, _ := get(t, a.url+tc.path)
			m := traceIDIn.FindStringSubmatch(body)
			if code != 200 || !strings.HasSuffix(body, tc.wantBody) || !strings.Contains(body, "-> 200 sha256:") || m == nil {
				t.Fatalf("got %d %q", code, body)
			}
			id := m[1]
			poll(t, "5 spans of trace "+id, func() bool { return len(recv.trace(id)) >= 5 })
			spans := recv.trace(id)
			if got := strings.Join(chain(t, spans), " "); got != tc.wantChain {
				t.Fatalf("chain %q, want %q", got, tc.wantChain)
			}
			// What each span says of its request and its guest's run.
			for _, s := range spans {
				var want map[string]*regexp.Regexp
				switch s.name {
				case "wasmesh.request":
					want = map[string]*regexp.Regexp{
						"http.request.method": regexp.MustCompile(`^GET$`), "url.path": regexp.MustCompile(`^/`),
						"http.response.status_code": regexp.MustCompile(`^200$`), "wasmesh.request_id": regexp.MustCompile(`^[0-9a-f]{16}$`),
						"wasmesh.service": regexp.MustCompile(`^(local|remote|users|ts)$`), "wasmesh.version": regexp.MustCompile(`^sha256:[0-9a-f]{64}$`),
					}
				case "wasmesh.guest":
					want = map[string]*regexp.Regexp{
						"wasmesh.guest.exit_code": regexp.MustCompile(`^0$`), "wasmesh.guest.reused": regexp.MustCompile(`^(true|false)$`),
						"wasmesh.guest.memory_pages": regexp.MustCompile(`^[1-9][0-9]*$`), "wasmesh.guest.run_ms": regexp.MustCompile(`^[0-9.e-]+$`),
					}
				}
				for k, re := range want {
					if v, ok := s.attrs[k]; !ok || !re.MatchString(v) {
						t.Errorf("%s span of %s: %s = %q, want %v (attributes %v)", s.name, s.service, k, v, re, s.attrs)
					}
				}
			}
		})
	}
	// The gateway counts what it exported.
	poll(t, "wasmesh_trace_spans_total{result=exported} of at least 8", func() bool {
		n, _ := strconv.Atoi(metric(t, a, `wasmesh_trace_spans_total{result="exported"}`))
		return n >= 8
	})
	if v := metric(t, a, `wasmesh_trace_spans_total{result="failed"}`); v != "0" {
		t.Errorf(`wasmesh_trace_spans_total{result="failed"} %q, want 0`, v)
	}
	// The exporter is flushed at shutdown: nothing is lost after the drain.
	for _, g := range []*gateway{a, b} {
		g.p.cmd.Process.Signal(syscall.SIGTERM)
		if r := g.p.wait(t); r.code != 0 {
			t.Fatalf("gateway exit %d: %s", r.code, r.stderr)
		}
	}
}

// TestTraceExportFailureLogged: a trace export that fails is said in the
// gateway's log, in its format, with its level (not by the standard
// library's logger, which JSON log pipelines cannot parse).
func TestTraceExportFailureLogged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens there
	g := serve(t, `
services:
  hello: { versions: [ { path: $EX/hello/zig/hello.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: hello }
`, "OTEL_TRACES_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT=http://"+closed, "OTEL_BSP_SCHEDULE_DELAY=50")
	if status, _, _ := get(t, g.url+"/x"); status != 200 {
		t.Fatalf("GET: %d", status)
	}
	poll(t, "the failed export logged", func() bool { return strings.Contains(g.p.stderr.String(), "level=WARN msg=opentelemetry") })
}

// TestTraceStatus: a 5xx answer, a guest's own included, makes the
// server span an error (OpenTelemetry's HTTP conventions), with
// error.type; a 4xx does not, but makes the upstream's client span one;
// OTEL_SERVICE_NAME names the service, OTEL_TRACES_SAMPLER is followed.
func TestTraceStatus(t *testing.T) {
	recv := newOTLPReceiver(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }))
	t.Cleanup(up.Close)
	g := serve(t, `
services:
  mis: { versions: [ { path: $EX/misbehave/rust/misbehave.wasm } ] }
  up: { versions: [ { upstream: { endpoints: [ "`+up.URL+`" ] } } ] }
routes:
  - { match: { path_prefix: /up }, service: up }
  - { match: { path_prefix: / }, service: mis }
`, append(recv.env(), "OTEL_SERVICE_NAME=edge-gateway", "OTEL_TRACES_SAMPLER=parentbased_always_off")...)
	const sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, path := range []string{"/?do=status&arg=500", "/up/x", "/"} {
		get(t, g.url+path, "Traceparent", sampled)
	}
	get(t, g.url+"/unsampled") // a new trace: OTEL_TRACES_SAMPLER says none
	var spans []span
	poll(t, "the spans", func() bool { spans = recv.trace("4bf92f3577b34da6a3ce929d0e0e4736"); return len(spans) >= 6 })
	time.Sleep(300 * time.Millisecond) // a later batch would hold the unsampled trace's
	got := map[string]string{}
	for _, s := range spans {
		if s.service != "edge-gateway" {
			t.Errorf("span %s of service %q, want edge-gateway", s.name, s.service)
		}
		if s.name == "wasmesh.request" || s.name == "wasmesh.upstream" {
			got[s.name+" "+s.attrs["http.response.status_code"]] = s.status + " " + s.attrs["error.type"]
		}
		switch s.name { // the HTTP conventions' required attributes
		case "wasmesh.request":
			if s.attrs["url.scheme"] != "http" {
				t.Errorf("server span's url.scheme %q", s.attrs["url.scheme"])
			}
		case "wasmesh.upstream":
			host := strings.TrimPrefix(up.URL, "http://")
			_, port, _ := strings.Cut(host, ":")
			if s.attrs["http.request.method"] != "GET" || s.attrs["url.full"] != up.URL+"/up/x" || s.attrs["server.port"] != port || s.attrs["server.address"] != "127.0.0.1" {
				t.Errorf("upstream span's attributes %v", s.attrs)
			}
		}
	}
	for k, want := range map[string]string{
		"wasmesh.request 500":  "STATUS_CODE_ERROR 500",
		"wasmesh.request 404":  "STATUS_CODE_UNSET ",
		"wasmesh.upstream 404": "STATUS_CODE_ERROR 404",
		"wasmesh.request 200":  "STATUS_CODE_UNSET ",
	} {
		if got[k] != want {
			t.Errorf("%s: status and error.type %q, want %q (all: %v)", k, got[k], want, got)
		}
	}
	recv.mu.Lock()
	n := len(recv.spans)
	recv.mu.Unlock()
	if n != len(spans) {
		t.Errorf("%d spans exported, %d of the sampled trace: OTEL_TRACES_SAMPLER=parentbased_always_off not followed", n, len(spans))
	}
}

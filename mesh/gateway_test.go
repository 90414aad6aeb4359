package mesh

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/testutil"
)

// examples is the directory of the example guests, absolute.
var examples, _ = filepath.Abs("../examples")

// fixture is a gateway on a config file in a temp dir, served by httptest.
type fixture struct {
	t    *testing.T
	g    *Gateway
	srv  *httptest.Server
	path string
	logs *testutil.LockedBuffer // the gateway's log, when a test keeps it
}

func newFixture(t *testing.T, config string) *fixture {
	t.Helper()
	return newFixtureWith(t, config, Options{})
}

// newFixtureWith is newFixture with gateway options (a tracer provider, an HTTP client).
func newFixtureWith(t *testing.T, config string, opts Options) *fixture {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "wasmesh.yaml")
	if err := os.WriteFile(path, []byte(expand(config)), 0o644); err != nil {
		t.Fatal(err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		if testing.Verbose() {
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
	}
	opts.ConfigPath = path
	opts.CacheDir = filepath.Join(os.TempDir(), "wasmesh-test-cache")
	g, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(context.Background()) })
	if err := g.LoadFile(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, g: g, path: path, srv: httptest.NewServer(g)}
	t.Cleanup(f.srv.Close)
	return f
}

// expand replaces $EX with the examples directory and adds a store.
func expand(config string) string {
	return "store: store\n" + strings.ReplaceAll(config, "$EX", examples)
}

type response struct {
	status  int
	body    string
	version string
	header  http.Header
}

func (f *fixture) do(method, path string, body io.Reader, header ...string) response {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1]) // a name given twice is sent twice
	}
	client := *f.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, body: string(b), version: resp.Header.Get("X-Wasmesh-Version"), header: resp.Header}
}

func (f *fixture) get(path string, header ...string) response {
	return f.do("GET", path, nil, header...)
}

const helloConfig = `
drain_delay: 0s
services:
  rust: { versions: [ { path: $EX/hello/rust/hello.wasm } ] }
  zig: { versions: [ { path: $EX/hello/zig/hello.wasm } ] }
  c: { versions: [ { path: $EX/hello/c/hello.wasm } ] }
  typescript: { versions: [ { path: $EX/hello/typescript/hello.wasm } ] }
  go: { versions: [ { path: $EX/hello/go/hello.wasm } ], limits: { memory: 128MiB } }
  split:
    versions:
      - { path: $EX/hello/rust/hello.wasm, name: stable, weight: 90 }
      - { path: $EX/hello/zig/hello.wasm, name: canary, weight: 10 }
  bad:
    versions: [ { path: $EX/misbehave/rust/misbehave.wasm } ]
    limits: { memory: 16MiB, timeout: 1s, max_body: 1KiB }
routes:
  - { match: { path_prefix: /rust }, service: rust, strip_prefix: true }
  - { match: { path_prefix: /zig }, service: zig, strip_prefix: true }
  - { match: { path_prefix: /c }, service: c, strip_prefix: true }
  - { match: { path_prefix: /typescript }, service: typescript, strip_prefix: true }
  - { match: { path_prefix: /go }, service: go, strip_prefix: true }
  - { match: { path_prefix: /split }, service: split }
  - { match: { path_prefix: /bad }, service: bad, strip_prefix: true }
`

func TestServeEveryLanguage(t *testing.T) {
	f := newFixture(t, helloConfig)
	for _, lang := range []string{"rust", "zig", "c", "typescript", "go"} {
		t.Run(lang, func(t *testing.T) {
			r := f.do("POST", "/"+lang+"/hi", strings.NewReader("12345"))
			want := fmt.Sprintf("hello from %s: POST /hi 5 bytes\n", lang)
			if r.status != 200 || r.body != want {
				t.Fatalf("got %d %q, want 200 %q", r.status, r.body, want)
			}
			if !strings.HasPrefix(r.version, "sha256:") || len(r.version) != 71 {
				t.Fatalf("X-Wasmesh-Version = %q, want a full digest", r.version)
			}
			if r.header.Get("X-Request-Id") == "" {
				t.Fatal("no X-Request-Id")
			}
		})
	}
}

func TestRequestHandling(t *testing.T) {
	f := newFixture(t, helloConfig)
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		header     []string
		wantStatus int
		wantBody   string
		wantHeader map[string]string
	}{
		{name: "no route", path: "/nowhere", wantStatus: 404, wantBody: "no route for"},
		{name: "segment-aware prefix", path: "/rustacean", wantStatus: 404},
		{name: "status header", path: "/bad/?do=status&arg=201", wantStatus: 201, wantBody: "status 201"},
		{name: "location gives 302", path: "/bad/?do=redirect&arg=/elsewhere", wantStatus: 302,
			wantHeader: map[string]string{"Location": "/elsewhere"}},
		{name: "trap is 502", path: "/bad/?do=trap", wantStatus: 502, wantBody: "request id:"},
		{name: "304 with a body is a 304 without it", path: "/bad/?do=status&arg=304", wantStatus: 304},
		{name: "204 with a body is a 204 without it", path: "/bad/?do=status&arg=204", wantStatus: 204},
		{name: "garbage is 502", path: "/bad/?do=garbage", wantStatus: 502},
		{name: "endless loop is 504", path: "/bad/?do=loop", wantStatus: 504},
		{name: "memory bomb is 502", path: "/bad/?do=oom", wantStatus: 502},
		{name: "exit without output is 502", path: "/bad/?do=exit&arg=3", wantStatus: 502},
		{name: "body over max_body is 413", method: "POST", path: "/bad/?do=echo", body: strings.Repeat("x", 2000), wantStatus: 413},
		{name: "body at max_body passes", method: "POST", path: "/bad/?do=echo", body: strings.Repeat("x", 1024), wantStatus: 200},
		{name: "request id propagated", path: "/rust/", header: []string{"X-Request-Id", "abc-123"}, wantStatus: 200,
			wantHeader: map[string]string{"X-Request-Id": "abc-123"}},
		{name: "dot-dot cleaned before routing", path: "/zig/../rust/x", wantStatus: 200, wantBody: "hello from rust: GET /x"},
		{name: "guest cannot set hop-by-hop or version headers", path: "/bad/?do=env", wantStatus: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = "GET"
			}
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			r := f.do(method, tc.path, body, tc.header...)
			if r.status != tc.wantStatus || !strings.Contains(r.body, tc.wantBody) {
				t.Fatalf("got %d %q, want %d containing %q", r.status, r.body, tc.wantStatus, tc.wantBody)
			}
			for k, v := range tc.wantHeader {
				if got := r.header.Get(k); got != v {
					t.Fatalf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestCGIEnvironment(t *testing.T) {
	f := newFixture(t, helloConfig)
	r := f.do("POST", "/bad/path?do=env", strings.NewReader("hi"), "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "Content-Type", "text/plain")
	for _, want := range []string{
		"REQUEST_METHOD=POST", "PATH_INFO=/path", "SCRIPT_NAME=/bad", "QUERY_STRING=do=env", "CONTENT_LENGTH=2",
		"CONTENT_TYPE=text/plain", "X_MATCHED_ROUTE=6:bad", "X_WASMESH_VERSION=" + r.version,
		"X_REQUEST_ID=" + r.header.Get("X-Request-Id"), "body=hi",
	} {
		if !strings.Contains(r.body, want+"\n") {
			t.Errorf("guest environment lacks %q:\n%s", want, r.body)
		}
	}
	// The client's trace, continued by the gateway's span.
	if !regexp.MustCompile(`\nHTTP_TRACEPARENT=00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01\n`).MatchString(r.body) ||
		strings.Contains(r.body, "b7ad6b7169203331") {
		t.Errorf("guest environment's HTTP_TRACEPARENT is not the trace continued:\n%s", r.body)
	}
}

func TestPinning(t *testing.T) {
	f := newFixture(t, helloConfig)
	canary := ""
	for _, v := range f.g.Config().Services["split"].Versions {
		if v.Name == "canary" {
			canary = v.Digest
		}
	}
	for _, pin := range []string{canary, canary[:15], "canary"} {
		for range 50 {
			if r := f.get("/split", "X-Wasmesh-Version", pin); r.status != 200 || r.version != canary {
				t.Fatalf("pin %s: got %d from %s", pin, r.status, r.version)
			}
		}
	}
	if r := f.get("/split", "X-Wasmesh-Version", "sha256:00000000"); r.status != 404 || !strings.Contains(r.body, "unknown version") {
		t.Fatalf("unknown pin: got %d %q, want 404 naming the unknown version", r.status, r.body)
	}
}

// TestWeightsThroughGateway checks the split end to end (the router's tests
// cover the distribution in depth).
func TestWeightsThroughGateway(t *testing.T) {
	f := newFixture(t, helloConfig)
	counts := map[string]int{}
	const n = 2000
	for range n {
		r := f.get("/split")
		if r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		counts[strings.SplitN(r.body, ":", 2)[0]]++
	}
	rust := float64(counts["hello from rust"]) / n * 100
	if rust < 85 || rust > 95 { // 90 ± 7.5σ
		t.Fatalf("stable got %.1f%% of requests, want 90±5 (%v)", rust, counts)
	}
}

// A guest that traps, loops forever, exhausts its memory or writes garbage
// fails only its own request: others served at the same time succeed.
func TestBadGuestsFailAlone(t *testing.T) {
	f := newFixture(t, helloConfig)
	stop := make(chan struct{})
	var waits []func()
	for _, action := range []string{"trap", "loop", "oom", "garbage", "stack", "big&arg=100000000"} {
		waits = append(waits, testutil.Load(1, stop, func() {
			resp, err := f.srv.Client().Get(f.srv.URL + "/bad/?do=" + action)
			if err != nil {
				t.Errorf("%s: %v", action, err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 500 && !strings.HasPrefix(action, "big") {
				t.Errorf("%s: status %d, want a 5xx", action, resp.StatusCode)
			}
		}))
	}
	deadline := time.Now().Add(3 * time.Second)
	good := 0
	for time.Now().Before(deadline) {
		for _, lang := range []string{"rust", "zig"} {
			if r := f.get("/" + lang + "/"); r.status != 200 {
				t.Fatalf("%s failed beside bad guests: %d %q", lang, r.status, r.body)
			}
			good++
		}
	}
	close(stop)
	for _, wait := range waits {
		wait()
	}
	if good < 10 {
		t.Fatalf("only %d good requests completed", good)
	}
}

func newTestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestH2C serves HTTP/2 over cleartext (prior knowledge), as Serve
// configures: a request without a body, with one of a known length, with
// one streamed without a length, and with one declared empty.
func TestH2C(t *testing.T) {
	f := newFixture(t, helloConfig)
	base := serveFixture(t, f)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	for _, tc := range []struct {
		name   string
		method string
		body   io.Reader
		length int64 // -1: unknown, sent without a content-length
		want   string
	}{
		{"no body", "GET", nil, 0, "hello from zig: GET /h2 0 bytes\n"},
		{"known length", "POST", strings.NewReader("hello"), 5, "hello from zig: POST /h2 5 bytes\n"},
		{"streamed", "POST", io.MultiReader(strings.NewReader("hel"), strings.NewReader("lo")), -1, "hello from zig: POST /h2 5 bytes\n"},
		{"declared empty", "POST", strings.NewReader(""), 0, "hello from zig: POST /h2 0 bytes\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, base+"/zig/h2", tc.body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = tc.length
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.ProtoMajor != 2 || string(body) != tc.want {
				t.Fatalf("got %s %q, want HTTP/2 and %q", resp.Proto, body, tc.want)
			}
		})
	}
}

// TestClientGoneStopsGuest: served by Serve (internal/http1), a guest whose
// client went away is stopped for it: its request ends as 499, before its
// 1 s deadline would make it a 504.
func TestClientGoneStopsGuest(t *testing.T) {
	f := newFixture(t, helloConfig)
	base := serveFixture(t, f)
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /bad/?do=loop HTTP/1.1\r\nHost: x\r\n\r\n")
	time.Sleep(100 * time.Millisecond) // running, and watched
	c.Close()
	admin := httptest.NewServer(f.g.AdminHandler())
	defer admin.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(admin.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, "wasmesh_requests_total{") || !strings.Contains(line, `service="bad"`) {
				continue
			}
			if !strings.Contains(line, `status="4xx"`) {
				t.Fatalf("the guest was not stopped for its client: %s", line)
			}
			return
		}
	}
	t.Fatal("the request was never counted")
}

// TestServeNetHTTP: with Options.NetHTTP, Serve answers plain HTTP/1.1 and
// h2c with net/http's server alone, and a request is served as with http1,
// within the same http limits.
func TestServeNetHTTP(t *testing.T) {
	for _, netHTTP := range []bool{false, true} {
		f := newFixtureWith(t, "http: { max_headers: 5, max_request_line: 256B }\n"+helloConfig, Options{NetHTTP: netHTTP})
		base := serveFixture(t, f)
		for _, h2 := range []bool{false, true} {
			tr := &http.Transport{Protocols: new(http.Protocols)}
			tr.Protocols.SetHTTP1(!h2)
			tr.Protocols.SetUnencryptedHTTP2(h2)
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Post(base+"/c/x", "text/plain", strings.NewReader("abc"))
			if err != nil {
				t.Fatalf("net/http %v, h2c %v: %v", netHTTP, h2, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := "hello from c: POST /x 3 bytes\n"; resp.StatusCode != 200 || string(body) != want || (resp.ProtoMajor == 2) != h2 {
				t.Errorf("net/http %v, h2c %v: %s %d %q, want %q", netHTTP, h2, resp.Proto, resp.StatusCode, body, want)
			}
			// Six fields (User-Agent, Accept-Encoding and these; Host too
			// on HTTP/1) are past max_headers; a line of 300 bytes past
			// max_request_line.
			req, _ := http.NewRequest("GET", base+"/c/x", nil)
			req.Header.Set("X-A", "1")
			req.Header.Set("X-B", "2")
			req.Header.Set("X-C", "3")
			req.Header.Set("X-D", "4")
			if resp, err := (&http.Client{Transport: tr}).Do(req); err != nil || resp.StatusCode != 431 {
				t.Errorf("net/http %v, h2c %v: six header fields: %v, %v; want 431", netHTTP, h2, resp, err)
			}
			if h2 {
				continue // max_request_line is HTTP/1's
			}
			if resp, err := (&http.Client{Transport: tr}).Get(base + "/c/" + strings.Repeat("x", 300)); err != nil || resp.StatusCode != 414 {
				t.Errorf("net/http %v: a request line of 300 bytes: %v, %v; want 414", netHTTP, resp, err)
			}
		}
	}
}

// TestServeComponent: a wasi:http/proxy component built by componentize-js
// is served like a module version: routed with strip_prefix, its body read,
// the version header set.
func TestServeComponent(t *testing.T) {
	f := newFixture(t, `
services:
  js:
    versions: [ { path: $EX/components/javascript/hello.wasm } ]
routes:
  - { match: { path_prefix: /js }, service: js, strip_prefix: true }
`)
	r := f.do("POST", "/js/hi?x=1", strings.NewReader("hello"))
	if r.status != 200 || r.body != "hello from javascript: POST /hi 5 bytes" || r.version == "" || r.header.Get("Content-Type") != "text/plain" {
		t.Fatalf("got %d %q (version %q, content type %q)", r.status, r.body, r.version, r.header.Get("Content-Type"))
	}
	// A query with a byte no string can carry (not UTF-8) reaches the
	// component percent-encoded: answered, not the version's 502.
	c := dialRaw(t, strings.TrimPrefix(f.srv.URL, "http://"))
	defer c.Close()
	io.WriteString(c, "GET /js/hi?q=\xff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "hello from javascript: GET /hi 0 bytes" {
		t.Fatalf("a query not UTF-8: %d %q", resp.StatusCode, body)
	}
}

// TestAnswerWithoutContentType: an answer made without a Content-Type
// (hostile.wasm's "ok\n") goes without one, over the gateway's HTTP/1
// server and net/http's: no type guessed from its bytes.
func TestAnswerWithoutContentType(t *testing.T) {
	testdata, _ := filepath.Abs("../internal/component/testdata")
	f := newFixture(t, `
services:
  h: { versions: [ { path: `+testdata+`/hostile.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: h }
`)
	for _, base := range []string{serveFixture(t, f), f.srv.URL} {
		resp, err := http.Get(base + "/a")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ct, ok := resp.Header["Content-Type"]; resp.StatusCode != 200 || string(body) != "ok\n" || ok {
			t.Errorf("%s: %d %q, Content-Type %q; want 200 \"ok\\n\" and none", base, resp.StatusCode, body, ct)
		}
	}
}

// TestServeComponentWarmupNotAnswered: componentize-js's engine answers
// one request an instance, so an instance warmed by a GET answers no
// other (it returns without setting a response): with warmup set, its
// instances start unwarmed, and every request is answered.
func TestServeComponentWarmupNotAnswered(t *testing.T) {
	f := newFixture(t, `
services:
  js:
    versions: [ { path: $EX/components/javascript/hello.wasm } ]
    warmup: /
routes:
  - { match: { path_prefix: /js }, service: js, strip_prefix: true }
`)
	for i := range 4 {
		if r := f.do("POST", "/js/hi", strings.NewReader("hello")); r.status != 200 || r.body != "hello from javascript: POST /hi 5 bytes" {
			t.Fatalf("request %d: %d %q", i, r.status, r.body)
		}
	}
}

// TestServeComponentStreams: what a component writes reaches the client
// while the component goes on (stream.wasm writes "first", waits 300 ms,
// writes "second"), and a component that writes its whole body and returns
// at once has it sent in one piece, with its length.
func TestServeComponentStreams(t *testing.T) {
	testdata, _ := filepath.Abs("../internal/component/testdata")
	f := newFixture(t, strings.ReplaceAll(`
services:
  stream: { versions: [ { path: $TD/stream.wasm } ] }
  c: { versions: [ { path: $EX/components/c/hello.wasm } ] }
routes:
  - { match: { path_prefix: /stream }, service: stream }
  - { match: { path_prefix: /c }, service: c, strip_prefix: true }
`, "$TD", testdata))
	// Twice, after a response that ended before its flush was due: a
	// stream's flush timer is kept for the next stream.
	if r := f.get("/c/"); r.status != 200 {
		t.Fatalf("C hello: %d %q", r.status, r.body)
	}
	for range 2 {
		streamTwoLines(t, f.srv.Client(), f.srv.URL+"/stream")
	}
	if r := f.get("/c/"); r.status != 200 || r.header.Get("Content-Length") != strconv.Itoa(len(r.body)) {
		t.Errorf("C hello: %d %q, Content-Length %q", r.status, r.body, r.header.Get("Content-Length"))
	}
}

// streamTwoLines gets url, whose component writes "first", waits 300 ms
// and writes "second", and fails t unless the first line came before the
// wait was over.
func streamTwoLines(t *testing.T, client *http.Client, url string) {
	t.Helper()
	start := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	firstAt := time.Since(start)
	if err != nil || first != "first\n" {
		t.Fatalf("first line %q, %v", first, err)
	}
	rest, err := io.ReadAll(br)
	total := time.Since(start)
	if err != nil || string(rest) != "second\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
	if total < 300*time.Millisecond || firstAt > total-250*time.Millisecond {
		t.Errorf("first line after %s, the whole body after %s: the first line waited for the component's wait", firstAt, total)
	}
}

// TestMisbehavingComponents: a component's handler that never sets a
// response, traps, or runs past the timeout fails only its own request,
// each with its status and a message that says why.
func TestMisbehavingComponents(t *testing.T) {
	testdata, _ := filepath.Abs("../internal/component/testdata")
	f := newFixture(t, strings.ReplaceAll(`
services:
  never: { versions: [ { path: $TD/misbehave-never.wasm } ] }
  trap: { versions: [ { path: $TD/misbehave-trap.wasm } ] }
  loop: { versions: [ { path: $TD/misbehave-loop.wasm } ], limits: { timeout: 300ms } }
  ok: { versions: [ { path: $EX/hello/c/hello.wasm } ] }
routes:
  - { match: { path_prefix: /never }, service: never }
  - { match: { path_prefix: /trap }, service: trap }
  - { match: { path_prefix: /loop }, service: loop }
  - { match: { path_prefix: /ok }, service: ok }
`, "$TD", testdata))
	for _, tc := range []struct {
		path   string
		status int
	}{{"/never", 502}, {"/trap", 502}, {"/loop", 504}} {
		r := f.get(tc.path)
		if r.status != tc.status || !strings.Contains(r.body, "request id:") {
			t.Errorf("GET %s: %d %q, want %d", tc.path, r.status, r.body, tc.status)
		}
		if r := f.get("/ok"); r.status != 200 {
			t.Errorf("after %s, a module's request: %d %q", tc.path, r.status, r.body)
		}
	}
}

// TestServeComponentWarmup: a service's warmup path is served once by each
// new instance of its component, and every request starts from the state
// it left: isolation.wasm answers 222 (counts of 1 before each request),
// where a service without warmup answers 211 (instantiation's state).
func TestServeComponentWarmup(t *testing.T) {
	testdata, _ := filepath.Abs("../internal/component/testdata")
	f := newFixture(t, strings.ReplaceAll(`
services:
  warm: { versions: [ { path: $TD/isolation.wasm } ], warmup: /warm }
  cold: { versions: [ { path: $TD/isolation.wasm } ] }
routes:
  - { match: { path_prefix: /warm }, service: warm }
  - { match: { path_prefix: /cold }, service: cold }
`, "$TD", testdata))
	for i := 0; i < 3; i++ {
		if r := f.get("/warm"); r.status != 222 {
			t.Errorf("warm request %d: status %d, want 222", i, r.status)
		}
		if r := f.get("/cold"); r.status != 211 {
			t.Errorf("cold request %d: status %d, want 211", i, r.status)
		}
	}
}

// TestComponentFailingMidStream: a component stopped after its head and
// part of its body (stream.wasm waits 300 ms between its two lines; the
// service's timeout is 150 ms) has its response cut, and counts as its
// version's error, not as the success its head said.
func TestComponentFailingMidStream(t *testing.T) {
	testdata, _ := filepath.Abs("../internal/component/testdata")
	f := newFixture(t, strings.ReplaceAll(`
services:
  stream: { versions: [ { path: $TD/stream.wasm } ], limits: { timeout: 150ms } }
routes:
  - { match: { path_prefix: / }, service: stream }
`, "$TD", testdata))
	digest := f.g.Config().Services["stream"].Versions[0].Digest
	// A request that instantiates the component may use up the 150 ms
	// before the component's head (a 504): one on a reset instance is
	// quick to its first line. Each attempt is one more error.
	for attempt := 1; ; attempt++ {
		resp, err := f.srv.Client().Get(f.srv.URL + "/stream")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			if err == nil || !strings.HasPrefix(string(body), "first") {
				t.Fatalf("%d %q, %v: want a 200 head, the first line, and the body cut", resp.StatusCode, body, err)
			}
			waitFor(t, "the cut response counted as the version's error", func() bool { return f.g.VersionCount("stream", digest).Errors == int64(attempt) })
			return
		}
		if attempt == 5 {
			t.Fatalf("no 200 head in %d attempts: %d %q", attempt, resp.StatusCode, body)
		}
		waitFor(t, "the failed attempt counted", func() bool { return f.g.VersionCount("stream", digest).Errors == int64(attempt) })
	}
}

// TestSVIDExpiryLogged: an SVID that expires with no other observed
// before is logged as an error at its expiry; one rotated first is not.
func TestSVIDExpiryLogged(t *testing.T) {
	var logs testutil.LockedBuffer
	f := newFixtureWith(t, helloConfig, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	id := spiffeid.RequireFromString("spiffe://example.org/gw")
	now := time.Now()
	f.g.ObserveIdentity(identity.Status{ID: id, Serial: big.NewInt(1), NotBefore: now, NotAfter: now.Add(time.Hour)})
	f.g.ObserveIdentity(identity.Status{ID: id, Serial: big.NewInt(2), NotBefore: now, NotAfter: now.Add(100 * time.Millisecond)})
	waitFor(t, "the expiry logged", func() bool { return strings.Contains(logs.String(), "SVID expired and not rotated") })
	if n := strings.Count(logs.String(), "SVID expired"); n != 1 {
		t.Errorf("%d expiry lines, want 1 (the rotated SVID's none):\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("the expiry is not an error:\n%s", logs.String())
	}
}

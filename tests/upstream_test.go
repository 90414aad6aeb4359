package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"golang.org/x/net/websocket"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/testutil"
)

// nativeUpstream is a native HTTP service on loopback: it answers "native
// <name>" with the headers it got as JSON, after a delay when the path
// says /slow, and tries to spoof the gateway's headers.
func nativeUpstream(t *testing.T, name string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/slow") {
			time.Sleep(2 * time.Second)
		}
		w.Header().Set("X-Wasmesh-Version", "sha256:spoofed")
		w.Header().Set("X-Native", name)
		got := map[string]any{"path": r.URL.Path, "host": r.Host, "header": r.Header}
		b, _ := json.Marshal(got)
		fmt.Fprintf(w, "native %s %s", name, b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// nativeAndWasm is a services block: users, the native upstream at url as
// v1 (90%) and the Zig hello as v2 (10%).
func nativeAndWasm(url string) string {
	return `
services:
  users:
    versions:
      - { upstream: { endpoints: [ "` + url + `" ] }, name: v1, weight: 90 }
      - { path: $EX/hello/zig/hello.wasm, name: v2, weight: 10 }`
}

// upstreamDigest is the digest a config gives an upstream version of
// endpoints with the defaults (config.Upstream.UpstreamDigest).
func upstreamDigest(t *testing.T, endpoints ...string) string {
	t.Helper()
	return upstreamDigestOf(t, `{ endpoints: [ "`+strings.Join(endpoints, `", "`)+`" ] }`)
}

// upstreamDigestOf is the digest a config gives the upstream block spec.
func upstreamDigestOf(t *testing.T, spec string) string {
	t.Helper()
	cfg, err := config.Parse("x.yaml", []byte("services:\n  s: { versions: [ { upstream: "+spec+" } ] }\n"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Services["s"].Versions[0].Upstream.UpstreamDigest()
}

// serveUpstream serves one service, name, whose only version is the
// upstream at url, on every path; fields are more of the service's
// ("limits: { timeout: 1s }").
func serveUpstream(t *testing.T, name, url string, fields ...string) *gateway {
	t.Helper()
	more := ""
	for _, f := range fields {
		more += ", " + f
	}
	return serve(t, `
services:
  `+name+`: { versions: [ { upstream: { endpoints: [ "`+url+`" ] } } ]`+more+` }
routes:
  - { match: { path_prefix: / }, service: `+name+` }
`)
}

// dialGateway connects to g's listener, for raw requests; closed when the
// test ends.
func dialGateway(t *testing.T, g *gateway) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// short is a digest as metrics label it: its first 12 hex digits.
func short(digest string) string { return strings.TrimPrefix(digest, "sha256:")[:12] }

// TestUpstreamVersion: a version can be a native upstream: it is selected
// by weight, pin and lane like a module version and named by
// X-Wasmesh-Version; the request reaches it with its path (after
// strip_prefix), Host, X-Forwarded-For (appended: the client is a trusted
// proxy), -Host, -Proto, Via,
// X-Request-Id, traceparent and the lane's baggage, without hop-by-hop
// headers; the upstream cannot speak for the gateway's headers.
func TestUpstreamVersion(t *testing.T) {
	native := nativeUpstream(t, "v1")
	g := serve(t, nativeAndWasm(native.URL)+`
trusted_proxies: [ 127.0.0.0/8 ]
lanes:
  native: { versions: { users: v1 }, entry: [ { header: X-Lane=native } ] }
routes:
  - { match: { path_prefix: /users }, service: users, strip_prefix: true }
`)
	v1, v2 := upstreamDigest(t, native.URL), fileDigest(t, hello("zig"))
	counts := map[string]int{}
	for i := range 200 {
		status, body, h := get(t, g.url+fmt.Sprintf("/users/x%d", i))
		counts[h.Get("X-Wasmesh-Version")]++
		switch h.Get("X-Wasmesh-Version") {
		case v1:
			if status != 200 || !strings.HasPrefix(body, "native v1 ") || h.Get("X-Native") != "v1" {
				t.Fatalf("v1 answered %d %q", status, body)
			}
		case v2:
			if status != 200 || !strings.HasPrefix(body, "hello from zig") {
				t.Fatalf("v2 answered %d %q", status, body)
			}
		default:
			t.Fatalf("answered by %q (v1 %s, v2 %s): %d %q", h.Get("X-Wasmesh-Version"), v1, v2, status, body)
		}
	}
	if counts[v1] < 150 || counts[v2] < 2 { // v2's 20 expected: fewer than 2 by chance 1.6e-8
		t.Errorf("200 requests: %d to v1 (90%%), %d to v2 (10%%)", counts[v1], counts[v2])
	}

	// What the upstream got.
	status, body, h := get(t, g.url+"/users/who?q=1", "X-Wasmesh-Version", "v1", "X-Forwarded-For", "203.0.113.7",
		"Connection", "X-Secret", "X-Secret", "hop", "X-Lane", "native", "Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if status != 200 || h.Get("X-Wasmesh-Version") != v1 || len(h.Values("X-Wasmesh-Version")) != 1 {
		t.Fatalf("pinned v1: %d %q, X-Wasmesh-Version %q", status, body, h.Values("X-Wasmesh-Version"))
	}
	var got struct {
		Path, Host string
		Header     http.Header
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(body, "native v1 ")), &got); err != nil {
		t.Fatalf("%v: %q", err, body)
	}
	host := strings.TrimPrefix(g.url, "http://")
	for _, c := range []struct{ what, got, want string }{
		{"path", got.Path, "/who"},
		{"Host", got.Host, host},
		{"X-Forwarded-For", got.Header.Get("X-Forwarded-For"), "203.0.113.7, 127.0.0.1"},
		{"X-Forwarded-Host", got.Header.Get("X-Forwarded-Host"), host},
		{"X-Forwarded-Proto", got.Header.Get("X-Forwarded-Proto"), "http"},
		{"Via", got.Header.Get("Via"), "1.1 wasmesh"},
		{"X-Request-Id", got.Header.Get("X-Request-Id"), h.Get("X-Request-Id")},
		{"X-Secret (hop-by-hop)", got.Header.Get("X-Secret"), ""},
		{"Baggage", got.Header.Get("Baggage"), "wasmesh-lane=native"},
	} {
		if c.got != c.want {
			t.Errorf("the upstream got %s %q, want %q", c.what, c.got, c.want)
		}
	}
	if tp := got.Header.Get("Traceparent"); !strings.HasPrefix(tp, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || strings.HasSuffix(tp, "00f067aa0ba902b7-01") {
		t.Errorf("the upstream got traceparent %q: want the client's trace, from the gateway's span", tp)
	}
	if h.Get("X-Request-Id") == "" || len(h.Values("X-Request-Id")) != 1 {
		t.Errorf("X-Request-Id %q", h.Values("X-Request-Id"))
	}
	endpoint := strings.TrimPrefix(native.URL, "http://")
	if n, _ := strconv.Atoi(metric(t, g, `wasmesh_upstream_requests_total{code="200",endpoint="`+endpoint+`",version="`+short(v1)+`"}`)); n < counts[v1] {
		t.Errorf("wasmesh_upstream_requests_total counts %d tries, want at least %d", n, counts[v1])
	}
	if n, _ := strconv.Atoi(metric(t, g, `wasmesh_upstream_duration_seconds_count{endpoint="`+endpoint+`",version="`+short(v1)+`"}`)); n < counts[v1] {
		t.Errorf("wasmesh_upstream_duration_seconds counts %d, want at least %d", n, counts[v1])
	}
}

// TestUpstreamForwardedUntrusted: a client that is not a trusted proxy
// cannot make the upstream believe it is someone else: X-Forwarded-For,
// -Host and -Proto are the gateway's own, its Forwarded, X-Real-Ip and the
// X-Forwarded- fields frameworks read (-Port, -Prefix, -Ssl) are dropped,
// as are the gateway's fields spelled with underscores (X_Forwarded_For,
// X_Spiffe_Peer_Id: one to a CGI or WSGI server); an Upgrade other than to
// WebSocket is not passed on. The answer has the gateway's Via.
func TestUpstreamForwardedUntrusted(t *testing.T) {
	native := nativeUpstream(t, "v1")
	g := serve(t, `
trusted_proxies: [ 10.0.0.0/8, 192.0.2.1 ]
services:
  users: { versions: [ { upstream: { endpoints: [ "`+native.URL+`" ] } } ] }
routes:
  - { match: { path_prefix: / }, service: users }
`)
	status, body, header := get(t, g.url+"/who", "X-Forwarded-For", "203.0.113.7", "X-Forwarded-Host", "bank.example", "X-Forwarded-Proto", "https",
		"Forwarded", "for=203.0.113.7", "X-Real-Ip", "203.0.113.7", "Connection", "Upgrade", "Upgrade", "h2c",
		"X-Forwarded-Port", "443", "X-Forwarded-Prefix", "/admin", "X-Forwarded-Ssl", "on", "X-Spiffe-Peer-Id", "spiffe://example.org/admin",
		"X_Forwarded_For", "6.6.6.6", "X_Spiffe_Peer_Id", "spiffe://example.org/admin", "X_Custom", "kept")
	var got struct{ Header http.Header }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(body, "native v1 ")), &got); status != 200 || err != nil {
		t.Fatalf("%d %q: %v", status, body, err)
	}
	for _, c := range []struct{ name, want string }{
		{"X-Forwarded-For", "127.0.0.1"},
		{"X-Forwarded-Host", strings.TrimPrefix(g.url, "http://")},
		{"X-Forwarded-Proto", "http"},
	} {
		if vs := got.Header.Values(c.name); len(vs) != 1 || vs[0] != c.want {
			t.Errorf("the upstream got %s %q, want %q", c.name, vs, c.want)
		}
	}
	for _, name := range []string{"Forwarded", "X-Real-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Ssl", "X-Spiffe-Peer-Id", "Upgrade"} { // forged, and an h2c upgrade (smuggling)
		if vs := got.Header.Values(name); len(vs) != 0 {
			t.Errorf("the upstream got %s %q, want none", name, vs)
		}
	}
	for name, vs := range got.Header {
		if strings.Contains(name, "_") && name != "X_custom" {
			t.Errorf("the upstream got %s %q, the underscore spelling of a gateway's field", name, vs)
		}
	}
	if vs := got.Header["X_custom"]; len(vs) != 1 || vs[0] != "kept" {
		t.Errorf("the upstream got X_Custom %q, want the client's, kept", vs)
	}
	if vs := header.Values("Via"); len(vs) != 1 || vs[0] != "1.1 wasmesh" {
		t.Errorf("the answer's Via %q, want the gateway's", vs)
	}
}

// TestUpstreamCircuitBreaker: with max_requests in flight, the next
// request is answered 503 at once, saying why, and counted; the gateway
// serves it again once one is done.
func TestUpstreamCircuitBreaker(t *testing.T) {
	native := nativeUpstream(t, "v1")
	g := serve(t, `
services:
  users: { versions: [ { upstream: { endpoints: [ "`+native.URL+`" ], max_requests: 1 } } ] }
routes:
  - { match: { path_prefix: / }, service: users }
`)
	slow := make(chan int, 1)
	go func() {
		resp, err := http.Get(g.url + "/slow")
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	// The slow request in flight: in the gateway, then (a few µs later)
	// holding the upstream's one slot.
	poll(t, "the slow request in flight", func() bool { return metric(t, g, "wasmesh_inflight_requests") == "1" })
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	status, body, h := get(t, g.url+"/x")
	if status != 503 || time.Since(start) > time.Second || !strings.Contains(body, "max_requests") || h.Get("Retry-After") == "" {
		t.Errorf("over max_requests: %d after %s, Retry-After %q: %q", status, time.Since(start), h.Get("Retry-After"), body)
	}
	if got := <-slow; got != 200 {
		t.Errorf("the slow request: %d", got)
	}
	if status, _, _ := get(t, g.url+"/x"); status != 200 {
		t.Errorf("after the slow request: %d", status)
	}
	_, _, vh := get(t, g.url+"/x")
	if m := metric(t, g, `wasmesh_upstream_overflow_total{version="`+short(vh.Get("X-Wasmesh-Version"))+`"}`); m != "1" {
		t.Errorf("wasmesh_upstream_overflow_total = %q, want 1", m)
	}
}

// TestUpstreamFaults: an endpoint that refuses connections gives 502 with
// the reason at once, a slow one 504 at the service's timeout, and neither
// is counted as the client's fault; the other services are unaffected.
func TestUpstreamFaults(t *testing.T) {
	closed := "http://" + testutil.RefusedAddr(t)
	native := nativeUpstream(t, "v1")
	g := serve(t, `
services:
  refused: { versions: [ { upstream: { endpoints: [ "`+closed+`" ] } } ] }
  slow: { versions: [ { upstream: { endpoints: [ "`+native.URL+`" ] } } ], limits: { timeout: 300ms } }
  hello: { versions: [ { path: $EX/hello/rust/hello.wasm } ] }
routes:
  - { match: { path_prefix: /refused }, service: refused }
  - { match: { path_prefix: /slow }, service: slow }
  - { match: { path_prefix: /hello }, service: hello }
`)
	start := time.Now()
	status, body, _ := get(t, g.url+"/refused/x")
	if status != 502 || time.Since(start) > 5*time.Second || !strings.Contains(body, "request id:") || !strings.Contains(body, "upstream connect_failure") {
		t.Errorf("refused endpoint: %d after %s: %q", status, time.Since(start), body)
	}
	start = time.Now()
	status, body, _ = get(t, g.url+"/slow/slow")
	if took := time.Since(start); status != 504 || took > 1900*time.Millisecond {
		t.Errorf("slow endpoint: %d after %s: %q", status, took, body)
	}
	if status, _, _ := get(t, g.url+"/hello/x"); status != 200 {
		t.Errorf("hello after the faults: %d", status)
	}
	if m := metric(t, g, `wasmesh_client_errors_total{reason="client_abort",service="refused"}`); m != "" {
		t.Errorf("a refused upstream counted as the client's fault: %s", m)
	}
}

// nativeUsers builds examples/native/users (once per run) and starts it
// on a loopback port of its choosing; it returns its URL.
func nativeUsers(t *testing.T) string {
	t.Helper()
	nativeBuild.Do(func() {
		nativeBin = filepath.Join(filepath.Dir(cacheDir), "native-users") // beside the cache: removed after the run
		cmd := exec.Command("go", "build", "-o", nativeBin, ".")
		cmd.Dir, cmd.Env = repoPath("examples", "native", "users"), append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			nativeErr = fmt.Errorf("build examples/native/users: %v\n%s", err, out)
		}
	})
	if nativeErr != nil {
		t.Fatal(nativeErr)
	}
	cmd := exec.Command(nativeBin, "-listen", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "users native on ")
	if err != nil || !ok {
		t.Fatalf("examples/native/users said %q, %v", line, err)
	}
	return url
}

var (
	nativeBuild sync.Once
	nativeBin   string
	nativeErr   error
)

// TestUpstreamMigration: the native users service (examples/native/users,
// a process of its own) as v1 and a wasm v2 behind one service; promoting
// v2 under load (90/10 → 0/100) fails no request, every answer names the
// version that served it, and a rollback brings v1 back.
func TestUpstreamMigration(t *testing.T) {
	native := nativeUsers(t)
	g := serve(t, nativeAndWasm(native)+`
routes:
  - { match: { path_prefix: / }, service: users }
`)
	v1, v2 := upstreamDigest(t, native), fileDigest(t, hello("zig"))
	if _, body, h := get(t, g.url+"/x", "X-Wasmesh-Version", "v1"); h.Get("X-Wasmesh-Version") != v1 ||
		!strings.HasPrefix(body, "users native: GET /x 0 bytes\nrequest id "+h.Get("X-Request-Id")+", traceparent 00-") {
		t.Fatalf("v1, the native service: %s %q", h.Get("X-Wasmesh-Version"), body)
	}
	load := startLoad(g.url+"/x", func(resp *http.Response) bool {
		v := resp.Header.Get("X-Wasmesh-Version")
		return v == v1 || v == v2
	})
	time.Sleep(300 * time.Millisecond)
	ok(t, opts{}, "promote", "users", "v2", "--admin="+strings.TrimPrefix(g.admin, "http://"))
	time.Sleep(300 * time.Millisecond)
	load.stop(t)
	for range 20 {
		if _, _, h := get(t, g.url+"/x"); h.Get("X-Wasmesh-Version") != v2 {
			t.Fatalf("after promote: answered by %s", h.Get("X-Wasmesh-Version"))
		}
	}
	// Rolled back, the native version serves again, from the file's config.
	ok(t, opts{}, "rollback", "users", "--admin="+strings.TrimPrefix(g.admin, "http://"))
	if _, body, h := get(t, g.url+"/x", "X-Wasmesh-Version", "v1"); h.Get("X-Wasmesh-Version") != v1 || !strings.HasPrefix(body, "users native:") {
		t.Fatalf("after rollback, pinned v1: %s %q", h.Get("X-Wasmesh-Version"), body)
	}
	t.Logf("%d requests during the promotion", load.served.Load())
}

// TestUpstreamEndpointDown: one of three endpoints goes away under load:
// idempotent GETs see no failure (tried again on another endpoint), and
// the endpoint, failing every try, is ejected: it is no longer tried.
func TestUpstreamEndpointDown(t *testing.T) {
	a, b, c := nativeUpstream(t, "a"), nativeUpstream(t, "b"), nativeUpstream(t, "c")
	var tries atomic.Int64
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tries.Add(1)
		c.Config.Handler.ServeHTTP(w, r)
	}))
	g := serve(t, `
services:
  users:
    versions: [ { upstream: { endpoints: [ "`+a.URL+`", "`+b.URL+`", "`+counting.URL+`" ] } } ]
routes:
  - { match: { path_prefix: / }, service: users }
`)
	load := startLoad(g.url+"/x", nil)
	time.Sleep(300 * time.Millisecond)
	if tries.Load() == 0 {
		t.Fatal("the third endpoint got no request before it went away")
	}
	counting.Close() // refuses connections from now on
	testutil.HoldPort(t, counting.Listener.Addr().String())
	time.Sleep(700 * time.Millisecond)
	before := load.served.Load()
	time.Sleep(500 * time.Millisecond)
	load.stop(t)
	// Ejected after 5 failures in a row: a handful of retries, not a third
	// of the requests.
	version := short(upstreamDigest(t, a.URL, b.URL, counting.URL))
	retries, ejections := metric(t, g, `wasmesh_upstream_retries_total{version="`+version+`"}`),
		metric(t, g, `wasmesh_upstream_ejections_total{endpoint="`+strings.TrimPrefix(counting.URL, "http://")+`",version="`+version+`"}`)
	if n, _ := strconv.Atoi(retries); n == 0 || n > 20 || ejections != "1" {
		t.Errorf("%s retries, %s ejections of the endpoint that went away", retries, ejections)
	}
	t.Logf("%d requests, %d of them after the endpoint had gone away", load.served.Load(), load.served.Load()-before)
}

// load is four clients sending GETs in a loop, each answer checked.
type load struct {
	done           atomic.Bool
	served, failed atomic.Int64
	wg             sync.WaitGroup
	mu             sync.Mutex
	failures       []string
}

// startLoad starts GETs of url until stop; an answer fails unless its
// status is 200 and, with check, check approves it.
func startLoad(url string, check func(*http.Response) bool) *load {
	l := &load{}
	client := &http.Client{Timeout: 20 * time.Second}
	for range 4 {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for !l.done.Load() {
				resp, err := client.Get(url)
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != 200 || (check != nil && !check(resp)) {
					l.failed.Add(1)
					l.mu.Lock()
					l.failures = append(l.failures, fmt.Sprint(err, resp))
					l.mu.Unlock()
				}
				l.served.Add(1)
			}
		}()
	}
	return l
}

// stop ends the load and fails t if any request failed.
func (l *load) stop(t *testing.T) {
	t.Helper()
	l.done.Store(true)
	l.wg.Wait()
	if l.failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed: %q", l.failed.Load(), l.served.Load(), l.failures[:min(len(l.failures), 3)])
	}
}

// TestUpstreamHealthCheck: an endpoint that fails its health checks is
// left out before any request fails on it, and put back once it passes
// them again; wasmesh_upstream_healthy follows it.
func TestUpstreamHealthCheck(t *testing.T) {
	a := nativeUpstream(t, "a")
	var tries atomic.Int64
	var sick atomic.Bool
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			if sick.Load() {
				http.Error(w, "sick", http.StatusServiceUnavailable)
			}
			return
		}
		tries.Add(1)
		fmt.Fprint(w, "native b")
	}))
	t.Cleanup(b.Close)
	g := serve(t, `
services:
  users:
    versions:
      - upstream:
          endpoints: [ "`+a.URL+`", "`+b.URL+`" ]
          lb: round_robin
          health: { path: /healthz, interval: 100ms, healthy: 2, unhealthy: 2 }
routes:
  - { match: { path_prefix: / }, service: users }
`)
	for range 10 {
		get(t, g.url+"/x")
	}
	_, _, h := get(t, g.url+"/x")
	version := short(h.Get("X-Wasmesh-Version"))
	gauge := `wasmesh_upstream_healthy{endpoint="` + strings.TrimPrefix(b.URL, "http://") + `",version="` + version + `"}`
	if tries.Load() == 0 {
		t.Fatal("b got no request while healthy")
	}
	sick.Store(true)
	poll(t, "b unhealthy", func() bool { return metric(t, g, gauge) == "0" })
	before := tries.Load()
	for range 20 {
		if status, body, _ := get(t, g.url+"/x"); status != 200 || !strings.HasPrefix(body, "native a") {
			t.Fatalf("with b unhealthy: %d %q", status, body)
		}
	}
	if tries.Load() != before {
		t.Errorf("b got %d requests while unhealthy", tries.Load()-before)
	}

	sick.Store(false)
	poll(t, "b healthy again", func() bool { return metric(t, g, gauge) == "1" })
	for range 10 {
		get(t, g.url+"/x")
	}
	if tries.Load() == before {
		t.Error("b got no request once healthy again")
	}
	for _, want := range []string{"upstream endpoint unhealthy", "upstream endpoint healthy"} {
		// Logged just after the gauge is set, and written within a few ms.
		poll(t, "the log line "+want, func() bool { return strings.Contains(g.p.stderr.String(), want) })
	}
}

// rawUpstream is a TCP server on loopback that does what serve does with
// each connection.
// cutUpstream is an endpoint that reads a request's head, answers with
// answer, and closes the connection (cutting the body it declared).
func cutUpstream(t *testing.T, answer string) string {
	return rawUpstream(t, func(c net.Conn) {
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		io.WriteString(c, answer)
	})
}

func rawUpstream(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return "http://" + l.Addr().String()
}

// TestUpstreamFaultyEndpoints: an endpoint that accepts and never
// answers gives 504 at the timeout, one that answers garbage 502, one that
// dies in the middle of its body a cut response (the client sees the
// failure, not a short body passed for whole); the gateway goes on.
func TestUpstreamFaultyEndpoints(t *testing.T) {
	var held []net.Conn
	var mu sync.Mutex
	blackHole := rawUpstream(t, func(c net.Conn) { mu.Lock(); held = append(held, c); mu.Unlock() })
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	garbage := rawUpstream(t, func(c net.Conn) {
		defer c.Close()
		bufio.NewReader(c).ReadString('\n')
		c.Write([]byte("SPDY/9 what\r\n\x00\x01\r\n\r\n"))
	})
	huge := rawUpstream(t, func(c net.Conn) {
		defer c.Close()
		bufio.NewReader(c).ReadString('\n')
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 200<<10))
	})
	cut := cutUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly ten b")
	g := serve(t, `
services:
  hole: { versions: [ { upstream: { endpoints: [ "`+blackHole+`" ] } } ], limits: { timeout: 300ms } }
  garbage: { versions: [ { upstream: { endpoints: [ "`+garbage+`" ] } } ] }
  huge: { versions: [ { upstream: { endpoints: [ "`+huge+`" ] } } ] }
  cut: { versions: [ { upstream: { endpoints: [ "`+cut+`" ] } } ] }
  hello: { versions: [ { path: $EX/hello/rust/hello.wasm } ] }
routes:
  - { match: { path_prefix: /hole }, service: hole }
  - { match: { path_prefix: /garbage }, service: garbage }
  - { match: { path_prefix: /huge }, service: huge }
  - { match: { path_prefix: /cut }, service: cut }
  - { match: { path_prefix: /hello }, service: hello }
`)
	start := time.Now()
	if status, body, _ := get(t, g.url+"/hole/x"); status != 504 || time.Since(start) > 3*time.Second {
		t.Errorf("black hole: %d after %s: %q", status, time.Since(start), body)
	}
	if status, body, _ := get(t, g.url+"/garbage/x"); status != 502 || !strings.Contains(body, "request id:") {
		t.Errorf("garbage: %d %q", status, body)
	}
	if status, body, _ := get(t, g.url+"/huge/x"); status != 502 || !strings.Contains(body, "upstream invalid_response") {
		t.Errorf("a 200 KiB response header: %d %q", status, body)
	}
	for _, ep := range []string{garbage, huge} {
		if n := metric(t, g, `wasmesh_upstream_failures_total{endpoint="`+strings.TrimPrefix(ep, "http://")+`",reason="invalid_response",version="`+short(upstreamDigest(t, ep))+`"}`); n != "1" {
			t.Errorf("%s: wasmesh_upstream_failures_total{reason=\"invalid_response\"} = %q, want 1", ep, n)
		}
	}
	// None of its answer had left the gateway (ten bytes, buffered): the
	// client gets a whole 502 rather than a 200 cut short.
	if status, body, h := get(t, g.url+"/cut/x"); status != 502 || !strings.Contains(body, "upstream reset") ||
		h.Get("X-Request-Id") == "" || h.Get("X-Wasmesh-Version") == "" || h.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Errorf("an upstream that died mid-body, its answer still buffered: %d %q %v, want a whole 502 with the gateway's fields", status, body, h)
	}
	if status, _, _ := get(t, g.url+"/hello/x"); status != 200 {
		t.Errorf("hello after the faults: %d", status)
	}
	// The cut body is the endpoint's failure: counted as a 502, against
	// the version.
	cutVersion, cutEndpoint := short(upstreamDigest(t, cut)), strings.TrimPrefix(cut, "http://")
	poll(t, "the cut body counted", func() bool {
		return metric(t, g, `wasmesh_upstream_failures_total{endpoint="`+cutEndpoint+`",reason="reset",version="`+cutVersion+`"}`) == "1"
	})
	if n := metric(t, g, `wasmesh_requests_total{lane="",route="3:cut",service="cut",status="5xx",version="`+cutVersion+`"}`); n != "1" {
		t.Errorf("the cut body: wasmesh_requests_total{status=\"5xx\"} = %q, want 1", n)
	}
	for _, want := range [][2]string{{"service=hole", "status=504"}, {"service=garbage", "status=502"}, {"service=huge", "status=502"}, {"service=cut", "status=502"}, {"service=cut", "response body failed"}} {
		// The access log line is written after the response, within a few ms.
		poll(t, "an access log line with "+want[0]+" and "+want[1], func() bool {
			for _, line := range strings.Split(g.p.stderr.String(), "\n") {
				if strings.Contains(line, want[0]) && strings.Contains(line, want[1]) {
					return true
				}
			}
			return false
		})
	}
}

// TestUpstreamMTLS: an upstream with expect_id is called over mTLS: the
// gateway presents its SVID (the upstream, here gateway B, sees A's SPIFFE
// ID) and accepts only the expected server (another ID: 502).
func TestUpstreamMTLS(t *testing.T) {
	ca := newPKI(t, "example.org")
	a, b, alice := ca.issue(t, idA, "a"), ca.issue(t, idB, "b"), ca.issue(t, idAlice, "alice")
	gb := serveMTLS(t, tlsBlock(b)+`
services:
  env: { versions: [ { path: `+misbehave+` } ], allow_peers: [ "`+idA+`" ] }
routes:
  - { match: { path_prefix: / }, service: env }
`)
	ga := serveMTLS(t, tlsBlock(a)+`
services:
  users: { versions: [ { upstream: { endpoints: [ "`+gb.url+`" ], expect_id: "`+idB+`" } } ] }
  wrong: { versions: [ { upstream: { endpoints: [ "`+gb.url+`" ], expect_id: "`+idAlice+`" } } ] }
  wrong2: { versions: [ { upstream: { endpoints: [ "`+gb.url+`" ], expect_id: "`+idAlice+`", http2: true } } ] }
  users2: { versions: [ { upstream: { endpoints: [ "`+gb.url+`" ], expect_id: "`+idB+`", http2: true } } ] }
routes:
  - { match: { path_prefix: /wrong2 }, service: wrong2, strip_prefix: true }
  - { match: { path_prefix: /users2 }, service: users2, strip_prefix: true }
  - { match: { path_prefix: /wrong }, service: wrong, strip_prefix: true }
  - { match: { path_prefix: / }, service: users }
`)
	client := svidClient(t, alice, idA, false)
	status, body := getWith(t, client, ga.url+"/?do=env")
	if status != 200 || !strings.Contains(body, "\nX_SPIFFE_PEER_ID="+idA+"\n") {
		t.Fatalf("through A's mTLS upstream: %d\n%s\nA:\n%s", status, body, ga.stderr)
	}
	if status, body := getWith(t, client, ga.url+"/users2/?do=env"); status != 200 || !strings.Contains(body, "\nX_SPIFFE_PEER_ID="+idA+"\n") {
		t.Errorf("through A's mTLS upstream over h2: %d\n%s", status, body)
	}
	// Over HTTP/1.1 and h2 alike, the handshake's failure is a
	// connect_failure, not a reset.
	for _, path := range []string{"/wrong/?do=env", "/wrong2/?do=env"} {
		if status, body := getWith(t, client, ga.url+path); status != 502 || !strings.Contains(body, "upstream connect_failure") {
			t.Errorf("%s, an upstream presenting another ID than expect_id: %d %q, want 502 connect_failure", path, status, body)
		}
	}
}

// TestUpstreamStreaming: 1 GiB up and 1 GiB down through an upstream
// version, with the gateway's peak RSS growing by less than 64 MiB: the
// bodies stream, never read whole.
func TestUpstreamStreaming(t *testing.T) {
	const size = 1 << 30
	var got atomic.Int64
	native := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			n, _ := io.Copy(io.Discard, r.Body)
			got.Store(n)
			fmt.Fprintf(w, "%d", n)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		buf := make([]byte, 1<<20)
		for i := 0; i < size/len(buf); i++ {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	t.Cleanup(native.Close)
	g := serve(t, `
services:
  big: { versions: [ { upstream: { endpoints: [ "`+native.URL+`" ] } } ], limits: { max_body: 2GiB, timeout: 2m } }
routes:
  - { match: { path_prefix: / }, service: big }
`)
	peak := func() int64 {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.p.cmd.Process.Pid))
		if err != nil {
			t.Skipf("no /proc: %v", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				return kb << 10
			}
		}
		t.Fatal("no VmHWM")
		return 0
	}
	get(t, g.url+"/warm") // a first request: the gateway's steady state
	before := peak()
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Post(g.url+"/up", "application/octet-stream", io.LimitReader(zeros{}, size))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || got.Load() != size {
		t.Fatalf("1 GiB up: %d %q, the upstream got %d bytes", resp.StatusCode, body, got.Load())
	}
	resp, err = client.Get(g.url + "/down")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("1 GiB down: %d bytes, %v", n, err)
	}
	if grew := peak() - before; grew >= 64<<20 {
		t.Errorf("the gateway's peak RSS grew by %d MiB for 1 GiB each way", grew>>20)
	} else {
		t.Logf("peak RSS grew by %.1f MiB for 1 GiB each way", float64(grew)/(1<<20))
	}
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// echoWebSocket is a WebSocket server that answers each message with
// "echo: " and the message; closed when the test ends.
func echoWebSocket(t *testing.T) *httptest.Server {
	echo := httptest.NewServer(websocket.Handler(func(ws *websocket.Conn) {
		for {
			var msg string
			if err := websocket.Message.Receive(ws, &msg); err != nil {
				return
			}
			if err := websocket.Message.Send(ws, "echo: "+msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(echo.Close)
	return echo
}

// dialWebSocket opens a WebSocket to /socket through g; closed when the
// test ends.
func dialWebSocket(t *testing.T, g *gateway) *websocket.Conn {
	cfg, err := websocket.NewConfig(strings.Replace(g.url, "http", "ws", 1)+"/socket", "http://example.com")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := cfg.DialContext(t.Context())
	if err != nil {
		t.Fatalf("dialling through the gateway: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

// TestUpstreamWebSocket: a WebSocket through the gateway to a native
// upstream: the Upgrade reaches the upstream, the 101 comes back with the
// gateway's X-Wasmesh-Version, messages echo both ways for as long as the
// socket lives (past the service's timeout), and the tunnel is counted.
func TestUpstreamWebSocket(t *testing.T) {
	echo := echoWebSocket(t)
	g := serveUpstream(t, "chat", echo.URL, "limits: { timeout: 1s }")
	ws := dialWebSocket(t, g)
	for i := range 3 {
		if i == 2 {
			time.Sleep(1200 * time.Millisecond) // past the service's timeout
		}
		want := fmt.Sprintf("message %d", i)
		if err := websocket.Message.Send(ws, want); err != nil {
			t.Fatal(err)
		}
		var got string
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := websocket.Message.Receive(ws, &got); err != nil || got != "echo: "+want {
			t.Fatalf("got %q, %v; want %q", got, err, "echo: "+want)
		}
	}
	ws.Close()

	// The handshake's answer, as the client reads it.
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /socket HTTP/1.1\r\nHost: chat\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	v := upstreamDigest(t, echo.URL)
	if err != nil || resp.StatusCode != 101 || resp.Header.Get("X-Wasmesh-Version") != v || resp.Header.Get("Upgrade") != "websocket" ||
		resp.Header.Get("Sec-Websocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("the handshake's answer: %v %v", resp, err)
	}
	conn.Close()
	if n := metric(t, g, `wasmesh_upstream_requests_total{code="101",endpoint="`+strings.TrimPrefix(echo.URL, "http://")+`",version="`+short(v)+`"}`); n != "2" {
		t.Errorf("wasmesh_upstream_requests_total for the 101s: %q, want 2", n)
	}
}

// TestUpstreamWebSocketAtTheDrainsEnd: a WebSocket still open when the
// gateway's drain times out is closed by the gateway, which then logs its
// request (101, the bytes sent) before it exits.
func TestUpstreamWebSocketAtTheDrainsEnd(t *testing.T) {
	echo := echoWebSocket(t)
	g := serve(t, `
drain_delay: 0s
drain_timeout: 1s
services:
  chat: { versions: [ { upstream: { endpoints: [ "`+echo.URL+`" ] } } ] }
routes:
  - { match: { path_prefix: / }, service: chat }
`)
	ws := dialWebSocket(t, g)
	var got string
	if err := websocket.Message.Send(ws, "hi"); err != nil {
		t.Fatal(err)
	}
	if err := websocket.Message.Receive(ws, &got); err != nil || got != "echo: hi" {
		t.Fatalf("got %q, %v", got, err)
	}
	g.p.cmd.Process.Signal(syscall.SIGTERM)
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	if err := websocket.Message.Receive(ws, &got); err == nil {
		t.Fatalf("the socket still open after the drain: read %q", got)
	}
	r, line := drainedLine(t, g, "/socket")
	if !strings.Contains(line, "status=101") || !strings.Contains(line, "bytes=") || strings.Contains(line, "bytes=0 ") {
		t.Fatalf("the tunnel's access log line: %q\n%s", line, r.stderr)
	}
}

// TestUpstreamH2AtTheDrainsEnd: an HTTP/2 request still waiting on its
// upstream when the drain times out is cut by the gateway, answered 503
// (neither the client's fault nor the version's), and logged before the
// gateway exits.
func TestUpstreamH2AtTheDrainsEnd(t *testing.T) {
	held := make(chan struct{}, 1)
	addr := testutil.RawServer(t, func(conn net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err == nil {
			held <- struct{}{}
			io.Copy(io.Discard, br) // never answers
		}
	})
	g := serve(t, `
drain_delay: 0s
drain_timeout: 500ms
services:
  hole: { versions: [ { upstream: { endpoints: [ "http://`+addr+`" ] } } ], limits: { timeout: 60s } }
routes:
  - { match: { path_prefix: / }, service: hole }
`)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	go func() {
		if resp, err := (&http.Client{Transport: tr}).Get(g.url + "/held"); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the upstream")
	}
	g.p.cmd.Process.Signal(syscall.SIGTERM)
	r, line := drainedLine(t, g, "/held")
	// Stopped by the drain: a 503, neither the client's fault nor the
	// version's.
	if !strings.Contains(line, "status=503") || strings.Contains(line, "client_error") {
		t.Fatalf("the access log line of the HTTP/2 request cut at the drain's end: %q\n%s", line, r.stderr)
	}
}

// drainedLine waits for g to exit after its drain, which must succeed,
// and returns what it ran to and the last access log line of path.
func drainedLine(t *testing.T, g *gateway, path string) (result, string) {
	t.Helper()
	r := g.p.wait(t)
	if r.code != 0 {
		t.Fatalf("exit status %d after the drain, want 0\n%s", r.code, r.stderr)
	}
	var line string
	for l := range strings.Lines(r.stderr) {
		if strings.Contains(l, "msg=request") && strings.Contains(l, "path="+path+" ") {
			line = l
		}
	}
	return r, line
}

// TestUpstreamRetryPolicy: retries as an upstream's policy says: a 503
// of one endpoint is tried again on the other when the policy names 503
// (no client sees one), a try that outlives per_try_timeout (a black
// hole) is tried again on the other endpoint long before the service's
// timeout, and a POST with a body is never sent twice.
func TestUpstreamRetryPolicy(t *testing.T) {
	var unavailable atomic.Int64
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		unavailable.Add(1)
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}))
	t.Cleanup(busy.Close)
	good := nativeUpstream(t, "good")
	hole := rawUpstream(t, func(c net.Conn) { time.Sleep(20 * time.Second); c.Close() })
	g := serve(t, `
services:
  busy:
    versions: [ { upstream: { endpoints: [ "`+busy.URL+`", "`+good.URL+`" ], lb: round_robin, retries: { on: [ "503" ] } } } ]
  only:
    versions: [ { upstream: { endpoints: [ "`+busy.URL+`" ], retries: { on: [ "503" ] } } } ]
  hole:
    versions: [ { upstream: { endpoints: [ "`+hole+`", "`+good.URL+`" ], lb: round_robin, retries: { on: [ timeout ], per_try_timeout: 200ms } } } ]
    limits: { timeout: 10s }
routes:
  - { match: { path_prefix: /busy }, service: busy }
  - { match: { path_prefix: /only }, service: only }
  - { match: { path_prefix: /hole }, service: hole }
`)
	for i := range 20 {
		if status, body, _ := get(t, g.url+"/busy/x"); status != 200 || !strings.HasPrefix(body, "native good") {
			t.Fatalf("GET %d: %d %q", i, status, body)
		}
	}
	if unavailable.Load() == 0 {
		t.Error("the busy endpoint got no request: nothing was retried")
	}
	// Its only endpoint busy: a GET is tried 1 + 2 times, a POST once.
	before := unavailable.Load()
	if status, _, _ := get(t, g.url+"/only/x"); status != 503 || unavailable.Load()-before != 3 {
		t.Errorf("GET on a busy endpoint: %d after %d tries, want 503 after 3", status, unavailable.Load()-before)
	}
	before = unavailable.Load()
	resp, err := http.Post(g.url+"/only/x", "text/plain", strings.NewReader("once"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || unavailable.Load()-before != 1 {
		t.Errorf("POST on a busy endpoint: %d after %d tries, want 503 after 1", resp.StatusCode, unavailable.Load()-before)
	}
	for i := range 6 {
		start := time.Now()
		status, body, _ := get(t, g.url+"/hole/x")
		if status != 200 || time.Since(start) > 3*time.Second {
			t.Fatalf("GET %d past a black hole: %d after %s: %q", i, status, time.Since(start), body)
		}
	}
	if n := metric(t, g, `wasmesh_upstream_failures_total{endpoint="`+strings.TrimPrefix(hole, "http://")+`",reason="timeout",version="`+
		short(upstreamDigestOf(t, `{ endpoints: [ "`+hole+`", "`+good.URL+`" ], lb: round_robin, retries: { on: [ timeout ], per_try_timeout: 200ms } }`))+`"}`); n == "" || n == "0" {
		t.Errorf("the black hole's timeouts: wasmesh_upstream_failures_total = %q", n)
	}
}

// TestUpstreamPoolLimits: with max_connections 1 and max_pending 1 per
// endpoint, a request past them is answered 503 at once and counted;
// the connections are reported, and reused.
func TestUpstreamPoolLimits(t *testing.T) {
	native := nativeUpstream(t, "v1")
	spec := `{ endpoints: [ "` + native.URL + `" ], pool: { max_connections: 1, max_pending: 1 } }`
	g := serve(t, `
services:
  users: { versions: [ { upstream: `+spec+` } ] }
routes:
  - { match: { path_prefix: / }, service: users }
`)
	codes := make(chan int, 2)
	for i := range 2 { // one on the connection, one waiting for it
		go func() {
			status, _, _ := get(t, g.url+"/slow")
			codes <- status
		}()
		poll(t, "the slow requests in flight", func() bool { return metric(t, g, "wasmesh_inflight_requests") == fmt.Sprint(i+1) })
		time.Sleep(100 * time.Millisecond) // from the gateway's count to the pool
	}
	start := time.Now()
	status, body, _ := get(t, g.url+"/x")
	if status != 503 || time.Since(start) > time.Second || !strings.Contains(body, "waiting for a connection") {
		t.Errorf("past max_pending: %d after %s: %q", status, time.Since(start), body)
	}
	for range 2 {
		if c := <-codes; c != 200 {
			t.Errorf("a request within the pool's limits: %d", c)
		}
	}
	for range 5 {
		get(t, g.url+"/x")
	}
	v, ep := short(upstreamDigestOf(t, spec)), strings.TrimPrefix(native.URL, "http://")
	for name, want := range map[string]string{
		`wasmesh_upstream_failures_total{endpoint="` + ep + `",reason="pool_full",version="` + v + `"}`: "1",
		`wasmesh_upstream_connections{endpoint="` + ep + `",state="idle",version="` + v + `"}`:          "1",
		`wasmesh_upstream_connections{endpoint="` + ep + `",state="active",version="` + v + `"}`:        "0",
		`wasmesh_upstream_connects_total{endpoint="` + ep + `",result="ok",version="` + v + `"}`:        "1",
	} {
		if got := metric(t, g, name); got != want {
			t.Errorf("%s = %q, want %s", name, got, want)
		}
	}
}

// TestUpstreamDNS: an upstream named by dns is served from the name's
// addresses; one whose name does not resolve starts anyway, answers 503
// with the reason and counts it, without dropping the rest of the config;
// a reload that brings one says so as it loads.
func TestUpstreamDNS(t *testing.T) {
	native := nativeUpstream(t, "v1")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(native.URL, "http://"))
	g := serve(t, `
services:
  users: { versions: [ { upstream: { dns: "http://localhost:`+port+`", dns_interval: 200ms } } ] }
  lost: { versions: [ { upstream: { dns: "http://nowhere.invalid:80" } } ] }
routes:
  - { match: { path_prefix: /lost }, service: lost }
  - { match: { path_prefix: / }, service: users }
`)
	for i := range 10 {
		if status, body, _ := get(t, g.url+"/x"); status != 200 || !strings.HasPrefix(body, "native v1") {
			t.Fatalf("GET %d: %d %q", i, status, body)
		}
	}
	status, body, _ := get(t, g.url+"/lost/x")
	if status != 503 || !strings.Contains(body, "nowhere.invalid") || strings.Contains(body, ":53") {
		t.Errorf("an unresolved name: %d %q, want a 503 naming it, and not the resolver's address", status, body)
	}
	lost := short(upstreamDigestOf(t, `{ dns: "http://nowhere.invalid:80" }`))
	if n := metric(t, g, `wasmesh_upstream_dns_failures_total{version="`+lost+`"}`); n == "" || n == "0" {
		t.Errorf("wasmesh_upstream_dns_failures_total = %q", n)
	}

	// A reload that brings a name that does not resolve (a typo, or a
	// headless Service with no ready pod yet) loads, and says so at once.
	typo := strings.Replace(`
services:
  users: { versions: [ { upstream: { dns: "http://localhost:`+port+`", dns_interval: 200ms } } ] }
routes:
  - { match: { path_prefix: / }, service: users }
`, "localhost", "localhots.invalid", 1)
	if err := os.WriteFile(g.config, []byte(loopbackConfig(typo)), 0o644); err != nil {
		t.Fatal(err)
	}
	k, v := adminAuth(t)
	req, _ := http.NewRequest("POST", g.admin+"/v1/config/reload", nil)
	req.Header.Set(k, v)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("reload with a name that does not resolve: %d", resp.StatusCode)
	}
	poll(t, "the name said not to resolve", func() bool {
		return strings.Contains(g.p.stderr.String(), "upstream name does not resolve") && strings.Contains(g.p.stderr.String(), "localhots.invalid")
	})
}

// TestHTTPCallPooled: a guest's calls to an http target go through the
// upstream versions' client: twenty calls in turn over one kept-alive
// connection, and an answer with a 100 KiB head refused (the guest gets
// an error, 502 from this one) as a proxied one is.
func TestHTTPCallPooled(t *testing.T) {
	var conns atomic.Int64
	target := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/huge" {
			w.Header().Set("X-Big", strings.Repeat("a", 100<<10))
		}
		fmt.Fprintf(w, "target: %s %s", r.Method, r.URL.Path)
	}))
	target.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	target.Start()
	t.Cleanup(target.Close)
	g := serve(t, frontendTo("front", target.URL))
	for i := range 20 {
		if status, body, _ := get(t, g.url+"/x"); status != 200 || !strings.Contains(body, "target: GET /x") {
			t.Fatalf("call %d: %d %q", i, status, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("20 calls in turn took %d connections at the target, want 1", n)
	}
	if status, body, _ := get(t, g.url+"/huge"); status != 502 || strings.Contains(body, "target:") {
		t.Errorf("a call answered with a 100 KiB head: %d %q", status, body)
	}
}

// TestUpstreamProtocol: through the proxy, Expect: 100-continue (the
// client's body waits for the upstream's 100), trailers both ways, and h2
// to an upstream that speaks it (h2c here) with http2: true.
func TestUpstreamProtocol(t *testing.T) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/refuse" { // before its body is asked for
			http.Error(w, "too large for "+r.Header.Get("Expect"), http.StatusRequestEntityTooLarge)
			return
		}
		w.Header().Set("Trailer", "X-Sum")
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %q trailer=%q expect=%q", r.Proto, b, r.Trailer.Get("X-Req"), r.Header.Get("Expect"))
		w.Header().Set("X-Sum", strconv.Itoa(len(b)))
	})
	h1 := httptest.NewServer(handler)
	t.Cleanup(h1.Close)
	h2c := httptest.NewUnstartedServer(handler)
	h2c.Config.Protocols = new(http.Protocols)
	h2c.Config.Protocols.SetUnencryptedHTTP2(true)
	h2c.Start()
	t.Cleanup(h2c.Close)
	g := serve(t, `
services:
  h1: { versions: [ { upstream: { endpoints: [ "`+h1.URL+`" ] } } ] }
  h2: { versions: [ { upstream: { endpoints: [ "`+h2c.URL+`" ], http2: true } } ] }
routes:
  - { match: { path_prefix: /h2 }, service: h2 }
  - { match: { path_prefix: / }, service: h1 }
`)
	// Expect: 100-continue, on the wire.
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	br := bufio.NewReader(conn)
	if line, err := br.ReadString('\n'); err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("before the body: %q, %v; want 100 Continue", line, err)
	}
	br.ReadString('\n')
	io.WriteString(conn, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != `HTTP/1.1 "hello" trailer="" expect="100-continue"` || resp.Trailer.Get("X-Sum") != "5" {
		t.Errorf("after 100-continue: %d %q, trailer X-Sum %q", resp.StatusCode, b, resp.Trailer.Get("X-Sum"))
	}
	// An upstream that refuses the body before it is sent: the client
	// gets its answer, no 100, and need not send the body.
	refused, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	refused.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(refused, "PUT /refuse HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(refused), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || !strings.Contains(string(b), "too large for 100-continue") {
		t.Errorf("refused by the upstream before the body: %d %q, want its 413 (and no 100 first)", resp.StatusCode, b)
	}

	// Trailers both ways, over h1 and h2.
	for _, path := range []string{"/x", "/h2/x"} {
		req, _ := http.NewRequest("POST", g.url+path, io.MultiReader(strings.NewReader("streamed")))
		req.Trailer = http.Header{"X-Req": {"t1"}}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		proto := map[string]string{"/x": "HTTP/1.1", "/h2/x": "HTTP/2.0"}[path]
		if want := proto + ` "streamed" trailer="t1" expect=""`; resp.StatusCode != 200 || string(b) != want || resp.Trailer.Get("X-Sum") != "8" {
			t.Errorf("%s: %d %q (want %q), trailer X-Sum %q", path, resp.StatusCode, b, want, resp.Trailer.Get("X-Sum"))
		}
	}
}

// TestUpstreamClientAbortNotCounted: clients that abort their uploads are
// the clients' fault: counted as such, never against the endpoint, which
// is not ejected for them.
func TestUpstreamClientAbortNotCounted(t *testing.T) {
	native := nativeUpstream(t, "v1")
	g := serveUpstream(t, "users", native.URL)
	for range 8 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\nonly a little")
		time.Sleep(50 * time.Millisecond)
		conn.Close()
	}
	time.Sleep(200 * time.Millisecond)
	if status, body, _ := get(t, g.url+"/x"); status != 200 || !strings.HasPrefix(body, "native v1") {
		t.Errorf("after aborted uploads: %d %q", status, body)
	}
	v, ep := short(upstreamDigest(t, native.URL)), strings.TrimPrefix(native.URL, "http://")
	if n := metric(t, g, `wasmesh_upstream_ejections_total{endpoint="`+ep+`",version="`+v+`"}`); n != "" && n != "0" {
		t.Errorf("the endpoint was ejected for the clients' aborts: %s", n)
	}
	for _, reason := range []string{"reset", "timeout", "connect_failure"} {
		if n := metric(t, g, `wasmesh_upstream_failures_total{endpoint="`+ep+`",reason="`+reason+`",version="`+v+`"}`); n != "" && n != "0" {
			t.Errorf("the clients' aborts counted against the endpoint as %s: %s", reason, n)
		}
	}
}

// TestRoutesNamesUpstreamVersions: routes names an upstream version by the
// digest serve gives it (it took the version for a store module: "invalid
// digest").
func TestRoutesNamesUpstreamVersions(t *testing.T) {
	url := "http://" + testutil.RefusedAddr(t)
	path := filepath.Join(t.TempDir(), "wasmesh.yaml")
	os.WriteFile(path, []byte(`store: store
services:
  users: { versions: [ { upstream: { endpoints: [ "`+url+`" ] } } ] }
routes:
  - { match: { path_prefix: / }, service: users }
`), 0o644)
	r := ok(t, opts{}, "routes", "--config", path)
	if want := "100% sha256:" + short(upstreamDigest(t, url)); !strings.Contains(r.stdout, want) {
		t.Errorf("routes:\n%s\nwant %q", r.stdout, want)
	}
}

// TestUpstreamClientBodyFaults: a client that stops sending its body to an
// upstream version gets a 408 at the service's timeout (the endpoint's
// connection is not held past it), one that sends a malformed body a 400,
// one that goes away a 499: each counted as the client's fault, none
// against the endpoint, and none told the endpoint's address.
func TestUpstreamClientBodyFaults(t *testing.T) {
	native := nativeUpstream(t, "v1")
	g := serve(t, `
services:
  users: { versions: [ { upstream: { endpoints: [ "`+native.URL+`" ] } } ], limits: { timeout: 500ms } }
  hello: { versions: [ { path: $EX/hello/zig/hello.wasm } ], limits: { timeout: 500ms } }
routes:
  - { match: { path_prefix: /hello }, service: hello }
  - { match: { path_prefix: / }, service: users }
`)
	ep := strings.TrimPrefix(native.URL, "http://")
	send := func(request string) (string, time.Duration) {
		t.Helper()
		conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		start := time.Now()
		io.WriteString(conn, request)
		b, _ := io.ReadAll(conn)
		return string(b), time.Since(start)
	}
	for _, c := range []struct {
		name, request, status, reason string
	}{
		{"stalled", "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc", "408", "body_timeout"},
		{"malformed chunks", "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", "400", "bad_body"},
	} {
		got, took := send(c.request)
		if !strings.HasPrefix(got, "HTTP/1.1 "+c.status) || took > 5*time.Second {
			t.Errorf("%s: after %s: %q, want %s", c.name, took, got, c.status)
		}
		if strings.Contains(got, ep) || strings.Contains(got, "127.0.0.1") {
			t.Errorf("%s: the client was told the endpoint's or the gateway's address: %q", c.name, got)
		}
		if n := metric(t, g, `wasmesh_client_errors_total{reason="`+c.reason+`",service="users"}`); n != "1" {
			t.Errorf("%s: wasmesh_client_errors_total{reason=%q} = %q, want 1", c.name, c.reason, n)
		}
	}
	// A module's body, read whole before its run: told what went wrong,
	// not the sockets' addresses.
	if got, _ := send("POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc"); !strings.HasPrefix(got, "HTTP/1.1 408") ||
		!strings.Contains(got, "request body not received within the service's timeout") || strings.Contains(got, "127.0.0.1") {
		t.Errorf("a module's stalled body: %q, want a 408 saying why, without addresses", got)
	}
	v := short(upstreamDigest(t, native.URL))
	for _, reason := range []string{"reset", "timeout", "invalid_response"} {
		if n := metric(t, g, `wasmesh_upstream_failures_total{endpoint="`+ep+`",reason="`+reason+`",version="`+v+`"}`); n != "" && n != "0" {
			t.Errorf("the clients' bodies counted against the endpoint as %s: %s", reason, n)
		}
	}
	if n := metric(t, g, `wasmesh_requests_total{lane="",route="0:users",service="users",status="5xx",version="`+v+`"}`); n != "" && n != "0" {
		t.Errorf("the clients' bodies counted as the version's 5xx: %s", n)
	}
	if status, body, _ := get(t, g.url+"/x"); status != 200 || !strings.HasPrefix(body, "native v1") {
		t.Errorf("after the clients' faults: %d %q", status, body)
	}
}

// TestUpstreamRequestTrailers: a request's trailers reach the upstream,
// but for the fields trailers may not carry (RFC 9110, 6.5.1: framing,
// routing) and those the gateway sets in the header (forwarding fields,
// which a client could otherwise forge there).
func TestUpstreamRequestTrailers(t *testing.T) {
	got := make(chan http.Header, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got <- r.Trailer
	}))
	t.Cleanup(up.Close)
	conn := dialGateway(t, serveUpstream(t, "users", up.URL))
	io.WriteString(conn, "POST /t HTTP/1.1\r\nHost: a\r\nTE: trailers\r\nTrailer: X-T\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"+
		"X-T: 1\r\nContent-Length: 999\r\nHost: evil.example\r\nX-Forwarded-For: 1.2.3.4\r\nX-Request-Id: forged\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case tr := <-got:
		if tr.Get("X-T") != "1" {
			t.Errorf("the upstream got trailers %v, want X-T: 1 among them", tr)
		}
		for _, k := range []string{"Content-Length", "Host", "X-Forwarded-For", "X-Request-Id"} {
			if v, ok := tr[k]; ok {
				t.Errorf("the upstream got a %s trailer: %q", k, v)
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the upstream got no request (%d)", resp.StatusCode)
	}
}

// TestUpstreamClientGoneMidResponse: a client that goes away while an
// upstream's response streams to it (a closed tab on a server-sent event
// stream) is the client's fault: counted as client_abort, not as the
// endpoint's failure nor the version's 5xx.
func TestUpstreamClientGoneMidResponse(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		io.WriteString(w, "second\n")
	}))
	t.Cleanup(up.Close)
	g := serveUpstream(t, "events", up.URL)
	conn := dialGateway(t, g)
	io.WriteString(conn, "GET /events HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil || line != "first\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	conn.Close()
	clientsNotTheEndpoints(t, g, "events", "client_abort", up.URL)
}

// clientsNotTheEndpoints checks that one request of service, to the
// upstream version of endpoint url alone, is counted as its client's
// fault (reason), not as the endpoint's failure nor the version's 5xx.
func clientsNotTheEndpoints(t *testing.T, g *gateway, service, reason, url string) {
	t.Helper()
	poll(t, "the request counted as the client's "+reason, func() bool {
		return metric(t, g, `wasmesh_client_errors_total{reason="`+reason+`",service="`+service+`"}`) == "1"
	})
	v, ep := short(upstreamDigest(t, url)), strings.TrimPrefix(url, "http://")
	for _, failure := range []string{"reset", "timeout", "invalid_response"} {
		if n := metric(t, g, `wasmesh_upstream_failures_total{endpoint="`+ep+`",reason="`+failure+`",version="`+v+`"}`); n != "" && n != "0" {
			t.Errorf("the client's %s counted against the endpoint as %s: %s", reason, failure, n)
		}
	}
	if n := metric(t, g, `wasmesh_requests_total{lane="",route="0:`+service+`",service="`+service+`",status="5xx",version="`+v+`"}`); n != "" && n != "0" {
		t.Errorf("the client's %s counted as the version's 5xx: %s", reason, n)
	}
}

// TestUpstreamSlowReaderIsTheClients: a client that takes a proxied
// answer more slowly than the service's timeout allows is the client's
// fault (slow_reader): the endpoint, which sent it as fast as it was
// taken, is not failed, ejected or counted in the version's 5xx.
func TestUpstreamSlowReaderIsTheClients(t *testing.T) {
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 1024 { // 64 MiB, as fast as the gateway takes it
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	g := serveUpstream(t, "big", up.URL, "limits: { timeout: 1s }")
	conn := dialGateway(t, g)
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 10)
	}
	io.WriteString(conn, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	// 16 KiB every 50 ms: 320 KiB a second, 64 MiB in minutes.
	buf := make([]byte, 16<<10)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := conn.Read(buf); err != nil {
			break // cut at the service's timeout
		}
		time.Sleep(50 * time.Millisecond)
	}
	clientsNotTheEndpoints(t, g, "big", "slow_reader", up.URL)
}

// TestUpstreamClientGoneBetweenTries: a client that leaves while the
// gateway waits to try again (an endpoint that answers 503, retried) is
// the client's, not a 504 of the version's.
func TestUpstreamClientGoneBetweenTries(t *testing.T) {
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(busy.Close)
	spec := `{ endpoints: [ "` + busy.URL + `" ], retries: { on: [ "503" ], attempts: 10 } }`
	g := serve(t, `
services:
  busy: { versions: [ { upstream: `+spec+` } ] }
routes:
  - { match: { path_prefix: / }, service: busy }
`)
	// 10 tries take about 275 ms of pauses (1–10 ms times the try's
	// number), the tries themselves well under one: a client that leaves
	// after 80 ms leaves in a pause (all but once in thousands).
	c := &http.Client{Timeout: 80 * time.Millisecond}
	if resp, err := c.Get(g.url + "/x"); err == nil {
		resp.Body.Close()
		t.Fatalf("answered %d before the client left", resp.StatusCode)
	}
	poll(t, "the client's going counted as client_abort", func() bool {
		return metric(t, g, `wasmesh_client_errors_total{reason="client_abort",service="busy"}`) == "1"
	})
	v := short(upstreamDigestOf(t, spec))
	if n := metric(t, g, `wasmesh_requests_total{lane="",route="0:busy",service="busy",status="5xx",version="`+v+`"}`); n != "" && n != "0" {
		t.Errorf("the client's going counted as the version's 5xx: %s", n)
	}
}

// TestUpstreamGarbageEjected: an endpoint that answers garbage fails its
// tries as invalid_response and is ejected as one that fails otherwise:
// it kept its share of the traffic, each a 502.
func TestUpstreamGarbageEjected(t *testing.T) {
	garbage := rawUpstream(t, func(c net.Conn) {
		defer c.Close()
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "HTTP/1.1 2xx WHAT\r\n\r\n")
	})
	good1, good2 := nativeUpstream(t, "good"), nativeUpstream(t, "good")
	spec := `{ endpoints: [ "` + garbage + `", "` + good1.URL + `", "` + good2.URL + `" ], lb: round_robin }`
	g := serve(t, `
services:
  users: { versions: [ { upstream: `+spec+` } ] }
routes:
  - { match: { path_prefix: / }, service: users }
`)
	for range 30 {
		get(t, g.url+"/x")
	}
	v, ep := short(upstreamDigestOf(t, spec)), strings.TrimPrefix(garbage, "http://")
	if n := metric(t, g, `wasmesh_upstream_ejections_total{endpoint="`+ep+`",version="`+v+`"}`); n == "" || n == "0" {
		t.Errorf("the endpoint answering garbage was not ejected (its invalid responses: %s)",
			metric(t, g, `wasmesh_upstream_failures_total{endpoint="`+ep+`",reason="invalid_response",version="`+v+`"}`))
	}
}

// TestUpstreamPostRetriedAfterConnectFailure: a request that may not be
// sent twice (a POST with a body) is still tried again after a connect
// failure, which sent none of it: each reaches the endpoint that is up,
// whole, and none fails.
func TestUpstreamPostRetriedAfterConnectFailure(t *testing.T) {
	closed := "http://" + testutil.RefusedAddr(t)
	var got atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) == "the order" {
			got.Add(1)
		}
		fmt.Fprintf(w, "%s %q", r.Method, b)
	}))
	t.Cleanup(up.Close)
	g := serve(t, `
services:
  orders: { versions: [ { upstream: { endpoints: [ "`+closed+`", "`+up.URL+`" ], lb: round_robin } } ] }
routes:
  - { match: { path_prefix: / }, service: orders }
`)
	for i := range 4 { // fewer than the five failures that eject the closed one
		code, body := post(t, http.DefaultClient, g.url+"/orders", "the order")
		if code != 200 || body != `POST "the order"` {
			t.Fatalf("POST %d: %d %q", i, code, body)
		}
	}
	if n := got.Load(); n != 4 {
		t.Errorf("the endpoint got %d whole bodies, want 4", n)
	}
}

// TestUpstreamCutAfterTheAnswerLeft: an endpoint that dies once part of
// its answer has left the gateway (200 KiB, past what it buffers) has
// the client's connection cut, not the answer passed off as whole; one
// that dies while its answer is still buffered gives a whole 502
// (TestUpstreamFaultyEndpoints).
func TestUpstreamCutAfterTheAnswerLeft(t *testing.T) {
	cut := cutUpstream(t, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", 1<<20)+strings.Repeat("x", 200<<10))
	g := serveUpstream(t, "cut", cut)
	resp, err := http.Get(g.url + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || err == nil {
		t.Errorf("the client got %d and %d bytes, err %v: want the 200 cut short", resp.StatusCode, len(b), err)
	}
}

// TestUpstreamPrivateCA: an https endpoint whose certificate a private CA
// signed is reached with the upstream's ca bundle, and not without it
// (a 502 that says the TLS handshake may have failed).
func TestUpstreamPrivateCA(t *testing.T) {
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "private "+r.URL.Path)
	}))
	t.Cleanup(up.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	g := serve(t, `
services:
  trusted: { versions: [ { upstream: { endpoints: [ "`+up.URL+`" ], ca: "`+ca+`" } } ] }
  unknown: { versions: [ { upstream: { endpoints: [ "`+up.URL+`" ] } } ] }
routes:
  - { match: { path_prefix: /unknown }, service: unknown }
  - { match: { path_prefix: / }, service: trusted }
`)
	if status, body, _ := get(t, g.url+"/x"); status != 200 || body != "private /x" {
		t.Errorf("with the ca bundle: %d %q", status, body)
	}
	if status, body, _ := get(t, g.url+"/unknown/x"); status != 502 || !strings.Contains(body, "TLS handshake") {
		t.Errorf("without it: %d %q", status, body)
	}
}

// TestCheckCommand: check loads a config as serve would, serving nothing:
// a module that decodes but does not validate, which routes (no compile)
// passes, is refused with serve's error, naming the version; a config
// that loads exits 0 and says so.
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	// _start returns a value its type has not: decodes, fails validation.
	invalid := []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 1, 4, 1, 0x60, 0, 0, 3, 2, 1, 0,
		7, 10, 1, 6, '_', 's', 't', 'a', 'r', 't', 0, 0, 10, 6, 1, 4, 0, 0x41, 1, 0x0b}
	if err := os.WriteFile(filepath.Join(dir, "bad.wasm"), invalid, 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(module string) string {
		path := filepath.Join(dir, "wasmesh.yaml")
		os.WriteFile(path, []byte("store: store\nservices:\n  hello: { versions: [ { path: "+module+" } ] }\nroutes:\n  - { match: { path_prefix: / }, service: hello }\n"), 0o644)
		return path
	}
	cache := "--cache-dir=" + filepath.Join(dir, "cache")
	path := write("bad.wasm")
	ok(t, opts{}, "routes", "--config", path) // decoded only
	if r := wasmesh(t, opts{}, "check", "--config", path, cache); r.code != 2 || !strings.Contains(r.stderr, "services.hello.versions[0]") ||
		strings.Count(r.stderr, "services.hello.versions[0]") != 1 {
		t.Errorf("check of a module that does not validate: exit %d, %q; want 2 naming the version, once", r.code, r.stderr)
	}
	path = write(repoPath("examples", "hello", "zig", "hello.wasm"))
	if r := ok(t, opts{}, "check", "--config", path, cache); !strings.Contains(r.stdout, "ok: 1 services, 1 versions, 1 routes") {
		t.Errorf("check of a good config: %q", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "store", "refs")); err == nil {
		if entries, _ := os.ReadDir(filepath.Join(dir, "store", "refs")); len(entries) > 0 {
			t.Errorf("check recorded the config's modules in the store (%d refs files): a gateway serving the file keeps its own there", len(entries))
		}
	}
}

// TestUpstreamSlowUploadInTime: the endpoint's time (the service's
// timeout, and per_try_timeout) starts once the client's body is all
// sent: a client that uploads slowly but within the timeout gets the
// answer, and neither the endpoint nor the version is failed for the
// time the client took; one that does not finish in time is the client's
// 408.
func TestUpstreamSlowUploadInTime(t *testing.T) {
	// The endpoint's own time: within the timeout (2 s) and per_try_timeout
	// (1 s) by half of each, but not with the upload's time added.
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		time.Sleep(map[bool]time.Duration{true: 200 * time.Millisecond, false: time.Second}[strings.HasPrefix(r.URL.Path, "/pertry")])
		fmt.Fprintf(w, "got %d bytes", len(b))
	}))
	t.Cleanup(up.Close)
	g := serve(t, `
services:
  up: { versions: [ { upstream: { endpoints: [ "`+up.URL+`" ] } } ], limits: { timeout: 2s } }
  pertry: { versions: [ { upstream: { endpoints: [ "`+up.URL+`" ], retries: { per_try_timeout: 1s } } } ], limits: { timeout: 10s } }
routes:
  - { match: { path_prefix: /pertry }, service: pertry }
  - { match: { path_prefix: / }, service: up }
`)
	// upload sends 10 bytes over about took, and returns the answer.
	upload := func(path string, took time.Duration) string {
		t.Helper()
		conn := dialGateway(t, g)
		conn.SetDeadline(time.Now().Add(20 * time.Second))
		io.WriteString(conn, "POST "+path+" HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\nConnection: close\r\n\r\n")
		for range 10 {
			time.Sleep(took / 10)
			conn.Write([]byte("x"))
		}
		b, _ := io.ReadAll(conn)
		return string(b)
	}
	for _, c := range []struct {
		path string
		took time.Duration
	}{{"/up", time.Second}, {"/pertry", 2 * time.Second}} {
		if got := upload(c.path, c.took); !strings.HasPrefix(got, "HTTP/1.1 200") || !strings.Contains(got, "got 10 bytes") {
			t.Errorf("%s: a 10-byte body sent over %s, in time: %q, want the endpoint's answer", c.path, c.took, got)
		}
	}
	for _, c := range []struct{ service, url string }{
		{"up", `{ endpoints: [ "` + up.URL + `" ] }`},
		{"pertry", `{ endpoints: [ "` + up.URL + `" ], retries: { per_try_timeout: 1s } }`},
	} {
		v, ep := short(upstreamDigestOf(t, c.url)), strings.TrimPrefix(up.URL, "http://")
		if n := metric(t, g, `wasmesh_upstream_failures_total{endpoint="`+ep+`",reason="timeout",version="`+v+`"}`); n != "" && n != "0" {
			t.Errorf("%s: the client's slow upload counted as the endpoint's timeouts: %s", c.service, n)
		}
	}
	// Not sent within the timeout: the client's.
	if got := upload("/up", 3*time.Second); !strings.HasPrefix(got, "HTTP/1.1 408") {
		t.Errorf("a body not sent within the timeout: %q, want 408", got)
	}
	clientsNotTheEndpoints(t, g, "up", "body_timeout", up.URL)
}

// TestUpstreamRetryBudgetGivenBack: a retry reserved by a try that
// failed as the service's timeout came (no time left for it) is given
// back: after many such requests, a GET to an endpoint that closes without
// answering is still tried as often as the policy says.
func TestUpstreamRetryBudgetGivenBack(t *testing.T) {
	var resets atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/reset":
			resets.Add(1)
			c, _, _ := http.NewResponseController(w).Hijack()
			c.Close()
		case "/hole":
			time.Sleep(time.Second)
		}
	}))
	t.Cleanup(up.Close)
	spec := `{ endpoints: [ "` + up.URL + `" ], retries: { attempts: 2, on: [ timeout, reset ] } }`
	g := serve(t, `
services:
  leak: { versions: [ { upstream: `+spec+` } ], limits: { timeout: 300ms } }
routes:
  - { match: { path_prefix: / }, service: leak }
`)
	tries := func() int64 {
		t.Helper()
		before := resets.Load()
		if status, _, _ := get(t, g.url+"/reset"); status != 502 {
			t.Fatalf("GET /reset: %d, want 502", status)
		}
		return resets.Load() - before
	}
	if n := tries(); n != 3 {
		t.Fatalf("before: GET /reset tried %d times, want 3", n)
	}
	for range 15 { // past minRetries, were each to keep its share
		if status, _, _ := get(t, g.url+"/hole"); status != 504 {
			t.Fatalf("GET /hole: %d, want 504", status)
		}
	}
	if n := tries(); n != 3 {
		t.Errorf("after 15 requests failed at the timeout: GET /reset tried %d times, want 3 (the retry budget kept their shares)", n)
	}
}

// TestUpstreamSharedSeries: two services with the same upstream block
// share its version's metric series (one pool each); a reload that
// removes one leaves the other's series counting, and its connections
// counter does not go down.
func TestUpstreamSharedSeries(t *testing.T) {
	up := nativeUpstream(t, "v1")
	spec := `{ endpoints: [ "` + up.URL + `" ], health: { path: /, interval: 100ms } }`
	both := `
services:
  a: { versions: [ { upstream: ` + spec + ` } ] }
  b: { versions: [ { upstream: ` + spec + ` } ] }
routes:
  - { match: { path_prefix: /b }, service: b }
  - { match: { path_prefix: / }, service: a }
`
	g := serve(t, both)
	v, ep := short(upstreamDigestOf(t, spec)), strings.TrimPrefix(up.URL, "http://")
	requests := `wasmesh_upstream_requests_total{code="200",endpoint="` + ep + `",version="` + v + `"}`
	connects := `wasmesh_upstream_connects_total{endpoint="` + ep + `",result="ok",version="` + v + `"}`
	for _, path := range []string{"/a", "/b"} {
		if status, _, _ := get(t, g.url+path); status != 200 {
			t.Fatalf("GET %s: %d", path, status)
		}
	}
	if n := metric(t, g, connects); n != "2" {
		t.Fatalf("%s = %q, want 2 (a pool each)", connects, n)
	}
	onlyA := strings.Replace(both, "  b: { versions: [ { upstream: "+spec+" } ] }\n", "", 1)
	onlyA = strings.Replace(onlyA, "  - { match: { path_prefix: /b }, service: b }\n", "", 1)
	if err := os.WriteFile(g.config, []byte(loopbackConfig(onlyA)), 0o644); err != nil {
		t.Fatal(err)
	}
	if status, body := adminPost(t, g, "/v1/config/reload", ""); status != 200 {
		t.Fatalf("reload without b: %d %s", status, body)
	}
	before, _ := strconv.Atoi(metric(t, g, requests))
	for range 5 {
		if status, _, _ := get(t, g.url+"/a"); status != 200 {
			t.Fatalf("GET /a after b left: %d", status)
		}
	}
	if after, _ := strconv.Atoi(metric(t, g, requests)); after != before+5 {
		t.Errorf("%s went from %d to %d over 5 requests of a, after b left", requests, before, after)
	}
	if n := metric(t, g, connects); n != "2" {
		t.Errorf("%s = %q after b left, want still 2", connects, n)
	}
	if n := metric(t, g, `wasmesh_upstream_healthy{endpoint="`+ep+`",version="`+v+`"}`); n == "" {
		t.Errorf("wasmesh_upstream_healthy of a's endpoint is gone after b left")
	}
}

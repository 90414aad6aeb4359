package mesh

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/dataplane"
	"github.com/wasmesh/wasmesh/internal/testutil"
	"github.com/wasmesh/wasmesh/modules"
)

// TestClientFaults: requests that fail by their client's doing — a head
// the listener refuses, a malformed chunked body, a body cut short, one
// over max_body, one too slow — are answered with a 4xx (or 499) and
// counted in wasmesh_client_errors_total by reason, and none of them is
// counted as the version's error: its 5xx stay at zero, while a guest that
// fails is still counted (5xx).
func TestClientFaults(t *testing.T) {
	testdata, _ := filepath.Abs("../internal/component/testdata")
	f := newFixture(t, strings.ReplaceAll(`
drain_delay: 0s
http: { max_headers: 20 }
services:
  hello:
    versions: [ { path: $EX/hello/zig/hello.wasm } ]
    limits: { max_body: 1KiB, timeout: 500ms }
  trap: { versions: [ { path: $TD/misbehave-trap.wasm } ] }
routes:
  - { match: { path_prefix: /hello }, service: hello }
  - { match: { path_prefix: /trap }, service: trap }
`, "$TD", testdata))
	addr := strings.TrimPrefix(serveFixture(t, f), "http://")
	admin := newTestServer(t, f.g.AdminHandler())
	raw := func(req string, closeWrite bool) string {
		t.Helper()
		c := dialRaw(t, addr)
		defer c.Close()
		io.WriteString(c, req)
		if closeWrite {
			c.(*net.TCPConn).CloseWrite()
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return "" // no answer: the client is gone
		}
		resp.Body.Close()
		return resp.Status
	}
	head := "POST /hello/x HTTP/1.1\r\nHost: x\r\n"
	for _, tc := range []struct {
		name, req  string
		closeWrite bool
		status     string // "" for no answer (the client is gone)
	}{
		{"smuggling", head + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false, "400"},
		{"too many headers", "GET /hello/x HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: 1\r\n", 25) + "\r\n", false, "431"},
		{"malformed chunk", head + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", false, "400"},
		{"body cut short", head + "Content-Length: 100\r\n\r\nabc", true, "499"},
		{"body too large", head + "Content-Length: 5000\r\n\r\n" + strings.Repeat("b", 5000), false, "413"},
		{"body too slow", head + "Content-Length: 100\r\n\r\nabc", false, "408"},
		{"CONNECT", "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n", false, "501"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := raw(tc.req, tc.closeWrite)
			if !strings.HasPrefix(got, tc.status) {
				t.Errorf("answer %.80q, want %s", got, tc.status)
			}
		})
	}
	if got := raw("GET /trap HTTP/1.1\r\nHost: x\r\n\r\n", false); !strings.HasPrefix(got, "502") {
		t.Errorf("a guest that traps: %s, want 502", got)
	}
	// The listener counts before the scrape: what it answered is already
	// counted when the client reads it.
	after := scrape(t, admin)
	for reason, want := range map[string]float64{"content_length_and_transfer_encoding": 1, "too_many_headers": 1, "connect": 1} {
		if got := value(after, "wasmesh_client_errors_total", map[string]string{"service": "", "reason": reason}); got != want {
			t.Errorf("client errors %q before routing: %v, want %v", reason, got, want)
		}
	}
	for reason, want := range map[string]float64{"bad_body": 1, "client_abort": 1, "body_too_large": 1, "body_timeout": 1} {
		if got := value(after, "wasmesh_client_errors_total", map[string]string{"service": "hello", "reason": reason}); got != want {
			t.Errorf("client errors %q of hello: %v, want %v", reason, got, want)
		}
	}
	if got := value(after, "wasmesh_requests_total", map[string]string{"service": "hello", "status": "5xx"}); got != 0 {
		t.Errorf("hello's 5xx: %v, want 0 (client faults counted as the version's)", got)
	}
	if got := value(after, "wasmesh_requests_total", map[string]string{"service": "trap", "status": "5xx"}); got != 1 {
		t.Errorf("trap's 5xx: %v, want 1", got)
	}
	// A request that was fine is served after all this.
	if got := raw("GET /hello/ok HTTP/1.1\r\nHost: x\r\n\r\n", false); !strings.HasPrefix(got, "200") {
		t.Errorf("GET after the faults: %s", got)
	}
}

// echoFixture serves echobody.wasm (a component that echoes the request
// body as it reads it) as service echo at /echo with limits, next to the
// services and routes given (YAML lines, indented).
func echoFixture(t *testing.T, limits, services, routes string) *fixture {
	t.Helper()
	testdata, _ := filepath.Abs("../internal/component/testdata")
	logs := &testutil.LockedBuffer{}
	f := newFixtureWith(t, `
drain_delay: 0s
services:
  echo:
    versions: [ { path: `+testdata+`/echobody.wasm } ]
    limits: `+limits+services+`
routes:
  - { match: { path_prefix: /echo }, service: echo }`+routes+"\n", Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	f.logs = logs
	return f
}

// TestServeComponentRequestStreams: a component reads a request body past
// the gateway's first 64 KiB as the client sends it (echobody.wasm echoes
// what it reads: the client reads its first 70 KiB back before it sends
// the rest), and a streamed body that goes wrong midway — over max_body,
// cut short, too slow — is the client's fault, counted as such, not the
// version's, whatever the component answered.
func TestServeComponentRequestStreams(t *testing.T) {
	f := echoFixture(t, "{ max_body: 200KiB, timeout: 2s }", `
  js:
    versions: [ { path: $EX/components/javascript/hello.wasm } ]
    limits: { max_body: 200KiB, timeout: 5s }`, `
  - { match: { path_prefix: /js }, service: js }`)
	addr := strings.TrimPrefix(serveFixture(t, f), "http://")
	admin := newTestServer(t, f.g.AdminHandler())

	first := strings.Repeat("a", 70<<10)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", "http://"+addr+"/echo", pr)
	done := make(chan struct{})
	var got []byte
	var status int
	go func() {
		defer close(done)
		go io.WriteString(pw, first)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		status = resp.StatusCode
		head := make([]byte, len(first))
		if _, err := io.ReadFull(resp.Body, head); err != nil {
			t.Errorf("reading the first %d bytes back: %v", len(first), err)
			return
		}
		// Only now the rest: the component echoed what came before it.
		io.WriteString(pw, "the rest")
		pw.Close()
		tail, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Error(err)
		}
		got = append(head, tail...)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		pw.CloseWithError(io.ErrUnexpectedEOF)
		t.Fatal("the first bytes never came back before the rest was sent: the body was not streamed")
	}
	if status != 200 || string(got) != first+"the rest" {
		t.Fatalf("status %d, %d bytes back (want %d)", status, len(got), len(first)+len("the rest"))
	}

	// Faults past the first 64 KiB, on raw connections.
	var rawTo func(path, body string, closeWrite bool)
	raw := func(body string, closeWrite bool) {
		rawTo("/echo", body, closeWrite)
	}
	rawTo = func(path, body string, closeWrite bool) {
		t.Helper()
		c := dialRaw(t, addr)
		defer c.Close()
		io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
		io.WriteString(c, body)
		if closeWrite {
			c.(*net.TCPConn).CloseWrite()
		}
		io.Copy(io.Discard, c) // whatever the answer, until the gateway closes
	}
	chunk := func(n int) string { return strconv.FormatInt(int64(n), 16) + "\r\n" + strings.Repeat("b", n) + "\r\n" }
	raw(chunk(70<<10)+chunk(70<<10)+chunk(70<<10)+"0\r\n\r\n", false) // 210 KiB: over max_body
	raw(chunk(70<<10)+"10\r\nabc", true)                              // cut short
	raw(chunk(70<<10), false)                                         // then nothing: too slow
	after := scrape(t, admin)
	for reason, want := range map[string]float64{"body_too_large": 1, "client_abort": 1, "body_timeout": 1} {
		if got := value(after, "wasmesh_client_errors_total", map[string]string{"service": "echo", "reason": reason}); got != want {
			t.Errorf("client errors %q of echo: %v, want %v", reason, got, want)
		}
	}
	if got := value(after, "wasmesh_requests_total", map[string]string{"service": "echo", "status": "5xx"}); got != 0 {
		t.Errorf("echo's 5xx: %v, want 0 (client faults counted as the version's)", got)
	}
	// A component that answers a body that failed with a 500 of its own
	// (componentize-js's, when the read throws): the client's fault still.
	rawTo("/js", chunk(70<<10)+chunk(70<<10)+chunk(70<<10)+"0\r\n\r\n", false)
	after = scrape(t, admin)
	if got := value(after, "wasmesh_requests_total", map[string]string{"service": "js", "status": "5xx"}); got != 0 {
		t.Errorf("js's 5xx after a body over max_body: %v, want 0", got)
	}
	if got := value(after, "wasmesh_client_errors_total", map[string]string{"service": "js", "reason": "body_too_large"}); got != 1 {
		t.Errorf("js's body_too_large client errors: %v, want 1", got)
	}
	// The log names the head the client got: the component's 500, the
	// echo's 200s, not the status counted.
	for _, want := range []string{"after a 500 head", "after a 200 head"} {
		if !strings.Contains(f.logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, f.logs)
		}
	}
	if strings.Contains(f.logs.String(), "after a 413 head") {
		t.Errorf("the log names the status counted as the head sent:\n%s", f.logs)
	}
}

// dialRaw connects to addr for a test that writes its own bytes, within
// 10 s.
func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// TestDrainStopNotTheVersions: a request the drain's deadline stops (the
// gateway's doing) is answered 503, and counted neither as its version's
// error, which a release or a lane would act on, nor as the client's; a
// client that goes away while the gateway drains is the client's 499.
func TestDrainStopNotTheVersions(t *testing.T) {
	f := newFixture(t, `
services:
  svc: { versions: [ { path: $EX/misbehave/rust/misbehave.wasm } ], limits: { timeout: 20s } }
routes:
  - { match: { path_prefix: / }, service: svc }
`)
	f.g.plane.Drain()
	gone, leave := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, leave) // the client goes away
	rec := httptest.NewRecorder()
	f.g.ServeHTTP(rec, httptest.NewRequestWithContext(gone, "GET", "/?do=loop", nil))
	if rec.Code != 499 {
		t.Fatalf("a client gone while the gateway drains: %d %q, want 499", rec.Code, rec.Body)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	time.AfterFunc(300*time.Millisecond, func() { cancel(dataplane.ErrDrainDeadline) }) // as serve's stop cancels a request
	rec = httptest.NewRecorder()
	f.g.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", "/?do=loop", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("a request stopped by the drain: %d %q, want 503", rec.Code, rec.Body)
	}
	digest := f.g.Config().Services["svc"].Versions[0].Digest
	if c := f.g.VersionCount("svc", digest); c.Errors != 0 || dataplane.Count(dataplane.LatencySnapshot{}, c.Latency) != 0 {
		t.Errorf("the version's errors after a drain's stop: %d, its latencies counted %d; want 0, 0", c.Errors, dataplane.Count(dataplane.LatencySnapshot{}, c.Latency))
	}
	// Nor in the version's 5xx, which alerts watch: counted without one.
	m := scrape(t, newTestServer(t, f.g.AdminHandler()))
	if got := value(m, "wasmesh_requests_total", map[string]string{"service": "svc", "status": "5xx", "version": modules.Short(digest)}); got != 0 {
		t.Errorf("the version's 5xx after a drain's stop: %v, want 0", got)
	}
	if got := value(m, "wasmesh_requests_total", map[string]string{"service": "svc", "status": "5xx", "version": ""}); got != 1 {
		t.Errorf("the service's 5xx of no version after a drain's stop: %v, want 1", got)
	}
}

// slowEcho serves echobody.wasm at /echo with a timeout of 60 s, and
// settings (YAML lines) beside it.
func slowEcho(t *testing.T, settings string) *fixture {
	t.Helper()
	testdata, _ := filepath.Abs("../internal/component/testdata")
	return newFixture(t, "drain_delay: 0s\n"+settings+`
services:
  echo:
    versions: [ { path: `+testdata+`/echobody.wasm } ]
    limits: { timeout: 60s }
routes:
  - { match: { path_prefix: /echo }, service: echo }
`)
}

// TestDrainStopsBodyReads: the drain's deadline stops a request waiting
// for its client's body as it stops a guest: at once, a 503 when nothing
// was answered yet, and neither the client's fault nor the version's
// error, whether the body is read before the handler runs (its first 64
// KiB) or by the component as it runs.
func TestDrainStopsBodyReads(t *testing.T) {
	f := slowEcho(t, "drain_timeout: 300ms\n")
	url, stop := serveStoppable(t, f)
	addr := strings.TrimPrefix(url, "http://")

	// Before the handler: 10 bytes of 100, then nothing.
	before := dialRaw(t, addr)
	defer before.Close()
	io.WriteString(before, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
	// In the handler: 70 KiB of a chunked body, echoed, then nothing.
	during := dialRaw(t, addr)
	defer during.Close()
	fmt.Fprintf(during, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", 70<<10, strings.Repeat("e", 70<<10))
	echoed := bufio.NewReader(during)
	if head, err := echoed.ReadString('\n'); err != nil || !strings.HasPrefix(head, "HTTP/1.1 200") {
		t.Fatalf("the echo's head: %q %v", head, err)
	}
	waitFor(t, "both requests in the request path", func() bool { return inflight(t, f.g) == 2 })

	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	resp, err := http.ReadResponse(bufio.NewReader(before), nil)
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a body read stopped by the drain before the handler: %v %v, want 503", resp, err)
	}
	// The echo's answer is cut: its connection closes.
	if _, err := io.Copy(io.Discard, echoed); err != nil {
		t.Fatalf("the echo's connection: %v, want it closed", err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	m := scrape(t, newTestServer(t, f.g.AdminHandler()))
	if got := value(m, "wasmesh_client_errors_total", nil); got != 0 {
		t.Errorf("client errors after the drain's stop: %v, want 0", got)
	}
	digest := f.g.Config().Services["echo"].Versions[0].Digest
	if c := f.g.VersionCount("echo", digest); c.Errors != 0 {
		t.Errorf("the version's errors after the drain's stop: %d, want 0", c.Errors)
	}
}

// TestH2ResetDuringBody: h2c clients that reset their streams (RST_STREAM)
// while the gateway reads their bodies, for 3 s: the read's end, which a
// stream's context may bring after its handler returned, never touches a
// finished stream (that crashed the process), and the gateway serves on.
func TestH2ResetDuringBody(t *testing.T) {
	f := slowEcho(t, "")
	url := serveFixture(t, f)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: tr}
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(deadline); i++ {
				pr, pw := io.Pipe()
				ctx, cancel := context.WithCancel(context.Background())
				req, _ := http.NewRequestWithContext(ctx, "POST", url+"/echo", pr)
				go func() {
					pw.Write(make([]byte, 1000+(i%3)*40000))
					if i%2 == 0 {
						time.Sleep(time.Duration(i%5) * 100 * time.Microsecond)
					}
					cancel() // the stream reset
					pw.Close()
				}()
				if resp, err := client.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	resp, err := http.Post(url+"/echo", "text/plain", strings.NewReader("still here"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "still here" {
		t.Fatalf("after the resets: %d %q", resp.StatusCode, body)
	}
}

// TestQueuedClientGoneNotARejection: a client that goes away while its
// request waits for a concurrency slot gets a 499 counted as its fault,
// not as a rejection (wasmesh_rejections_total counts the 503s of
// overload).
func TestQueuedClientGoneNotARejection(t *testing.T) {
	f := newFixture(t, oneSlot)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.g.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/?do=sleep&arg=1500", nil))
	}()
	waitFor(t, "the first request running", func() bool { return inflight(t, f.g) == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	queued := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		f.g.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", "/?do=sleep&arg=10", nil))
		queued <- rec.Code
	}()
	waitFor(t, "a request waiting in the queue", func() bool { return queueDepth(t, f.g, "slow") == 1 })
	cancel()
	if code := <-queued; code != 499 {
		t.Errorf("a queued request whose client went away: %d, want 499", code)
	}
	<-done
	mfs, err := f.g.plane.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "wasmesh_rejections_total" {
			for _, m := range mf.GetMetric() {
				if v := m.GetCounter().GetValue(); v != 0 {
					t.Errorf("wasmesh_rejections_total = %v after a client went away from the queue, want 0", v)
				}
			}
		}
	}
}

// inflight reads wasmesh_inflight_requests from g's registry.
func inflight(t *testing.T, g *Gateway) float64 {
	t.Helper()
	mfs, err := g.plane.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "wasmesh_inflight_requests" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

// TestModuleAnswerClientFaults: a module's answer its client does not
// take within the service's timeout is cut there (a slow_reader, not a
// request held for as long as the client stalls), and one whose client
// leaves midway is a client_abort; neither is the version's error.
func TestModuleAnswerClientFaults(t *testing.T) {
	f := newFixture(t, `
drain_delay: 0s
services:
  big: { versions: [ { path: $EX/misbehave/rust/misbehave.wasm } ], limits: { timeout: 1s } }
  patient: { versions: [ { path: $EX/misbehave/rust/misbehave.wasm } ], limits: { timeout: 10s } }
routes:
  - { match: { path_prefix: /patient }, service: patient }
  - { match: { path_prefix: / }, service: big }
`)
	addr := strings.TrimPrefix(serveFixture(t, f), "http://")
	admin := newTestServer(t, f.g.AdminHandler())
	clientErrors := func(reason string) float64 {
		return value(scrape(t, admin), "wasmesh_client_errors_total", map[string]string{"service": "big", "reason": reason})
	}
	const get = "GET /?do=big&arg=20000000 HTTP/1.1\r\nHost: x\r\n\r\n"

	stalled := dialRaw(t, addr) // reads 4 KiB, then nothing
	stalled.SetDeadline(time.Now().Add(time.Minute))
	stalled.(*net.TCPConn).SetReadBuffer(4 << 10)
	io.WriteString(stalled, get)
	if _, err := io.ReadFull(stalled, make([]byte, 4<<10)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stalled client counted as a slow_reader", func() bool { return clientErrors("slow_reader") == 1 })
	stalled.Close()

	gone := dialRaw(t, addr)                      // reads 1,000 bytes and leaves
	gone.SetDeadline(time.Now().Add(time.Minute)) // 20 MB from the guest take seconds under the race detector, on a busy machine
	io.WriteString(gone, get)
	if _, err := io.ReadFull(gone, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	gone.Close()
	waitFor(t, "the client gone midway counted as a client_abort", func() bool { return clientErrors("client_abort") == 1 })

	if got := value(scrape(t, admin), "wasmesh_requests_total", map[string]string{"service": "big", "status": "5xx"}); got != 0 {
		t.Errorf("big's 5xx: %v, want 0", got)
	}
	digest := f.g.Config().Services["big"].Versions[0].Digest
	if c := f.g.VersionCount("big", digest); c.Errors != 0 {
		t.Errorf("the version's errors: %d, want 0", c.Errors)
	}

	// A client that takes its answer slowly, within the timeout: the
	// version's latency ends when the answer was ready.
	before := f.g.VersionCount("patient", digest).Latency
	slow := dialRaw(t, addr)
	slow.SetDeadline(time.Now().Add(time.Minute))
	io.WriteString(slow, strings.Replace(get, "GET /", "GET /patient", 1))
	time.Sleep(2 * time.Second) // a 20 MB answer takes the guest 50 ms (600 under the race detector)
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, resp.Body); err != nil || n != 20000000 {
		t.Fatalf("the slow client's answer: %d bytes, %v", n, err)
	}
	slow.Close()
	var after dataplane.LatencySnapshot
	waitFor(t, "the slow client's request counted", func() bool {
		after = f.g.VersionCount("patient", digest).Latency
		return dataplane.Count(before, after) == 1
	})
	if q := dataplane.Quantile(before, after, 1); q >= 1500*time.Millisecond {
		t.Errorf("the version's latency for an answer its client took 2 s to read: %s", q)
	}
}

// TestComponentSlowReaderFreesSlot: a client that never reads a
// component's streamed response is cut at the service's timeout (a
// slow_reader, its fault) instead of holding the guest, blocked in its
// write, and the service's one concurrency slot for as long as it keeps
// its connection open.
func TestComponentSlowReaderFreesSlot(t *testing.T) {
	f := echoFixture(t, "{ max_body: 16MiB, timeout: 1s, max_concurrency: 1, max_queue: 0 }", "", "")
	addr := strings.TrimPrefix(serveFixture(t, f), "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.(*net.TCPConn).SetReadBuffer(4096) // and never read
	const size = 8 << 20
	go func() {
		io.WriteString(conn, "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: "+strconv.Itoa(size)+"\r\n\r\n")
		conn.Write(make([]byte, size)) // blocks once the echo stops reading: fine
	}()
	// The slot is the stalled request's (once it runs) for its timeout
	// (1 s) and a little more; then the service answers again, while the
	// client still holds its connection.
	admin := newTestServer(t, f.g.AdminHandler())
	waitFor(t, "the stalled request in flight", func() bool {
		resp, err := http.Get(admin + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(b), "\nwasmesh_inflight_requests 1\n")
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Post("http://"+addr+"/echo", "text/plain", strings.NewReader("hi"))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(b), "hi") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the service is still refused 15 s after a client stopped reading its response (status %v, %v)", func() int {
				if resp != nil {
					return resp.StatusCode
				}
				return 0
			}(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The client's fault: it took neither the response nor (the echo
	// stalled by it) the rest of its body in time.
	fault := regexp.MustCompile(`\nwasmesh_client_errors_total\{reason="(slow_reader|body_timeout)",service="echo"\} 1\n`)
	var metrics []byte
	for deadline := time.Now().Add(15 * time.Second); !fault.Match(metrics); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			var lines []string
			for _, l := range strings.Split(string(metrics), "\n") {
				if strings.Contains(l, `service="echo"`) {
					lines = append(lines, l)
				}
			}
			t.Fatalf("the stalled request is not counted as its client's fault 15 s on:\n%s", strings.Join(lines, "\n"))
		}
		if resp, err := http.Get(admin + "/metrics"); err == nil {
			metrics, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	}
}

// TestBodyMemoryBounded: the bodies read into memory, all requests
// together, are bounded by http.max_body_memory: past it a request is
// answered 503 (no one's fault), and once the bodies holding it go, the
// same request is served.
func TestBodyMemoryBounded(t *testing.T) {
	f := newFixture(t, `
http: { max_body_memory: 128KiB }
services:
  echo: { versions: [ { path: $EX/misbehave/rust/misbehave.wasm } ], limits: { max_body: 1MiB, timeout: 60s } }
routes:
  - { match: { path_prefix: / }, service: echo }
`)
	addr := strings.TrimPrefix(serveFixture(t, f), "http://")
	// An upload that stops 90 KiB into its 200: three chunks of 32 KiB held.
	held, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(held, "POST /?do=echo HTTP/1.1\r\nHost: a\r\nContent-Length: 204800\r\n\r\n"+strings.Repeat("x", 90<<10))
	post := func() int {
		resp, err := http.Post("http://"+addr+"/?do=echo", "text/plain", strings.NewReader(strings.Repeat("y", 64<<10)))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// Its three chunks held first: a post that took the budget before
	// the third would have the upload refused instead.
	admin := newTestServer(t, f.g.AdminHandler())
	waitFor(t, "the upload's 96 KiB held", func() bool {
		return value(scrape(t, admin), "wasmesh_request_body_memory_bytes", nil) == 96<<10
	})
	if got := post(); got != http.StatusServiceUnavailable {
		t.Fatalf("a 64 KiB body while 96 KiB of another are held: %d, want 503", got)
	}
	held.Close()
	waitFor(t, "the same body served once the held one is gone", func() bool { return post() == http.StatusOK })
}

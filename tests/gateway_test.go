package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/testutil"
)

// gateway is a `wasmesh serve` process on loopback ports of its own choosing.
type gateway struct {
	p           *proc
	url, admin  string // http://127.0.0.1:PORT
	config, dir string
}

var servingLine = regexp.MustCompile(`wasmesh gateway on (https?://\S+), admin API on (https?://\S+)`)

// serve writes config (with $EX replaced by the examples directory) to a temp
// dir and starts the gateway on it, with env added to its environment,
// waiting until it prints its addresses.
func serve(t testing.TB, config string, env ...string) *gateway {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "wasmesh.yaml")
	if err := os.WriteFile(path, []byte(loopbackConfig(config)), 0o644); err != nil {
		t.Fatal(err)
	}
	return serveFile(t, path, env...)
}

// exited reports whether the process pid has exited (a zombie until it is
// waited for).
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, after, _ := strings.Cut(string(b), ") ")
	return strings.HasPrefix(after, "Z")
}

// loopbackConfig is config on loopback ports of the gateway's choosing, with
// $EX replaced by the examples directory.
func loopbackConfig(config string) string {
	return "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\n" + strings.ReplaceAll(config, "$EX", repoPath("examples"))
}

// serveFile starts the gateway on the config file at path, with env added
// to its environment, waiting until it prints its addresses.
func serveFile(t testing.TB, path string, env ...string) *gateway {
	t.Helper()
	return serveArgs(t, path, nil, env...)
}

// serveArgs is serveFile with more arguments to wasmesh serve.
func serveArgs(t testing.TB, path string, args []string, env ...string) *gateway {
	t.Helper()
	pr, pw := io.Pipe()
	g := &gateway{config: path, dir: filepath.Dir(path)}
	g.p = start(t, opts{stdout: pw, env: env}, append([]string{"serve", "--config", path}, args...)...)
	t.Cleanup(func() {
		if g.p.cmd.ProcessState == nil {
			g.p.cmd.Process.Kill()
			g.p.cmd.Wait()
		}
		if t.Failed() {
			out := g.p.stderr.String()
			if len(out) > 6000 { // the end says most of what failed
				out = "…" + out[len(out)-6000:]
			}
			t.Logf("the gateway (killed after %s at most) exited %v; stderr:\n%s", runLimit, g.p.cmd.ProcessState, out)
		}
	})
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m
			}
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	timeout := time.After(2 * time.Minute) // compiling a component of tens of MB, uncached, takes seconds
wait:
	for {
		select {
		case m := <-found:
			g.url, g.admin = m[1], m[2]
			break wait
		case <-tick.C:
			if exited(g.p.cmd.Process.Pid) {
				t.Fatalf("gateway exited before serving; stderr:\n%s", g.p.stderr.String())
			}
		case <-timeout:
			t.Fatalf("gateway did not start; stderr:\n%s", g.p.stderr.String())
		}
	}
	go io.Copy(io.Discard, pr)
	return g
}

// get sends one request on a fresh connection and returns status and body.
func get(t testing.TB, url string, header ...string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// adminAuth is the Authorization header that t's gateways want: their
// token, which a gateway writes to $WASMESH_HOME/admin-token when its config
// sets no authentication.
func adminAuth(t testing.TB) (string, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(home(t), "admin-token"))
	if err != nil {
		t.Fatalf("the gateway's admin token: %v", err)
	}
	return "Authorization", "Bearer " + strings.TrimSpace(string(b))
}

// adminPost POSTs body (JSON) to path of g's admin API with t's token, and
// returns the status and the answer.
func adminPost(t testing.TB, g *gateway, path, body string) (int, string) {
	t.Helper()
	return adminDo(t, g, "POST", path, body)
}

// adminGet GETs path of g's admin API with t's token and returns the
// answer, which must be a 200.
func adminGet(t testing.TB, g *gateway, path string) string {
	t.Helper()
	status, b := adminDo(t, g, "GET", path, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, b)
	}
	return b
}

func adminDo(t testing.TB, g *gateway, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, g.admin+path, strings.NewReader(body))
	req.Header.Set(adminAuth(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// poll waits for cond, polling with a deadline.
var poll = testutil.WaitFor

func metric(t testing.TB, g *gateway, name string) string {
	t.Helper()
	_, body, _ := get(t, g.admin+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// frontendTo is a config of the Rust frontend as service name, routed
// at /, whose http_call goes to url, allowed.
func frontendTo(name, url string) string {
	return `
services:
  ` + name + `:
    versions: [ { path: $EX/frontend/rust/frontend.wasm } ]
    env: { USERS_URL: "` + url + `" }
    outbound: [ "` + url + `" ]
routes:
  - { match: { path_prefix: / }, service: ` + name + ` }
`
}

// TestOutboundCallCanceled: a guest's http_call cut because its client
// went away is counted as canceled, not as the target's timeout.
func TestOutboundCallCanceled(t *testing.T) {
	called := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	g := serve(t, frontendTo("frontend", slow.URL))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", g.url+"/x", nil)
	go func() { <-called; cancel() }() // the client leaves once the call is out
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the request was answered %d before its client left", resp.StatusCode)
	}
	target := slow.URL
	poll(t, "the call counted as canceled", func() bool {
		return metric(t, g, `wasmesh_outbound_calls_total{result="canceled",service="frontend",target="`+target+`"}`) == "1"
	})
	if n := metric(t, g, `wasmesh_outbound_calls_total{result="timeout",service="frontend",target="`+target+`"}`); n != "" {
		t.Errorf("a call cut by its client's leaving counted as %s timeouts", n)
	}
}

// TestHangupReloads: SIGHUP (systemd's ExecReload) loads the config
// file again; the gateway goes on serving, a request in flight included,
// where the signal's default action would end it.
func TestHangupReloads(t *testing.T) {
	g := serve(t, `
services:
  slow: { versions: [ { path: $EX/misbehave/rust/misbehave.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: slow }
`)
	done := make(chan int, 1)
	go func() { code, _, _ := get(t, g.url+"/?do=sleep&arg=1000"); done <- code }()
	poll(t, "the request in flight", func() bool { return metric(t, g, "wasmesh_inflight_requests") == "1" })
	g.p.cmd.Process.Signal(syscall.SIGHUP)
	poll(t, "the SIGHUP logged", func() bool { return strings.Contains(g.p.stderr.String(), "SIGHUP: loading the config file again") })
	if code := <-done; code != 200 {
		t.Errorf("the request in flight at the SIGHUP: %d, want 200", code)
	}
	if code, _, _ := get(t, g.url+"/?do=status&arg=204"); code != 204 || exited(g.p.cmd.Process.Pid) {
		t.Errorf("after the SIGHUP: %d, exited %v", code, exited(g.p.cmd.Process.Pid))
	}
}

// TestGracefulShutdown: with requests in flight, SIGTERM turns /readyz to 503
// at once, the listener stops accepting after drain_delay, every request
// accepted before the signal completes with 200, and the exit status is 0.
func TestGracefulShutdown(t *testing.T) {
	g := serve(t, `
drain_delay: 1s
drain_timeout: 20s
services:
  slow: { versions: [ { path: $EX/misbehave/rust/misbehave.wasm } ], limits: { timeout: 30s } }
routes:
  - { match: { path_prefix: / }, service: slow }
`)
	const inflight = 6
	var wg sync.WaitGroup
	statuses := make(chan string, inflight)
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body, _ := get(t, g.url+"/?do=sleep&arg=3000")
			statuses <- fmt.Sprintf("%d %s", code, strings.TrimSpace(body))
		}()
	}
	poll(t, "requests in flight", func() bool { return metric(t, g, "wasmesh_inflight_requests") == fmt.Sprint(inflight) })
	if code, _, _ := get(t, g.admin+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d before the signal", code)
	}

	// A client on a kept-alive connection, its first request before the
	// signal.
	kept := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
	resp, err := kept.Get(g.url + "/?do=status&arg=200")
	if err != nil || resp.Close {
		t.Fatalf("before the signal: %v, Connection: close %v", err, err == nil && resp.Close)
	}
	resp.Body.Close()

	signalled := time.Now()
	g.p.cmd.Process.Signal(syscall.SIGTERM)
	poll(t, "/readyz to turn 503", func() bool { code, _, _ := get(t, g.admin+"/readyz"); return code == 503 })
	if time.Since(signalled) < time.Second {
		// Still inside drain_delay: new connections are served, and a
		// kept-alive one is told to close after its request.
		if code, body, _ := get(t, g.url+"/?do=status&arg=200"); code != 200 {
			t.Fatalf("request during drain_delay: %d %s", code, body)
		}
		resp, err := kept.Get(g.url + "/?do=status&arg=200")
		if err != nil {
			t.Fatalf("on the kept-alive connection during drain_delay: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !resp.Close {
			t.Errorf("on the kept-alive connection during drain_delay: %d, Connection: close %v, want 200 and close", resp.StatusCode, resp.Close)
		}
	}
	addr := strings.TrimPrefix(g.url, "http://")
	poll(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if d := time.Since(signalled); d < 900*time.Millisecond {
		t.Fatalf("listener closed %s after the signal, before drain_delay", d)
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != "200 slept 3000" {
			t.Errorf("in-flight request ended with %q, want 200", s)
		}
	}
	if r := g.p.wait(t); r.code != 0 {
		t.Fatalf("exit status %d after drain, want 0\n%s", r.code, r.stderr)
	}
}

// TestSecondSignalExitsAtOnce: a second signal does not wait for the drain.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	g := serve(t, `
drain_delay: 20s
services:
  slow: { versions: [ { path: $EX/misbehave/rust/misbehave.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: slow }
`)
	g.p.cmd.Process.Signal(syscall.SIGTERM)
	poll(t, "/readyz to turn 503", func() bool { code, _, _ := get(t, g.admin+"/readyz"); return code == 503 })
	g.p.cmd.Process.Signal(syscall.SIGTERM)
	start := time.Now()
	r := g.p.wait(t)
	if r.code == 0 || time.Since(start) > 10*time.Second {
		t.Fatalf("second signal: exit %d after %s, want a quick non-zero exit", r.code, time.Since(start))
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wasmesh.yaml")
	os.WriteFile(path, []byte("services:\n  a:\n    versions:\n      - path: nope.wasm\n        wieght: 5\n"), 0o644)
	r := wasmesh(t, opts{}, "serve", "--config", path)
	if r.code != 1 || !strings.Contains(r.stderr, "wasmesh.yaml:5:9") || !strings.Contains(r.stderr, `unknown field "wieght"`) {
		t.Fatalf("exit %d, stderr %q: want 1 and file:line:col naming the field", r.code, r.stderr)
	}
}

// TestRoutesRefusesWhatServeRefuses: routes, the way to check a config
// file, refuses a path: version that is not WebAssembly as serve does.
func TestRoutesRefusesWhatServeRefuses(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "notwasm.txt"), []byte("hello"), 0o644)
	path := filepath.Join(dir, "wasmesh.yaml")
	os.WriteFile(path, []byte("store: store\nservices:\n  svc: { versions: [ { path: notwasm.txt } ] }\n"), 0o644)
	for _, cmd := range []string{"routes", "serve"} {
		r := wasmesh(t, opts{}, cmd, "--config", path)
		if r.code == 0 || !strings.Contains(r.stderr, "wasmesh.yaml:3:") || !strings.Contains(r.stderr, "not a WebAssembly binary") {
			t.Errorf("%s: exit %d, stderr %q: want the path refused at its line", cmd, r.code, r.stderr)
		}
		if _, err := os.Stat(filepath.Join(dir, "store")); cmd == "routes" && !os.IsNotExist(err) {
			t.Errorf("routes, a check, made the config's store (%v)", err)
		}
	}
	// A missing module: the path it was looked for at, as serve says.
	os.WriteFile(path, []byte("store: store\nservices:\n  svc: { versions: [ { path: missing.wasm } ] }\n"), 0o644)
	for _, cmd := range []string{"routes", "serve"} {
		r := wasmesh(t, opts{}, cmd, "--config", path)
		if r.code == 0 || !strings.Contains(r.stderr, "wasmesh.yaml:3:") || !strings.Contains(r.stderr, filepath.Join(dir, "missing.wasm")) {
			t.Errorf("%s: exit %d, stderr %q: want the missing path named at its line", cmd, r.code, r.stderr)
		}
	}
}

func TestServeRefusesHugeHeapFloor(t *testing.T) {
	r := wasmesh(t, opts{}, "serve", "--gc-heap-floor", "2000000")
	if r.code != 2 || !strings.Contains(r.stderr, "--gc-heap-floor 2000000") || !strings.Contains(r.stderr, "MiB") {
		t.Fatalf("exit %d, stderr %q: want 2 and the flag's value, in MiB", r.code, r.stderr)
	}
}

func TestServeRefusesBadLogFlushInterval(t *testing.T) {
	for _, v := range []string{"-1ms", "2s"} {
		r := wasmesh(t, opts{}, "serve", "--log-flush-interval", v)
		if r.code != 2 || !strings.Contains(r.stderr, "--log-flush-interval "+v) {
			t.Fatalf("--log-flush-interval %s: exit %d, stderr %q: want 2 and the flag's value", v, r.code, r.stderr)
		}
	}
}

// versionsInFile reads the weights a config file gives service hello, as
// "file-or-digest=weight" in file order.
func versionsInFile(t *testing.T, path string) string {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, v := range cfg.Services["hello"].Versions {
		parts = append(parts, fmt.Sprintf("%s=%d", strings.TrimPrefix(filepath.Base(v.Path), ".")+v.Module, v.Weight))
	}
	return strings.Join(parts, " ")
}

// TestReleaseThroughCLI: deploy a canary, promote it, roll back, all through
// the CLI against a running gateway; the config file follows each step and a
// restarted gateway serves the same.
func TestReleaseThroughCLI(t *testing.T) {
	g := serve(t, `
services:
  hello: { versions: [ { path: $EX/hello/rust/hello.wasm, weight: 100 } ] }
routes:
  - { match: { path_prefix: / }, service: hello }
`)
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	zig := push(t, hello("zig"))
	rust := push(t, hello("rust"))

	if r := wasmesh(t, opts{}, "deploy", "helo", hello("zig"), admin); r.code != 1 || r.stdout != "" ||
		!strings.Contains(r.stderr, `no service "helo" in the gateway (its services: hello); nothing uploaded`) {
		t.Fatalf("deploy to a mistyped service: exit %d, stdout %q, stderr %q; want it refused before the upload", r.code, r.stdout, r.stderr)
	}
	r := ok(t, opts{}, "deploy", "hello", hello("zig"), "--weight", "10", "--name", "canary", admin)
	if !strings.Contains(r.stdout, short(zig)) || !strings.Contains(r.stdout, "10%") {
		t.Fatalf("deploy output:\n%s", r.stdout)
	}
	if got, want := versionsInFile(t, g.config), fmt.Sprintf("hello.wasm=90 %s=10", zig); got != want {
		t.Fatalf("after deploy the file says %q, want %q", got, want)
	}
	if _, body, h := get(t, g.url+"/", "X-Wasmesh-Version", "canary"); h.Get("X-Wasmesh-Version") != zig || !strings.Contains(body, "zig") {
		t.Fatalf("pinned canary answered %q from %s", body, h.Get("X-Wasmesh-Version"))
	}

	ok(t, opts{}, "promote", "hello", short(zig), admin)
	if got, want := versionsInFile(t, g.config), zig+"=100"; got != want {
		t.Fatalf("after promote the file says %q, want %q", got, want)
	}
	for range 20 {
		if _, body, _ := get(t, g.url+"/x"); body != "hello from zig: GET /x 0 bytes\n" {
			t.Fatalf("after promote: %q", body)
		}
	}

	ok(t, opts{}, "rollback", "hello", admin)
	if got, want := versionsInFile(t, g.config), fmt.Sprintf("hello.wasm=90 %s=10", zig); got != want {
		t.Fatalf("after rollback the file says %q, want %q", got, want)
	}
	st := ok(t, opts{}, "status", admin)
	for _, want := range []string{"generation 4", short(rust), short(zig), "90%", "10%", "canary"} {
		if !strings.Contains(st.stdout, want) {
			t.Fatalf("status lacks %q:\n%s", want, st.stdout)
		}
	}
	if r := wasmesh(t, opts{}, "promote", "hello", "sha256:00000000", admin); r.code == 0 || !strings.Contains(r.stderr, "no artifact matches") {
		t.Fatalf("promote of an unknown digest: exit %d, %q", r.code, r.stderr)
	}
	if r := wasmesh(t, opts{}, "promote", "hello", "stable", admin); r.code == 0 || !strings.Contains(r.stderr, `"stable" names no version of service "hello" (its versions: `) {
		t.Fatalf("promote of an unknown name: exit %d, %q", r.code, r.stderr)
	}
	// Promote sends all traffic: a weight in its body would be dropped
	// without a word, so it is refused.
	authKey, authValue := adminAuth(t)
	if code, body := post(t, http.DefaultClient, g.admin+"/v1/services/hello/promote", `{"module":"`+short(zig)+`","weight":50}`, authKey, authValue); code != 400 || !strings.Contains(body, `are for deploy`) {
		t.Fatalf("promote with a weight: %d %s", code, body)
	}
	// The admin API wants the token the gateway wrote: a wrong one is
	// refused, saying where the token is looked for.
	if r := wasmesh(t, opts{env: []string{"WASMESH_ADMIN_TOKEN=not-the-token-0123456789"}}, "rollback", "hello", admin); r.code == 0 ||
		!strings.Contains(r.stderr, "wrong token") || !strings.Contains(r.stderr, "admin-token") {
		t.Fatalf("rollback with a wrong token: exit %d, %q", r.code, r.stderr)
	}

	// A restart serves what the file now says.
	g.p.cmd.Process.Signal(syscall.SIGKILL)
	g.p.cmd.Wait()
	data, _ := os.ReadFile(g.config)
	g2 := serve(t, strings.TrimPrefix(string(data), "listen: 127.0.0.1:0\nadmin: 127.0.0.1:0\n"))
	_, body, h := get(t, g2.url+"/", "X-Wasmesh-Version", "canary")
	if h.Get("X-Wasmesh-Version") != zig || !strings.Contains(body, "zig") {
		t.Fatalf("restarted gateway: canary pin answered %q from %s", body, h.Get("X-Wasmesh-Version"))
	}
	// A development path: version promoted stays a path (its file read
	// again at each reload), as deploy and rollback keep it.
	ok(t, opts{}, "promote", "hello", short(rust), "--admin="+strings.TrimPrefix(g2.admin, "http://"))
	if got := versionsInFile(t, g2.config); got != "hello.wasm=100" {
		t.Errorf("after promoting the path version the file says %q, want hello.wasm=100", got)
	}
}

// TestServeComponents: wasi:http/proxy components built by componentize-js
// and componentize-py, from sources written for no particular host, and by
// wit-bindgen's C bindings from C, Zig and Rust, are served by the gateway
// beside a module (TestComponentFetchesInProcess, in
// package mesh, follows the trace into a component and out of it).
func TestServeComponents(t *testing.T) {
	g := serve(t, `
services:
  js: { versions: [ { path: $EX/components/javascript/hello.wasm } ] }
  py: { versions: [ { path: $EX/components/python/hello.wasm } ] }
  ts: { versions: [ { path: $EX/components/typescript/hello.wasm } ] }
  rust: { versions: [ { path: $EX/hello/rust/hello.wasm } ] }
  c-component: { versions: [ { path: $EX/components/c/hello.wasm } ], env: { GREETING: hi } }
  zig-component: { versions: [ { path: $EX/components/zig/hello.wasm } ] }
  rust-component: { versions: [ { path: $EX/components/rust/hello.wasm } ] }
routes:
  - { match: { path_prefix: /c-component }, service: c-component, strip_prefix: true }
  - { match: { path_prefix: /zig-component }, service: zig-component, strip_prefix: true }
  - { match: { path_prefix: /rust-component }, service: rust-component, strip_prefix: true }
  - { match: { path_prefix: /js }, service: js, strip_prefix: true }
  - { match: { path_prefix: /py }, service: py, strip_prefix: true }
  - { match: { path_prefix: /ts }, service: ts, strip_prefix: true }
  - { match: { path_prefix: /rust }, service: rust, strip_prefix: true }
`)
	for _, tc := range []struct{ path, want string }{
		{"/js/a", "hello from javascript: GET /a 0 bytes"},
		{"/py/b?x=1", "hello from python: GET /b 0 bytes"},
		{"/rust/c", "hello from rust: GET /c 0 bytes\n"},
		// The service's env is the component's wasi:cli/environment.
		{"/c-component/g?q", "hi from c: GET /g 0 bytes\n"},
		{"/zig-component/h", "hello from zig: GET /h 0 bytes\n"},
		{"/rust-component/i", "hello from rust: GET /i 0 bytes\n"},
		// Module state of the TypeScript component: a new instance serves
		// each request, so the counter is 1 however many came before.
		{"/ts/d", "hello from typescript: GET /d (request 1 of this instance)"},
		{"/ts/e", "hello from typescript: GET /e (request 1 of this instance)"},
		{"/ts/f", "hello from typescript: GET /f (request 1 of this instance)"},
	} {
		status, body, h := get(t, g.url+tc.path, "Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
		if status != 200 || body != tc.want || h.Get("X-Wasmesh-Version") == "" {
			t.Errorf("GET %s: %d %q (version %q), want 200 %q", tc.path, status, body, h.Get("X-Wasmesh-Version"), tc.want)
		}
	}
}

// TestServeComponentTrailers: through the gateway, a client's request
// trailers reach a component and the trailers it finishes its response
// with reach the client, over HTTP/1.1 (chunked) and h2c.
func TestServeComponentTrailers(t *testing.T) {
	g := serve(t, `
services:
  trailers: { versions: [ { path: `+repoPath("internal", "component", "testdata", "trailers.wasm")+` } ] }
routes:
  - { match: { path_prefix: / }, service: trailers }
`)
	for _, h2 := range []bool{false, true} {
		client := &http.Client{Timeout: 30 * time.Second}
		if h2 {
			client.Transport = &http.Transport{Protocols: new(http.Protocols)}
			client.Transport.(*http.Transport).Protocols.SetUnencryptedHTTP2(true)
		}
		req, err := http.NewRequest("POST", g.url+"/", io.MultiReader(strings.NewReader("body")))
		if err != nil {
			t.Fatal(err)
		}
		req.Trailer = http.Header{"X-Checksum": {"abc"}}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Trailer.Get("X-Checksum") != "abc" {
			t.Errorf("h2 %v: %s, trailers %v; want 200 with X-Checksum: abc", h2, resp.Status, resp.Trailer)
		}
	}
}

// TestHealthDuringFirstLoad: the health listener answers while the first
// config is still loading (a module being read, compiled): /healthz 200,
// so a liveness probe does not restart a gateway still compiling, and
// /readyz 503 until it serves. The module is a FIFO, whose read waits
// for the test to write it.
func TestHealthDuringFirstLoad(t *testing.T) {
	dir := t.TempDir()
	module := filepath.Join(dir, "m.wasm")
	if err := syscall.Mkfifo(module, 0o644); err != nil {
		t.Fatal(err)
	}
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	health := fmt.Sprintf("127.0.0.1:%d", ports[0])
	path := filepath.Join(dir, "wasmesh.yaml")
	config := loopbackConfig("health: " + health + "\nservices:\n  svc: { versions: [ { path: " + module + " } ] }\nroutes:\n  - { match: { path_prefix: / }, service: svc }\n")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, opts{}, "serve", "--config", path)
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	status := func(path string) int {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + health + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	poll(t, "/healthz answering 200 while the module is read", func() bool { return status("/healthz") == 200 })
	if got := status("/readyz"); got != 503 {
		t.Errorf("/readyz before the first config loaded: %d, want 503", got)
	}
	wasm, err := os.ReadFile(repoPath("examples", "hello", "zig", "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(module, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(wasm)
	f.Close()
	poll(t, "/readyz answering 200 once the config loaded", func() bool { return status("/readyz") == 200 })
}

// TestResumeLastGood: with --resume FILE, every config that loads is kept
// in FILE, and a gateway restarted on a config file that is refused (an
// edit that broke it while the gateway ran) serves the last config that
// loaded, says why, and loads the file once it is fixed; without it,
// serve refuses to start as before.
func TestResumeLastGood(t *testing.T) {
	dir := t.TempDir()
	path, last := filepath.Join(dir, "wasmesh.yaml"), filepath.Join(dir, "last-good.yaml")
	config := func(lang, extra string) []byte {
		return []byte(loopbackConfig(extra + "services:\n  hello: { versions: [ { path: $EX/hello/" + lang + "/hello.wasm } ] }\nroutes:\n  - { match: { path_prefix: / }, service: hello }\n"))
	}
	if err := os.WriteFile(path, config("zig", ""), 0o644); err != nil {
		t.Fatal(err)
	}
	g := serveArgs(t, path, []string{"--resume", last})
	if status, body, _ := get(t, g.url+"/x"); status != 200 || !strings.Contains(body, "hello from zig") {
		t.Fatalf("before the restart: %d %q", status, body)
	}
	g.p.cmd.Process.Kill()
	g.p.cmd.Wait()
	if kept, err := os.ReadFile(last); err != nil || !bytes.Equal(kept, config("zig", "")) {
		t.Fatalf("--resume kept %q, %v; want the config that loaded", kept, err)
	}
	if err := os.WriteFile(path, config("zig", "bogus_setting: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := wasmesh(t, opts{}, "serve", "--config", path); r.code != 1 || !strings.Contains(r.stderr, "bogus_setting") {
		t.Fatalf("serve on a refused config without --resume: exit %d, %q", r.code, r.stderr)
	}
	g = serveArgs(t, path, []string{"--resume", last})
	if status, body, _ := get(t, g.url+"/x"); status != 200 || !strings.Contains(body, "hello from zig") {
		t.Fatalf("restarted on a refused config with --resume: %d %q", status, body)
	}
	// The log's lines reach stderr within its flush interval.
	poll(t, "the log to say the file was refused and the last good config serves", func() bool {
		return strings.Contains(g.p.stderr.String(), "serving the last good config") && strings.Contains(g.p.stderr.String(), "bogus_setting")
	})
	if v := metric(t, g, "wasmesh_config_last_load_success"); v != "0" {
		t.Errorf("serving the last good config, the file refused: wasmesh_config_last_load_success = %q, want 0", v)
	}
	if err := os.WriteFile(path, config("c", ""), 0o644); err != nil {
		t.Fatal(err)
	}
	poll(t, "the fixed file loaded", func() bool {
		_, body, _ := get(t, g.url+"/x")
		return strings.Contains(body, "hello from c")
	})
}

// TestGuestFloodsBounded: what a guest chooses cannot grow the gateway's
// log or metrics without bound: 1,000 calls to distinct hosts its
// outbound list refuses are logged once and counted under one target;
// log messages are cut at 16 KiB, and a request's lines past 1 MiB are
// dropped, saying so once.
func TestGuestFloodsBounded(t *testing.T) {
	td := repoPath("tests", "testdata")
	g := serve(t, `
services:
  deny: { versions: [ { path: `+td+`/denyflood.wasm } ], outbound: [ "http://allowed.example" ] }
  noisy: { versions: [ { path: `+td+`/logflood.wasm } ] }
routes:
  - { match: { path_prefix: /deny }, service: deny }
  - { match: { path_prefix: /noisy }, service: noisy }
`)
	if status, body, _ := get(t, g.url+"/deny"); status != 200 || body != "ok\n" {
		t.Fatalf("denyflood: %d %q", status, body)
	}
	if n := metric(t, g, `wasmesh_outbound_calls_total{result="denied",service="deny",target="(not allowed)"}`); n != "1000" {
		t.Errorf(`wasmesh_outbound_calls_total{target="(not allowed)"} = %q, want 1000`, n)
	}
	_, metrics, _ := get(t, g.admin+"/metrics")
	if strings.Contains(metrics, ".example") {
		t.Errorf("the metrics name targets the guest chose:\n%s", grepLines(metrics, ".example"))
	}
	poll(t, "the refusal logged", func() bool { return strings.Contains(g.p.stderr.String(), "http_call refused") })
	if n := strings.Count(g.p.stderr.String(), "http_call refused"); n != 1 {
		t.Errorf("%d log lines of refused calls for one request, want 1", n)
	}
	before := len(g.p.stderr.String())
	if status, body, _ := get(t, g.url+"/noisy"); status != 200 || body != "ok\n" {
		t.Fatalf("logflood: %d %q", status, body)
	}
	poll(t, "the log's drop said", func() bool { return strings.Contains(g.p.stderr.String(), "over 1 MiB") })
	logged := g.p.stderr.String()[before:]
	if len(logged) > 1200<<10 || !strings.Contains(logged, "cut at 16384") {
		t.Errorf("a request's 6.25 MiB of log messages wrote %d bytes to the log (cut at 16 KiB: %v)", len(logged), strings.Contains(logged, "cut at 16384"))
	}
}

// TestFanOutBounded: a guest that calls itself ten times a hop, eight hops
// deep, makes at most MaxTreeCalls (1,000) in-process calls for the
// client's request, not millions: the access log has about as many lines,
// and the client its answer.
func TestFanOutBounded(t *testing.T) {
	g := serve(t, `
services:
  bomb: { versions: [ { path: `+repoPath("tests", "testdata", "fanout.wasm")+` } ], outbound: [ "wasmesh://bomb" ], limits: { timeout: 20s } }
routes:
  - { match: { path_prefix: / }, service: bomb }
`)
	if status, body, _ := get(t, g.url+"/"); status != 200 || body != "ok\n" {
		t.Fatalf("fan-out: %d %q", status, body)
	}
	poll(t, "the refusal logged", func() bool { return strings.Contains(g.p.stderr.String(), "too many in-process calls") })
	if n := strings.Count(g.p.stderr.String(), "msg=request "); n > 1100 {
		t.Errorf("one client request made %d access-log lines, want at most about 1,000", n)
	}
}

// TestCallWithBadOutputNotSent: an http_call whose output pointers are
// outside the guest's memory is answered INVALID before it is sent: the
// callee never serves it (no access-log line of its).
func TestCallWithBadOutputNotSent(t *testing.T) {
	invalidCallNotSent(t, "callbadout.wasm", "http_call with resp_len_out out of memory")
}

// invalidCallNotSent serves the test guest wasm (tests/testdata), whose
// http_call to wasmesh://hello is malformed (what), and checks that it
// answers INVALID (X-Rc: 3) and that hello never serves the call.
func invalidCallNotSent(t *testing.T, wasm, what string) {
	t.Helper()
	g := serve(t, `
services:
  caller: { versions: [ { path: `+repoPath("tests", "testdata", wasm)+` } ], outbound: [ "wasmesh://hello" ] }
  hello: { versions: [ { path: $EX/hello/zig/hello.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: caller }
`)
	status, _, header := get(t, g.url+"/x")
	if status != 200 || header.Get("X-Rc") != "3" {
		t.Fatalf("%s: %d, X-Rc %q, want 3 (INVALID)", what, status, header.Get("X-Rc"))
	}
	poll(t, "the caller's access-log line", func() bool { return strings.Contains(g.p.stderr.String(), "service=caller") })
	if strings.Contains(g.p.stderr.String(), "service=hello") {
		t.Errorf("the call went out to hello:\n%s", g.p.stderr.String())
	}
}

// TestDeployByName: wasmesh deploy takes the name of one of the
// service's versions, as the admin API does; a missing file still says so.
func TestDeployByName(t *testing.T) {
	g := serve(t, `
services:
  hello:
    versions:
      - { path: $EX/hello/rust/hello.wasm, weight: 100 }
      - { path: $EX/hello/zig/hello.wasm, weight: 0, name: canary }
routes:
  - { match: { path_prefix: / }, service: hello }
`)
	admin := "--admin=" + strings.TrimPrefix(g.admin, "http://")
	ok(t, opts{}, "deploy", "hello", "canary", "--weight", "30", admin)
	if got := versionsInFile(t, g.config); got != "hello.wasm=70 hello.wasm=30" {
		t.Errorf("after deploy of canary at 30: %q", got)
	}
	if r := wasmesh(t, opts{}, "deploy", "hello", "nothere.wasm", admin); r.code != 2 || !strings.Contains(r.stderr, "nothere.wasm") {
		t.Errorf("deploy of a missing file: exit %d, %q", r.code, r.stderr)
	}
	// A digest's prefix names a version with 8 hex digits at least, as
	// everywhere: 7 are refused, though they would be one version's.
	zig := fileDigest(t, repoPath("examples", "hello", "zig", "hello.wasm"))
	if status, b := adminPost(t, g, "/v1/services/hello/deploy", `{"module":"`+zig[:len("sha256:")+7]+`","weight":10}`); status/100 != 4 || !strings.Contains(b, "8 to 64 hex digits") {
		t.Errorf("deploy of a 7-digit prefix: %d %s, want it refused naming the rule", status, b)
	}
}

// TestSignalDuringFirstLoad: a SIGTERM while the first config still loads
// (here a path module that is a FIFO nothing writes, so its read never
// ends) stops the process within a second or two, instead of once the
// load ends (a large component's compile takes seconds; this one never).
func TestSignalDuringFirstLoad(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "slow.wasm")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "wasmesh.yaml")
	if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nadmin: off\nservices:\n  s: { versions: [ { path: slow.wasm } ] }\nroutes:\n  - { match: { path_prefix: / }, service: s }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := start(t, opts{}, "serve", "--config", cfg)
	// Its first log line (the packet colouring's, before the load) says
	// it handles signals; the load then waits on the FIFO.
	poll(t, "the gateway's first log line", func() bool { return strings.Contains(p.stderr.String(), "msg=") })
	time.Sleep(200 * time.Millisecond)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	signalled := time.Now()
	r := p.wait(t)
	if took := time.Since(signalled); took > 3*time.Second || r.code == 0 || !strings.Contains(r.stderr, "first config") {
		t.Errorf("exit %d %s after the SIGTERM; want a failure within 3 s naming the first config's load\nstderr: %s", r.code, took, r.stderr)
	}
}

// TestCallAnswerCapped: an in-process call's answer is capped as a URL's
// is (32 MiB): one of 40 MiB from an upstream version is TOO_SMALL with
// the length 0xffffffff, not buffered whole by the gateway for the
// caller to ask again with a larger buffer.
func TestCallAnswerCapped(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(bytes.Repeat([]byte("x"), 40<<20))
	}))
	t.Cleanup(up.Close)
	g := serveCallBig(t, up.URL)
	if code, body, _ := get(t, g.url+"/"); code != 200 || body != "code=1 len=4294967295\n" {
		t.Errorf("GET /: %d %q, want 200 \"code=1 len=4294967295\" (TOO_SMALL, no buffer would do)", code, body)
	}
}

// TestCallAnswerCut: an in-process call whose callee fails after its head
// (here an upstream version that closes its connection mid-body) is
// UNAVAILABLE to the caller, as a URL's broken answer is, not a complete
// answer of the bytes that came.
func TestCallAnswerCut(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "partial")
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	t.Cleanup(up.Close)
	g := serveCallBig(t, up.URL)
	if code, body, _ := get(t, g.url+"/"); code != 200 || !strings.HasPrefix(body, "code=4 ") {
		t.Errorf("GET /: %d %q, want 200 \"code=4 ...\" (UNAVAILABLE: the callee's answer was cut)", code, body)
	}
}

// serveCallBig serves callbig.wasm, which calls wasmesh://big/, at /, and
// as big an upstream version of the endpoint url.
func serveCallBig(t *testing.T, url string) *gateway {
	return serve(t, `
services:
  caller: { versions: [ { path: `+repoPath("tests", "testdata", "callbig.wasm")+` } ], outbound: [ "wasmesh://big" ] }
  big: { versions: [ { upstream: { endpoints: [ "`+url+`" ] } } ] }
routes:
  - { match: { path_prefix: / }, service: caller }
`)
}

// TestComponentOutputLogged: what a component writes to stderr reaches
// the log: a trap's line names the message it wrote before (a panic's),
// as a module's does; at debug level its stdout and stderr are logged
// with the request's id.
func TestComponentOutputLogged(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wasmesh.yaml")
	if err := os.WriteFile(path, []byte(loopbackConfig(`
services:
  m: { versions: [ { path: $EX/components/c/misbehave.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: m }
`)), 0o644); err != nil {
		t.Fatal(err)
	}
	g := serveArgs(t, path, []string{"--log-level", "debug"})
	if code, _, _ := get(t, g.url+"/panic"); code != 502 {
		t.Errorf("GET /panic: %d, want 502", code)
	}
	if code, body, _ := get(t, g.url+"/print"); code != 200 || body != "printed\n" {
		t.Errorf("GET /print: %d %q, want 200 \"printed\"", code, body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		log := g.p.stderr.String()
		trapped := regexp.MustCompile(`msg=request .*path=/panic status=502 .*error="guest trapped: unreachable \(stderr: misbehave: panicking on purpose\)"`).MatchString(log)
		printed := regexp.MustCompile(`level=DEBUG msg="guest stdout" request_id=\S+ service=m stdout="misbehave: a line on stdout`).MatchString(log)
		if trapped && printed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log lacks the trap's stderr line (%v) or the debug stdout line (%v):\n%s", trapped, printed, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestComponentFanOut: a component's outgoing requests overlap: four
// handed to the outgoing handler before any response is waited for are in
// flight together (the upstream holds each until all four have come, or
// for 5 s), as Promise.all of fetches expects, not sent one after another.
func TestComponentFanOut(t *testing.T) {
	var inflight, most atomic.Int64
	all := make(chan struct{})
	var once sync.Once
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		if n == 4 {
			once.Do(func() { close(all) })
		}
		select {
		case <-all:
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(up.Close)
	g := serve(t, `
services:
  m: { versions: [ { path: $EX/components/c/misbehave.wasm } ], outbound: [ "`+up.URL+`" ], limits: { timeout: 30s } }
routes:
  - { match: { path_prefix: / }, service: m }
`)
	code, body, _ := get(t, g.url+"/fan?"+up.URL+"/x")
	if code != 200 || body != "fan: 200 200 200 200\n" || most.Load() != 4 {
		t.Errorf("GET /fan: %d %q, at most %d requests in flight together; want 200 \"fan: 200 200 200 200\", 4", code, body, most.Load())
	}
}

// TestComponentRequestOptions: a component's first-byte-timeout (300 ms)
// bounds the time to its outgoing request's response head: one to an
// upstream that does not answer for 10 s fails with
// connection-read-timeout (error-code case 9) at it, within the service's
// timeout of 30 s; one that answers at once is not cut, nor one whose head
// comes at once and its body after 600 ms.
func TestComponentRequestOptions(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			select {
			case <-release:
			case <-time.After(10 * time.Second):
			}
		case "/slowbody":
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			time.Sleep(600 * time.Millisecond)
			io.WriteString(w, "body")
		}
	}))
	t.Cleanup(func() { close(release); up.Close() })
	g := serve(t, `
services:
  m: { versions: [ { path: $EX/components/c/misbehave.wasm } ], outbound: [ "`+up.URL+`" ], limits: { timeout: 30s } }
routes:
  - { match: { path_prefix: / }, service: m }
`)
	for path, want := range map[string]string{"/slow": "slow: error 9\n", "/fast": "slow: 200\n", "/slowbody": "slow: 200\n"} {
		if code, body, _ := get(t, g.url+"/slow?"+up.URL+path); code != 200 || body != want {
			t.Errorf("GET %s: %d %q, want 200 %q", path, code, body, want)
		}
	}
}

// TestCallWithBadHeaderInvalid: an http_call whose header field has a
// bare CR in its value is INVALID (the guest's malformed argument), not
// sent: the callee never serves it.
func TestCallWithBadHeaderInvalid(t *testing.T) {
	invalidCallNotSent(t, "callbadheader.wasm", "http_call with a CR in a header value")
}

// TestComponentHeadLength: a component's answer to a HEAD keeps the
// Content-Length it declares (the length of its GET's body), which its
// empty body does not say.
func TestComponentHeadLength(t *testing.T) {
	g := serve(t, `
services:
  m: { versions: [ { path: $EX/components/c/misbehave.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: m }
`)
	resp, err := http.Head(g.url + "/head")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != "1000" {
		t.Errorf("HEAD /head: %d, Content-Length %q, want 200 and 1000", resp.StatusCode, resp.Header.Get("Content-Length"))
	}
}

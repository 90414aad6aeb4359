package mesh

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	adminapi "github.com/wasmesh/wasmesh/internal/admin"
	"github.com/wasmesh/wasmesh/internal/testutil"
	"github.com/wasmesh/wasmesh/modules"
)

// waitFor polls cond until it holds or the deadline passes.
var waitFor = testutil.WaitFor

func oneVersion(lang string) string {
	return fmt.Sprintf(`
services:
  svc: { versions: [ { path: $EX/hello/%s/hello.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: svc }
`, lang)
}

func digestOfFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return modules.DigestOf(b)
}

// TestHotReloadUnderLoad changes the config 20 times, valid and invalid in
// turn, while clients keep sending requests: none may fail, every response
// comes from a version that was valid, and the last config wins.
func TestHotReloadUnderLoad(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	f.watch(t)
	notWasm := f.path + ".txt"
	os.WriteFile(notWasm, []byte("not wasm"), 0o644)
	valid := map[string]bool{digestOfFile(t, examples+"/hello/rust/hello.wasm"): true}
	var validMu sync.Mutex
	invalid := []string{
		"services: [oops", // YAML syntax
		oneVersion("rust") + "  - { match: { path: /x }, service: nope }\n",      // unknown service
		strings.Replace(oneVersion("go"), "$EX/hello/go/hello.wasm", notWasm, 1), // not a module
		strings.Replace(oneVersion("zig"), "versions:", "versionz:", 1),          // unknown field
	}

	var failures, served atomic.Int64
	stop := make(chan struct{})
	var badVersion atomic.Value
	wait := testutil.Load(4, stop, func() {
		resp, err := f.srv.Client().Get(f.srv.URL + "/x")
		if err != nil {
			failures.Add(1)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		v := resp.Header.Get("X-Wasmesh-Version")
		validMu.Lock()
		ok := valid[v]
		validMu.Unlock()
		if resp.StatusCode != 200 {
			failures.Add(1)
		} else if !ok {
			badVersion.Store(v)
		}
		served.Add(1)
	})

	langs := []string{"zig", "typescript", "rust", "zig", "typescript", "rust", "zig", "typescript", "rust", "zig"}
	for i := range 20 {
		before := f.g.Generation()
		var config string
		if i%2 == 0 {
			lang := langs[i/2]
			validMu.Lock()
			valid[digestOfFile(t, examples+"/hello/"+lang+"/hello.wasm")] = true
			validMu.Unlock()
			config = oneVersion(lang)
		} else {
			config = invalid[(i/2)%len(invalid)]
		}
		errsBefore := f.g.plane.Metrics().ReloadCount("error")
		if err := os.WriteFile(f.path, []byte(expand(config)), 0o644); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			waitFor(t, fmt.Sprintf("change %d to load", i), func() bool { return f.g.Generation() == before+1 })
		} else {
			waitFor(t, fmt.Sprintf("change %d to be rejected", i), func() bool { return f.g.plane.Metrics().ReloadCount("error") > errsBefore })
			if f.g.Generation() != before {
				t.Fatalf("an invalid config changed the generation")
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during reloads", n, served.Load())
	}
	if v := badVersion.Load(); v != nil {
		t.Fatalf("a response came from %v, which no valid config named", v)
	}
	if g := f.g.Generation(); g != 11 {
		t.Fatalf("generation %d after 10 valid changes, want 11", g)
	}
	if r := f.get("/x"); r.body != "hello from zig: GET /x 0 bytes\n" {
		t.Fatalf("final config not serving: %q", r.body)
	}
	t.Logf("%d requests served during 20 config changes", served.Load())
}

func TestRejectedReloadIsVisible(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	err := f.g.Reload(context.Background(), []byte(expand(oneVersion("rust")+"bogus: 1\n")))
	if err == nil || !strings.Contains(err.Error(), "wasmesh.yaml:") || !strings.Contains(err.Error(), `unknown field "bogus"`) {
		t.Fatalf("err = %v, want file:line and the field", err)
	}
	admin := httptestAdmin(t, f)
	var cs adminapi.ConfigStatus
	getJSON(t, admin+"/v1/config", &cs)
	if cs.Generation != 1 || !strings.Contains(cs.LastError, "bogus") {
		t.Fatalf("/v1/config = %+v", cs)
	}
	resp, _ := http.Get(admin + "/metrics")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`wasmesh_config_reload_total{result="error"} 1`, `wasmesh_config_generation 1`, "wasmesh_config_last_load_success 0"} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	if r := f.get("/"); r.status != 200 {
		t.Fatalf("old config stopped serving: %d", r.status)
	}
	// Until a load succeeds: one of the config serving (the broken edit
	// reverted) too.
	if err := f.g.Reload(context.Background(), []byte(expand(oneVersion("rust")))); err != nil {
		t.Fatal(err)
	}
	resp, _ = http.Get(admin + "/metrics")
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "wasmesh_config_last_load_success 1") {
		t.Errorf("after a load that succeeded, /metrics lacks wasmesh_config_last_load_success 1")
	}
}

// TestReloadRefusesMemoryBelowStart: a limits.memory below what a
// version's module has at start (every request would fail) is refused at
// load, naming the version and its place in the file, and the config
// before it serves on.
func TestReloadRefusesMemoryBelowStart(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	bad := strings.Replace(oneVersion("rust"), "hello.wasm } ] }", "hello.wasm } ], limits: { memory: 64KiB } }", 1)
	err := f.g.Reload(context.Background(), []byte(expand(bad)))
	if err == nil || !strings.Contains(err.Error(), "services.svc.versions[0].path: sha256:") || !strings.Contains(err.Error(), ".yaml:") ||
		!strings.Contains(err.Error(), "bytes of memory at start, more than the service's limits.memory of 65536") {
		t.Fatalf("err = %v, want the version named and what it needs", err)
	}
	if r := f.get("/"); r.status != 200 {
		t.Fatalf("old config stopped serving: %d", r.status)
	}
}

// TestReloadRefusesAHugeModuleFile: a path: naming a file larger than a
// module may be (a 3 GiB file, sparse here) is refused before it is read,
// naming the file, and the config before it serves on.
func TestReloadRefusesAHugeModuleFile(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	huge := filepath.Join(t.TempDir(), "huge.wasm")
	if err := os.WriteFile(huge, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 3<<30); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(oneVersion("rust"), "$EX/hello/rust/hello.wasm", huge, 1)
	err := f.g.Reload(context.Background(), []byte(expand(bad)))
	if err == nil || !strings.Contains(err.Error(), "read "+huge+": more than the 268435456 bytes a module may have") {
		t.Fatalf("err = %v, want the file named and the limit", err)
	}
	if r := f.get("/"); r.status != 200 {
		t.Fatalf("old config stopped serving: %d", r.status)
	}
}

// TestReactorSetUpWithinTheServiceLimit: a reactor's initialisation runs
// within its service's limits.memory when a load compiles it: one whose
// _initialize would take 1 GiB is refused at 64 MiB, saying so, rather
// than taking the gigabyte from the gateway first.
func TestReactorSetUpWithinTheServiceLimit(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	bomb, err := filepath.Abs("../host/testdata/initbomb.wasm")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(oneVersion("rust"), "$EX/hello/rust/hello.wasm } ] }", bomb+" } ], limits: { memory: 64MiB } }", 1)
	err = f.g.Reload(context.Background(), []byte(expand(bad)))
	if err == nil || !strings.Contains(err.Error(), "services.svc.versions[0]") ||
		!strings.Contains(err.Error(), "initialise the reactor within its memory limit of 67108864 bytes: _initialize:") {
		t.Fatalf("err = %v, want the version named and the limit its set-up ran out of", err)
	}
	if r := f.get("/"); r.status != 200 {
		t.Fatalf("old config stopped serving: %d", r.status)
	}
}

// TestRouteToACommandRefused: a route that leads to a wasi:cli command
// component (one that also exports an instance of its own, as
// componentize-py's do) is refused, saying it is a command.
func TestRouteToACommandRefused(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	cmd, err := filepath.Abs("../internal/component/testdata/nothandler-command-lib.wasm")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(oneVersion("rust"), "$EX/hello/rust/hello.wasm", cmd, 1)
	err = f.g.Reload(context.Background(), []byte(expand(bad)))
	if err == nil || !strings.Contains(err.Error(), "routes[0] leads to service svc, whose version") ||
		!strings.Contains(err.Error(), "is not a wasi:http handler: it is a wasi:cli command (it exports wasi:cli/run@0.2.0): run it with wasmesh run") {
		t.Fatalf("err = %v", err)
	}
}

// TestWatchLoadsAChangeMadeBeforeIt: a change made to the file after the
// first load read it and before the watch began (as while a gateway
// compiles its first config) is loaded once the watch begins.
func TestWatchLoadsAChangeMadeBeforeIt(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	if err := os.WriteFile(f.path, []byte(expand(oneVersion("zig"))), 0o644); err != nil {
		t.Fatal(err)
	}
	f.watch(t)
	waitFor(t, "the change made before the watch to load", func() bool { return strings.Contains(f.get("/").body, "zig") })
}

// TestWatchRetriesAFailedLoad: a config whose module is not there yet is
// refused, and loaded once the module comes, without another change to
// the file; a config that does not parse is not tried again.
func TestWatchRetriesAFailedLoad(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	f.watch(t)
	later := filepath.Join(t.TempDir(), "later.wasm")
	config := strings.Replace(oneVersion("zig"), "$EX/hello/zig/hello.wasm", later, 1)
	if err := os.WriteFile(f.path, []byte(expand(config)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the config naming a missing module to be refused", func() bool { return f.g.plane.Metrics().ReloadCount("error") >= 1 })
	if r := f.get("/"); !strings.Contains(r.body, "rust") {
		t.Fatalf("while the module is missing: %d %q, want the serving config's answer", r.status, r.body)
	}
	zig, err := os.ReadFile(examples + "/hello/zig/hello.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(later, zig, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the module, once there, to be loaded by a retry", func() bool { return strings.Contains(f.get("/").body, "zig") })

	// A syntax error is the file's own: no retry until it changes.
	if err := os.WriteFile(f.path, []byte("services: [oops"), 0o644); err != nil {
		t.Fatal(err)
	}
	errs := f.g.plane.Metrics().ReloadCount("error")
	waitFor(t, "the bad config to be refused", func() bool { return f.g.plane.Metrics().ReloadCount("error") > errs })
	errs = f.g.plane.Metrics().ReloadCount("error")
	time.Sleep(2500 * time.Millisecond) // two retries' worth
	if n := f.g.plane.Metrics().ReloadCount("error"); n != errs {
		t.Errorf("a config that does not parse was loaded %v more times without a change", n-errs)
	}
}

// TestWatchedFileUnreadable: a config file that cannot be read after a
// change (removed) is a failed load, reported by /v1/config's error and
// the metrics while the config before keeps serving; back as it was, the
// error is cleared.
func TestWatchedFileUnreadable(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	f.watch(t)
	data, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f.path); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the removal to be a failed load", func() bool { return f.g.plane.Metrics().ReloadCount("error") >= 1 })
	if le := f.g.control.LastError(); le == nil || !strings.Contains(le.Err.Error(), "no such file") {
		t.Fatalf("the last error: %v, want the file's absence", le)
	}
	if r := f.get("/"); !strings.Contains(r.body, "rust") {
		t.Fatalf("while the file is gone: %d %q", r.status, r.body)
	}
	if err := os.WriteFile(f.path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the error to clear once the file is back", func() bool { return f.g.control.LastError() == nil })
}

// TestWatchedRevertClearsError: a reload through the API that refused
// the file (read before the watch saw it), and the file put back as it
// was before the watch looked: the error clears, as a file back as it was
// does, though the watch never saw the bad content.
func TestWatchedRevertClearsError(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	f.watch(t)
	good, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.path, append(append([]byte(nil), good...), "bar: 1\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.g.control.LoadFile(context.Background()); err == nil || !strings.Contains(err.Error(), "bar") {
		t.Fatalf("LoadFile of the bad file: %v", err)
	}
	if err := os.WriteFile(f.path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the error to clear once the file is back as it was", func() bool { return f.g.control.LastError() == nil })
}

// TestEmptyReloadRefused: a config with no YAML document, which a file
// rewritten in place reads as between its truncation and its write, does
// not replace a serving one.
func TestEmptyReloadRefused(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	for _, data := range []string{"", "\n  \n", "# written next\n"} {
		err := f.g.Reload(context.Background(), []byte(data))
		if err == nil || !strings.Contains(err.Error(), "the new config is empty") {
			t.Fatalf("Reload(%q) = %v, want the empty config refused", data, err)
		}
		if r := f.get("/"); r.status != 200 {
			t.Fatalf("after Reload(%q): the serving config stopped serving: %d", data, r.status)
		}
	}
	if err := f.g.Reload(context.Background(), []byte(expand(oneVersion("zig")))); err != nil {
		t.Fatalf("a config after the empty one: %v", err)
	}
	if r := f.get("/"); r.status != 200 || !strings.Contains(r.body, "zig") {
		t.Fatalf("after the reload: %d %q, want zig's answer", r.status, r.body)
	}
}

func httptestAdmin(t *testing.T, f *fixture) string {
	t.Helper()
	srv := newTestServer(t, f.g.AdminHandler())
	return srv
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestHealthHandler(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	health := newTestServer(t, f.g.HealthHandler())
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": 200, "/v1/config": 404, "/v1/services": 404} {
		resp, err := http.Get(health + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, _ := http.Post(health+"/v1/services/svc/rollback", "application/json", nil)
	if resp.StatusCode != 404 && resp.StatusCode != 405 {
		t.Errorf("a release operation answered %d on the health listener", resp.StatusCode)
	}
	f.g.plane.Drain()
	if resp, _ := http.Get(health + "/readyz"); resp.StatusCode != 503 {
		t.Errorf("/readyz while draining = %d, want 503", resp.StatusCode)
	}
}

// TestReloadReadsAChangedPathModule: a load takes the compiled module of a
// path version whose file has not changed since it was read, without
// reading it; a file rewritten in place, even to the same size, is read
// again and serves as its new digest.
func TestReloadReadsAChangedPathModule(t *testing.T) {
	wasm, err := os.ReadFile(filepath.Join(examples, "hello", "zig", "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	module := filepath.Join(dir, "m.wasm")
	write := func(name string) string { // a custom section of name's: same size, other digest
		section := append([]byte{byte(len(name))}, name...)
		section = append(section, 1)
		b := append(append(slices.Clone(wasm), 0, byte(len(section))), section...)
		if err := os.WriteFile(module, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return modules.DigestOf(b)
	}
	first := write("aa")
	config := func(extra string) []byte {
		return []byte(expand(fmt.Sprintf("services:\n  svc: { versions: [ { path: %s } ]%s }\nroutes:\n  - { match: { path_prefix: / }, service: svc }\n",
			module, extra)))
	}
	f := newFixture(t, strings.TrimPrefix(string(config("")), "store: store\n"))
	digest := func() string { return f.g.Config().Services["svc"].Versions[0].Digest }
	if got := digest(); got != first {
		t.Fatalf("loaded %s, want %s", got, first)
	}
	if err := f.g.Reload(context.Background(), config(`, sticky: "header:x-a"`)); err != nil {
		t.Fatal(err)
	}
	if got := digest(); got != first {
		t.Fatalf("the file unchanged: %s, want %s", got, first)
	}
	second := write("bb")
	if err := f.g.Reload(context.Background(), config("")); err != nil {
		t.Fatal(err)
	}
	if got := digest(); got != second {
		t.Fatalf("the file rewritten in place: %s, want %s", got, second)
	}
	if r := f.get("/"); r.status != 200 || r.version != second {
		t.Fatalf("served %d by %s, want 200 by %s", r.status, r.version, second)
	}
}

// watch starts the fixture's gateway watching its config file until the
// test ends.
func (f *fixture) watch(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := f.g.Watch(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWatchedFixNotHeldBack: a config whose oci:// module's registry
// never answers (a pull waits up to PullTimeout, a minute), fixed by a
// newer write of the file, is not waited for: the newer config serves
// within seconds, and the load stopped counts as no failed reload.
func TestWatchedFixNotHeldBack(t *testing.T) {
	hang := make(chan struct{})
	registry := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer registry.Close()
	defer close(hang)
	addr := strings.TrimPrefix(registry.URL, "http://")
	f := newFixture(t, "registries: { "+addr+": { plain_http: true } }\n"+oneVersion("rust"))
	f.watch(t)
	hanging := strings.Replace(oneVersion("rust"), "path: $EX/hello/rust/hello.wasm", "module: oci://"+addr+"/wasmesh/hello@sha256:"+strings.Repeat("7", 64), 1)
	// Each config is renamed into place, as an editor saves: one written
	// in place may be read half done (empty) by the watch's load, a failed
	// load of its own.
	replace := func(config string) {
		if err := os.WriteFile(f.path+".new", []byte(expand("registries: { "+addr+": { plain_http: true } }\n"+config)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(f.path+".new", f.path); err != nil {
			t.Fatal(err)
		}
	}
	replace(hanging)
	time.Sleep(500 * time.Millisecond) // the load waits on the registry
	replace(oneVersion("zig"))
	waitFor(t, "the fix to serve", func() bool { return strings.Contains(f.get("/").body, "zig") })
	if n := f.g.plane.Metrics().ReloadCount("error"); n != 0 {
		t.Errorf("%v failed reloads counted; the load stopped by the fix is none", n)
	}
}

// TestReloadOfStartOnlySettings: a reload that changes a setting read at
// start only says so, naming it; one that puts it back as the gateway
// started with, or changes it no further, says nothing more.
func TestReloadOfStartOnlySettings(t *testing.T) {
	var logs testutil.LockedBuffer
	base := "listen: 127.0.0.1:18080\n" + helloConfig
	f := newFixtureWith(t, base, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	const warning = "the config changed settings read at start only"
	for _, step := range []struct {
		config, fields string // "": no warning
	}{
		{strings.Replace(base, "18080", "18081", 1), "listen"},
		{strings.Replace(base, "18080", "18081", 1) + "http: { max_headers: 50 }\n", "http"},
		{base + "http: { max_headers: 50 }\n", ""},
		{base, ""},
	} {
		before := strings.Count(logs.String(), warning)
		if err := f.g.Reload(context.Background(), []byte(expand(step.config))); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(logs.String(), "\n")
		switch after := strings.Count(logs.String(), warning); {
		case step.fields == "" && after != before:
			t.Errorf("%q: warned, though nothing changed from the start or the last load:\n%s", step.config, lines[len(lines)-2])
		case step.fields != "" && (after != before+1 || !strings.Contains(lines[len(lines)-2], "fields="+step.fields)):
			t.Errorf("%q: want a warning naming %s, got:\n%s", step.config, step.fields, logs.String())
		}
	}
}

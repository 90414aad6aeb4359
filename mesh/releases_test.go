package mesh

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/config"
	adminapi "github.com/wasmesh/wasmesh/internal/admin"
	"github.com/wasmesh/wasmesh/internal/rollout"
	"github.com/wasmesh/wasmesh/internal/testutil"
	"github.com/wasmesh/wasmesh/modules"
)

func (f *fixture) push(lang string) string {
	f.t.Helper()
	s, err := modules.Open(f.g.Config().Store, modules.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	wasm, _ := os.ReadFile(examples + "/hello/" + lang + "/hello.wasm")
	d, err := s.Put(context.Background(), bytes.NewReader(wasm))
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func weights(vs []*config.Version) map[string]int {
	m := map[string]int{}
	for _, v := range vs {
		m[v.Digest] = v.Weight
	}
	return m
}

func fileVersions(t *testing.T, f *fixture) map[string]int {
	t.Helper()
	cfg, err := config.Load(f.path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, v := range cfg.Services["svc"].Versions {
		digest := v.Module
		if v.Path != "" {
			digest = digestOfFile(t, v.AbsPath())
		}
		m[digest] = v.Weight
	}
	return m
}

func TestDeployPromoteRollback(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	ctx := context.Background()
	rust := digestOfFile(t, examples+"/hello/rust/hello.wasm")
	zig, ts := f.push("zig"), f.push("typescript")

	steps := []struct {
		name string
		do   func() ([]*config.Version, error)
		want map[string]int
	}{
		{"deploy zig at 10", func() ([]*config.Version, error) { return f.g.Deploy(ctx, "svc", zig[:20], 10, "canary") },
			map[string]int{rust: 90, zig: 10}},
		{"deploy typescript at 20", func() ([]*config.Version, error) { return f.g.Deploy(ctx, "svc", ts, 20, "") },
			map[string]int{rust: 72, zig: 8, ts: 20}},
		{"raise zig to 50", func() ([]*config.Version, error) { return f.g.Deploy(ctx, "svc", zig, 50, "") },
			map[string]int{rust: 39, ts: 11, zig: 50}},
		{"promote zig", func() ([]*config.Version, error) { return f.g.Promote(ctx, "svc", zig) },
			map[string]int{zig: 100}},
		{"rollback", func() ([]*config.Version, error) { return f.g.Rollback(ctx, "svc") },
			map[string]int{rust: 39, ts: 11, zig: 50}},
		{"rollback again", func() ([]*config.Version, error) { return f.g.Rollback(ctx, "svc") },
			map[string]int{rust: 72, zig: 8, ts: 20}},
	}
	gen := f.g.Generation()
	for _, step := range steps {
		vs, err := step.do()
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got := weights(vs); !equalMaps(got, step.want) {
			t.Fatalf("%s: versions %v, want %v", step.name, got, step.want)
		}
		if got := fileVersions(t, f); !equalMaps(got, step.want) {
			t.Fatalf("%s: the config file says %v, want %v", step.name, got, step.want)
		}
		if f.g.Generation() != gen+1 {
			t.Fatalf("%s: generation %d, want %d", step.name, f.g.Generation(), gen+1)
		}
		gen++
	}
	// The file keeps the rest of its content.
	data, _ := os.ReadFile(f.path)
	if !strings.Contains(string(data), "path_prefix: /") {
		t.Fatalf("the routes were lost from the file:\n%s", data)
	}
}

// TestDeployThatChangesNothing: a deploy repeated (a retried CI job)
// changes nothing, so it is no step for a rollback to undo: the rollback
// after it restores the split from before the first.
func TestDeployThatChangesNothing(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	ctx := context.Background()
	rust := digestOfFile(t, examples+"/hello/rust/hello.wasm")
	zig := f.push("zig")
	for range 2 {
		if _, err := f.g.Deploy(ctx, "svc", zig, 30, ""); err != nil {
			t.Fatal(err)
		}
	}
	gen := f.g.Generation()
	vs, err := f.g.Rollback(ctx, "svc")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := weights(vs), map[string]int{rust: 100}; !equalMaps(got, want) {
		t.Fatalf("the rollback after a deploy repeated: %v, want %v", got, want)
	}
	if f.g.Generation() != gen+1 {
		t.Fatalf("generation %d after the rollback, want %d", f.g.Generation(), gen+1)
	}
}

// TestDeployKeepsAVersionsSource: a deploy that changes the weight of a
// version the service has keeps it where it is in the list, and keeps its
// source: a path version stays a path, so a rebuild of the file still
// applies.
func TestDeployKeepsAVersionsSource(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	ctx := context.Background()
	rust := digestOfFile(t, examples+"/hello/rust/hello.wasm")
	zig := f.push("zig")
	if _, err := f.g.Deploy(ctx, "svc", zig, 10, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Deploy(ctx, "svc", rust, 50, ""); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(f.path)
	if err != nil {
		t.Fatal(err)
	}
	vs := cfg.Services["svc"].Versions
	if len(vs) != 2 || vs[0].Path != examples+"/hello/rust/hello.wasm" || vs[0].Weight != 50 || vs[1].Module != zig || vs[1].Weight != 50 {
		t.Fatalf("after raising rust to 50, the file's versions: %+v, %+v; want rust's path first", *vs[0], *vs[1])
	}
}

// TestSplitChangesLogged: every change of a service's split is logged,
// saying whether an edit of the file or the API made it: an audit of the
// splits the log alone gives.
func TestSplitChangesLogged(t *testing.T) {
	var logs testutil.LockedBuffer
	f := newFixtureWith(t, oneVersion("rust"), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	zig := f.push("zig")
	if _, err := f.g.Deploy(ctx, "svc", zig, 30, ""); err != nil {
		t.Fatal(err)
	}
	edit := strings.Replace(expand(oneVersion("rust")), "svc:", "other: { versions: [ { path: $EX/hello/c/hello.wasm } ] }\n  svc:", 1)
	if err := f.g.Reload(ctx, []byte(strings.ReplaceAll(edit, "$EX", examples))); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`msg="service versions changed" service=svc generation=2 versions="[` + modules.Short(digestOfFile(t, examples+"/hello/rust/hello.wasm")) + `=70% ` + modules.Short(zig) + `=30%]" by=api`,
		`msg="service versions changed" service=svc generation=3`,
		`msg="service added" service=other generation=3`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %s:\n%s", want, logs.String())
		}
	}
	if strings.Count(logs.String(), "service versions changed") != 2 {
		t.Errorf("want two split changes logged:\n%s", logs.String())
	}
}

func TestReleaseErrors(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	ctx := context.Background()
	zig := f.push("zig")
	store, err := modules.Open(f.g.Config().Store, modules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	commandWasm, _ := os.ReadFile("../internal/component/testdata/nothandler-command-lib.wasm")
	command, err := store.PutBytes(ctx, commandWasm)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(f.path)
	tests := []struct {
		name    string
		do      func() error
		wantErr string
		notFnd  bool
	}{
		{"deploy of a command", func() error { _, err := f.g.Deploy(ctx, "svc", command, 10, ""); return err }, "is not a wasi:http handler: it is a wasi:cli command", false},
		{"unknown service", func() error { _, err := f.g.Deploy(ctx, "nope", zig, 10, ""); return err }, `service "nope" (the config's services: svc)`, true},
		{"rollback of an unknown service", func() error { _, err := f.g.Rollback(ctx, "nope"); return err }, `service "nope" (the config's services: svc)`, true},
		{"promote of a name no version has", func() error { _, err := f.g.Promote(ctx, "svc", "stable"); return err }, `"stable" names no version of service "svc"`, true},
		{"unknown digest", func() error { _, err := f.g.Deploy(ctx, "svc", "sha256:0000000000", 10, ""); return err }, "no artifact matches", true},
		{"weight out of range", func() error { _, err := f.g.Deploy(ctx, "svc", zig, 140, ""); return err }, "between 0 and 100", false},
		{"promote a non-version", func() error { _, err := f.g.Promote(ctx, "svc", zig); return err }, "not a version", true},
		{"rollback without history", func() error { _, err := f.g.Rollback(ctx, "svc"); return err }, "no earlier split", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if tc.notFnd && !errors.Is(err, ErrNotFound) && !errors.Is(err, modules.ErrNotFound) {
				t.Fatalf("err = %v, want a not-found error", err)
			}
			if after, _ := os.ReadFile(f.path); !bytes.Equal(after, before) {
				t.Fatal("a failed release changed the config file")
			}
		})
	}
	// Each was its caller's answer: the config serving is the file's,
	// whose last load did not fail.
	var cs adminapi.ConfigStatus
	getJSON(t, httptestAdmin(t, f)+"/v1/config", &cs)
	if cs.LastError != "" {
		t.Errorf("after refused operations, /v1/config says the last load failed: %q", cs.LastError)
	}
}

// oneSlot is a config of the misbehaving guest as service slow, one
// request at a time and one waiting.
const oneSlot = `
services:
  slow:
    versions: [ { path: $EX/misbehave/rust/misbehave.wasm } ]
    limits: { max_concurrency: 1, max_queue: 1, timeout: 10s }
routes:
  - { match: { path_prefix: / }, service: slow }
`

func TestOverloadIs503(t *testing.T) {
	f := newFixture(t, oneSlot)
	// Each request sleeps 3 s in the guest. The first two go first, and
	// the other four only once one of them waits in the queue: so that on
	// a loaded machine none of the four comes after the first has finished.
	var wg sync.WaitGroup
	statuses := make(chan int, 6)
	send := func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(f.srv.URL + "/?do=sleep&arg=3000")
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			statuses <- resp.StatusCode
		}()
	}
	send()
	send()
	waitFor(t, "a request waiting in the queue", func() bool { return queueDepth(t, f.g, "slow") == 1 })
	for range 4 {
		send()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	// One runs, one waits in the queue, the rest are refused at once.
	if count[200] != 2 || count[503] != 4 {
		t.Fatalf("statuses %v, want 2×200 and 4×503", count)
	}
}

func equalMaps(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// queueDepth reads wasmesh_queue_depth of service from g's registry.
func queueDepth(t *testing.T, g *Gateway, service string) float64 {
	t.Helper()
	mfs, err := g.plane.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "wasmesh_queue_depth" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "service" && l.GetValue() == service {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

// TestRollbackKeepsItsModules: a module that only the rollback history
// holds (promoted away from) stays referenced in the store, so that
// `artifact rm` refuses it and the rollback can serve it.
func TestRollbackKeepsItsModules(t *testing.T) {
	f := newFixture(t, oneVersion("zig"))
	ctx := context.Background()
	rust := f.push("rust")
	if _, err := f.g.Deploy(ctx, "svc", rust, 10, ""); err != nil {
		t.Fatal(err)
	}
	// Promoted away from: only the split before the promote holds rust.
	if _, err := f.g.Promote(ctx, "svc", digestOfFile(t, examples+"/hello/zig/hello.wasm")); err != nil {
		t.Fatal(err)
	}
	store, err := modules.Open(f.g.Config().Store, modules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Remove(rust, false); err == nil || !strings.Contains(err.Error(), "in use by "+f.path) {
		t.Fatalf("artifact rm of the module promoted away from: %v, want it refused as in use by the config", err)
	}
	if _, err := f.g.Rollback(ctx, "svc"); err != nil {
		t.Fatalf("rollback to the split with the module: %v", err)
	}
	if _, err := f.g.Rollback(ctx, "svc"); err != nil {
		t.Fatalf("rollback to the first split: %v", err)
	}
	// The history spent, nothing refers to rust: it may go.
	if _, err := store.Remove(rust, false); err != nil {
		t.Errorf("artifact rm of a module nothing refers to: %v", err)
	}
}

// TestDeployUnwritableConfig: a deploy whose config file cannot be
// rewritten (here the temporary file's name would be too long, as a
// read-only ConfigMap refuses it as root too) is refused before the new
// config loads: no request is served by it, and the generation stays.
func TestDeployUnwritableConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), strings.Repeat("c", 249)+".yaml") // 254 bytes: "."+name+".N" is past 255
	if err := os.WriteFile(path, []byte(expand(oneVersion("rust"))), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := New(context.Background(), Options{ConfigPath: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		CacheDir: filepath.Join(os.TempDir(), "wasmesh-test-cache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close(context.Background()) })
	if err := g.LoadFile(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, g: g, path: path}
	zig := f.push("zig")
	gen := g.Generation()
	if _, err := g.Deploy(context.Background(), "svc", zig, 50, ""); err == nil || !strings.Contains(err.Error(), "file name too long") {
		t.Fatalf("deploy with a config that cannot be written: %v, want it refused with the reason", err)
	}
	if now := g.Generation(); now != gen {
		t.Errorf("the refused deploy was loaded: generation %d, then %d", gen, now)
	}
}

// TestDeployRefusedByAReleaseStartingMeanwhile: a deploy that waits for
// the control plane while a release of its service starts is refused by
// the release's guard, which is asked once the deploy holds the control
// plane (and so after the release is marked as starting), not before it
// waits; the release starts from the split it read, and the deploy's
// version is not added.
func TestDeployRefusedByAReleaseStartingMeanwhile(t *testing.T) {
	f := newFixture(t, `
services:
  svc: { versions: [ { path: $EX/hello/rust/hello.wasm, weight: 100 }, { path: $EX/hello/zig/hello.wasm, weight: 0, name: cand } ] }
  other: { versions: [ { path: $EX/hello/rust/hello.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: svc }
`)
	ctx := context.Background()
	ts := f.push("typescript")
	// A deploy to "other" holds the control plane inside its guard until
	// holdOther is closed.
	inOther, holdOther := make(chan struct{}), make(chan struct{})
	askedSvc := make(chan struct{}, 8)
	f.g.control.Guard(f.g.releases.Busy, func(service string) error { // the guard asked with the lock held
		if service == "other" {
			close(inOther)
			<-holdOther
		} else {
			askedSvc <- struct{}{}
		}
		return f.g.releases.Busy(service)
	})
	otherDone := make(chan error, 1)
	go func() { _, err := f.g.Deploy(ctx, "other", ts, 10, ""); otherDone <- err }()
	<-inOther
	deployed := make(chan error, 1)
	go func() { _, err := f.g.Deploy(ctx, "svc", ts, 10, ""); deployed <- err }()
	select { // a guard asked before the deploy waits is asked now
	case <-askedSvc:
	case <-time.After(200 * time.Millisecond):
	}
	started := make(chan error, 1)
	go func() {
		_, err := f.g.releases.Start(ctx, rollout.Spec{Service: "svc", Version: "cand", Steps: []int{10, 100}})
		started <- err
	}()
	for deadline := time.Now().Add(2 * time.Second); f.g.releases.Busy("svc") == nil && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	close(holdOther)
	if err := <-otherDone; err != nil {
		t.Fatalf("deploy to other: %v", err)
	}
	if err := <-started; err != nil {
		t.Fatalf("release start: %v", err)
	}
	if err := <-deployed; !errors.Is(err, rollout.ErrConflict) {
		t.Fatalf("deploy to svc while its release started: %v, want refused (a conflict)", err)
	}
	rust, zig := digestOfFile(t, examples+"/hello/rust/hello.wasm"), digestOfFile(t, examples+"/hello/zig/hello.wasm")
	if got, want := fileVersions(t, f), map[string]int{rust: 90, zig: 10}; !equalMaps(got, want) {
		t.Fatalf("svc's versions in the file: %v, want %v (the release's first step alone)", got, want)
	}
}

// TestDeployRefusesOverARefusedEdit: a deploy while the config file holds
// an edit whose load failed is refused, the edit kept (it was written
// over, and lost); once the edit is fixed and loaded, the deploy goes.
func TestDeployRefusesOverARefusedEdit(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	ctx := context.Background()
	zig := f.push("zig")
	good, err := os.ReadFile(f.path)
	if err != nil {
		t.Fatal(err)
	}
	bad := append(bytes.Replace(good, []byte("hello.wasm }"), []byte("hello.wasm, weight: 140 }"), 1), "# my edit\n"...)
	if err := os.WriteFile(f.path, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.g.LoadFile(ctx); err == nil {
		t.Fatal("a weight of 140 loaded")
	}
	_, err = f.g.Deploy(ctx, "svc", zig, 10, "")
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("deploy over a refused edit: %v, want a conflict naming it", err)
	}
	if now, _ := os.ReadFile(f.path); !bytes.Equal(now, bad) {
		t.Fatalf("the refused edit was written over:\n%s", now)
	}
	// A release's own step is not refused (it may be the rollback of a
	// failing candidate): it writes over the edit, and keeps it beside.
	if _, err := f.g.control.Shift(ctx, "svc", zig, 0); err != nil {
		t.Fatalf("a release's step over a refused edit: %v", err)
	}
	if kept, err := os.ReadFile(f.path + ".refused"); err != nil || !bytes.Equal(kept, bad) {
		t.Fatalf("the refused edit was not kept beside the file: %q, %v", kept, err)
	}
	// Bytes given to Reload that fail are not the file's: no edit refused.
	if err := f.g.Reload(ctx, bad); err == nil {
		t.Fatal("a weight of 140 loaded")
	}
	if _, err := f.g.Deploy(ctx, "svc", zig, 5, ""); err != nil {
		t.Fatalf("deploy after a failed Reload of bytes: %v", err)
	}
	fixed := append(slices.Clone(good), "# my edit\n"...)
	if err := os.WriteFile(f.path, fixed, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.g.LoadFile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Deploy(ctx, "svc", zig, 10, ""); err != nil {
		t.Fatalf("deploy once the edit is fixed: %v", err)
	}
	if now, _ := os.ReadFile(f.path); !bytes.Contains(now, []byte("# my edit")) {
		t.Fatalf("the fixed edit was lost:\n%s", now)
	}
	// An edit not loaded yet is written over by a deploy, and kept beside.
	served, _ := os.ReadFile(f.path)
	pending := append(slices.Clone(served), "# not loaded yet\n"...)
	if err := os.WriteFile(f.path, pending, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Deploy(ctx, "svc", zig, 20, ""); err != nil {
		t.Fatalf("deploy over an edit not loaded yet: %v", err)
	}
	if kept, err := os.ReadFile(f.path + ".unloaded"); err != nil || !bytes.Equal(kept, pending) {
		t.Fatalf("the edit not loaded yet was not kept beside the file: %q, %v", kept, err)
	}
}

// TestPromoteByNameOrDigest: a version is promoted by its name, its digest
// or a prefix of it, looked for in the service first; a ref that two of
// its versions could be (one's name, the other's digest prefix) is
// refused as ambiguous, not taken for the first found.
func TestPromoteByNameOrDigest(t *testing.T) {
	f := newFixture(t, oneVersion("rust"))
	ctx := context.Background()
	zig := f.push("zig")
	short := strings.TrimPrefix(zig, "sha256:")[:8]
	if _, err := f.g.Deploy(ctx, "svc", f.push("c"), 0, short); err != nil { // named like zig's digest begins
		t.Fatal(err)
	}
	if _, err := f.g.Deploy(ctx, "svc", zig, 0, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Promote(ctx, "svc", short); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Fatalf("promote %s, a name of one version and the digest prefix of another: %v", short, err)
	}
	vs, err := f.g.Promote(ctx, "svc", strings.ToUpper(strings.TrimPrefix(zig, "sha256:")[:12]))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if (v.Weight == 100) != (v.Digest == zig) {
			t.Fatalf("promoted by a longer prefix: %s has weight %d", v.Digest, v.Weight)
		}
	}
}

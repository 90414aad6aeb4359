package mesh

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/testutil"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/modules/oci"
)

// pushExample pushes an example guest to the registry at addr and returns
// the pinned reference, with its registry replaced by via (a proxy).
func pushExample(t *testing.T, addr, via, lang string) string {
	t.Helper()
	store, err := modules.Open(t.TempDir(), modules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(filepath.Join(examples, "hello", lang, "hello.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	digest, err := store.Put(context.Background(), bytes.NewReader(wasm))
	if err != nil {
		t.Fatal(err)
	}
	c, err := oci.New(oci.Options{PlainHTTP: []string{addr}, DockerConfig: filepath.Join(t.TempDir(), "none.json")})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := c.Push(context.Background(), store, digest, oci.Reference{Registry: addr, Repository: "wasmesh/hello", Tag: lang})
	if err != nil {
		t.Fatal(err)
	}
	ref.Registry = via
	return ref.String()
}

func ociConfig(registry, module string) string {
	return `
registries:
  ` + registry + `: { plain_http: true }
services:
  svc: { versions: [ { module: "` + module + `" } ] }
routes:
  - { match: { path_prefix: / }, service: svc }
`
}

// TestOCIVersions serves a module pulled from a real registry, refuses
// configs whose pull fails while the old config keeps serving, and pulls a
// manifest only once.
func TestOCIVersions(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := testutil.StartRegistry(t)
	proxy := testutil.StartProxy(t, reg.Addr, nil)
	rust := pushExample(t, reg.Addr, proxy.Addr, "rust")
	zig := pushExample(t, reg.Addr, proxy.Addr, "zig")
	rustDigest := digestOfFile(t, examples+"/hello/rust/hello.wasm")
	ctx := context.Background()

	f := newFixture(t, oneVersion("go"))
	reload := func(config string) error { return f.g.Reload(ctx, []byte(expand(config))) }
	serving := func(want string) {
		t.Helper()
		r := f.get("/x")
		if r.status != 200 || !strings.Contains(r.body, "hello from "+want) {
			t.Fatalf("GET /x = %d %q, want hello from %s", r.status, r.body, want)
		}
	}
	if err := reload(ociConfig(proxy.Addr, rust)); err != nil {
		t.Fatal(err)
	}
	serving("rust")
	if r := f.get("/x"); r.version != rustDigest {
		t.Errorf("X-Wasmesh-Version = %s, want the wasm's digest %s", r.version, rustDigest)
	}
	if f.g.Config().Services["svc"].Versions[0].Digest != rustDigest {
		t.Errorf("version digest %s, want %s", f.g.Config().Services["svc"].Versions[0].Digest, rustDigest)
	}
	pulls := proxy.Requests.Load()
	if pulls == 0 {
		t.Fatal("the proxy saw no request")
	}

	t.Run("reload pulls nothing again", func(t *testing.T) {
		gen := f.g.Generation()
		if err := reload("# changed\n" + ociConfig(proxy.Addr, rust)); err != nil {
			t.Fatal(err)
		}
		if f.g.Generation() != gen+1 {
			t.Fatalf("generation %d, want %d", f.g.Generation(), gen+1)
		}
		serving("rust")
		// A new gateway on the same store (a restart) finds it in the index too.
		g, err := New(ctx, Options{ConfigPath: f.path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close(ctx)
		if err := g.Reload(ctx, []byte(expand(ociConfig(proxy.Addr, rust)))); err != nil {
			t.Fatal(err)
		}
		if n := proxy.Requests.Load(); n != pulls {
			t.Errorf("the registry got %d more requests, want none", n-pulls)
		}
	})

	refused := func(t *testing.T, config string, want ...string) {
		t.Helper()
		gen := f.g.Generation()
		err := reload(config)
		if err == nil {
			t.Fatal("Reload succeeded, want refused")
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Reload error %q, want it to contain %q", err, w)
			}
		}
		if f.g.Generation() != gen {
			t.Errorf("generation %d after a refused reload, want %d", f.g.Generation(), gen)
		}
		serving("rust")
	}
	t.Run("missing digest", func(t *testing.T) {
		missing := strings.Split(rust, "@")[0] + "@sha256:" + strings.Repeat("0", 64)
		refused(t, ociConfig(proxy.Addr, missing), "wasmesh.yaml:6:32:", "services.svc.versions[0].module: pull "+missing+": fetch manifest: not found")
	})
	t.Run("unreachable registry", func(t *testing.T) {
		closed := testutil.RefusedAddr(t)
		elsewhere := strings.Replace(zig, proxy.Addr, closed, 1)
		refused(t, ociConfig(closed, elsewhere), "pull "+elsewhere, "connection refused")
	})
	t.Run("tag", func(t *testing.T) {
		refused(t, ociConfig(proxy.Addr, "oci://"+proxy.Addr+"/wasmesh/hello:zig"), "wasmesh.yaml:6:32:", "names no digest")
	})
	t.Run("unsigned under require_signed", func(t *testing.T) {
		store, err := modules.Open(filepath.Join(filepath.Dir(f.path), "store"), modules.Options{})
		if err != nil {
			t.Fatal(err)
		}
		pub, _, err := modules.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if err := store.SetPolicy(modules.Policy{RequireSigned: true, TrustedKeys: []string{string(pub)}}); err != nil {
			t.Fatal(err)
		}
		defer store.SetPolicy(modules.Policy{})
		refused(t, ociConfig(proxy.Addr, zig), "pull "+zig, modules.ErrUnsigned.Error())
		if list, _ := store.List(); len(list) != 2 { // the go and rust guests
			t.Errorf("store holds %d modules after the refused pull, want 2", len(list))
		}
	})
	t.Run("switch to another manifest", func(t *testing.T) {
		if err := reload(ociConfig(proxy.Addr, zig)); err != nil {
			t.Fatal(err)
		}
		serving("zig")
	})
	t.Run("deploy and promote by reference", func(t *testing.T) {
		// By tag: pulled, and written to the config pinned to its manifest.
		vs, err := f.g.Deploy(ctx, "svc", "oci://"+proxy.Addr+"/wasmesh/hello:rust", 10, "canary")
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 2 || vs[1].Module != rust || vs[1].Digest != rustDigest || vs[1].Weight != 10 || vs[0].Module != zig || vs[0].Weight != 90 {
			t.Fatalf("versions after deploy: %+v %+v, want %s at 90 and %s at 10", *vs[0], *vs[1], zig, rust)
		}
		if r := f.get("/x", "X-Wasmesh-Version", "canary"); !strings.Contains(r.body, "hello from rust") {
			t.Errorf("pinned to the canary: %q", r.body)
		}
		file, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(file), rust) {
			t.Errorf("config file does not name %s:\n%s", rust, file)
		}
		vs, err = f.g.Promote(ctx, "svc", "canary")
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) != 1 || vs[0].Module != rust {
			t.Fatalf("versions after promote: %+v, want only %s", vs, rust)
		}
		serving("rust")
	})
}

// TestRollbackNotHeldByASlowPull: a reload or a deploy pulling from a
// registry that does not answer does not hold up a rollback: the pull is
// made before either takes the control plane.
func TestRollbackNotHeldByASlowPull(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	reg := testutil.StartRegistry(t)
	var stalled atomic.Int64
	var failNext atomic.Bool // the next answer a 404, then the stalls again
	hold := make(chan struct{})
	proxy := testutil.StartProxy(t, reg.Addr, func(resp *http.Response) error {
		if failNext.CompareAndSwap(true, false) {
			resp.Body.Close()
			resp.StatusCode, resp.Body, resp.ContentLength = http.StatusNotFound, http.NoBody, 0
			resp.Header.Del("Content-Length")
			return nil
		}
		stalled.Add(1)
		<-hold
		return nil
	})
	released := false
	release := func() {
		if !released {
			released = true
			close(hold)
		}
	}
	t.Cleanup(release) // before the proxy closes, which waits for its requests
	ts := pushExample(t, reg.Addr, proxy.Addr, "typescript")
	c := pushExample(t, reg.Addr, proxy.Addr, "c")
	rs := pushExample(t, reg.Addr, proxy.Addr, "rust")
	f := newFixture(t, "registries: { "+proxy.Addr+": { plain_http: true } }\n"+oneVersion("rust"))
	ctx := context.Background()
	zig := f.push("zig")

	var slowDone []chan error
	for i, slow := range []struct {
		name string
		do   func() error
	}{
		{"reload", func() error { return f.g.Reload(ctx, []byte(expand(ociConfig(proxy.Addr, ts)))) }},
		{"deploy", func() error { _, err := f.g.Deploy(ctx, "svc", c, 20, ""); return err }},
	} {
		if _, err := f.g.Deploy(ctx, "svc", zig, 10+i, ""); err != nil { // a split to go back to
			t.Fatal(err)
		}
		before := stalled.Load()
		done := make(chan error, 1)
		slowDone = append(slowDone, done)
		go func() { done <- slow.do() }()
		for deadline := time.Now().Add(10 * time.Second); stalled.Load() == before; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the registry got no request in 10s", slow.name)
			}
			select {
			case err := <-done:
				t.Fatalf("%s: done before the registry answered: %v", slow.name, err)
			default:
			}
			time.Sleep(time.Millisecond)
		}
		rolled := make(chan error, 1)
		go func() { _, err := f.g.Rollback(ctx, "svc"); rolled <- err }()
		select {
		case err := <-rolled:
			if err != nil {
				t.Fatalf("rollback during a %s's pull: %v", slow.name, err)
			}
		case <-time.After(10 * time.Second):
			release()
			t.Fatalf("rollback during a %s's pull: still waiting after 10s", slow.name)
		}
		if r := f.get("/x"); !strings.Contains(r.body, "hello from rust") {
			t.Fatalf("after the rollback during a %s's pull: %d %q, want the rust hello", slow.name, r.status, r.body)
		}
	}
	// A pull that failed as the load prefetched it is not tried again with
	// the control plane held (where the registry, stalling now, would hold
	// up every rollback): the load fails at once.
	failNext.Store(true)
	loaded := make(chan error, 1)
	go func() { loaded <- f.g.Reload(ctx, []byte(expand(ociConfig(proxy.Addr, rs)))) }()
	select {
	case err := <-loaded:
		if err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("a load whose pull failed: %v, want the registry's not found", err)
		}
	case <-time.After(10 * time.Second):
		release()
		t.Fatal("a load whose pull failed pulled again, and waited on the registry")
	}
	release()
	for _, done := range slowDone {
		select {
		case <-done: // loaded or refused, once the registry answered
		case <-time.After(30 * time.Second):
			t.Fatal("a reload or deploy still waiting 30s after the registry answered")
		}
	}
}

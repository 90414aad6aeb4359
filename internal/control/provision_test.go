package control

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/dataplane"
)

// newController is a controller of a plane of its own for a config of
// one service a, whose version is the path module dir/a.wasm, a copy of
// host/testdata's module; it returns the controller and the config.
func newController(t *testing.T, dir, module string) (*Controller, *dataplane.Plane, string) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	plane, err := dataplane.New(context.Background(), dataplane.Options{Logger: log, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plane.Close(context.Background()) })
	replaceModule(t, module, filepath.Join(dir, "a.wasm"))
	cfg := "store: " + filepath.Join(dir, "store") + "\nservices:\n  a: { versions: [ { path: a.wasm } ] }\nroutes:\n  - { match: { path_prefix: / }, service: a }\n"
	path := filepath.Join(dir, "wasmesh.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return New(plane, Options{ConfigPath: path, Logger: log}), plane, cfg
}

// replaceModule writes host/testdata's module over to, by rename.
func replaceModule(t *testing.T, module, to string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "host", "testdata", module))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to+".tmp", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".tmp", to); err != nil {
		t.Fatal(err)
	}
}

// TestLoadSeesModuleRebuiltBeforeTheLock: a path module rebuilt after
// the prefetch looked at it, while the load waited for the lock, is the
// one the load serves (the prefetch's stamps go stale).
func TestLoadSeesModuleRebuiltBeforeTheLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, plane, cfg := newController(t, dir, "exit7.wasm")
	if err := c.LoadFile(ctx); err != nil {
		t.Fatal(err)
	}
	before := plane.Snapshot().Config.Services["a"].Versions[0].Digest
	data := []byte(cfg + "# changed\n")
	pre := c.prefetch(ctx, data)
	time.Sleep(2 * staleAfter) // waiting for the lock
	replaceModule(t, "loop.wasm", filepath.Join(dir, "a.wasm"))
	c.mu.Lock()
	err := c.loadPrefetchedLocked(ctx, data, pre, true)
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if d := plane.Snapshot().Config.Services["a"].Versions[0].Digest; d == before {
		t.Errorf("a.wasm rebuilt before the load took the lock: the load serves the module from before, %s", d)
	}
}

// TestRefsRecordedAgain: the store's record of the config's modules,
// removed (by hand, or by another process of the same config), is
// written again by the next load, though its modules did not change.
func TestRefsRecordedAgain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, _, cfg := newController(t, dir, "exit7.wasm")
	if err := c.Load(ctx, []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	refs, _ := filepath.Glob(filepath.Join(dir, "store", "refs", "*"))
	if len(refs) != 1 {
		t.Fatalf("refs files %v, want one", refs)
	}
	if err := os.Remove(refs[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.Load(ctx, []byte(cfg+"# an edit\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(refs[0]); err != nil {
		t.Errorf("the next load did not record the config's modules again: %v", err)
	}
}

// TestUnusedReleaseWaitsForALoad: the release of a module that an earlier
// load stopped using, due while a later load that takes it up again runs,
// waits for that load, and then keeps it: it was freed under the load,
// which served it freed (every request a 502).
func TestUnusedReleaseWaitsForALoad(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, plane, cfg := newController(t, dir, "exit7.wasm")
	if err := c.Load(ctx, []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	digest := plane.Snapshot().Config.Services["a"].Versions[0].Digest
	replaceModule(t, "loop.wasm", filepath.Join(dir, "a.wasm"))
	if err := c.Load(ctx, []byte(cfg+"# another module\n")); err != nil {
		t.Fatal(err)
	}
	if plane.Engine().Compiled(digest) == nil {
		t.Fatal("the module no longer used was freed at once")
	}
	released := make(chan struct{})
	testHookResolved = func() {
		go func() {
			c.releaseIfUnused([]string{digest}) // the earlier load's, due now
			close(released)
		}()
		select {
		case <-released:
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer func() { testHookResolved = nil }()
	replaceModule(t, "exit7.wasm", filepath.Join(dir, "a.wasm"))
	if err := c.Load(ctx, []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	testHookResolved = nil
	<-released
	if d := plane.Snapshot().Config.Services["a"].Versions[0].Digest; d != digest {
		t.Fatalf("serving %s, want %s", d, digest)
	}
	if plane.Engine().Compiled(digest) == nil {
		t.Error("the module the load took up again was freed under it: the load serves freed code")
	}
}

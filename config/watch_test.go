package config

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watcher runs watch on path and records what it reports.
type watcher struct {
	changes chan string
	settled chan struct{}
	errs    chan error
}

func startWatch(t *testing.T, path string) *watcher { return startWatchEvery(t, path, false) }

// startWatchEvery is startWatch, of WatchBursts with every.
func startWatchEvery(t *testing.T, path string, every bool) *watcher {
	t.Helper()
	w := &watcher{changes: make(chan string, 10), settled: make(chan struct{}, 100), errs: make(chan error, 10)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	err := watch(ctx, path, 50*time.Millisecond,
		func(b []byte) { w.changes <- string(b) },
		func(err error) { w.errs <- err },
		every, func() { w.settled <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// expectChange waits for exactly one onChange with want, then for the burst
// to settle with no second call.
func (w *watcher) expectChange(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-w.changes:
		if got != want {
			t.Fatalf("onChange(%q), want %q", got, want)
		}
	case err := <-w.errs:
		t.Fatalf("onError(%v), want onChange(%q)", err, want)
	case <-time.After(5 * time.Second):
		t.Fatalf("no onChange(%q) within 5s", want)
	}
	w.expectQuiet(t)
}

// expectQuiet asserts that no onChange or onError happens for a grace
// period, in which late events of the same burst are evaluated.
func (w *watcher) expectQuiet(t *testing.T) {
	t.Helper()
	grace := time.After(250 * time.Millisecond)
	for {
		select {
		case got := <-w.changes:
			t.Fatalf("unexpected onChange(%q)", got)
		case err := <-w.errs:
			t.Fatalf("unexpected onError(%v)", err)
		case <-w.settled:
		case <-grace:
			return
		}
	}
}

// waitSettled waits until the burst caused by an action has been evaluated
// (onChange would come first), then expects quiet.
func (w *watcher) waitSettled(t *testing.T) {
	t.Helper()
	select {
	case <-w.settled:
	case got := <-w.changes:
		t.Fatalf("unexpected onChange(%q)", got)
	case err := <-w.errs:
		t.Fatalf("unexpected onError(%v)", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	w.expectQuiet(t)
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatchWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wasmesh.yaml")
	write(t, path, "v1")
	w := startWatch(t, path)

	write(t, path, "v1") // unchanged content: no call
	w.waitSettled(t)

	write(t, path, "v2")
	w.expectChange(t, "v2")

	write(t, filepath.Join(filepath.Dir(path), "other.yaml"), "x") // other files are ignored
	write(t, path, "v2")
	w.waitSettled(t)
}

// TestWatchBursts: WatchBursts reports a burst whose content is
// unchanged too, and nothing for other files.
func TestWatchBursts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wasmesh.yaml")
	write(t, path, "v1")
	w := startWatchEvery(t, path, true)

	write(t, path, "v1")
	w.expectChange(t, "v1")
	write(t, path, "v2")
	w.expectChange(t, "v2")
	write(t, filepath.Join(filepath.Dir(path), "other.yaml"), "x")
	w.expectQuiet(t)
}

func TestWatchRenameOver(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wasmesh.yaml")
	write(t, path, "v1")
	w := startWatch(t, path)

	// What editors do: write a temporary file, then rename it over.
	tmp := filepath.Join(dir, ".wasmesh.yaml.swp")
	write(t, tmp, "v2")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	w.expectChange(t, "v2")

	write(t, tmp, "v2")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	w.waitSettled(t)
}

func TestWatchConfigMapSwap(t *testing.T) {
	// A Kubernetes ConfigMap volume: wasmesh.yaml -> ..data/wasmesh.yaml,
	// ..data -> ..2026_01; an update writes ..2026_02 and swaps ..data.
	dir := t.TempDir()
	version := func(name, content string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, name, "wasmesh.yaml"), content)
	}
	swap := func(target string) {
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..2026_01", "v1")
	if err := os.Symlink("..2026_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "wasmesh.yaml")
	if err := os.Symlink(filepath.Join("..data", "wasmesh.yaml"), path); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, path)

	version("..2026_02", "v2")
	swap("..2026_02")
	if err := os.RemoveAll(filepath.Join(dir, "..2026_01")); err != nil {
		t.Fatal(err)
	}
	w.expectChange(t, "v2")

	version("..2026_03", "v2") // same content, new directory
	swap("..2026_03")
	w.waitSettled(t)
}

// TestWatchLinkInDirectory: the file a symbolic link at the path names in
// the same directory is watched too, and so is the link's new target once
// it is pointed elsewhere in the directory.
func TestWatchLinkInDirectory(t *testing.T) {
	dir := t.TempDir()
	prod, staging := filepath.Join(dir, "prod.yaml"), filepath.Join(dir, "staging.yaml")
	write(t, prod, "v1")
	write(t, staging, "s1")
	path := filepath.Join(dir, "wasmesh.yaml")
	if err := os.Symlink("prod.yaml", path); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, path)

	write(t, prod, "v2") // the target edited in place
	w.expectChange(t, "v2")

	tmp := filepath.Join(dir, "wasmesh.yaml.tmp") // the link pointed elsewhere
	if err := os.Symlink("staging.yaml", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	w.expectChange(t, "s1")
	write(t, staging, "s2")
	w.expectChange(t, "s2")
	write(t, prod, "v3")    // no longer the target: ignored
	write(t, staging, "s2") // unchanged content: no call
	w.waitSettled(t)
}

// TestWatchLinkChain: a link in the middle of a chain in the directory
// (wasmesh.yaml -> current.yaml -> v1.yaml) pointed elsewhere is a change,
// and the file it names now is watched.
func TestWatchLinkChain(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "v1.yaml"), "v1")
	write(t, filepath.Join(dir, "v2.yaml"), "v2")
	link := func(target, at string) {
		t.Helper()
		tmp := filepath.Join(dir, at+".tmp")
		if err := os.Symlink(target, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, at)); err != nil {
			t.Fatal(err)
		}
	}
	link("v1.yaml", "current.yaml")
	path := filepath.Join(dir, "wasmesh.yaml")
	if err := os.Symlink("current.yaml", path); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, path)

	link("v2.yaml", "current.yaml") // the middle link pointed elsewhere
	w.expectChange(t, "v2")
	write(t, filepath.Join(dir, "v2.yaml"), "v2 edited")
	w.expectChange(t, "v2 edited")
	write(t, filepath.Join(dir, "v1.yaml"), "v1 edited") // no longer in the chain: ignored
	write(t, filepath.Join(dir, "v2.yaml"), "v2 edited") // unchanged content: no call
	w.waitSettled(t)
}

func TestWatchStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wasmesh.yaml")
	write(t, path, "v1")
	changes := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	if err := Watch(ctx, path, 0, func(b []byte) { changes <- string(b) }, nil); err != nil {
		t.Fatal(err)
	}
	write(t, path, "v2")
	select {
	case got := <-changes:
		if got != "v2" {
			t.Fatalf("onChange(%q)", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no onChange within 5s (default debounce)")
	}
	cancel()
	time.Sleep(50 * time.Millisecond) // let the goroutine see ctx.Done
	write(t, path, "v3")
	select {
	case got := <-changes:
		t.Fatalf("onChange(%q) after ctx was done", got)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestWatchRemovedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wasmesh.yaml")
	write(t, path, "v1")
	w := startWatch(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-w.errs:
		if !os.IsNotExist(err) {
			t.Errorf("onError(%v), want not-exist", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no onError within 5s")
	}
	write(t, path, "v1") // back with the same content: reported, the read having failed
	w.expectChange(t, "v1")
	write(t, path, "v1") // then the same content again: no change
	w.waitSettled(t)
}

// TestWatchDirectoryReplaced: the config's directory replaced by another
// (moved away and a new one made; a symbolic link to it pointed at
// another, as deploy tools do) is watched anew: the file in the new one
// is read, and its later writes seen.
func TestWatchDirectoryReplaced(t *testing.T) {
	// replaced watches etc/wasmesh.yaml ("v1"), replaces the directory
	// with gone (which takes the old one away, waiting for what it
	// reports), makes a new one and checks that its file's writes are seen.
	replaced := func(t *testing.T, gone func(root, dir string, w *watcher)) {
		root := t.TempDir()
		dir := filepath.Join(root, "etc")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "wasmesh.yaml")
		write(t, path, "v1")
		w := startWatch(t, path)
		gone(root, dir, w)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, path, "v2")
		w.expectChange(t, "v2")
		write(t, path, "v3")
		w.expectChange(t, "v3")
	}
	t.Run("moved", func(t *testing.T) {
		replaced(t, func(root, dir string, _ *watcher) {
			if err := os.Rename(dir, filepath.Join(root, "etc.old")); err != nil {
				t.Fatal(err)
			}
		})
	})
	t.Run("removed and made again", func(t *testing.T) {
		// ext4 gives the new directory the old one's inode number.
		replaced(t, func(_, dir string, w *watcher) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			select { // the file's removal, reported as a read that failed
			case <-w.errs:
			case <-time.After(5 * time.Second):
				t.Fatal("no onError within 5s of the directory's removal")
			}
		})
	})
	t.Run("link", func(t *testing.T) {
		root := t.TempDir()
		for i, d := range []string{"d1", "d2"} {
			if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
				t.Fatal(err)
			}
			write(t, filepath.Join(root, d, "wasmesh.yaml"), fmt.Sprintf("v%d", i+1))
		}
		cur := filepath.Join(root, "current")
		if err := os.Symlink("d1", cur); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(cur, "wasmesh.yaml")
		w := startWatch(t, path)
		if err := os.Symlink("d2", cur+".tmp"); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(cur+".tmp", cur); err != nil {
			t.Fatal(err)
		}
		w.expectChange(t, "v2")
		write(t, path, "v3")
		w.expectChange(t, "v3")
	})
}

func TestWatchSetupErrors(t *testing.T) {
	ctx := context.Background()
	if err := Watch(ctx, filepath.Join(t.TempDir(), "missing.yaml"), 0, func([]byte) {}, nil); err == nil {
		t.Error("Watch of a missing file succeeded")
	}
}

// TestWatchOverflow: when the kernel's queue of events overflowed (some
// were lost), the file is read again as after an event for it.
func TestWatchOverflow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wasmesh.yaml")
	write(t, path, "v1")
	w := &watcher{changes: make(chan string, 10), settled: make(chan struct{}, 100), errs: make(chan error, 10)}
	fw := &fileWatcher{path: path, last: sha256.Sum256([]byte("v1")),
		onChange: func(b []byte) { w.changes <- string(b) }, onError: func(err error) { w.errs <- err },
		settled: func() { w.settled <- struct{}{} }}
	events, errc := make(chan fsnotify.Event), make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go fw.run(ctx, events, errc, 10*time.Millisecond)
	write(t, path, "v2") // its event lost
	errc <- fsnotify.ErrEventOverflow
	if err := <-w.errs; !errors.Is(err, fsnotify.ErrEventOverflow) {
		t.Errorf("onError(%v), want the overflow reported", err)
	}
	w.expectChange(t, "v2")
}

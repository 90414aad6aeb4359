package config

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch watches the config file at path and calls onChange with its new
// content after it changes.
//
// It watches the file's directory, so that an editor's write-and-rename and
// a Kubernetes ConfigMap update (an atomic swap of the "..data" symlink) are
// seen, as are those of the file a symbolic link at path names in the same
// directory; events for other files are ignored. Events are debounced: onChange is
// called once per burst, after debounce (default 100ms when 0) without
// further events, and only if the content's sha256 differs from the last
// content passed to onChange, or from the content Watch read at the start.
// Changes made between the caller's own read and the call to Watch are
// therefore not reported.
//
// The directory is looked at again every second: one replaced (moved
// away and another put in its place, a symbolic link to it pointed at
// another directory, removed and made again) is watched anew and the file
// read from it, where the watch of the old one would see nothing more.
//
// Watch returns once watching has started (or failed to: the file must be
// readable and its directory watchable); the work goes on in a goroutine
// until ctx is done. onChange and onError (which may be nil) are called from
// that goroutine, one at a time. onError receives fsnotify's errors and
// failures to read the file after a burst (say, it was removed); the
// content read after such a failure is passed to onChange even when it is
// the content from before.
func Watch(ctx context.Context, path string, debounce time.Duration, onChange func(data []byte), onError func(error)) error {
	return watch(ctx, path, debounce, onChange, onError, false, nil)
}

// WatchBursts is Watch, but calls onBurst with the file's content after
// every burst of events, whether the content changed or not: for a caller
// that compares it with what it holds itself, which may be other than
// what the watch last saw (a file read by the caller between two bursts,
// then put back as it was, is back to the caller and not to the watch).
func WatchBursts(ctx context.Context, path string, debounce time.Duration, onBurst func(data []byte), onError func(error)) error {
	return watch(ctx, path, debounce, onBurst, onError, true, nil)
}

// watch is Watch (every: WatchBursts) with a hook called after each
// settled burst, for tests.
func watch(ctx context.Context, path string, debounce time.Duration, onChange func([]byte), onError func(error), every bool, settled func()) error {
	if debounce <= 0 {
		debounce = 100 * time.Millisecond
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	info, err := os.Stat(dir)
	if err == nil {
		err = w.Add(dir)
	}
	if err != nil {
		w.Close()
		return err
	}
	fw := &fileWatcher{path: path, last: sha256.Sum256(data), targets: linkTargets(path), onChange: onChange, onError: onError, every: every, settled: settled}
	fw.dir = &watchedDir{w: w, path: dir, info: info}
	go func() {
		defer w.Close()
		fw.run(ctx, w.Events, w.Errors, debounce)
	}()
	return nil
}

// dirPoll is how often the watched directory is looked at again
// (watchedDir.replaced).
const dirPoll = time.Second

// watchedDir is the directory a watch has, as it was when it was added.
type watchedDir struct {
	w      *fsnotify.Watcher
	path   string
	info   os.FileInfo // nil while the directory is missing
	failed bool        // the last try to watch it failed (reported once)
}

// replaced reports whether the directory at path is another than the one
// watched (or back after it was missing), and then watches it instead; a
// failure to is reported through report, once.
func (d *watchedDir) replaced(report func(error)) bool {
	cur, err := os.Stat(d.path)
	if err != nil {
		d.info = nil // missing: it will be watched when it is back
		return false
	}
	// The same inode is not enough: one removed and made again may get
	// its number back, its watch gone with it (the kernel's IN_IGNORED).
	if d.info != nil && os.SameFile(d.info, cur) && slices.Contains(d.w.WatchList(), d.path) {
		return false
	}
	_ = d.w.Remove(d.path) // the old one's watch, unless it went with it
	if err := d.w.Add(d.path); err != nil {
		if !d.failed {
			report(err)
		}
		d.failed, d.info = true, nil
		return false
	}
	d.failed, d.info = false, cur
	return true
}

type fileWatcher struct {
	path     string
	dir      *watchedDir // nil in tests that feed events themselves
	last     [sha256.Size]byte
	targets  []string // the links path goes through and the file it names, in its directory (linkTargets)
	onChange func([]byte)
	onError  func(error)
	every    bool // onChange after every burst, the content changed or not
	settled  func()
}

// run debounces events and errors until ctx is done or they end. An error
// that events were lost (the kernel's queue overflowed) is followed by a
// check, as an event for the file would be: one of those lost may have
// been.
func (fw *fileWatcher) run(ctx context.Context, events <-chan fsnotify.Event, errs <-chan error, debounce time.Duration) {
	timer := time.NewTimer(debounce)
	timer.Stop()
	var poll <-chan time.Time
	if fw.dir != nil {
		t := time.NewTicker(dirPoll)
		defer t.Stop()
		poll = t.C
	}
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-poll:
			if fw.dir.replaced(fw.report) {
				timer.Reset(debounce) // the file in the new directory is read
			}
		case ev, ok := <-events:
			if !ok {
				return
			}
			if fw.relevant(ev) {
				timer.Reset(debounce)
			}
		case err, ok := <-errs:
			if !ok {
				return
			}
			fw.report(err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				timer.Reset(debounce)
			}
		case <-timer.C:
			fw.check()
		}
	}
}

// relevant reports whether ev may change the file's content: an event for
// the file itself, for the links it goes through and the file it names at
// last in the same directory, or for a "..data" symlink it may point
// through.
func (fw *fileWatcher) relevant(ev fsnotify.Event) bool {
	base := filepath.Base(ev.Name)
	return base == filepath.Base(fw.path) || base == "..data" || slices.Contains(fw.targets, base)
}

// linkTargets are the base names, in path's own directory, of the links
// that path, a symbolic link, goes through and of the file it names at
// last: a change of any of them (a link in the middle of a chain pointed
// elsewhere) may change what path reads. None when path is no link.
func linkTargets(path string) []string {
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil
	}
	realDir, _ := filepath.EvalSymlinks(dir)
	inDir := func(p string) bool {
		d, err := filepath.Abs(filepath.Dir(p))
		if err != nil {
			return false
		}
		if d == dir {
			return true
		}
		rd, err := filepath.EvalSymlinks(d)
		return err == nil && rd == realDir
	}
	var names []string
	cur := path
	for range 40 { // the kernel's own bound on a chain
		t, err := os.Readlink(cur)
		if err != nil {
			break // not a link: the file named at last (or nothing)
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(cur), t)
		}
		cur = t
		if b := filepath.Base(t); inDir(t) && b != filepath.Base(path) && !slices.Contains(names, b) {
			names = append(names, b)
		}
	}
	return names
}

// check reads the file and calls onChange if its content changed (or,
// with every, in any case).
func (fw *fileWatcher) check() {
	if fw.settled != nil {
		defer fw.settled()
	}
	fw.targets = linkTargets(fw.path) // the links may point elsewhere now
	data, err := os.ReadFile(fw.path)
	if err != nil {
		fw.report(err)
		fw.last = [sha256.Size]byte{} // the next content read is reported, even if it is the same
		return
	}
	if sum := sha256.Sum256(data); sum != fw.last || fw.every {
		fw.last = sum
		fw.onChange(data)
	}
}

func (fw *fileWatcher) report(err error) {
	if fw.onError != nil {
		fw.onError(err)
	}
}

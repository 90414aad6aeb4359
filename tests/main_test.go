// Package tests holds end-to-end tests of the wasmesh command: each test runs
// the real binary as a separate process, with its own WASMESH_HOME (so its own
// store) and a wazero compilation cache shared by the whole run.
//
// TestMain builds ./cmd/wasmesh once; set WASMESH_BIN to test a prebuilt
// binary instead. The guests are the committed .wasm files under examples/,
// host/testdata/ and tests/testdata/ — nothing needs a WebAssembly toolchain.
package tests

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/testutil"
)

var (
	// bin is the wasmesh binary under test.
	bin string
	// repoRoot is the module's root directory, the parent of tests/.
	repoRoot string
	// cacheDir is XDG_CACHE_HOME for every run, so wazero's compilation cache
	// is shared across tests.
	cacheDir string
)

// runLimit bounds every wasmesh process a test starts: a gateway that
// compiles every example component from a cold cache takes 27 s on 2 idle
// cores, and more than 60 s while other test packages compete for them.
const runLimit = 3 * time.Minute

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	root, err := findRepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests:", err)
		return 1
	}
	repoRoot = root
	misbehave = repoPath("examples", "misbehave", "rust", "misbehave.wasm")
	tmp, err := os.MkdirTemp("", "wasmesh-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tests:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	cacheDir = filepath.Join(tmp, "cache")

	if bin = os.Getenv("WASMESH_BIN"); bin != "" {
		if bin, err = filepath.Abs(bin); err != nil {
			fmt.Fprintln(os.Stderr, "tests: WASMESH_BIN:", err)
			return 1
		}
	} else {
		bin = filepath.Join(tmp, "wasmesh")
		if runtime.GOOS == "windows" {
			bin += ".exe"
		}
		build := exec.Command("go", "build", "-o", bin, "./cmd/wasmesh")
		build.Dir = repoRoot
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "tests: go build ./cmd/wasmesh:", err)
			return 1
		}
	}
	code := m.Run()
	atExit.mu.Lock()
	for i := len(atExit.fns) - 1; i >= 0; i-- {
		atExit.fns[i]()
	}
	atExit.mu.Unlock()
	return code
}

// atExit are what the run shares between tests (a Kubernetes control
// plane) and stops at its end, last first.
var atExit struct {
	mu  sync.Mutex
	fns []func()
}

// findRepoRoot returns the parent of the directory holding this file.
func findRepoRoot() (string, error) {
	dir := ""
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dir = filepath.Dir(file)
	} else if dir, _ = os.Getwd(); dir == "" { // -trimpath: go test runs in the package directory
		return "", errors.New("cannot locate the tests directory")
	}
	root := filepath.Dir(dir)
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("no go.mod in %s, the parent of the tests directory", root)
	}
	return root, nil
}

// repoPath returns a path inside the repository.
func repoPath(elem ...string) string {
	return filepath.Join(append([]string{repoRoot}, elem...)...)
}

// langs are the languages of the hello guests, as each names itself.
var langs = []string{"rust", "zig", "c", "typescript", "go"}

// misbehave is the guest that does one bad thing on demand (set by TestMain).
var misbehave string

// hello returns the path of a language's hello guest.
func hello(lang string) string { return repoPath("examples", "hello", lang, "hello.wasm") }

// hostTestdata returns the path of one of the host package's WAT guests.
func hostTestdata(name string) string { return repoPath("host", "testdata", name) }

// testdata returns the path of one of this package's WAT guests.
func testdata(name string) string { return repoPath("tests", "testdata", name) }

// homes maps each test to its WASMESH_HOME, so that every wasmesh process of
// one test shares a store and no two tests do.
var homes sync.Map // *testing.T -> string

// home returns t's WASMESH_HOME, creating it on first use.
func home(t testing.TB) string {
	t.Helper()
	if h, ok := homes.Load(t); ok {
		return h.(string)
	}
	h, loaded := homes.LoadOrStore(t, t.TempDir())
	if !loaded {
		t.Cleanup(func() { homes.Delete(t) })
	}
	return h.(string)
}

// opts are what a wasmesh process gets besides its arguments.
type opts struct {
	stdin  io.Reader // default: empty
	stdout io.Writer // default: collected into result.stdout
	env    []string  // KEY=VALUE added to (and overriding) the environment
	dir    string    // working directory; default the tests directory
}

type result struct {
	stdout, stderr string
	code           int
}

// proc is a running wasmesh process.
type proc struct {
	args           []string
	cmd            *exec.Cmd
	cancel         context.CancelFunc
	stdout, stderr testutil.LockedBuffer // read by tests while the process writes
}

// start starts wasmesh with args, its WASMESH_HOME set to t's home.
func start(t testing.TB, o opts, args ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	p := &proc{args: args, cancel: cancel}
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Dir = o.dir
	p.cmd.Env = append(os.Environ(), "WASMESH_HOME="+home(t), "XDG_CACHE_HOME="+cacheDir)
	p.cmd.Env = append(p.cmd.Env, o.env...)
	p.cmd.Stdin = o.stdin
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if o.stdout != nil {
		p.cmd.Stdout = o.stdout
	}
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start wasmesh %s: %v", strings.Join(args, " "), err)
	}
	return p
}

// wait waits for p to exit. A process still running after runLimit, killed by
// a signal, or that printed a Go panic fails the test.
func (p *proc) wait(t *testing.T) result {
	t.Helper()
	defer p.cancel()
	err := p.cmd.Wait()
	r := result{stdout: p.stdout.String(), stderr: p.stderr.String(), code: p.cmd.ProcessState.ExitCode()}
	var exit *exec.ExitError
	switch {
	case p.cmd.ProcessState != nil && p.cmd.ProcessState.Exited() && (err == nil || errors.As(err, &exit)):
	default:
		t.Fatalf("wasmesh %s did not exit normally (time limit %s): %v\nstdout: %.2000s\nstderr: %.2000s",
			strings.Join(p.args, " "), runLimit, err, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") {
		t.Errorf("wasmesh %s: Go panic on stderr:\n%s", strings.Join(p.args, " "), r.stderr)
	}
	return r
}

// wasmesh runs wasmesh with args and returns what it printed and its exit status.
func wasmesh(t *testing.T, o opts, args ...string) result {
	t.Helper()
	return start(t, o, args...).wait(t)
}

// ok runs wasmesh and fails the test unless it exits 0.
func ok(t *testing.T, o opts, args ...string) result {
	t.Helper()
	r := wasmesh(t, o, args...)
	if r.code != 0 {
		t.Fatalf("wasmesh %s: exit status %d, want 0\nstdout: %.2000s\nstderr: %.2000s",
			strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// push pushes a file into t's store and returns its digest.
func push(t *testing.T, file string) string {
	t.Helper()
	return strings.TrimSpace(ok(t, opts{}, "artifact", "push", file).stdout)
}

// oneLine fails the test unless s is a single line ending in a newline.
func oneLine(t *testing.T, what, s string) {
	t.Helper()
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		t.Errorf("%s is not one line: %q", what, s)
	}
}

// helloOutput is what every hello guest prints.
func helloOutput(lang, method, path string, n int) string {
	return fmt.Sprintf("Content-Type: text/plain\n\nhello from %s: %s %s %d bytes\n", lang, method, path, n)
}

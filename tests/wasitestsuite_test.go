package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// wasiSpec is a wasi-testsuite test's JSON specification (its legacy
// form, which every wasm32-wasip1 test uses): doc/specification.md.
type wasiSpec struct {
	Args     []string          `json:"args"`
	Env      map[string]string `json:"env"`
	Root     string            `json:"root"`
	ExitCode int               `json:"exit_code"`
	Stdout   *string           `json:"stdout"`
}

// wasiKnownFailures are the suite's tests wasmesh run fails, each with
// why: none today (internal/wasip1 passes all 72). A failure named here is
// logged instead of failing the test, and one named that passes is
// reported, to be taken off.
var wasiKnownFailures = map[string]string{}

// TestWASITestsuite runs the wasm32-wasip1 tests of WebAssembly's
// wasi-testsuite through `wasmesh run`, as its wazero adapter runs them
// (a test's root directory preopened at /, its args and env given), each
// in a copy of its root directory. The tests are vendored, stripped of
// their debug sections, in testdata/wasi-testsuite (README.md there says
// from where); WASI_TESTSUITE may name another checkout of the suite's
// prebuilt tests (its tests/*/testsuite/wasm32-wasip1 directories). A test
// that fails is an error unless wasiKnownFailures names it; one named
// there that passes is reported, to be taken off the list.
func TestWASITestsuite(t *testing.T) {
	t.Parallel()
	root := os.Getenv("WASI_TESTSUITE")
	if root == "" {
		root = filepath.Join("testdata", "wasi-testsuite")
	}
	root, err := filepath.Abs(root) // the tests run in their own directories
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "tests", "*", "testsuite", "wasm32-wasip1", "*.wasm"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no wasm32-wasip1 tests under %s (%v)", root, err)
	}
	sort.Strings(files)
	passed := 0
	for _, file := range files {
		name := filepath.ToSlash(strings.TrimPrefix(file, filepath.Join(root, "tests")+string(filepath.Separator)))
		why := runWASITest(t, file)
		known, isKnown := wasiKnownFailures[name]
		switch {
		case why == "":
			passed++
			if isKnown {
				t.Logf("%s passes now: take it off wasiKnownFailures (%s)", name, known)
			}
		case isKnown:
			t.Logf("known failure %s (%s): %s", name, known, why)
		default:
			t.Errorf("%s: %s", name, why)
		}
	}
	t.Logf("wasi-testsuite wasm32-wasip1: %d/%d pass", passed, len(files))
}

// runWASITest runs one test and says why it failed, "" when it passed.
func runWASITest(t *testing.T, file string) string {
	t.Helper()
	dir := filepath.Dir(file)
	spec := wasiSpec{}
	if b, err := os.ReadFile(strings.TrimSuffix(file, ".wasm") + ".json"); err == nil {
		if err := json.Unmarshal(b, &spec); err != nil {
			return "spec: " + err.Error()
		}
	}
	args := []string{"run", "--timeout", "30s"}
	keys := make([]string, 0, len(spec.Env))
	for k := range spec.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		args = append(args, "--env", k+"="+spec.Env[k])
	}
	if spec.Root != "" {
		// A copy: the tests write beneath their root.
		tmp := filepath.Join(t.TempDir(), "root")
		if err := os.CopyFS(tmp, os.DirFS(filepath.Join(dir, spec.Root))); err != nil {
			return "copying its root: " + err.Error()
		}
		args = append(args, "--dir", tmp+":/")
	}
	args = append(append(args, file), spec.Args...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "WASMESH_HOME="+home(t), "XDG_CACHE_HOME="+cacheDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		return err.Error()
	}
	switch {
	case code != spec.ExitCode:
		return fmt.Sprintf("exit %d, want %d: %.200s", code, spec.ExitCode, strings.TrimSpace(stderr.String()))
	case spec.Stdout != nil && stdout.String() != *spec.Stdout:
		return fmt.Sprintf("stdout %.100q, want %.100q", stdout.String(), *spec.Stdout)
	}
	return ""
}

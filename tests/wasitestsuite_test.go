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
	"strconv"
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

// TestWASITestsuite runs the wasm32-wasip1 tests of WebAssembly's
// wasi-testsuite through `wasmesh run`, as its wazero adapter runs them
// (a test's root directory preopened at /, its args and env given), and
// reports how many pass. It runs where WASI_TESTSUITE names a checkout of
// the suite's prebuilt tests (its tests/*/testsuite/wasm32-wasip1
// directories, branch prod/testsuite-base); they are not vendored yet
// (101 MB). WASI_TESTSUITE_WANT, when set, is the number that must pass.
func TestWASITestsuite(t *testing.T) {
	root := os.Getenv("WASI_TESTSUITE")
	if root == "" {
		t.Skip("WASI_TESTSUITE is not set: no wasi-testsuite checkout to run")
	}
	files, err := filepath.Glob(filepath.Join(root, "tests", "*", "testsuite", "wasm32-wasip1", "*.wasm"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no wasm32-wasip1 tests under %s (%v)", root, err)
	}
	sort.Strings(files)
	var failed []string
	for _, file := range files {
		name := strings.TrimPrefix(file, root+"/tests/")
		if why := runWASITest(t, file); why != "" {
			failed = append(failed, name+": "+why)
		}
	}
	passed := len(files) - len(failed)
	t.Logf("wasi-testsuite wasm32-wasip1: %d/%d pass", passed, len(files))
	for _, f := range failed {
		t.Log("  FAIL " + f)
	}
	if want := os.Getenv("WASI_TESTSUITE_WANT"); want != "" {
		n, err := strconv.Atoi(want)
		if err != nil {
			t.Fatalf("WASI_TESTSUITE_WANT %q: %v", want, err)
		}
		if passed < n {
			t.Errorf("%d pass, want at least %d", passed, n)
		}
	}
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
	// The suite's executor removes what earlier runs left (*.cleanup).
	cleanups, _ := filepath.Glob(filepath.Join(dir, "*", "*.cleanup"))
	for _, c := range cleanups {
		os.RemoveAll(c)
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
		args = append(args, "--dir", filepath.Join(dir, spec.Root)+":/")
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

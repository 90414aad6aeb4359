package tests

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/testutil"
)

// TestRunHello runs each language's hello guest with an empty and a small body.
func TestRunHello(t *testing.T) {
	t.Parallel()
	for _, lang := range langs {
		for _, tc := range []struct{ method, body string }{{"GET", ""}, {"POST", "hello"}} {
			t.Run(lang+"/"+tc.method, func(t *testing.T) {
				t.Parallel()
				r := ok(t, opts{stdin: strings.NewReader(tc.body)},
					"run", "--env", "REQUEST_METHOD="+tc.method, "--env", "PATH_INFO=/hi", hello(lang))
				if want := helloOutput(lang, tc.method, "/hi", len(tc.body)); r.stdout != want {
					t.Errorf("stdout = %q, want %q", r.stdout, want)
				}
				if r.stderr != "" {
					t.Errorf("stderr = %q, want nothing", r.stderr)
				}
			})
		}
	}
}

// TestRunCommandComponents runs each hello made a wasi:cli/command
// component (the preview-1 command adapter): it answers as the module does.
func TestRunCommandComponents(t *testing.T) {
	t.Parallel()
	for _, lang := range []string{"rust", "zig", "c", "typescript"} {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			file := repoPath("internal/component/testdata/command-" + lang + ".wasm")
			r := ok(t, opts{stdin: strings.NewReader("hello")},
				"run", "--env", "REQUEST_METHOD=POST", "--env", "PATH_INFO=/hi", file)
			if want := helloOutput(lang, "POST", "/hi", 5); r.stdout != want || r.stderr != "" {
				t.Errorf("stdout = %q, stderr %q; want %q", r.stdout, r.stderr, want)
			}
		})
	}
	r := wasmesh(t, opts{}, "run", repoPath("internal/component/testdata/types.wasm"))
	if r.code != 2 || !strings.Contains(r.stderr, "exports no wasi:cli/run@0.2: cannot run as a command") {
		t.Errorf("run of a component that is not a command: %d %q", r.code, r.stderr)
	}
}

// TestRunByDigest runs each hello from the store, by a digest prefix and by
// its full digest.
func TestRunByDigest(t *testing.T) {
	t.Parallel()
	for _, lang := range langs {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			digest := push(t, hello(lang))
			for _, ref := range []string{strings.TrimPrefix(digest, "sha256:")[:12], digest} {
				r := ok(t, opts{stdin: strings.NewReader("abc")},
					"run", "--env", "REQUEST_METHOD=PUT", "--env", "PATH_INFO=/x", ref)
				if want := helloOutput(lang, "PUT", "/x", 3); r.stdout != want {
					t.Errorf("run %s: stdout = %q, want %q", ref, r.stdout, want)
				}
			}
		})
	}
}

// TestRunEnv checks that the guest sees only the environment it is given.
func TestRunEnv(t *testing.T) {
	t.Parallel()
	secret := []string{"WASMESH_TEST_SECRET=xyz"}
	tests := []struct {
		name      string
		flags     []string
		stdin     string
		want      []string // lines the env listing must hold
		notWant   []string
		wantExact string
	}{
		{name: "not inherited", wantExact: "Content-Type: text/plain\n\nbody=\n"},
		{name: "inherit", flags: []string{"--env-inherit"}, want: []string{"WASMESH_TEST_SECRET=xyz"}},
		{
			name:    "explicit",
			flags:   []string{"--env", "A=B", "--env", "EMPTY=", "--env", "EQ=x=y"},
			stdin:   "payload",
			want:    []string{"A=B", "EMPTY=", "EQ=x=y", "body=payload"},
			notWant: []string{"WASMESH_TEST_SECRET=xyz"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append(append([]string{"run"}, tc.flags...), misbehave, "env")
			r := ok(t, opts{env: secret, stdin: strings.NewReader(tc.stdin)}, args...)
			if tc.wantExact != "" && r.stdout != tc.wantExact {
				t.Errorf("stdout = %q, want %q", r.stdout, tc.wantExact)
			}
			lines := strings.Split(r.stdout, "\n")
			for _, w := range tc.want {
				if !contains(lines, w) {
					t.Errorf("guest env lacks %q:\n%s", w, r.stdout)
				}
			}
			for _, w := range tc.notWant {
				if contains(lines, w) {
					t.Errorf("guest env has %q:\n%s", w, r.stdout)
				}
			}
		})
	}
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// TestRunDir checks --dir mounts: reads work, and :ro refuses every change.
// Each case mounts a fresh BASE/inside (holding f = "content\n") at /data,
// next to BASE/outside/secret.
func TestRunDir(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("HOST:GUEST mounts split on ':'")
	}
	type files map[string]string // path under inside/ -> content, "" for absent
	tests := []struct {
		name   string
		ro     bool
		module string
		args   []string
		fail   bool   // want a non-zero exit status
		stdout string // want stdout to contain this
		files  files  // want these files in inside/ afterwards
	}{
		{name: "ro write refused", ro: true, module: misbehave, args: []string{"write", "/data/x"},
			fail: true, stdout: "error:", files: files{"x": "", "f": "content\n"}},
		{name: "ro read", ro: true, module: misbehave, args: []string{"read", "/data/f"},
			stdout: "Content-Type: text/plain\n\ncontent\n"},
		{name: "rw write", module: misbehave, args: []string{"write", "/data/x"},
			stdout: "ok\n", files: files{"x": "data"}},
		{name: "rw read", module: misbehave, args: []string{"read", "/data/f"},
			stdout: "Content-Type: text/plain\n\ncontent\n"},
		{name: "ro overwrite refused", ro: true, module: misbehave, args: []string{"write", "/data/f"},
			fail: true, stdout: "error:", files: files{"f": "content\n"}},
		{name: "ro unlink refused", ro: true, module: testdata("fs_unlink.wasm"),
			fail: true, files: files{"f": "content\n"}},
		{name: "rw unlink", module: testdata("fs_unlink.wasm"), files: files{"f": ""}},
		{name: "ro rename refused", ro: true, module: testdata("fs_rename.wasm"),
			fail: true, files: files{"f": "content\n", "g": ""}},
		{name: "rw rename", module: testdata("fs_rename.wasm"), files: files{"f": "", "g": "content\n"}},
		{name: "ro symlink refused", ro: true, module: testdata("fs_symlink_escape.wasm"),
			fail: true, files: files{"esc": ""}},
		{name: "no escape by dot-dot", module: misbehave, args: []string{"read", "/data/../outside/secret"},
			fail: true, stdout: "error:"},
		{name: "no file outside the mounts", module: misbehave, args: []string{"read", "/etc/hostname"},
			fail: true, stdout: "error:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			inside := mountFixture(t)
			mount := inside + ":/data"
			if tc.ro {
				mount += ":ro"
			}
			r := wasmesh(t, opts{}, append([]string{"run", "--dir", mount, tc.module}, tc.args...)...)
			if (r.code != 0) != tc.fail {
				t.Errorf("exit status %d, want failure %v\nstdout: %s\nstderr: %s", r.code, tc.fail, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, tc.stdout) {
				t.Errorf("stdout = %q, want it to contain %q", r.stdout, tc.stdout)
			}
			if strings.Contains(r.stdout, "TOPSECRET") {
				t.Errorf("the guest read a file outside its mount: %q", r.stdout)
			}
			for name, want := range tc.files {
				data, err := os.ReadFile(filepath.Join(inside, name))
				switch {
				case want == "" && err == nil:
					t.Errorf("%s exists afterwards (holding %q), want it absent", name, data)
				case want != "" && err != nil:
					t.Errorf("%s: %v, want it to hold %q", name, err, want)
				case want != "" && string(data) != want:
					t.Errorf("%s holds %q, want %q", name, data, want)
				}
			}
		})
	}
}

// mountFixture makes BASE/inside/f = "content\n" and
// BASE/outside/secret = "TOPSECRET\n", and returns BASE/inside.
func mountFixture(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	inside := filepath.Join(base, "inside")
	for path, data := range map[string]string{
		filepath.Join(inside, "f"):               "content\n",
		filepath.Join(base, "outside", "secret"): "TOPSECRET\n",
	} {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return inside
}

// TestRunDirSymlinkEscape: a guest with a writable mount makes a symlink to a
// file outside it (allowed), then opens the link: refused (exit status 2 of
// fs_symlink_escape.wat), the file not read.
func TestRunDirSymlinkEscape(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("HOST:GUEST mounts split on ':'")
	}
	inside := mountFixture(t)
	r := wasmesh(t, opts{}, "run", "--dir", inside+":/data", testdata("fs_symlink_escape.wasm"))
	if strings.Contains(r.stdout, "TOPSECRET") || r.code != 2 {
		t.Fatalf("exit status %d, want 2 (the link made, opening it refused); stdout %q, stderr %q",
			r.code, r.stdout, r.stderr)
	}
	if dst, err := os.Readlink(filepath.Join(inside, "esc")); err != nil || dst != "../outside/secret" {
		t.Errorf("the link the guest made: %q, %v", dst, err)
	}
}

// TestRunTimeout stops a guest spinning in a loop.
func TestRunTimeout(t *testing.T) {
	t.Parallel()
	begin := time.Now()
	r := wasmesh(t, opts{}, "run", "--timeout", "500ms", hostTestdata("loop.wasm"))
	elapsed := time.Since(begin)
	if r.code != 124 {
		t.Errorf("exit status %d, want 124; stderr: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "timed out") {
		t.Errorf("stderr = %q, want it to say \"timed out\"", r.stderr)
	}
	oneLine(t, "stderr", r.stderr)
	if elapsed > 10*time.Second {
		t.Errorf("wasmesh ran %s with --timeout 500ms", elapsed)
	}
}

// TestRunTimeoutBlocked stops a guest blocked in the host: asleep, or
// waiting for stdin that never ends.
func TestRunTimeoutBlocked(t *testing.T) {
	t.Parallel()
	const block = 12 * time.Second // how long the guest would block; > the 10s bound
	tests := []struct {
		name  string
		stdin bool // feed an open pipe that closes after block
		args  []string
	}{
		{name: "sleep", args: []string{misbehave, "sleep", "12000"}},
		{name: "stdin", stdin: true, args: []string{hello("rust")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var o opts
			if tc.stdin {
				pr, pw, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer pr.Close()
				defer pw.Close()
				timer := time.AfterFunc(block, func() { pw.Close() })
				defer timer.Stop()
				o.stdin = pr
			}
			begin := time.Now()
			r := wasmesh(t, o, append([]string{"run", "--timeout", "500ms"}, tc.args...)...)
			elapsed := time.Since(begin)
			if r.code != 124 || !strings.Contains(r.stderr, "timed out") {
				t.Errorf("exit status %d, stderr %q; want 124 and \"timed out\"", r.code, r.stderr)
			}
			if elapsed > 10*time.Second {
				t.Fatalf("--timeout 500ms did not stop a guest blocked in %s: it ran %s",
					tc.name, elapsed.Round(time.Millisecond))
			}
		})
	}
}

// TestRunMemory caps the guest's memory.
func TestRunMemory(t *testing.T) {
	t.Parallel()
	t.Run("membomb", func(t *testing.T) {
		t.Parallel()
		// membomb exits 3 when memory.grow fails, 0 if it reached 4 GiB.
		r := wasmesh(t, opts{}, "run", "--memory", "16MiB", hostTestdata("membomb.wasm"))
		if r.code != 3 {
			t.Errorf("exit status %d, want 3 (memory.grow failed in the guest); stderr: %s", r.code, r.stderr)
		}
		if r.stderr != "" {
			t.Errorf("stderr = %q, want nothing", r.stderr)
		}
	})
	t.Run("rust oom", func(t *testing.T) {
		t.Parallel()
		r := wasmesh(t, opts{}, "run", "--memory", "16MiB", misbehave, "oom")
		if r.code == 0 {
			t.Errorf("exit status 0, want a failure; stdout: %.200s", r.stdout)
		}
		// The guest may print its own message first; wasmesh's is the last line.
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, "wasmesh run: ") {
			t.Errorf("stderr = %q, want it to end with one \"wasmesh run: ...\" line", r.stderr)
		}
	})
}

// TestRunErrors checks the exit status and the one-line message of each way a
// run can fail.
func TestRunErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	wasm, err := os.ReadFile(hello("rust"))
	if err != nil {
		t.Fatal(err)
	}
	notWasm := write("notwasm.wasm", []byte("this is text, not WebAssembly\n"))
	truncated := write("truncated.wasm", wasm[:100])

	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"missing file", []string{filepath.Join(dir, "nope.wasm")}, 2, []string{"nope.wasm", "no such file"}},
		{"not wasm", []string{notWasm}, 2, []string{"notwasm.wasm", "not a WebAssembly binary"}},
		{"invalid wasm", []string{truncated}, 2, []string{"truncated.wasm", "invalid WebAssembly module"}},
		{"no _start", []string{hostTestdata("nostart.wasm")}, 2, []string{"exports neither _start nor wasmesh_handle"}},
		{"unknown imports", []string{hostTestdata("badimport.wasm")}, 2,
			[]string{"env.launch_missiles", "wasi_snapshot_preview1.no_such_call"}},
		{"initial memory over --memory", []string{"--memory", "16MiB", hostTestdata("bigmem.wasm")}, 2,
			[]string{"memory limit"}},
		{"unknown digest", []string{"0123456789abcdef"}, 2, []string{"not found"}},
		{"no module", nil, 2, []string{"nothing to run given: wasmesh run [flags] FILE.wasm"}},
		{"bad --memory", []string{"--memory", "lots", hostTestdata("exit7.wasm")}, 2, []string{"--memory"}},
		{"bad --dir", []string{"--dir", filepath.Join(dir, "none") + ":/x", hostTestdata("exit7.wasm")}, 2,
			[]string{"--dir " + filepath.Join(dir, "none") + ":/x: no such file or directory"}},
		{"--dir of a file", []string{"--dir", hostTestdata("exit7.wasm") + ":/x", hostTestdata("exit7.wasm")}, 2,
			[]string{"exit7.wasm is not a directory"}},
		{"bad --env", []string{"--env", "NOEQUALS", hostTestdata("exit7.wasm")}, 2, []string{"KEY=VALUE"}},
		{"trap unreachable", []string{hostTestdata("trap_unreachable.wasm")}, 1, []string{"unreachable"}},
		{"trap divide by zero", []string{hostTestdata("trap_divzero.wasm")}, 1, []string{"integer divide by zero"}},
		{"trap out of bounds", []string{hostTestdata("trap_oob.wasm")}, 1, []string{"out of bounds memory access"}},
		{"trap stack overflow", []string{hostTestdata("trap_stack.wasm")}, 1, []string{"stack overflow"}},
		{"rust trap", []string{misbehave, "trap"}, 1, []string{"unreachable"}},
		{"a component that is not a command", []string{repoPath("internal/component/testdata/types.wasm")}, 2,
			[]string{"exports no wasi:cli/run@0.2: cannot run as a command (it exports run, wasmesh:test/shapes@0.1.0)"}},
		{"a wasi:http component", []string{repoPath("examples/components/zig/hello.wasm")}, 2,
			[]string{"(it exports wasi:http/incoming-handler@0.2.10; a wasi:http component is served, by wasmesh serve)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := wasmesh(t, opts{}, append([]string{"run"}, tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit status %d, want %d; stderr: %s", r.code, tc.code, r.stderr)
			}
			if !strings.HasPrefix(r.stderr, "wasmesh run: ") {
				t.Errorf("stderr = %q, want it to start with \"wasmesh run: \"", r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr = %q, want it to contain %q", r.stderr, w)
				}
			}
			oneLine(t, "stderr", r.stderr)
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
		})
	}
}

// TestRunExitCode passes the guest's exit code through, silently.
func TestRunExitCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"wat exit 7", []string{hostTestdata("exit7.wasm")}, 7},
		{"rust exit 42", []string{misbehave, "exit", "42"}, 42},
		{"rust exit 1", []string{misbehave, "exit", "1"}, 1},
		{"rust exit 0", []string{misbehave, "exit", "0"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := wasmesh(t, opts{}, append([]string{"run"}, tc.args...)...)
			if r.code != tc.code {
				t.Errorf("exit status %d, want %d; stderr: %s", r.code, tc.code, r.stderr)
			}
			if r.stderr != "" || r.stdout != "" {
				t.Errorf("stdout %q, stderr %q; want nothing", r.stdout, r.stderr)
			}
		})
	}
}

// TestRunStdio passes large and binary data through stdin, stdout and stderr.
func TestRunStdio(t *testing.T) {
	t.Parallel()
	const bodySize = 300 << 10
	body := strings.Repeat("0123456789abcdef", bodySize/16)
	for _, lang := range langs {
		t.Run("300KiB body/"+lang, func(t *testing.T) {
			t.Parallel()
			r := ok(t, opts{stdin: strings.NewReader(body)},
				"run", "--env", "REQUEST_METHOD=POST", "--env", "PATH_INFO=/upload", hello(lang))
			if want := helloOutput(lang, "POST", "/upload", bodySize); r.stdout != want {
				t.Errorf("stdout = %q, want %q", r.stdout, want)
			}
		})
	}
	t.Run("binary echo", func(t *testing.T) {
		t.Parallel()
		in := make([]byte, 200<<10)
		for i := range in {
			in[i] = byte(i * 7)
		}
		r := ok(t, opts{stdin: bytes.NewReader(in)}, "run", misbehave, "echo")
		want := "Content-Type: application/octet-stream\n\n" + string(in)
		if r.stdout != want {
			t.Errorf("echo returned %d bytes, want the %d bytes sent back after the header", len(r.stdout), len(in))
		}
	})
	t.Run("5MB stdout", func(t *testing.T) {
		t.Parallel()
		const n = 5_000_000
		r := ok(t, opts{}, "run", misbehave, "big", "5000000")
		header := "Content-Type: text/plain\n\n"
		if len(r.stdout) != len(header)+n || !strings.HasPrefix(r.stdout, header) ||
			strings.Trim(r.stdout[len(header):], "x") != "" {
			t.Errorf("stdout has %d bytes, want a header and %d x's", len(r.stdout), n)
		}
	})
	t.Run("stderr", func(t *testing.T) {
		t.Parallel()
		const n = 100_000
		r := ok(t, opts{}, "run", misbehave, "stderr", "100000")
		if r.stderr != strings.Repeat("e", n) {
			t.Errorf("stderr has %d bytes, want %d e's", len(r.stderr), n)
		}
		if want := "Content-Type: text/plain\n\nwrote 100000 bytes to stderr\n"; r.stdout != want {
			t.Errorf("stdout = %q, want %q", r.stdout, want)
		}
	})
}

// TestRunInterrupt: SIGINT stops a running guest with exit status 130.
func TestRunInterrupt(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT on Windows")
	}
	var out testutil.LockedBuffer
	p := start(t, opts{stdout: &out}, "run", testdata("ready_loop.wasm"))
	for deadline := time.Now().Add(30 * time.Second); out.String() != "ready\n"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the guest did not print \"ready\" within 30s (stdout %q)", out.String())
		}
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	r := p.wait(t)
	if r.code != 130 || !strings.Contains(r.stderr, "interrupted") {
		t.Errorf("exit status %d, stderr %q; want 130 and \"interrupted\"", r.code, r.stderr)
	}
	oneLine(t, "stderr", r.stderr)
	if elapsed := time.Since(begin); elapsed > 10*time.Second {
		t.Errorf("wasmesh took %s to stop after SIGINT", elapsed)
	}
}

// TestInspect: `wasmesh inspect` tells a module from a component and shows
// what each imports and exports.
func TestInspect(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string
	}{
		{"module", repoPath("examples/hello/zig/hello.wasm"), []string{
			"kind:      module (WASI preview1)", "func   wasi_snapshot_preview1.fd_write", "func   _start"}},
		{"component", repoPath("internal/component/testdata/types.wasm"), []string{
			"kind:      component (WASI 0.2 component model)",
			"serves as: library (exports wasmesh:test/shapes@0.1.0)",
			"instances: reset after each request",
			"stopped:   by a check every 1000 loop iterations",
			"import instance wasmesh:test/shapes@0.1.0",
			"  [method]canvas.draw: func(self: borrow<canvas>, s: shape, c: colour, st: style) -> result<u64, string>",
			"export func run\n  run: func(args: list<string>) -> result<_, u32>"}},
		{"component whose instances cannot be reset", repoPath("internal/component/testdata/tableset.wasm"), []string{
			"instances: a new one for every request (core module 0: section 10 (code) at offset 33: table.set at offset 42: instances cannot be reset)"}},
		// The preview-1 command adapter's module loops and has a start
		// function, which runs before a stop global can be reached.
		{"component with a loop it cannot check", repoPath("internal/component/testdata/command-c.wasm"), []string{
			"serves as: wasi:cli command (exports wasi:cli/run@0.2.",
			"instances: one for the run (wasmesh run)",
			"stopped:   by the runtime at every loop iteration (core module 1: its code loops, and its start function runs at instantiation"}},
		// A module without a memory: the stop global's check alone.
		{"component with a loop in a module without memory", repoPath("internal/component/testdata/misbehave-loop.wasm"), []string{
			"serves as: wasi:http handler (exports wasi:http/incoming-handler@0.2.0)",
			"stopped:   by a check every 1000 loop iterations"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := wasmesh(t, opts{}, "inspect", tc.file)
			if r.code != 0 {
				t.Fatalf("exit status %d; stderr: %s", r.code, r.stderr)
			}
			for _, w := range tc.want {
				if w = strings.ReplaceAll(w, "\\n", "\n"); !strings.Contains(r.stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, r.stdout)
				}
			}
		})
	}
	notWasm := filepath.Join(t.TempDir(), "notwasm.txt")
	os.WriteFile(notWasm, []byte("hello"), 0o644)
	// A module that decodes, with a function that does not validate (an
	// i32 left on the stack of a function of type () -> ()).
	invalid := filepath.Join(t.TempDir(), "invalid.wasm")
	os.WriteFile(invalid, []byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x0a\x06\x01\x04\x00\x41\x00\x0b"), 0o644)
	for _, c := range [][2]string{{"nosuch.wasm", "nosuch.wasm: no such file"}, {notWasm, "not a WebAssembly binary"},
		{invalid, "invalid function[0] (code section, body at offset 21)"}} {
		if r := wasmesh(t, opts{}, "inspect", c[0]); r.code != 2 || !strings.Contains(r.stderr, c[1]) {
			t.Errorf("inspect %s: exit %d, stderr %q; want 2 and %q, as run", c[0], r.code, r.stderr, c[1])
		}
	}
	r := wasmesh(t, opts{}, "inspect", "-o", "json", repoPath("internal/component/testdata/types.wasm"))
	if r.code != 0 || !strings.Contains(r.stdout, `"kind": "component"`) || !strings.Contains(r.stdout, `"name": "wasmesh:test/shapes@0.1.0"`) {
		t.Errorf("inspect -o json: %d %s %s", r.code, r.stdout, r.stderr)
	}
}

package wasmbin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

func TestPrepare(t *testing.T) {
	for _, tc := range []struct {
		file        string
		globals     int    // mutable globals of the module
		pages       uint32 // initial memory
		imageAt     int    // an offset in the image, and what is there
		imageBytes  string
		notReusable string // the error, when the module is refused
	}{
		{file: "../../host/testdata/isolation.wasm", globals: 1, pages: 1, imageAt: 1024, imageBytes: "pristine-memory!"},
		{file: "../../examples/hello/rust/hello.wasm", globals: 1, pages: 2},
		{file: "../../examples/hello/typescript/hello.wasm", pages: 1, globals: -1},
		{file: "../../host/testdata/reuse_tableset.wasm", notReusable: "table.set at offset"},
		{file: "../../host/testdata/reuse_datadrop.wasm", notReusable: "data.drop at offset"},
		{file: "../../host/testdata/reuse_start.wasm", notReusable: "a start function"},
	} {
		t.Run(filepath.Base(filepath.Dir(tc.file))+"/"+filepath.Base(tc.file), func(t *testing.T) {
			wasm, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Prepare(wasm)
			if refused(t, err, tc.notReusable) {
				return
			}
			if p.MinPages != tc.pages || len(p.Image) != int(tc.pages)*PageSize {
				t.Errorf("pages %d, image %d bytes; want %d pages", p.MinPages, len(p.Image), tc.pages)
			}
			// Plus fuel and stop, the last two.
			if tc.globals >= 0 && len(p.Globals) != tc.globals+2 {
				t.Errorf("exported globals %v, want %d", p.Globals, tc.globals+2)
			}
			if n := len(p.Globals); n < 2 || p.Stop != p.Globals[n-1] {
				t.Errorf("stop global %q, want the last of %v", p.Stop, p.Globals)
			}
			// The rewritten code is valid WebAssembly.
			rt := wazero.NewRuntime(context.Background())
			defer rt.Close(context.Background())
			if _, err := rt.CompileModule(context.Background(), p.Module); err != nil {
				t.Fatalf("rewritten module does not compile: %v", err)
			}
			if tc.imageBytes != "" && !bytes.HasPrefix(p.Image[tc.imageAt:], []byte(tc.imageBytes)) {
				t.Errorf("image at %d: %q, want %q", tc.imageAt, p.Image[tc.imageAt:tc.imageAt+len(tc.imageBytes)], tc.imageBytes)
			}
			// The rewritten module still reads as the same module, with the
			// globals added to its exports and nothing else changed.
			before, err := Parse(wasm)
			if err != nil {
				t.Fatal(err)
			}
			after, err := Parse(p.Module)
			if err != nil {
				t.Fatalf("rewritten module: %v", err)
			}
			if len(after.Exports) != len(before.Exports)+len(p.Globals) || len(after.Imports) != len(before.Imports) {
				t.Errorf("exports %d -> %d, imports %d -> %d", len(before.Exports), len(after.Exports), len(before.Imports), len(after.Imports))
			}
			for i, name := range p.Globals {
				if got := after.Exports[len(before.Exports)+i]; got.Name != name || got.Kind != "global" {
					t.Errorf("export %d = %+v, want global %s", i, got, name)
				}
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// FuzzPrepare: whatever the bytes, Prepare returns a module or an error and
// never panics, never makes a module that Parse reads unreadable, and never
// makes one wazero refuses out of one it compiles (the yield checks and
// the added globals keep the module valid).
func FuzzPrepare(f *testing.F) {
	fuzzRewrite(f, "Prepare", func(b []byte) ([]byte, error) {
		p, err := Prepare(b)
		if err != nil {
			return nil, err
		}
		return p.Module, nil
	})
}

// FuzzResettable is FuzzPrepare for Resettable, the rewrite of a
// component's core modules (exported globals, yield checks).
func FuzzResettable(f *testing.F) {
	f.Add(mustRead(f, "testdata/resettable.wasm"))
	f.Add(mustRead(f, "testdata/resettable_loops.wasm"))
	f.Add(mustRead(f, "testdata/resettable_start.wasm"))
	fuzzRewrite(f, "Resettable", func(b []byte) ([]byte, error) {
		s, err := Resettable(b)
		if err != nil {
			return nil, err
		}
		return s.Module, nil
	})
}

// fuzzRewrite checks that rewrite, given the module corpus and what the
// fuzzer makes of it, never panics, never makes a module that Parse reads
// unreadable, and never makes one wazero refuses out of one it compiles.
func fuzzRewrite(f *testing.F, name string, rewrite func([]byte) ([]byte, error)) {
	for _, file := range []string{"../../host/testdata/isolation.wasm", "../../host/testdata/reuse_tableset.wasm",
		"../../host/testdata/loop.wasm", "testdata/yield.wasm", "testdata/tailcall.wasm",
		"testdata/exit_direct.wasm", "testdata/exit_table.wasm", "testdata/exit_reffunc.wasm"} {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, b []byte) {
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter()) // validates without compiling
		defer rt.Close(ctx)
		out, err := rewrite(b)
		if err != nil {
			return
		}
		if _, err := Parse(b); err != nil {
			return
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("%s returned a module Parse refuses: %v", name, err)
		}
		if CheckLimits(b) != nil {
			return // not given to wazero (host.Engine checks first)
		}
		if err := compiles(ctx, rt, b); err != nil {
			return // invalid, or wazero fails on it (host.compileModule turns that into an error)
		}
		if err := compiles(ctx, rt, out); err != nil {
			t.Fatalf("%s made an invalid module of a valid one: %v", name, err)
		}
	})
}

// compiles says why rt does not compile b, a panic included.
func compiles(ctx context.Context, rt wazero.Runtime, b []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("wazero panicked: %v", r)
		}
	}()
	m, err := rt.CompileModule(ctx, b)
	if err == nil {
		_ = m.Close(ctx)
	}
	return err
}

// refused checks err against the refusal a case expects (none when want
// is ""), and reports whether there was one.
func refused(t *testing.T, err error, want string) bool {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return false
	}
	if !errors.Is(err, ErrNotReusable) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want ErrNotReusable with %q", err, want)
	}
	return true
}

func TestResettable(t *testing.T) {
	for _, tc := range []struct {
		file        string
		globals     []string
		stop        string // the stop global; "" for no yield check
		unstoppable string // why there is none, if the code loops
		loop        string // an export that loops YieldEvery times or more: stopped by Stop
		notReusable string
	}{
		// No loop: nothing to stop, and the code is the original's.
		{file: "testdata/resettable.wasm", globals: []string{GlobalExport(1), GlobalExport(2)}},
		{file: "testdata/yield.wasm", globals: []string{GlobalExport(0), GlobalExport(1), GlobalExport(2)},
			stop: GlobalExport(2), loop: "run"},
		{file: "../../examples/hello/rust/hello.wasm", globals: []string{GlobalExport(0), GlobalExport(3), GlobalExport(4)},
			stop: GlobalExport(4)},
		// No memory: the check is the stop global's alone.
		{file: "testdata/resettable_loops.wasm", globals: []string{GlobalExport(0), GlobalExport(1), GlobalExport(2)},
			stop: GlobalExport(2), loop: "spin"},
		{file: "testdata/resettable_start.wasm", globals: []string{GlobalExport(0)}, unstoppable: "start function"},
		{file: "testdata/resettable_shared.wasm", notReusable: "shared memory"},
		{file: "../../host/testdata/reuse_tableset.wasm", notReusable: "table.set at offset"},
		{file: "../../host/testdata/reuse_datadrop.wasm", notReusable: "data.drop at offset"},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			wasm, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Resettable(wasm)
			if refused(t, err, tc.notReusable) {
				return
			}
			if fmt.Sprint(s.Globals) != fmt.Sprint(tc.globals) {
				t.Errorf("exported globals %v, want %v", s.Globals, tc.globals)
			}
			if s.Stop != tc.stop {
				t.Errorf("Stop = %q, want %q", s.Stop, tc.stop)
			}
			if !strings.Contains(s.Unstoppable, tc.unstoppable) || (tc.unstoppable == "") != (s.Unstoppable == "") {
				t.Errorf("Unstoppable = %q, want it to say %q", s.Unstoppable, tc.unstoppable)
			}
			ctx := context.Background()
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			if _, err := rt.CompileModule(ctx, s.Module); err != nil {
				t.Fatalf("the rewritten module does not compile: %v", err)
			}
			info, err := Parse(s.Module)
			if err != nil {
				t.Fatal(err)
			}
			var exported []string
			for _, e := range info.Exports {
				exported = append(exported, e.Name)
			}
			for _, g := range tc.globals {
				if !slices.Contains(exported, g) {
					t.Errorf("%s is not exported (exports %v)", g, exported)
				}
			}
			if s.Stop == "" && len(wasm) > 1000 && !bytes.Contains(s.Module, wasm[len(wasm)/2:]) {
				t.Errorf("the second half of a module without yield checks was rewritten")
			}
			// Unchecked: the same globals but fuel and stop, and no check.
			u, err := ResettableUnchecked(wasm)
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.globals[:len(tc.globals)-2*boolInt(tc.stop != "")]; u.Stop != "" || fmt.Sprint(u.Globals) != fmt.Sprint(want) {
				t.Errorf("ResettableUnchecked: stop %q, globals %v; want none and %v", u.Stop, u.Globals, want)
			}
			if tc.loop == "" {
				return
			}
			// Told to stop, the guest traps at its next check.
			m, err := rt.Instantiate(ctx, s.Module)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.ExportedFunction(tc.loop).Call(ctx, 3*YieldEvery); err != nil {
				t.Fatalf("%s before stop: %v", tc.loop, err)
			}
			m.ExportedGlobal(s.Stop).(api.MutableGlobal).Set(1)
			if _, err := m.ExportedFunction(tc.loop).Call(ctx, 3*YieldEvery); err == nil || !strings.Contains(err.Error(), "unreachable") {
				t.Errorf("%s after stop: err = %v, want the check's trap", tc.loop, err)
			}
		})
	}
}

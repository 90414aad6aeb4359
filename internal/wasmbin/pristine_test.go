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

// FuzzPrepare: whatever the bytes, Prepare returns a module or an error and
// never panics, never makes a module that Parse reads unreadable, and never
// makes one wazero refuses out of one it compiles (the yield checks and
// the added globals keep the module valid).
func FuzzPrepare(f *testing.F) {
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
		p, err := Prepare(b)
		if err != nil {
			return
		}
		if _, err := Parse(b); err != nil {
			return
		}
		if _, err := Parse(p.Module); err != nil {
			t.Fatalf("Prepare returned a module Parse refuses: %v", err)
		}
		if CheckLimits(b) != nil {
			return // not given to wazero (host.Engine checks first)
		}
		if err := compiles(ctx, rt, b); err != nil {
			return // invalid, or wazero fails on it (host.compileModule turns that into an error)
		}
		if err := compiles(ctx, rt, p.Module); err != nil {
			t.Fatalf("Prepare made an invalid module of a valid one: %v", err)
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
		notReusable string
	}{
		{file: "testdata/resettable.wasm", globals: []string{GlobalExport(1), GlobalExport(2)}},
		{file: "../../examples/hello/rust/hello.wasm", globals: []string{GlobalExport(0)}},
		{file: "testdata/resettable_shared.wasm", notReusable: "shared memory"},
		{file: "../../host/testdata/reuse_tableset.wasm", notReusable: "table.set at offset"},
		{file: "../../host/testdata/reuse_datadrop.wasm", notReusable: "data.drop at offset"},
	} {
		t.Run(filepath.Base(tc.file), func(t *testing.T) {
			wasm, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			mod, globals, err := Resettable(wasm)
			if refused(t, err, tc.notReusable) {
				return
			}
			if fmt.Sprint(globals) != fmt.Sprint(tc.globals) {
				t.Errorf("exported globals %v, want %v", globals, tc.globals)
			}
			// Once accepted, the same bytes rewritten without reading the
			// code again come out the same.
			if again, g, err := ResettableChecked(wasm); err != nil || !bytes.Equal(again, mod) || fmt.Sprint(g) != fmt.Sprint(globals) {
				t.Errorf("ResettableChecked differs from Resettable (%v)", err)
			}
			ctx := context.Background()
			rt := wazero.NewRuntime(ctx)
			defer rt.Close(ctx)
			if _, err := rt.CompileModule(ctx, mod); err != nil {
				t.Fatalf("the rewritten module does not compile: %v", err)
			}
			info, err := Parse(mod)
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
			// Nothing else changed: the code and data are the original's.
			if !bytes.Contains(mod, wasm[len(wasm)/2:]) && len(wasm) > 1000 {
				t.Errorf("the second half of the module was rewritten")
			}
		})
	}
}

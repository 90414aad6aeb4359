package wasmbin

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// TestExitRewrite: Prepare rewrites the exits in _start's own body to
// returns, and only when nothing but the export can reach _start. Each
// module runs as prepared, in wazero with its WASI, with 0, 2 and 12
// environment variables: a rewritten exit returns with the code in the
// Exit global (-1 when _start returned on its own), one left as it was
// exits, and either way the code is the one the original exits with.
func TestExitRewrite(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	for _, tc := range []struct {
		file      string
		rewritten bool
	}{
		{"exit_direct.wasm", true},
		{"exit_called.wasm", false},
		{"exit_table.wasm", false},
		{"exit_reffunc.wasm", false},
		{"exit_helper.wasm", false},
		{"../../host/testdata/exit7.wasm", true},
		{"../../examples/hello/zig/hello.wasm", true},
		{"../../examples/hello/c/hello.wasm", false}, // returns from _start: nothing to rewrite
	} {
		t.Run(tc.file, func(t *testing.T) {
			path := tc.file
			if path[0] != '.' {
				path = "testdata/" + path
			}
			orig := mustRead(t, path)
			p, err := Prepare(orig)
			if err != nil {
				t.Fatal(err)
			}
			if (p.Exit != "") != tc.rewritten {
				t.Fatalf("Exit = %q, want a rewrite: %v", p.Exit, tc.rewritten)
			}
			// run runs the original, or the prepared module with its image.
			run := func(prepared bool, env int) (code int64, returned bool) {
				t.Helper()
				b := orig
				if prepared {
					b = p.Module
				}
				cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions()
				for i := range env {
					cfg = cfg.WithEnv("V"+strconv.Itoa(i), "x")
				}
				m, err := rt.InstantiateWithConfig(ctx, b, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close(ctx)
				if prepared && !m.Memory().Write(0, p.Image) {
					t.Fatal("the image does not fit the memory")
				}
				_, err = m.ExportedFunction("_start").Call(ctx)
				var exit *sys.ExitError
				switch {
				case err == nil && prepared && p.Exit != "":
					return int64(m.ExportedGlobal(p.Exit).Get()), true
				case err == nil:
					return -1, true
				case errors.As(err, &exit):
					return int64(exit.ExitCode()), false
				}
				t.Fatalf("_start: %v", err)
				return 0, false
			}
			for _, env := range []int{0, 2, 12} {
				want, _ := run(false, env)
				got, returned := run(true, env)
				if got != want {
					t.Errorf("%d variables: the prepared module ended with code %d, the original with %d (-1: returned)", env, got, want)
				}
				if tc.rewritten && !returned {
					t.Errorf("%d variables: the rewritten exit still unwinds", env)
				}
			}
		})
	}
}

package wasmbin

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// yieldRun is what testdata/yield.wat's run(n) computes.
func yieldRun(n int32) int32 {
	var acc int32
	for i := int32(0); i < n; i++ {
		for j := int32(0); j < i%7; j++ {
			acc += (i * j) % 1000
		}
	}
	return acc + n*(n+1) // two sums of 1..n
}

func TestYieldCheck(t *testing.T) {
	ctx := context.Background()
	orig, err := os.ReadFile("testdata/yield.wasm")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(orig)
	if err != nil {
		t.Fatal(err)
	}
	// yield.wat has one global of its own: fuel is global 1, stop global 2.
	if got := bytes.Count(p.Module, yieldCheck(1, 2)); got != 5 {
		t.Errorf("%d yield checks, want one per loop (4) and one at run's entry (it makes two calls)", got)
	}
	if p.Stop != GlobalExport(2) {
		t.Errorf("Stop = %q, want %q", p.Stop, GlobalExport(2))
	}

	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	instantiate := func(name string, b []byte) api.Module {
		m, err := rt.InstantiateWithConfig(ctx, b, wazero.NewModuleConfig().WithName(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m
	}
	before, after := instantiate("original", orig), instantiate("prepared", p.Module)
	// The same results, across many yields (YieldEvery iterations each).
	for _, n := range []int32{1, 2, 10, 999, 1000, 1001, 5000} {
		want := yieldRun(n)
		for _, m := range []api.Module{before, after} {
			res, err := m.ExportedFunction("run").Call(ctx, uint64(n))
			if err != nil {
				t.Fatalf("%s: run(%d): %v", m.Name(), n, err)
			}
			if got := int32(res[0]); got != want {
				t.Errorf("%s: run(%d) = %d, want %d", m.Name(), n, got, want)
			}
		}
	}

	// With stop set, a run of fewer iterations than the fuel left finishes;
	// a longer one traps at the next yield.
	stopped := instantiate("stopped", p.Module)
	stopped.ExportedGlobal(p.Stop).(api.MutableGlobal).Set(1)
	if _, err := stopped.ExportedFunction("run").Call(ctx, 1); err != nil {
		t.Errorf("run(1) with stop set and fuel left: %v", err)
	}
	if _, err := stopped.ExportedFunction("run").Call(ctx, 5000); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("run(5000) with stop set: err = %v, want the unreachable trap", err)
	}
}

// TestYieldCheckTailCalls: a function that makes tail calls gets the check
// at its entry, since it can loop without a loop instruction.
func TestYieldCheckTailCalls(t *testing.T) {
	b, err := os.ReadFile("testdata/tailcall.wasm")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Prepare(b)
	if err != nil {
		t.Fatal(err)
	}
	check := yieldCheck(0, 1) // no globals of its own
	if got := bytes.Count(p.Module, check); got != 1 {
		t.Fatalf("%d yield checks, want 1", got)
	}
	// Right after the (empty) locals of the only function body.
	if i := bytes.Index(p.Module, check); i < 1 || p.Module[i-1] != 0 {
		t.Errorf("yield check at %d, not at the function's entry", i)
	}
}

func TestAppendS32(t *testing.T) {
	for _, tc := range []struct {
		v    int32
		want string
	}{{0, "00"}, {1, "01"}, {63, "3f"}, {64, "c000"}, {-1, "7f"}, {-64, "40"}, {-65, "bf7f"}, {1000, "e807"}, {-1 << 31, "8080808078"}} {
		if got := fmt.Sprintf("%x", appendS32(nil, tc.v)); got != tc.want {
			t.Errorf("appendS32(%d) = %s, want %s", tc.v, got, tc.want)
		}
	}
}

// TestInstrument: a module Prepare refuses (imported global, table write)
// gets the yield check alone, its stop global after
// the imported one, and computes what the original does; with stop set, a
// long loop traps.
func TestInstrument(t *testing.T) {
	ctx := context.Background()
	orig, err := os.ReadFile("testdata/instrument.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(orig); err == nil {
		t.Fatal("Prepare took instrument.wasm; the test needs a module it refuses")
	}
	mod, stop, start, err := Instrument(orig)
	if err != nil || start != "" {
		t.Fatalf("Instrument: start %q, %v", start, err)
	}
	// One imported and one defined global: fuel is 2, stop 3.
	if stop != GlobalExport(3) {
		t.Errorf("stop = %q, want %q", stop, GlobalExport(3))
	}
	if got := bytes.Count(mod, yieldCheck(2, 3)); got != 1 {
		t.Errorf("%d yield checks, want 1 (one loop)", got)
	}
	env, err := os.ReadFile("testdata/env.wasm")
	if err != nil {
		t.Fatal(err)
	}
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	if _, err := rt.InstantiateWithConfig(ctx, env, wazero.NewModuleConfig().WithName("env")); err != nil {
		t.Fatal(err)
	}
	instantiate := func(name string, b []byte) api.Module {
		m, err := rt.InstantiateWithConfig(ctx, b, wazero.NewModuleConfig().WithName(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return m
	}
	for _, m := range []api.Module{instantiate("original", orig), instantiate("instrumented", mod)} {
		if _, err := m.ExportedFunction("init").Call(ctx); err != nil {
			t.Fatal(err)
		}
		res, err := m.ExportedFunction("sum").Call(ctx, 5000)
		if err != nil {
			t.Fatalf("%s: %v", m.Name(), err)
		}
		if want := uint64(5000*5001/2 + 7); res[0] != want {
			t.Errorf("%s: sum(5000) = %d, want %d", m.Name(), res[0], want)
		}
	}
	stopped := instantiate("stopped", mod)
	stopped.ExportedGlobal(stop).(api.MutableGlobal).Set(1)
	// DWARF is dropped (its line tables would point at shifted code), the
	// module instrumented all the same.
	withDWARF := append(append([]byte(nil), orig...), 0, 12, 11)
	withDWARF = append(withDWARF, ".debug_line"...)
	if out, _, _, err := Instrument(withDWARF); err != nil || !bytes.Equal(out, mod) {
		t.Errorf("Instrument of a module with DWARF: %v; equal to the module without: %v", err, bytes.Equal(out, mod))
	}
	// A start function runs before the stop can be set: it is exported
	// instead, for the host to call once it can stop it; instantiating
	// the module runs it no more.
	started, _, startName, err := Instrument(mustRead(t, "../../host/testdata/reuse_start.wasm"))
	if err != nil || startName != StartExport {
		t.Fatalf("Instrument of a module with a start function: %q, %v", startName, err)
	}
	sm := instantiate("started", started)
	if v, _ := sm.Memory().ReadUint32Le(0); v != 0 {
		t.Errorf("the start function ran at instantiation (memory[0] = %d)", v)
	}
	if _, err := sm.ExportedFunction(StartExport).Call(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := sm.Memory().ReadUint32Le(0); v != 1 {
		t.Errorf("the exported start function did not run as the start function did (memory[0] = %d)", v)
	}
	if _, err := stopped.ExportedFunction("sum").Call(ctx, 5000); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("sum(5000) with stop set: %v, want the unreachable trap", err)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestForeignGlobals: a module that sets globals it does not have is
// invalid, but would be valid once the fuel and stop globals are added,
// and could then keep itself from ever stopping: refused by both.
func TestForeignGlobals(t *testing.T) {
	b := mustRead(t, "testdata/evil.wasm")
	const want = "section 10 (code) at offset 43: global 2 at offset 52: the module has 1 globals"
	if _, err := Prepare(b); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Prepare: %v, want %q", err, want)
	}
	if _, _, _, err := Instrument(b); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Instrument: %v, want %q", err, want)
	}
}

// FuzzInstrument: whatever the bytes, Instrument never panics and never
// makes a module wazero refuses out of one it compiles.
func FuzzInstrument(f *testing.F) {
	for _, file := range []string{"testdata/instrument.wasm", "testdata/yield.wasm", "testdata/evil.wasm",
		"../../host/testdata/reuse_tableset.wasm", "../../host/testdata/loop.wasm"} {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, b []byte) {
		mod, stop, _, err := Instrument(b)
		if err != nil {
			return
		}
		if stop == "" {
			t.Fatal("no stop global")
		}
		if CheckLimits(b) != nil {
			return // not given to wazero (host.Engine checks first)
		}
		rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
		defer rt.Close(ctx)
		if compiles(ctx, rt, b) != nil {
			return
		}
		if err := compiles(ctx, rt, mod); err != nil {
			t.Fatalf("Instrument made an invalid module of a valid one: %v", err)
		}
	})
}

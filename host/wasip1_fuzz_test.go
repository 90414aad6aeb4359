package host

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/wasmesh/wasmesh/internal/wasip1"
)

// wasip1Guest is testdata/wasip1calls.wasm compiled once in a runtime with
// the engine's WASI preview 1, for FuzzWASIP1.
var wasip1Guest = sync.OnceValues(func() (wazero.CompiledModule, error) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	if err := instantiateWASI(ctx, rt); err != nil {
		return nil, err
	}
	b, err := os.ReadFile("testdata/wasip1calls.wasm")
	if err != nil {
		return nil, err
	}
	wasip1Runtime = rt
	return rt.CompileModule(ctx, b)
})

var wasip1Runtime wazero.Runtime

// wasip1Names are paths a call's pointer can point at: byte 200+k of an
// operand is the address of name k (fuzzSlot bytes each, NUL padded).
var wasip1Names = []string{"a", "b", "a/b", "..", "../outside", "../outside/secret", "a/../..", ".",
	"a/../b", "/x", "b/c", "sub", "sub/", "file", "link", "../inside/a", "a/", "sub/../..", "c"}

const fuzzSlot = 32

// fuzzI32 is the i32 operand byte b stands for: itself below 200, a name's
// address from 200, extremes from 250.
func fuzzI32(b byte) uint64 {
	switch {
	case b < 200:
		return uint64(b)
	case b < 250:
		return uint64(1024 + int(b-200)%len(wasip1Names)*fuzzSlot)
	}
	return uint64([]uint32{0xffffffff, 0x80000000, 0x7fffffff, 65535, 65536, 65528}[b-250])
}

func fuzzI64(b byte) uint64 {
	if b < 250 {
		return uint64(b) * 1000
	}
	return []uint64{1<<64 - 1, 1 << 63, 1<<63 - 1, 0, 1 << 32, 1<<64 - 2}[b-250]
}

// FuzzWASIP1 has a guest call the WASI descriptor functions (internal/
// wasip1, through wazero and the mount of host/fs.go) in any order with
// any operands, and checks that no call panics the host and nothing
// outside the preopened directory is read, made or changed: BASE/outside
// holds a secret that must never reach the guest's memory. The input's
// first byte k says how many bytes after it are the start of the guest's
// memory (iovecs, subscriptions); the calls follow, 11 bytes each: the
// function (wasip1calls.wat), eight i32 and two i64 operands (fuzzI32,
// fuzzI64).
func FuzzWASIP1(f *testing.F) {
	name := func(k int) byte { return byte(200 + k) }
	// path_open(3, follow, "file", 4, CREAT, rights, rights, 0, result at 100)
	open := []byte{0, 3, 1, name(13), 4, 1, 0, 0, 100, 250, 250}
	f.Add(append([]byte{0}, open...))
	// path_symlink("../outside/secret", 3, "link"), then open "link" (follow) and read it.
	symlinkOut := []byte{1, name(5), 17, 3, name(14), 4, 0, 0, 0, 0, 0}
	openLink := []byte{0, 3, 1, name(14), 4, 0, 0, 0, 100, 250, 250}
	iovec := make([]byte, 11) // fd_read(4, iovs at 0, 1, result at 104): memory 0..8 is the iovec {16, 64}
	copy(iovec, []byte{11, 4, 0, 1, 104})
	seed := append(append(append([]byte{}, symlinkOut...), openLink...), iovec...)
	f.Add(append([]byte{8, 16, 0, 0, 0, 64, 0, 0, 0}, seed...))
	// path_create_directory("sub"), path_open(3, 0, "sub", DIRECTORY) -> 4, fd_renumber(4, 3), path_open(3, "..")
	f.Add([]byte{0, 5, 3, name(11), 3, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, name(11), 3, 2, 0, 0, 100, 250, 250,
		13, 4, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 1, name(3), 2, 0, 0, 0, 100, 250, 250})
	// path_rename("file", "../outside/x"), path_link("a/../..", "b")
	f.Add([]byte{0, 3, 3, name(13), 4, 3, name(4), 10, 0, 0, 0, 0, 2, 3, 1, name(6), 7, 3, name(1), 1, 0, 0, 0})

	f.Fuzz(func(t *testing.T, data []byte) {
		compiled, err := wasip1Guest()
		if err != nil {
			t.Fatal(err)
		}
		mount, check := secretBeside(t)
		defer mount.close()
		table := wasip1.NewTable(bytes.NewReader([]byte("stdin")), &bytes.Buffer{}, &bytes.Buffer{}, 16)
		defer table.Close()
		if err := table.Preopen(mount, "/"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond) // poll_oneoff's clocks
		defer cancel()
		ctx = withRun(ctx, nil, nil, table)
		mod, err := wasip1Runtime.InstantiateModule(ctx, compiled, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatal(err)
		}
		defer mod.Close(ctx)
		mem := mod.Memory()
		if len(data) == 0 {
			return
		}
		k := min(int(data[0]), len(data)-1)
		mem.Write(0, data[1:1+k])
		data = data[1+k:]
		for k, n := range wasip1Names {
			mem.Write(uint32(1024+k*fuzzSlot), []byte(n))
		}
		call := mod.ExportedFunction("call")
		for i := 0; i+11 <= len(data) && i < 11*40; i += 11 {
			op := data[i : i+11]
			args := []uint64{uint64(op[0] % 29)}
			for _, b := range op[1:9] {
				args = append(args, fuzzI32(b))
			}
			args = append(args, fuzzI64(op[9]), fuzzI64(op[10]))
			if _, err := call.Call(ctx, args...); err != nil {
				t.Fatalf("call %d %v: %v", i/11, args, err)
			}
			if b, _ := mem.Read(0, mem.Size()); bytes.Contains(b, []byte("TOPSECRET")) {
				t.Fatalf("call %d %v read the secret outside the preopen", i/11, args)
			}
		}
		check()
	})
}

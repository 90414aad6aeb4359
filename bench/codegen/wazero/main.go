// Command wazero runs a WASI command module with wazero alone (its
// compiler, its WASI, a compilation cache in CACHE_DIR), for
// bench/codegen.sh: the reference for what wasmesh run adds.
//
//	go run ./bench/codegen/wazero MODULE.wasm
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: wazero MODULE.wasm")
		os.Exit(2)
	}
	ctx := context.Background()
	config := wazero.NewRuntimeConfig()
	if dir := os.Getenv("CACHE_DIR"); dir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		config = config.WithCompilationCache(cache)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, config)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	wasm, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	start := time.Now()
	m, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	compiled := time.Now()
	_, err = rt.InstantiateModule(ctx, m, wazero.NewModuleConfig().WithStdout(os.Stdout).WithStderr(os.Stderr))
	if exit, ok := err.(*sys.ExitError); ok && exit.ExitCode() == 0 {
		err = nil
	}
	fmt.Fprintf(os.Stderr, "compile %s, run %s\n", compiled.Sub(start).Round(time.Millisecond), time.Since(compiled).Round(time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func versionCmd(_ context.Context, args []string, stdout io.Writer) error {
	if _, err := parse(newFlags("version", ""), args); err != nil { // -h
		return err
	}
	if len(args) > 0 {
		return usageError("no arguments wanted, got %q", args)
	}
	v, wazero := version, "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, dep := range info.Deps {
			if dep.Path == "github.com/tetratelabs/wazero" {
				wazero = dep.Version
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	fmt.Fprintf(stdout, "wasmesh %s (wazero %s)\n", v, wazero)
	return nil
}

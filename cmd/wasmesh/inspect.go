package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/internal/wasmbin"
	"github.com/wasmesh/wasmesh/modules"
)

// inspectCmd says what a .wasm file is: a core module (its imports,
// exports, memories) or a component (its world: the interfaces it imports
// and exports, with their functions).
func inspectCmd(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("inspect", "FILE.wasm [-o json]")
	output := outputFlag(fs, "text", "json")
	files, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return usageError("want one file: wasmesh inspect FILE.wasm")
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		return exitWith(1, err)
	}
	if component.IsComponent(b) {
		c, err := component.Decode(b)
		if err != nil {
			return exitWith(1, fmt.Errorf("%s: %w", files[0], err))
		}
		w := c.World()
		if *output == "json" {
			return writeJSON(stdout, struct {
				Kind   string `json:"kind"`
				Digest string `json:"digest"`
				Size   int    `json:"size"`
				*component.World
			}{"component", modules.DigestOf(b), len(b), w})
		}
		fmt.Fprintf(stdout, "kind:      component (WASI 0.2 component model)\ndigest:    %s\nsize:      %d bytes\n", modules.DigestOf(b), len(b))
		fmt.Fprintf(stdout, "contains:  %d core modules, %d core instances, %d nested components\n",
			len(c.Modules), len(c.CoreInstances), len(c.Components))
		_, err = w.WriteTo(stdout)
		return err
	}
	m, err := wasmbin.Parse(b)
	if err != nil {
		return exitWith(1, fmt.Errorf("%s: %w", files[0], err))
	}
	if *output == "json" {
		return writeJSON(stdout, struct {
			Kind   string `json:"kind"`
			Digest string `json:"digest"`
			Size   int    `json:"size"`
			*wasmbin.Info
		}{"module", modules.DigestOf(b), len(b), m})
	}
	fmt.Fprintf(stdout, "kind:      module (WASI %s)\ndigest:    %s\nsize:      %d bytes\nlanguage:  %s\n",
		dash(m.WASI()), modules.DigestOf(b), len(b), dash(m.Language()))
	printModule(stdout, m)
	return nil
}

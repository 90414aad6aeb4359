package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/internal/wasmbin"
	"github.com/wasmesh/wasmesh/modules"
)

// inspected is what inspect says of any file, first.
type inspected struct {
	Kind   string `json:"kind"` // "module" or "component"
	Digest string `json:"digest"`
	Size   int    `json:"size"`
	// Instances says how a gateway serves a component's requests: by
	// instances reset after each, or by a new one each and why.
	Instances string `json:"instances,omitempty"`
	// Stops says how a component's guest is stopped at its deadline.
	Stops string `json:"stops,omitempty"`
	// Role says what a component is for (component.World.Role).
	Role string `json:"serves_as,omitempty"`
}

// componentInstances sets head.Instances and head.Stops for c: whether its
// core modules keep their state where a reset reaches, and whether each
// that loops can be given the yield check (wasmbin.Resettable).
func componentInstances(head *inspected, c *component.Component) {
	head.Instances, head.Stops = "reset after each request", fmt.Sprintf("by a check every %d loop iterations", wasmbin.YieldEvery)
	for i, m := range c.Modules {
		s, err := wasmbin.Resettable(m.Bytes)
		if err != nil {
			head.Instances = fmt.Sprintf("a new one for every request (core module %d: %v)", i, err)
			head.Stops = "by the runtime at every loop iteration"
			return
		}
		if s.Unstoppable != "" {
			head.Stops = fmt.Sprintf("by the runtime at every loop iteration (core module %d: %s)", i, s.Unstoppable)
		}
	}
}

// inspectCmd says what a .wasm file is: a core module (its imports,
// exports, memories) or a component (its world: the interfaces it imports
// and exports, with their functions).
func inspectCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("inspect", "FILE.wasm [-o json]")
	output := outputFlag(fs, "text", "json")
	files, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return usageError("want one file: wasmesh inspect FILE.wasm")
	}
	b, err := modules.ReadFile(files[0])
	if err != nil {
		return exitWith(2, unwrapOpen(files[0], err))
	}
	head := inspected{Kind: "module", Digest: modules.DigestOf(b), Size: len(b)}
	// Invalid as a gateway's compile would find it (a function that does
	// not validate), not only as decoding the sections does.
	if err := host.Validate(ctx, b); err != nil {
		return exitWith(2, fmt.Errorf("%s: %w", files[0], err))
	}
	if component.IsComponent(b) {
		head.Kind = "component"
		c, err := component.Decode(b)
		if err != nil {
			return exitWith(2, fmt.Errorf("%s: %w", files[0], err))
		}
		w := c.World()
		head.Role = w.Role()
		componentInstances(&head, c)
		if strings.HasPrefix(head.Role, "wasi:cli command") {
			head.Instances = "one for the run (wasmesh run)"
		}
		if *output == "json" {
			return writeJSON(stdout, struct {
				inspected
				*component.World
			}{head, w})
		}
		fmt.Fprintf(stdout, "kind:      component (WASI 0.2 component model)\nserves as: %s\ndigest:    %s\nsize:      %d bytes\n", w.Role(), head.Digest, head.Size)
		fmt.Fprintf(stdout, "contains:  %d core modules, %d core instances, %d nested components\ninstances: %s\n",
			len(c.Modules), len(c.CoreInstances), len(c.Components), head.Instances)
		if head.Stops != "" {
			fmt.Fprintf(stdout, "stopped:   %s\n", head.Stops)
		}
		_, err = w.WriteTo(stdout)
		return err
	}
	m, err := wasmbin.Parse(b)
	if err != nil {
		return exitWith(2, fmt.Errorf("%s: %w", files[0], err))
	}
	if *output == "json" {
		return writeJSON(stdout, struct {
			inspected
			*wasmbin.Info
		}{head, m})
	}
	fmt.Fprintf(stdout, "kind:      module (WASI %s)\ndigest:    %s\nsize:      %d bytes\nlanguage:  %s\n",
		dash(m.WASI()), head.Digest, head.Size, dash(m.Language()))
	printModule(stdout, m)
	return nil
}

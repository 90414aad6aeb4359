package component

import (
	"errors"
	"fmt"
	"strings"
)

// ErrComponent is wrapped by Unsupported's errors: the bytes are a
// component where a core module is wanted.
var ErrComponent = errors.New("a WebAssembly component (the component model, WASI 0.2), not a core module")

// Unsupported is the error for a component given where only core modules
// run yet: it says so, with what the component imports and exports, or
// why it does not decode.
func Unsupported(b []byte) error {
	c, err := Decode(b)
	if err != nil {
		return fmt.Errorf("%w, and a malformed one: %w", ErrComponent, err)
	}
	w := c.World()
	return fmt.Errorf("%w: it imports %s and exports %s; wasmesh runs WASI preview 1 core modules, components are not supported yet (see `wasmesh inspect`)",
		ErrComponent, names(w.Imports), names(w.Exports))
}

func names(items []Item) string {
	if len(items) == 0 {
		return "nothing"
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, it.Name)
	}
	const most = 6
	if len(out) > most {
		return strings.Join(out[:most], ", ") + fmt.Sprintf(" and %d more", len(out)-most)
	}
	return strings.Join(out, ", ")
}

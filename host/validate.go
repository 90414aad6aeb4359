package host

import (
	"context"
	"fmt"
	"regexp"
	"strconv"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/internal/wasmbin"
)

// Validate checks wasm, a core module or a component, as an engine's
// compile does, without compiling it to machine code (wazero's
// interpreter lowers it instead, a fraction of the time): its limits, its
// decoding, every function's validation, with the features an engine
// enables; for a component, each of its core modules (the error says
// which, and where it starts in the file). An invalid function is named
// with the offset of its body in its module (compileModule).
func Validate(ctx context.Context, wasm []byte) error {
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().
		WithCoreFeatures(api.CoreFeaturesV2|experimental.CoreFeaturesExtendedConst))
	defer rt.Close(ctx)
	validate := func(b []byte) error {
		if err := wasmbin.CheckLimits(b); err != nil {
			return err
		}
		m, err := compileModule(ctx, rt, b)
		if err != nil {
			return err
		}
		return m.Close(ctx)
	}
	if !component.IsComponent(wasm) {
		return validate(wasm)
	}
	c, err := component.Decode(wasm)
	if err != nil {
		return err
	}
	for i, m := range c.Modules {
		if err := validate(m.Bytes); err != nil {
			return fmt.Errorf("core module %d (at offset %d): %w", i, m.Offset, err)
		}
	}
	return nil
}

// invalidFunction is how wazero names the function it found invalid: its
// index among the module's own (the code section's), and the names it is
// exported as.
var invalidFunction = regexp.MustCompile(`^invalid function\[(\d+)\]( export\[(?:"(?:[^"\\]|\\.)*",?)+\])?`)

// withBodyOffset is err, wazero's refusal of the module b, with the
// offset in b of the body of the function it names, if it names one.
func withBodyOffset(err error, b []byte) error {
	msg := err.Error()
	sub := invalidFunction.FindStringSubmatch(msg)
	if sub == nil {
		return err
	}
	i, _ := strconv.Atoi(sub[1])
	at, ok := wasmbin.FunctionBodyOffset(b, i)
	if !ok {
		return err
	}
	return fmt.Errorf("%s (code section, body at offset %d)%s", sub[0], at, msg[len(sub[0]):])
}

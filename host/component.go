package host

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/wasmesh/wasmesh/internal/cabi"
	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/internal/wasip2"
)

// ErrNotCommand is wrapped by RunComponent's errors for a component that
// cannot run as a command: it exports no wasi:cli/run, or imports what the
// host does not provide.
var ErrNotCommand = errors.New("not a command")

// RunComponent runs a wasi:cli/command component once: its wasi:cli/run
// export, with c's arguments, environment and standard streams, within c's
// Timeout. The result's ExitCode is 0 when run returns ok, 1 when it
// returns an error, or the code the guest gave wasi:cli/exit. c's memory
// limit, output caps and mounts do not apply to components yet; WASI
// interfaces other than cli, io, clocks and random answer access denied.
func (e *Engine) RunComponent(ctx context.Context, wasm []byte, c Call) (Result, error) {
	comp, err := component.Decode(wasm)
	if err != nil {
		return Result{}, err
	}
	run := ""
	for _, ex := range comp.Exports {
		if component.Interface(ex.Name) == "wasi:cli/run@0.2" {
			run = ex.Name
		}
	}
	if run == "" {
		return Result{}, fmt.Errorf("the component exports no wasi:cli/run@0.2: %w (it exports %s)", ErrNotCommand, exportNames(comp))
	}
	l, err := component.Link(ctx, e.rt, comp, wasip2.Host())
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrNotCommand, err)
	}
	defer l.Close(context.Background())
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.Timeout, ErrDeadline)
		defer cancel()
	}
	wc := &wasip2.Context{Args: c.Args, Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr}
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		wc.Env = append(wc.Env, [2]string{k, v})
	}
	inst, err := l.Instantiate(ctx, wc)
	if err != nil {
		return Result{}, runError(ctx, err)
	}
	defer inst.Close(context.Background())
	out, err := inst.Call(ctx, run, "run")
	var exit *wasip2.ExitError
	switch {
	case errors.As(err, &exit):
		return Result{ExitCode: exit.Code}, nil
	case err != nil:
		return Result{}, runError(ctx, err)
	}
	// run returns result: ok (case 0) or error (case 1), the exit status.
	return Result{ExitCode: out[0].(cabi.VariantValue).Case}, nil
}

func exportNames(c *component.Component) string {
	var names []string
	for _, ex := range c.Exports {
		names = append(names, ex.Name)
	}
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, ", ")
}

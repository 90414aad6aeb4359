package host

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/internal/wasip2"
	"github.com/wasmesh/wasmesh/wasi"
)

// Typed calls between components ("links"): a component that imports an
// interface other than WASI's (example:crypto/hash) has its calls of it
// served by another component's export of that interface, through
// LinkCall.Link (the gateway picks the service and the version that
// answers), each call in an instance of the exporter of its own.

// LinkFunc is a function of an interface that a component imports or
// exports.
type LinkFunc struct {
	// Signature is its signature in WIT's syntax, its types spelled out:
	// "func(data: list<u8>) -> list<u8>".
	Signature string
	// Types are its parameters' and result's types alone: an import and an
	// export with the same Types take and give the same values.
	Types string
	// Resources says a value it takes or gives holds a resource handle,
	// which a link does not carry.
	Resources bool
}

// LinkImports returns the interfaces other than WASI's that m imports, by
// interface (as component.Interface gives it: "example:crypto/hash@0.1"),
// with their functions by name. Nil for a core module.
func (m *Module) LinkImports() map[string]map[string]LinkFunc {
	if m.component == nil {
		return nil
	}
	out := map[string]map[string]LinkFunc{}
	for key, sig := range m.component.Imported() {
		iface, fn, ok := strings.Cut(key, "#")
		if !ok || strings.HasPrefix(iface, "wasi:") {
			continue
		}
		if out[iface] == nil {
			out[iface] = map[string]LinkFunc{}
		}
		out[iface][fn] = linkFunc(sig)
	}
	return out
}

// LinkExports returns the interfaces other than WASI's that m exports, by
// interface, with their functions by name. Nil for a core module.
func (m *Module) LinkExports() map[string]map[string]LinkFunc {
	if m.component == nil {
		return nil
	}
	out := map[string]map[string]LinkFunc{}
	for name, fns := range m.component.Exported() {
		iface := component.Interface(name)
		if _, ok := m.exports[iface]; !ok {
			continue
		}
		out[iface] = map[string]LinkFunc{}
		for fn, sig := range fns {
			out[iface][fn] = linkFunc(sig)
		}
	}
	return out
}

// IsLibrary says m is a component that exports interfaces for links only,
// no wasi:http/incoming-handler: it serves no request of its own.
func (m *Module) IsLibrary() bool { return m.component != nil && m.handler == "" }

// NotHandler says why a component that is no wasi:http handler is not,
// when its exports say more than that: a wasi:cli command, a handler of
// another wasi:http version. "" otherwise.
func (m *Module) NotHandler() string { return m.notHandler }

func linkFunc(sig component.FuncSig) LinkFunc {
	types := make([]string, 0, len(sig.Params)+1)
	for _, p := range sig.Params {
		types = append(types, p.Type.String())
	}
	t := "(" + strings.Join(types, ", ") + ")"
	for _, r := range sig.Results {
		t += " -> " + r.String()
	}
	return LinkFunc{Signature: sig.String(), Types: t, Resources: sig.HasResource()}
}

// LinkCall is a typed call of a function a component exports, for
// CallExport.
type LinkCall struct {
	// Interface (as component.Interface gives it) and Func name the
	// function; Args are its arguments as cabi values, lifted from the
	// caller.
	Interface, Func string
	Args            []any
	// Timeout bounds the call (0: none); MemoryLimit caps each memory of
	// the callee's instance (0: 4 GiB).
	Timeout     time.Duration
	MemoryLimit int64
	// Argv and Env are what wasi:cli/environment gives the callee.
	Argv []string
	Env  [][2]string
	// Link serves the callee's own links. Default nil: they trap.
	Link func(ctx context.Context, iface, fn string, args []any) (any, error)
	// Outbound sends the callee's outgoing HTTP requests. Default nil:
	// each is denied.
	Outbound func(ctx context.Context, req *wasi.OutboundRequest) (*wasi.OutboundResponse, int)
	// Admit says at once whether an outgoing request may go
	// (wasip2.Context.Admit). Default nil: Outbound decides.
	Admit func(ctx context.Context, req *wasi.OutboundRequest) int
}

// CallExport calls a function of an interface component m exports, in an
// instance of its own (a reset one when m.Reusable), and returns its
// result as a cabi value (nil for a function without one). A trap, the
// deadline or the memory limit in the callee is an error (a *Trap, or
// ErrDeadline); the caller's instance is not touched.
func (e *Engine) CallExport(ctx context.Context, m *Module, c *LinkCall) (any, error) {
	if m.component == nil {
		return nil, fmt.Errorf("module %s is not a component", m.Digest)
	}
	export, ok := m.exports[c.Interface]
	if !ok {
		return nil, fmt.Errorf("component %s does not export %s (it exports %s)", m.Digest, c.Interface, strings.Join(slices.Sorted(maps.Keys(m.exports)), ", "))
	}
	wc := &wasip2.Context{Outbound: c.Outbound, Admit: c.Admit, Args: c.Argv, Env: c.Env, Link: c.Link}
	call := &componentCall{}
	if err := e.startCall(ctx, m, c.Timeout, c.MemoryLimit, wc, "", call); err != nil {
		return nil, err
	}
	out, err := call.inst.Call(call.callCtx, export, c.Func, c.Args...)
	switch {
	case err != nil:
		err = call.fail(err)
	case call.dl.ended():
		err = runError(call.dl.ctx, nil)
	}
	call.end(err == nil) // after fail: ending the call ends its deadline's context
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out[0], nil
}

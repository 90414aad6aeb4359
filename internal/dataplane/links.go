package dataplane

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/router"
)

// link is what serves the typed calls of caller's component
// (host.HTTPRequest.Link): each goes to the service its service's links
// name for the interface (Snapshot.Links).
func (p *Plane) link(caller *Request) func(ctx context.Context, iface, fn string, args []any) (any, error) {
	return func(ctx context.Context, iface, fn string, args []any) (any, error) {
		return p.callLink(ctx, caller, iface, fn, args)
	}
}

// callLink serves one typed call of function fn of interface iface, made
// by caller's component: the linked service's version is chosen as for a
// request to it (a pin or sticky key in caller's request, caller's lane,
// the weights), and its component called in an instance of its own, within
// the callee's timeout and what is left of the caller's, its memories
// capped at the callee's limit. The call is a client span in the caller's
// trace and a server span for the callee; it counts in
// wasmesh_link_calls_total and, as a request of the callee's version, in
// that version's figures (releases judge a linked library as any
// service). A failure is an error: the caller's component sees it as the
// function's error when it returns result<_, string>, else as a trap.
func (p *Plane) callLink(ctx context.Context, caller *Request, iface, fn string, args []any) (any, error) {
	st, from := caller.snap, caller.Service.Name
	to := st.Links[from][iface]
	if to == "" {
		return nil, fmt.Errorf("service %s has no link for %s", from, iface)
	}
	if caller.Hop+1 > MaxHops {
		p.metrics.LinkCalls.WithLabelValues(from, iface, to, "", "unavailable").Inc()
		return nil, fmt.Errorf("link %s to service %s: more than %d calls deep", iface, to, MaxHops)
	}
	svc := st.Config.Services[to]
	v, err := router.Select(svc, caller.HTTP, caller.Lane)
	if err != nil {
		p.metrics.LinkCalls.WithLabelValues(from, iface, to, "", "unavailable").Inc()
		return nil, fmt.Errorf("link %s to service %s: %w", iface, to, err)
	}
	version := modules.Short(v.Digest)
	// The callee's timeout, cut to what is left of the caller's (its own
	// limit, and its context's deadline: a link's callee calling on).
	timeout, clipped := svc.Limits.Timeout, false
	ends := []time.Time{}
	if caller.Limits.Timeout > 0 {
		ends = append(ends, caller.Start.Add(caller.Limits.Timeout))
	}
	if dl, ok := ctx.Deadline(); ok {
		ends = append(ends, dl)
	}
	for _, end := range ends {
		left := time.Until(end)
		if left <= 0 {
			p.metrics.LinkCalls.WithLabelValues(from, iface, to, version, "caller_timeout").Inc()
			return nil, fmt.Errorf("link %s to service %s: %w (the caller's)", iface, to, host.ErrDeadline)
		}
		if timeout <= 0 || left < timeout {
			timeout, clipped = left, true
		}
	}
	ctx, span := p.tracer.Start(ctx, "wasmesh.link", clientSpan, trace.WithAttributes(
		attribute.String("rpc.system", "wasmesh"), attribute.String("rpc.service", iface), attribute.String("rpc.method", fn),
		attribute.String("wasmesh.target", to)))
	defer span.End()
	sctx, served := p.tracer.Start(ctx, "wasmesh.link.serve", serverSpan, trace.WithAttributes(
		attribute.String("wasmesh.service", to), attribute.String("wasmesh.version", version)))
	callee := &Request{HTTP: caller.HTTP, ID: caller.ID, Start: time.Now(), Caller: caller, Hop: caller.Hop + 1, service: to,
		snap: st, Service: svc, Version: v, Limits: svc.Limits, Lane: caller.Lane, bag: caller.bag, ctx: sctx, span: served}
	callee.Limits.Timeout = timeout // its own links are cut to it in turn
	out, err := p.engine.CallExport(context.WithValue(sctx, requestKey{}, callee), st.Modules[v.Digest], &host.LinkCall{
		Interface: iface, Func: fn, Args: args, Timeout: timeout, MemoryLimit: svc.Limits.Memory,
		Argv: []string{to}, Env: st.componentEnv(svc), Link: p.link(callee), Outbound: p.componentOutbound,
	})
	took := time.Since(callee.Start)
	// A failure is the callee's, counted against its version, unless the
	// caller caused it: its client gone, or its own time up.
	result, callees := "ok", false
	switch {
	case err == nil:
	case errors.Is(err, host.ErrDeadline) && clipped:
		result = "caller_timeout"
	case ctx.Err() != nil || errors.Is(err, host.ErrCanceled):
		result = "canceled"
	case errors.Is(err, host.ErrDeadline):
		result, callees = "timeout", true
	default:
		result, callees = "trap", true
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		served.SetStatus(codes.Error, err.Error())
		p.log.Warn("link call failed", "service", from, "interface", iface, "function", fn, "target", to, "version", version,
			"request_id", caller.ID, "error", err)
		err = fmt.Errorf("link %s to service %s (version %s): %w", iface, to, version, err)
	}
	served.End()
	if !p.noFigures && (err == nil || callees) { // the caller's faults are not the version's figures
		stats := p.Stats(to, v.Digest)
		stats.Requests.Add(1)
		if callees {
			stats.Errors.Add(1)
		}
		stats.Latency.Observe(took)
	}
	p.metrics.LinkDuration.WithLabelValues(iface, to, version).Observe(took.Seconds())
	p.metrics.LinkCalls.WithLabelValues(from, iface, to, version, result).Inc()
	return out, err
}

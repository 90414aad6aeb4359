package dataplane

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/internal/clock"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/router"
)

// linkCall serves a component's typed calls (host.HTTPRequest.Link,
// host.LinkCall.Link) for the request its context carries (requestFrom):
// each goes to the service the request's service links for the interface
// (Snapshot.Links).
func (p *Plane) linkCall(ctx context.Context, iface, fn string, args []any) (any, error) {
	caller := requestFrom(ctx)
	if caller == nil {
		return nil, fmt.Errorf("link %s: the call's context has no request", iface)
	}
	return p.callLink(ctx, caller, iface, fn, args)
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
	ls := p.linkSeriesFor(st, from, iface, to, v)
	version := ls.version
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
			ls.count(linkCallerTimeout)
			return nil, fmt.Errorf("link %s to service %s: %w (the caller's)", iface, to, host.ErrDeadline)
		}
		if timeout <= 0 || left < timeout {
			timeout, clipped = left, true
		}
	}
	ctx, span := p.childSpan(ctx, "wasmesh.link", clientSpan)
	defer span.End()
	sctx, served := p.childSpan(ctx, "wasmesh.link.serve", serverSpan)
	if span.IsRecording() { // unsampled, the attributes would be built to be dropped
		span.SetAttributes(attribute.String("rpc.system", "wasmesh"), attribute.String("rpc.service", iface),
			attribute.String("rpc.method", fn), attribute.String("wasmesh.target", to))
		served.SetAttributes(attribute.String("wasmesh.service", to), attribute.String("wasmesh.version", v.Digest))
	}
	callee := &Request{HTTP: caller.HTTP, ID: caller.ID, Start: clock.Now(), Caller: caller, Hop: caller.Hop + 1, service: to,
		snap: st, Service: svc, Version: v, Limits: svc.Limits, Lane: caller.Lane, bag: caller.bag, ctx: sctx, span: served}
	callee.Limits.Timeout = timeout // its own links are cut to it in turn
	out, err := p.engine.CallExport(context.WithValue(sctx, requestKey{}, callee), st.Modules[v.Digest], &host.LinkCall{
		Interface: iface, Func: fn, Args: args, Timeout: timeout, MemoryLimit: svc.Limits.Memory,
		Argv: []string{to}, Env: st.componentEnv(svc), Link: p.linkFn, Outbound: p.outboundFn, Admit: p.admitFn,
	})
	took := time.Since(callee.Start)
	// A failure is the callee's, counted against its version, unless the
	// caller caused it: its client gone, or its own time up.
	result, callees := linkOK, false
	switch {
	case err == nil:
	case errors.Is(err, host.ErrDeadline) && clipped:
		result = linkCallerTimeout
	case ctx.Err() != nil || errors.Is(err, host.ErrCanceled):
		result = linkCanceled
	case errors.Is(err, host.ErrDeadline):
		result, callees = linkTimeout, true
	default:
		result, callees = linkTrap, true
	}
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		served.SetStatus(codes.Error, err.Error())
		p.log.Warn("link call failed", "service", from, "interface", iface, "function", fn, "target", to, "version", version,
			"request_id", caller.ID, "error", err)
		err = fmt.Errorf("link %s to service %s (version %s): %w", iface, to, version, err)
	}
	served.End()
	// The caller's faults are not the version's figures, nor is a call
	// to a version the client pinned.
	if !p.noFigures && (err == nil || callees) && router.PinOf(svc, caller.HTTP) == "" {
		ls.stats.Requests.Add(1)
		if callees {
			ls.stats.Errors.Add(1)
		}
		ls.stats.Latency.Observe(took)
	}
	ls.duration.Observe(took.Seconds())
	ls.count(result)
	return out, err
}

// The results of a link call, as wasmesh_link_calls_total counts them
// (besides "unavailable", a call that found no version to go to).
const (
	linkOK = iota
	linkCallerTimeout
	linkCanceled
	linkTimeout
	linkTrap
	linkResults
)

var linkResultNames = [linkResults]string{"ok", "caller_timeout", "canceled", "timeout", "trap"}

// linkSeriesKey names the calls over one link to one version, in a snapshot.
type linkSeriesKey struct {
	from, iface string
	version     *config.Version
}

// linkSeries are the metrics and figures of the calls over one link to one
// version, resolved once per snapshot, as series are for requests; a
// result's counter when first seen.
type linkSeries struct {
	from, iface, to, version string
	duration                 prometheus.Observer
	stats                    *VersionStats
	calls                    [linkResults]atomic.Pointer[prometheus.Counter]
	p                        *Plane
}

func (p *Plane) linkSeriesFor(st *Snapshot, from, iface, to string, v *config.Version) *linkSeries {
	key := linkSeriesKey{from, iface, v}
	if got, ok := st.links.Load(key); ok {
		return got.(*linkSeries)
	}
	version := modules.Short(v.Digest)
	ls := &linkSeries{from: from, iface: iface, to: to, version: version, p: p,
		duration: p.metrics.LinkDuration.WithLabelValues(iface, to, version), stats: p.Stats(to, v.Digest)}
	got, _ := st.links.LoadOrStore(key, ls)
	return got.(*linkSeries)
}

// count counts a call with result in wasmesh_link_calls_total.
func (ls *linkSeries) count(result int) {
	c := ls.calls[result].Load()
	if c == nil {
		counter := ls.p.metrics.LinkCalls.WithLabelValues(ls.from, ls.iface, ls.to, ls.version, linkResultNames[result])
		c = &counter
		ls.calls[result].Store(c)
	}
	(*c).Inc()
}

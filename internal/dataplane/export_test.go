package dataplane

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/wasmesh/wasmesh/wasi"
)

// SetFigures turns the versions' figures (VersionStats: what release
// checks and the dashboard read) on or off, for BenchmarkReleaseFigures.
func SetFigures(p *Plane, on bool) { p.noFigures = !on }

// benchCaller is a request of service from, as a guest's calls see it.
func benchCaller(p *Plane, from string) *Request {
	st := p.snap.Load()
	r, _ := http.NewRequest("GET", "http://bench/", nil)
	return &Request{HTTP: r, ID: "bench", Start: time.Now(), Service: st.Config.Services[from], Version: st.Config.Services[from].Versions[0],
		snap: st, ctx: context.Background()}
}

// CallLink makes a typed call of iface's fn as a component of service
// from would, for BenchmarkLinkCall.
func CallLink(p *Plane, from, iface, fn string, args ...any) (any, error) {
	return p.callLink(context.Background(), benchCaller(p, from), iface, fn, args)
}

// CallService makes an in-process POST of body to target (wasmesh://…) as
// a guest of service from would, for BenchmarkLinkCall.
func CallService(p *Plane, from, target string, body []byte) (*wasi.OutboundResponse, int) {
	u, _ := url.Parse(target)
	caller := benchCaller(p, from)
	return p.callService(context.Background(), caller, u, &wasi.OutboundRequest{Method: "POST", URL: target, Body: body}, http.Header{})
}

// Queued is how many requests of service wait for a concurrency slot.
func Queued(p *Plane, service string) int64 {
	if l, ok := p.limiters.Load(service); ok {
		return l.(*limiter).queued.Load()
	}
	return 0
}

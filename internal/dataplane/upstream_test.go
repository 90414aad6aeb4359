package dataplane

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/config"
)

// fakeResolver answers names from a map that a test changes.
type fakeResolver struct {
	mu      sync.Mutex
	answers map[string][]netip.Addr
}

func (r *fakeResolver) set(name string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers[name] = nil
	for _, a := range addrs {
		r.answers[name] = append(r.answers[name], netip.MustParseAddr(a))
	}
}

func (r *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a, ok := r.answers[host]; ok {
		return slices.Clone(a), nil
	}
	return nil, errors.New("no such host")
}

// TestUpstreamResolve: a dns upstream's endpoints follow its name's
// addresses: an address still there keeps its endpoint (its connections,
// health and ejection), a new one gets one, a gone one's is closed; a name
// that stops resolving keeps the endpoints it had; one that never did says
// why.
func TestUpstreamResolve(t *testing.T) {
	p, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	r := &fakeResolver{answers: map[string][]netip.Addr{}}
	p.resolver = r
	name, _ := url.Parse("http://users.default.svc:8080")
	spec := &config.Upstream{DNS: name, DNSInterval: time.Hour, LB: "round_robin", ConnectTimeout: time.Second,
		Retries: config.DefaultRetries(), Pool: config.DefaultPool}
	u := p.upstreamFor(&config.Version{Digest: "sha256:0123456789abcdef0123", Upstream: spec})
	u.ctx, u.stop = context.WithCancel(context.Background())
	defer u.stop()

	hosts := func() []string {
		var h []string
		for _, ep := range u.eps() {
			h = append(h, ep.url.Host)
		}
		return h
	}
	u.resolve()
	if len(u.eps()) != 0 || u.pick(nil) != nil || u.noEndpoints.Load() == nil {
		t.Fatalf("an unresolved name: endpoints %v, reason %v", hosts(), u.noEndpoints.Load())
	}
	r.set("users.default.svc", "10.0.0.2", "10.0.0.1", "10.0.0.1")
	u.resolve()
	if got := hosts(); !slices.Equal(got, []string{"10.0.0.1:8080", "10.0.0.2:8080"}) || u.noEndpoints.Load() != nil {
		t.Fatalf("endpoints %v, reason %v", got, u.noEndpoints.Load())
	}
	kept := u.eps()[1]
	r.set("users.default.svc", "10.0.0.2", "fd00::3")
	u.resolve()
	if got := hosts(); !slices.Equal(got, []string{"10.0.0.2:8080", "[fd00::3]:8080"}) || u.eps()[0] != kept {
		t.Fatalf("endpoints %v; 10.0.0.2's endpoint kept: %v", got, u.eps()[0] == kept)
	}
	delete(r.answers, "users.default.svc")
	u.resolve()
	if got := hosts(); len(got) != 2 {
		t.Fatalf("after a failed resolution: endpoints %v, want the two it had", got)
	}
}

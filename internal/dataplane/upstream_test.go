package dataplane

import (
	"context"
	"errors"
	"fmt"
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
	u := p.upstreamFor("users", &config.Version{Digest: "sha256:0123456789abcdef0123", Upstream: spec})
	defer u.close()

	hosts := func() []string {
		var h []string
		for _, ep := range u.eps() {
			h = append(h, ep.url.Host)
		}
		return h
	}
	u.resolve()
	if len(u.eps()) != 0 || u.pick(nil, "") != nil || u.noEndpoints.Load() == nil {
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

// TestConsistentHash: a key keeps its endpoint; when an endpoint is left
// out (unhealthy) only its keys move, and they come back with it.
func TestConsistentHash(t *testing.T) {
	p, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	var eps []*url.URL
	for _, h := range []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"} {
		eps = append(eps, &url.URL{Scheme: "http", Host: h})
	}
	spec := &config.Upstream{Endpoints: eps, LB: "consistent_hash", HashOn: config.Sticky{Kind: "header", Name: "X-User"},
		ConnectTimeout: time.Second, Retries: config.DefaultRetries(), Pool: config.DefaultPool}
	u := p.upstreamFor("users", &config.Version{Digest: "sha256:fedcba9876543210fedc", Upstream: spec})
	before := map[string]*endpoint{}
	per := map[*endpoint]int{}
	for i := range 4000 {
		key := fmt.Sprintf("user-%d", i)
		ep := u.pick(nil, key)
		if again := u.pick(nil, key); again != ep {
			t.Fatalf("%s: %s, then %s", key, ep.url.Host, again.url.Host)
		}
		before[key] = ep
		per[ep]++
	}
	for _, ep := range u.eps() {
		if per[ep] < 800 || per[ep] > 1200 {
			t.Errorf("%s has %d of 4000 keys, want about 1000", ep.url.Host, per[ep])
		}
	}
	down := u.eps()[2]
	down.unhealthy.Store(true)
	for key, was := range before {
		now := u.pick(nil, key)
		if (was == down) == (now == was) {
			t.Fatalf("%s: on %s, then %s with %s down", key, was.url.Host, now.url.Host, down.url.Host)
		}
	}
	down.unhealthy.Store(false)
	for key, was := range before {
		if now := u.pick(nil, key); now != was {
			t.Fatalf("%s: on %s, then %s once all are back", key, was.url.Host, now.url.Host)
		}
	}
}

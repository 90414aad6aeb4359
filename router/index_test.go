package router

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wasmesh/wasmesh/config"
)

// TestMatchIndexTriesEveryCandidate: Match through the path index finds
// the route that trying every route in precedence order finds, for random
// tables and requests over small alphabets (paths that share prefixes,
// hosts and wildcards, methods, headers).
func TestMatchIndexTriesEveryCandidate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	segs := []string{"a", "b", "ab", ""}
	path := func() string {
		var b strings.Builder
		for range rng.IntN(4) {
			b.WriteString("/" + segs[rng.IntN(len(segs))])
		}
		if b.Len() == 0 {
			return "/"
		}
		return b.String()
	}
	hosts := []string{"", "x.example.com", "*.example.com", "y.example.com"}
	tables := 0
	for round := range 300 {
		var src strings.Builder
		src.WriteString(svc + "routes:\n")
		for i := range 1 + rng.IntN(12) {
			var m []string
			switch rng.IntN(3) {
			case 0:
				m = append(m, fmt.Sprintf("path: %q", path()))
			case 1:
				m = append(m, fmt.Sprintf("path_prefix: %q", path()))
			}
			if h := hosts[rng.IntN(len(hosts))]; h != "" {
				m = append(m, fmt.Sprintf("host: %q", h))
			}
			if rng.IntN(4) == 0 {
				m = append(m, "method: POST")
			}
			if rng.IntN(4) == 0 {
				m = append(m, "headers: {x-v: '1'}")
			}
			fmt.Fprintf(&src, "  - {name: r%d, service: hello, match: {%s}}\n", i, strings.Join(m, ", "))
		}
		cfg, err := config.Parse("wasmesh.yaml", []byte(src.String()))
		if err != nil { // two routes of the same match, a path the config refuses
			continue
		}
		tab, err := NewTable(cfg, fakeDigest)
		if err != nil {
			t.Fatal(err)
		}
		tables++
		for range 50 {
			method := []string{"GET", "POST"}[rng.IntN(2)]
			host := []string{"x.example.com", "y.example.com", "z.example.com", "other"}[rng.IntN(4)]
			r := httptest.NewRequest(method, "http://"+host+path(), nil)
			if rng.IntN(2) == 0 {
				r.Header.Set("X-V", "1")
			}
			want := ""
			for _, rt := range tab.routes {
				if matches(&rt.Match, requestHost(r), r) {
					want = rt.Name
					break
				}
			}
			got := ""
			if rt, _, ok := tab.Match(r); ok {
				got = rt.Name
			}
			if got != want {
				t.Fatalf("round %d: %s %s%s: Match found %q, trying every route %q\n%s", round, method, host, r.URL.Path, got, want, src.String())
			}
		}
	}
	if tables < 100 {
		t.Fatalf("only %d of 300 random tables parsed", tables)
	}
}

// BenchmarkMatch finds a route among n path-prefix routes, requests
// spread over all of them.
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var src strings.Builder
			src.WriteString(svc + "routes:\n")
			for i := range n {
				fmt.Fprintf(&src, "  - {service: hello, match: {path_prefix: /s%d}}\n", i)
			}
			tab := mustTable(b, src.String())
			reqs := make([]*http.Request, 64)
			for i := range reqs {
				reqs[i] = httptest.NewRequest("GET", fmt.Sprintf("http://x/s%d/hi", i*n/len(reqs)), nil)
			}
			b.ResetTimer()
			for i := range b.N {
				if _, _, ok := tab.Match(reqs[i%len(reqs)]); !ok {
					b.Fatal("no route")
				}
			}
		})
	}
}

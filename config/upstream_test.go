package config

import (
	"strings"
	"testing"
)

func TestUpstreamVersions(t *testing.T) {
	cfg := mustParse(t, `services:
  users:
    versions:
      - { upstream: { endpoints: [ "http://10.0.0.1:8080", "https://users.internal/" ], lb: round_robin }, name: v1, weight: 90 }
      - { path: users.wasm, name: v2, weight: 10 }
`)
	u := cfg.Services["users"].Versions[0].Upstream
	if u == nil || u.LB != "round_robin" || len(u.Endpoints) != 2 || u.Endpoints[1].String() != "https://users.internal" {
		t.Fatalf("upstream: %+v", u)
	}
	if d := u.UpstreamDigest(); !validModule(d) || len(d) != len("sha256:")+64 {
		t.Errorf("UpstreamDigest = %q", d)
	}
	for _, tt := range []struct{ src, want string }{
		{`{ upstream: { endpoints: [ "ftp://x" ] } }`, `endpoint "ftp://x": want http:// or https://`},
		{`{ upstream: { endpoints: [ "http://x/api" ] } }`, `want an origin (scheme://host:port), without path, query or user`},
		{`{ upstream: { endpoints: [] } }`, `needs at least one endpoint`},
		{`{ upstream: { endpoints: [ "http://x" ], lb: random } }`, `must be "least_request" or "round_robin", got "random"`},
		{`{ upstream: { endpoints: [ "http://x" ] }, path: x.wasm }`, `set only one of module, path or upstream`},
		{`{ upstream: { endpoints: [ "http://x" ], health: { interval: 1s } } }`, `health: missing field "path"`},
		{`{ upstream: { endpoints: [ "http://x" ], health: { path: healthz } } }`, `health.path: must start with "/", got "healthz"`},
		{`{ upstream: { endpoints: [ "http://x" ], health: { path: /h, interval: 10ms } } }`, `health.interval: must be at least 100ms, got 10ms`},
		{`{ upstream: { endpoints: [ "http://x" ], health: { path: /h, status: 9 } } }`, `health.status: must be an HTTP status, got 9`},
		{`{ upstream: { endpoints: [ "http://x" ], max_requests: 0 } }`, `max_requests: must be at least 1, got 0`},
		{`{ upstream: { endpoints: [ "http://x" ], expect_id: "spiffe://example.org/b" } }`, `expect_id: needs https:// endpoints, endpoints[0] is http://x`},
		{`{ upstream: { endpoints: [ "https://x" ], expect_id: "spiffe://example.org/b" } }`, `services.s.versions[0].upstream.expect_id: needs a tls block`},
		{`{ upstream: { endpoints: [ "https://x" ], expect_id: "http://nope" } }`, `expect_id:`},
	} {
		_, err := Parse("wasmesh.yaml", []byte("services:\n  s:\n    versions:\n      - "+tt.src+"\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.src, err, tt.want)
		}
	}
	// An edit of the service keeps the upstream.
	out, err := SetVersions([]byte("services:\n  users:\n    versions:\n      - { upstream: { endpoints: [ \"http://10.0.0.1:8080\" ] }, name: v1 }\n"), "users",
		[]*Version{{Upstream: u, Name: "v1", Weight: 100, Digest: u.UpstreamDigest()}})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustParse(t, string(out)).Services["users"].Versions[0].Upstream; got == nil || got.UpstreamDigest() != u.UpstreamDigest() {
		t.Errorf("SetVersions lost the upstream:\n%s", out)
	}
}

package config

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/testca"
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
		{`{ upstream: { endpoints: [ "http://x" ], lb: random } }`, `must be "least_request", "round_robin" or "consistent_hash", got "random"`},
		{`{ upstream: { endpoints: [ "http://x" ], lb: consistent_hash } }`, `lb: consistent_hash needs hash_on ("header:NAME" or "cookie:NAME")`},
		{`{ upstream: { endpoints: [ "http://x" ], hash_on: "header:X-User" } }`, `hash_on: needs lb: consistent_hash`},
		{`{ upstream: { endpoints: [ "http://x" ], lb: consistent_hash, hash_on: "query:u" } }`, `hash_on: must be "header:<name>" or "cookie:<name>", got "query:u"`},
		{`{ upstream: { endpoints: [ "http://x" ] }, path: x.wasm }`, `set only one of module, path or upstream`},
		{`{ upstream: { endpoints: [ "http://x" ], health: { interval: 1s } } }`, `health: missing field "path"`},
		{`{ upstream: { endpoints: [ "http://x" ], health: { path: healthz } } }`, `health.path: must start with "/", got "healthz"`},
		{`{ upstream: { endpoints: [ "http://x" ], health: { path: /h, interval: 10ms } } }`, `health.interval: must be at least 100ms, got 10ms`},
		{`{ upstream: { endpoints: [ "http://x" ], health: { path: /h, status: 9 } } }`, `health.status: must be an HTTP status, got 9`},
		{`{ upstream: { endpoints: [ "http://x" ], max_requests: 0 } }`, `max_requests: must be at least 1, got 0`},
		{`{ upstream: { endpoints: [ "http://x" ], expect_id: "spiffe://example.org/b" } }`, `expect_id: needs https:// endpoints, endpoints[0] is http://x`},
		{`{ upstream: { endpoints: [ "https://x" ], expect_id: "spiffe://example.org/b" } }`, `services.s.versions[0].upstream.expect_id: needs a tls block`},
		{`{ upstream: { endpoints: [ "https://x" ], expect_id: "http://nope" } }`, `expect_id:`},
		{`{ upstream: { dns: "http://users:80", endpoints: [ "http://x" ] } }`, `has more than one of endpoints, dns and kubernetes: one of them`},
		{`{ upstream: { kubernetes: { service: users }, endpoints: [ "http://x" ] } }`, `has more than one of endpoints, dns and kubernetes`},
		{`{ upstream: { kubernetes: { port: http } } }`, `upstream.kubernetes: needs service: the name of a Kubernetes Service`},
		{`{ upstream: { kubernetes: { service: Users } } }`, `kubernetes.service: must be a Service's name (a DNS label: a-z, 0-9 and '-', at most 63), got "Users"`},
		{`{ upstream: { kubernetes: { service: users, port: 70000 } } }`, `kubernetes.port: must be a port's name or a number from 1 to 65535, got 70000`},
		{`{ upstream: { kubernetes: { service: users, port: "http_1" } } }`, `kubernetes.port: must be a port's name (a DNS label of at most 15 characters) or number, got "http_1"`},
		{`{ upstream: { kubernetes: { service: users, scheme: ftp } } }`, `kubernetes.scheme: must be "http" or "https", got "ftp"`},
		{`{ upstream: { kubernetes: { service: users, namespace: x } } }`, `kubernetes: unknown field "namespace"`},
		{`{ upstream: { kubernetes: { service: users }, expect_id: "spiffe://example.org/b" } }`, `expect_id: needs kubernetes' scheme: https`},
		{`{ upstream: { dns: "http://10.0.0.1:80" } }`, `dns: names an address, 10.0.0.1: list it in endpoints`},
		{`{ upstream: { dns: "users:80" } }`, `dns: endpoint "users:80": want http://host:port or https://host:port`},
		{`{ upstream: { endpoints: [ "127.0.0.1:9101" ] } }`, `endpoints[0]: endpoint "127.0.0.1:9101": want http://host:port or https://host:port`},
		{`{ upstream: { endpoints: [ "http://127.0.0.1:99999" ] } }`, `endpoints[0]: endpoint "http://127.0.0.1:99999": port 99999 is not one from 1 to 65535`},
		{`{ upstream: { endpoints: [ "http://127.0.0.1:0" ] } }`, `port 0 is not one from 1 to 65535`},
		{`{ upstream: { endpoints: [ "http://a:9102", "http://A:09102" ] } }`, `endpoints[1]: http://a:9102 is endpoints[0] again`},
		{`{ upstream: { endpoints: [ "http://a", "http://a:80" ] } }`, `endpoints[1]: http://a:80 is endpoints[0] again`},
		{`{ upstream: { dns: "http://users", dns_interval: 1ms } }`, `dns_interval: must be at least 100ms, got 1ms`},
		{`{ upstream: { endpoints: [ "http://x" ], retries: { on: [ "502", "oops" ] } } }`, `retries.on[1]: must be "connect_failure", "reset", "timeout" or a 5xx status code, got "oops"`},
		{`{ upstream: { endpoints: [ "http://x" ], retries: { on: [ "404" ] } } }`, `retries.on[0]: must be`},
		{`{ upstream: { endpoints: [ "http://x" ], retries: { attempts: 11 } } }`, `retries.attempts: must be 0 to 10, got 11`},
		{`{ upstream: { endpoints: [ "http://x" ], retries: { budget: 120% } } }`, `retries.budget: must be a fraction in [0, 1] or a percentage ("20%"), got "120%"`},
		{`{ upstream: { endpoints: [ "http://x" ], retries: { per_try_timeout: 0s } } }`, `retries.per_try_timeout: must be greater than 0`},
		{`{ upstream: { endpoints: [ "http://x" ], pool: { max_pending: 4 } } }`, `pool.max_pending: needs max_connections`},
		{`{ upstream: { endpoints: [ "http://x" ], pool: { max_idle: -1 } } }`, `pool.max_idle: must be 1 or more, got -1`},
		{`{ upstream: { endpoints: [ "http://x" ], pool: { max_connections: -2 } } }`, `pool.max_connections: must be 0 or more, got -2`},
		{`{ upstream: { endpoints: [ "http://x" ], connect_timeout: 0s } }`, `connect_timeout: must be greater than 0`},
		{`{ upstream: { endpoints: [ "http://x" ], retry: {} } }`, `unknown field "retry"`},
		{`{ upstream: { endpoints: [ "https://x" ], ca: no-such-ca.pem } }`, `upstream.ca: open `},
		{`{ upstream: { endpoints: [ "https://x" ], ca: upstream_test.go } }`, `upstream.ca: ` + "upstream_test.go holds no PEM certificate"},
	} {
		_, err := Parse("wasmesh.yaml", []byte("services:\n  s:\n    versions:\n      - "+tt.src+"\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.src, err, tt.want)
		}
	}
	// A path that is wrong is not also missing.
	if _, err := Parse("wasmesh.yaml", []byte("services:\n  s:\n    versions:\n      - { upstream: { endpoints: [ \"http://x\" ], health: { path: healthz } } }\n")); err == nil || strings.Contains(err.Error(), "missing field") {
		t.Errorf("health path without a slash: %v, want only that it must start with /", err)
	}
	// The settings, and their defaults.
	full := mustParse(t, `services:
  users:
    versions:
      - upstream:
          dns: "https://users.default.svc:8443"
          dns_interval: 2s
          connect_timeout: 1s
          http2: true
          retries: { attempts: 3, on: [ reset, "503" ], per_try_timeout: 250ms, budget: 10% }
          pool: { max_connections: 8, max_pending: 16, max_idle: 4, idle_timeout: 30s }
`).Services["users"].Versions[0].Upstream
	if full.DNS.Host != "users.default.svc:8443" || full.DNSInterval != 2*time.Second || full.ConnectTimeout != time.Second || !full.HTTP2 ||
		full.Retries.Attempts != 3 || !full.Retries.RetriesOn("503") || full.Retries.RetriesOn("connect_failure") ||
		full.Retries.PerTryTimeout != 250*time.Millisecond || full.Retries.Budget != 0.1 ||
		full.Pool != (Pool{MaxConnections: 8, MaxPending: 16, MaxIdle: 4, IdleTimeout: 30 * time.Second}) {
		t.Errorf("upstream settings: %+v", full)
	}
	if u.ConnectTimeout != DefaultConnectTimeout || !reflect.DeepEqual(u.Retries, DefaultRetries()) || u.Pool != DefaultPool || u.DNS != nil {
		t.Errorf("upstream defaults: %+v", u)
	}
	if full.UpstreamDigest() == u.UpstreamDigest() {
		t.Error("two upstreams of other settings have one digest")
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

// TestUpstreamErrorsSayWhatIsWrong: a ca with no https endpoint to trust
// it for is refused; endpoints that are all malformed are each said to
// be, not taken for none listed.
func TestUpstreamErrorsSayWhatIsWrong(t *testing.T) {
	dir := t.TempDir()
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: testca.New(t, "example.org").Cert.Raw})
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), cert, 0o644); err != nil {
		t.Fatal(err)
	}
	parse := func(upstream string) error {
		_, err := Parse(filepath.Join(dir, "wasmesh.yaml"), []byte("services:\n  s:\n    versions:\n      - { upstream: "+upstream+" }\n"))
		return err
	}
	if err := parse(`{ endpoints: [ "http://a:1" ], ca: ca.pem }`); err == nil || !strings.Contains(err.Error(), "upstream.ca: is for https: the endpoints are all http://") {
		t.Errorf("a ca for http endpoints: %v", err)
	}
	if err := parse(`{ endpoints: [ "http://a:1", "https://b:2" ], ca: ca.pem }`); err != nil {
		t.Errorf("a ca with an https endpoint: %v", err)
	}
	err := parse(`{ endpoints: [ "a:1", "ftp://b" ] }`)
	if err == nil || strings.Contains(err.Error(), "needs at least one endpoint") || !strings.Contains(err.Error(), "endpoints[1]") {
		t.Errorf("endpoints all malformed: %v, want each said to be, and not that none is listed", err)
	}
}

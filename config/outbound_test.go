package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOutboundConfig(t *testing.T) {
	cfg, err := Parse("w.yaml", []byte(`
services:
  users: { versions: [ { path: u.wasm } ] }
  web:
    versions: [ { path: w.wasm } ]
    outbound: [ "wasmesh://users", "https://API.example.com/v1", "http://127.0.0.1:9000", "http://orders/api" ]
`))
	if err != nil {
		t.Fatal(err)
	}
	web := cfg.Services["web"]
	tests := []struct {
		target string
		want   bool
	}{
		{"wasmesh://users/x", true},
		{"wasmesh://users", true},
		{"wasmesh://other/x", false},
		{"https://api.example.com/v1", true},
		{"https://api.example.com/v1/users?id=1", true},
		{"https://api.example.com/v10", false},
		{"https://api.example.com/", false},
		{"http://api.example.com/v1", false},
		{"http://127.0.0.1:9000/anything", true},
		{"http://127.0.0.1:9001/", false},
		{"http://localhost:9000/", false},
		// http://orders/api is how a component reaches service orders
		// in-process: its wasmesh:// call is admitted as well.
		{"http://orders/api/x", true},
		// A path is under a prefix as it is sent, and never through "."
		// or "..", escaped or not.
		{"https://api.example.com/v1/../admin", false},
		{"https://api.example.com/v1/%2e%2e/admin", false},
		{"https://api.example.com/v1%2F..%2Fadmin", false},
		{"https://api.example.com/v1%2Fx", false},
		{"https://api.example.com/v1/./x", false},
		// Nor through what servers resolve as "..": path parameters
		// (Tomcat's "..;"), backslashes (IIS's separator).
		{"https://api.example.com/v1/..;/admin", false},
		{"https://api.example.com/v1/%2e%2e;x=1/admin", false},
		{"https://api.example.com/v1/..%5c..%5cadmin", false},
		{"https://api.example.com/v1/a\\b", false},
		{"https://api.example.com/v1/a;b=1", true},
		{"https://api.example.com/v1/..x", true},
		{"https://api.example.com/v1/a%2Fb", true},
		{"http://127.0.0.1:9000/a/../b", true}, // no prefix: the origin's whole
		{"wasmesh://orders/api/x", true},
		{"wasmesh://orders/other", false},
		{"wasmesh://127.0.0.1:9000/", false},
	}
	for _, tc := range tests {
		u, _ := url.Parse(tc.target)
		if _, got := web.AllowsOutbound(u); got != tc.want {
			t.Errorf("AllowsOutbound(%s) = %v, want %v", tc.target, got, tc.want)
		}
	}
	if _, ok := cfg.Services["users"].AllowsOutbound(&url.URL{Scheme: "wasmesh", Host: "web"}); ok {
		t.Error("a service without outbound entries allowed a call")
	}
}

func TestOutboundErrors(t *testing.T) {
	tests := []struct{ entry, want string }{
		{`"wasmesh://nope"`, `w.yaml:7:17: services.web.outbound[0]: unknown service "nope"`}, // at the entry
		{`"ftp://x"`, "want wasmesh://SERVICE or http(s)://"},
		{`"https://"`, "want a host"},
		{`"https://h/?q=1"`, "no user, query or fragment"},
		{`42`, ""},
	}
	for _, tc := range tests {
		_, err := Parse("w.yaml", []byte("services:\n  users: { versions: [ { path: u.wasm } ] }\n\n\n  web:\n    versions: [ { path: w.wasm } ]\n    outbound: [ "+tc.entry+" ]\n"))
		if tc.want == "" {
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("outbound %s: err = %v, want %q", tc.entry, err, tc.want)
		}
	}
}

func TestTLSAndPeersConfig(t *testing.T) {
	cfg, err := Parse("/etc/w/w.yaml", []byte(`
tls:
  svid: certs/svid.pem
  key: certs/svid.key
  bundle: /etc/bundle.pem
services:
  users:
    versions: [ { path: u.wasm } ]
    allow_peers: [ "spiffe://example.org/ns/web/sa/frontend", "spiffe://partner.example/*" ]
    outbound:
      - wasmesh://users
      - { url: "https://peer.example:8443", expect_id: "spiffe://example.org/ns/b/sa/gateway" }
`))
	if err != nil {
		t.Fatal(err)
	}
	if tl := cfg.TLS; tl.SVID != "/etc/w/certs/svid.pem" || tl.Bundle != "/etc/bundle.pem" || tl.ClientAuth != "require" {
		t.Fatalf("tls = %+v", tl)
	}
	s := cfg.Services["users"]
	if len(s.AllowPeers) != 2 || len(s.Outbound) != 2 || s.Outbound[1].ExpectID != "spiffe://example.org/ns/b/sa/gateway" {
		t.Fatalf("service = %+v", s)
	}
	u, _ := url.Parse("https://peer.example:8443/x")
	if o, ok := s.AllowsOutbound(u); !ok || o.ExpectID == "" {
		t.Fatalf("AllowsOutbound(%s) = %+v, %v", u, o, ok)
	}
}

func TestTLSAndPeersErrors(t *testing.T) {
	tests := []struct{ config, want string }{
		{"tls: { svid: a.pem }\n", "tls: svid, key and bundle go together"},
		{"tls: { svid: a, key: b, bundle: c, spiffe_socket: unix:///s }\n", "exclude each other"},
		{"tls: { client_auth: maybe }\n", `must be "require", "request" or "none"`},
		{"tls: { cert: x }\n", `unknown field "cert"`},
		{"services:\n  a:\n    versions: [ { path: a.wasm } ]\n    allow_peers: [ \"http://x\" ]\n", "services.a.allow_peers[0]: invalid SPIFFE ID"},
		{"services:\n  a:\n    versions: [ { path: a.wasm } ]\n    allow_peers: [ \"spiffe://e.org/a\" ]\n", "allow_peers: needs a tls block"},
		{"tls: { spiffe_socket: unix:///s, client_auth: none }\nservices:\n  a:\n    versions: [ { path: a.wasm } ]\n    allow_peers: [ \"spiffe://e.org/a\" ]\n",
			`w.yaml:5:18: services.a.allow_peers: needs client certificates: tls.client_auth is "none"`},
		{"tls: { spiffe_socket: unix:///s, client_auth: none }\nlane_peers: [ \"spiffe://e.org/*\" ]\n", `lane_peers: needs client certificates`},
		{"services:\n  a:\n    versions: [ { path: a.wasm } ]\n    outbound: [ { url: \"https://x\", expect_id: \"spiffe://e.org/a\" } ]\n", "expect_id: needs a tls block"},
		{"services:\n  a:\n    versions: [ { path: a.wasm } ]\n    allow_peers: [ \"spiffe://Bad Domain/*\" ]\n", "invalid trust domain"},
		{"services:\n  a:\n    versions: [ { path: a.wasm } ]\n    outbound: [ { url: \"http://x\", expect_id: \"spiffe://e.org/a\" } ]\n", "expect_id needs an https:// target"},
		{"services:\n  a:\n    versions: [ { path: a.wasm } ]\n    outbound: [ { expect_id: \"spiffe://e.org/a\" } ]\n", `missing field "url"`},
		{"services:\n  a:\n    versions: [ { path: a.wasm } ]\n    outbound: [ { url: \"https://x\", expect_id: \"nope\" } ]\n", "invalid SPIFFE ID"},
	}
	for _, tc := range tests {
		_, err := Parse("w.yaml", []byte(tc.config))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.config, err, tc.want)
		}
	}
}

func TestBPFAndDSCPConfig(t *testing.T) {
	cfg, err := Parse("w.yaml", []byte("bpf: { mode: require, mark_mask: 0x00ff0000 }\nservices:\n  a:\n    versions:\n      - { path: a.wasm, weight: 90 }\n      - { path: b.wasm, weight: 10, dscp: 10 }\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.BPF.Mode != "require" || cfg.BPF.MarkMask != 0x00ff0000 || cfg.Services["a"].Versions[1].DSCP != 10 || cfg.Services["a"].Versions[0].DSCP != 0 {
		t.Fatalf("bpf %+v, versions %+v", cfg.BPF, cfg.Services["a"].Versions)
	}
	if cfg, _ := Parse("w.yaml", []byte("bpf: off\n")); cfg.BPF.Mode != "off" {
		t.Fatalf("bpf: off gave %+v", cfg.BPF)
	}
	if cfg, _ := Parse("w.yaml", []byte("listen: :1\n")); cfg.BPF.Mode != "auto" {
		t.Fatalf("default bpf %+v", cfg.BPF)
	}
	edited, err := SetVersions(cfg.Raw, "a", cfg.Services["a"].Versions)
	if err != nil || !strings.Contains(string(edited), "dscp: 10") {
		t.Fatalf("SetVersions lost the dscp: %v\n%s", err, edited)
	}
	for config, want := range map[string]string{
		"bpf: maybe\n":                 `must be "auto", "require" or "off"`,
		"bpf: { mark_mask: 0x0f0f }\n": "contiguous run of bits",
		"bpf: { mark_mask: 0 }\n":      "contiguous run of bits",
		"bpf: { mark: 1 }\n":           `unknown field "mark"`,
		"services:\n  a:\n    versions: [ { path: a.wasm, dscp: 64 } ]\n": "must be between 0 and 63",
	} {
		if _, err := Parse("w.yaml", []byte(config)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", config, err, want)
		}
	}
}

// TestHTTPConfig: the listener's limits on request heads, read with their
// units, and refused out of range with the field's place.
func TestHTTPConfig(t *testing.T) {
	cfg, err := Parse("w.yaml", []byte("http: { max_request_line: 4KiB, max_header_bytes: 32KiB, max_headers: 50, max_head_memory: 16MiB, max_body_memory: 1GiB, send_timeout: 5s }\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (HTTP{MaxRequestLine: 4 << 10, MaxHeaderBytes: 32 << 10, MaxHeaders: 50, MaxHeadMemory: 16 << 20, MaxBodyMemory: 1 << 30, SendTimeout: 5 * time.Second}); cfg.HTTP != want {
		t.Fatalf("http %+v, want %+v", cfg.HTTP, want)
	}
	if cfg, _ := Parse("w.yaml", []byte("listen: :1\n")); cfg.HTTP != (HTTP{}) {
		t.Fatalf("default http %+v, want zero (the listener's defaults)", cfg.HTTP)
	}
	for config, want := range map[string]string{
		"http: { max_headers: 0 }\n":         "w.yaml:1:22: http.max_headers: must be from 1 to 10000, got 0",
		"http: { max_header_bytes: 10 }\n":   "http.max_header_bytes: must be from 256 to 16777216 bytes, got 10",
		"http: { max_head_memory: 1KiB }\n":  "http.max_head_memory: must be from 65536",
		"http: { max_body_memory: 1KiB }\n":  "http.max_body_memory: must be from 65536",
		"http: { max_request_line: lots }\n": "http.max_request_line:",
		"http: { send_timeout: 10ms }\n":     "http.send_timeout: must be from 100ms to 1h, got 10ms",
		"http: { send_timeout: 2 }\n":        `http.send_timeout: must be a duration like "2s"`,
		"http: { max_header_count: 10 }\n":   `unknown field "max_header_count"`,
	} {
		if _, err := Parse("w.yaml", []byte(config)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", config, err, want)
		}
	}
}

// TestAdminConfig: admin as an address or a mapping with its
// authentication; with none set, the token the gateway makes, in
// $WASMESH_HOME or beside the config; the mistakes refused with their place.
func TestAdminConfig(t *testing.T) {
	t.Setenv("WASMESH_HOME", "")
	for config, want := range map[string]AdminAuth{
		"admin: 127.0.0.1:9901\n":                                                       {Generated: true, TokenFile: filepath.Join("conf", ".wasmesh", "admin-token")},
		"admin: { listen: 127.0.0.1:1, token_file: tok }\n":                             {TokenFile: filepath.Join("conf", "tok")},
		"admin: { insecure: true }\n":                                                   {Insecure: true},
		"tls: { spiffe_socket: unix:///x }\nadmin: { allow_ids: [ spiffe://d/ops ] }\n": {AllowIDs: []string{"spiffe://d/ops"}},
	} {
		cfg, err := Parse(filepath.Join("conf", "w.yaml"), []byte(config))
		if err != nil {
			t.Fatalf("%q: %v", config, err)
		}
		if fmt.Sprint(cfg.AdminAuth) != fmt.Sprint(want) {
			t.Errorf("%q: %+v, want %+v", config, cfg.AdminAuth, want)
		}
	}
	t.Setenv("WASMESH_HOME", "/home/w")
	if cfg, _ := Parse("w.yaml", []byte("listen: :1\n")); cfg.AdminAuth.TokenFile != "/home/w/admin-token" || cfg.Admin != DefaultAdmin {
		t.Errorf("with WASMESH_HOME: %+v at %s", cfg.AdminAuth, cfg.Admin)
	}
	for config, want := range map[string]string{
		"admin: { allow_ids: [ spiffe://d/ops ] }\n":                         "admin.allow_ids: needs a tls block",
		"admin: { insecure: true, token_file: t }\n":                         "insecure with token_file or allow_ids",
		"tls: { spiffe_socket: unix:///x }\nadmin: { allow_ids: [ web ] }\n": "admin.allow_ids[0]:",
		"admin: { token: abc }\n":                                            `unknown field "token"`,
		"admin: { listen: nowhere }\n":                                       "must be an address",
	} {
		if _, err := Parse("w.yaml", []byte(config)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", config, err, want)
		}
	}
}

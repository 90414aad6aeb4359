package router

import (
	"net/url"
	"strings"
	"testing"
)

func TestOutboundConfig(t *testing.T) {
	cfg, err := Parse("w.yaml", []byte(`
services:
  users: { versions: [ { path: u.wasm } ] }
  web:
    versions: [ { path: w.wasm } ]
    outbound: [ "wasmesh://users", "https://API.example.com/v1", "http://127.0.0.1:9000" ]
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
	}
	for _, tc := range tests {
		u, _ := url.Parse(tc.target)
		if got := web.AllowsOutbound(u); got != tc.want {
			t.Errorf("AllowsOutbound(%s) = %v, want %v", tc.target, got, tc.want)
		}
	}
	if cfg.Services["users"].AllowsOutbound(&url.URL{Scheme: "wasmesh", Host: "web"}) {
		t.Error("a service without outbound entries allowed a call")
	}
}

func TestOutboundErrors(t *testing.T) {
	tests := []struct{ entry, want string }{
		{`"wasmesh://nope"`, `w.yaml:5:3: services.web.outbound[0]: unknown service "nope"`},
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

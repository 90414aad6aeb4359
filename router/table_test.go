package router

import (
	"errors"
	"fmt"
	"github.com/wasmesh/wasmesh/config"
	"strings"
	"testing"
)

func TestMatchPrecedence(t *testing.T) {
	tests := []struct {
		name    string
		routes  string // YAML list items under routes:, each naming itself
		request []string
		want    string // route name, "" for no match
	}{
		{"exact host beats wildcard", `
  - {name: wild, service: s, match: {host: "*.example.com"}}
  - {name: exact, service: s, match: {host: api.example.com}}`,
			[]string{"GET", "http://api.example.com/"}, "exact"},
		{"wildcard beats no host", `
  - {name: any, service: s, match: {path: /x}}
  - {name: wild, service: s, match: {host: "*.example.com"}}`,
			[]string{"GET", "http://api.example.com/x"}, "wild"},
		{"longer wildcard first", `
  - {name: short, service: s, match: {host: "*.example.com"}}
  - {name: long, service: s, match: {host: "*.eu.example.com"}}`,
			[]string{"GET", "http://a.eu.example.com/"}, "long"},
		{"wildcard matches several labels", `
  - {name: wild, service: s, match: {host: "*.example.com"}}`,
			[]string{"GET", "http://a.b.example.com/"}, "wild"},
		{"wildcard does not match the apex", `
  - {name: wild, service: s, match: {host: "*.example.com"}}`,
			[]string{"GET", "http://example.com/"}, ""},
		{"wildcard needs a dot boundary", `
  - {name: wild, service: s, match: {host: "*.example.com"}}`,
			[]string{"GET", "http://badexample.com/"}, ""},
		{"host is case-insensitive", `
  - {name: exact, service: s, match: {host: API.example.com}}`,
			[]string{"GET", "http://api.EXAMPLE.com/"}, "exact"},
		{"port is ignored", `
  - {name: exact, service: s, match: {host: api.example.com}}`,
			[]string{"GET", "http://api.example.com:8443/"}, "exact"},
		{"trailing dot is ignored", `
  - {name: exact, service: s, match: {host: api.example.com}}`,
			[]string{"GET", "http://api.example.com./"}, "exact"},
		{"IPv6 host with port", `
  - {name: exact, service: s, match: {host: localhost}}
  - {name: any, service: s}`,
			[]string{"GET", "http://[::1]:8080/"}, "any"},
		{"host beats path", `
  - {name: path, service: s, match: {path: /x}}
  - {name: host, service: s, match: {host: a.com}}`,
			[]string{"GET", "http://a.com/x"}, "host"},
		{"exact path beats prefix", `
  - {name: prefix, service: s, match: {path_prefix: /api/health}}
  - {name: exact, service: s, match: {path: /api/health}}`,
			[]string{"GET", "/api/health"}, "exact"},
		{"exact path is exact", `
  - {name: exact, service: s, match: {path: /api/health}}
  - {name: any, service: s}`,
			[]string{"GET", "/api/health/"}, "any"},
		{"longer prefix first", `
  - {name: short, service: s, match: {path_prefix: /api}}
  - {name: long, service: s, match: {path_prefix: /api/v1}}`,
			[]string{"GET", "/api/v1/users"}, "long"},
		{"prefix matches itself", `
  - {name: p, service: s, match: {path_prefix: /api}}`,
			[]string{"GET", "/api"}, "p"},
		{"prefix matches with slash", `
  - {name: p, service: s, match: {path_prefix: /api}}`,
			[]string{"GET", "/api/"}, "p"},
		{"prefix is segment-aware", `
  - {name: p, service: s, match: {path_prefix: /api}}`,
			[]string{"GET", "/apix"}, ""},
		{"trailing slash in prefix is ignored", `
  - {name: p, service: s, match: {path_prefix: /api/}}`,
			[]string{"GET", "/api"}, "p"},
		{"root prefix matches everything", `
  - {name: root, service: s, match: {path_prefix: /}}`,
			[]string{"GET", "/anything/at/all"}, "root"},
		{"prefix beats no path", `
  - {name: any, service: s}
  - {name: root, service: s, match: {path_prefix: /}}`,
			[]string{"GET", "/x"}, "root"},
		{"path beats method", `
  - {name: method, service: s, match: {method: GET}}
  - {name: path, service: s, match: {path_prefix: /a}}`,
			[]string{"GET", "/a"}, "path"},
		{"method beats no method", `
  - {name: any, service: s, match: {path_prefix: /a}}
  - {name: get, service: s, match: {path_prefix: /a, method: get}}`,
			[]string{"GET", "/a"}, "get"},
		{"method must equal", `
  - {name: get, service: s, match: {method: GET}}`,
			[]string{"POST", "/a"}, ""},
		{"method beats headers", `
  - {name: headers, service: s, match: {headers: {a: "1", b: "2"}}}
  - {name: method, service: s, match: {method: GET}}`,
			[]string{"GET", "/", "A: 1", "B: 2"}, "method"},
		{"more headers first", `
  - {name: one, service: s, match: {headers: {x-a: "1"}}}
  - {name: two, service: s, match: {headers: {x-a: "1", x-b: "2"}}}`,
			[]string{"GET", "/", "X-A: 1", "X-B: 2"}, "two"},
		{"header names are case-insensitive", `
  - {name: h, service: s, match: {headers: {X-ENV: prod}}}`,
			[]string{"GET", "/", "x-env: prod"}, "h"},
		{"header values are exact", `
  - {name: h, service: s, match: {headers: {x-env: prod}}}`,
			[]string{"GET", "/", "X-Env: Prod"}, ""},
		{"any header value may match", `
  - {name: h, service: s, match: {headers: {x-env: prod}}}`,
			[]string{"GET", "/", "X-Env: dev", "X-Env: prod"}, "h"},
		{"missing header", `
  - {name: h, service: s, match: {headers: {x-env: prod}}}`,
			[]string{"GET", "/"}, ""},
		{"file order breaks ties", `
  - {name: first, service: s, match: {headers: {x-a: "1"}}}
  - {name: second, service: s, match: {headers: {x-b: "1"}}}`,
			[]string{"GET", "/", "X-A: 1", "X-B: 1"}, "first"},
		{"no routes match", `
  - {name: a, service: s, match: {path: /a}}`,
			[]string{"GET", "/b"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := mustTable(t, "services:\n  s:\n    versions: [{path: s.wasm}]\nroutes:"+tt.routes+"\n")
			route, svc, ok := tab.Match(request(tt.request[0], tt.request[1], tt.request[2:]...))
			got := ""
			if ok {
				got = route.Name
				if svc != tab.Config().Services["s"] {
					t.Errorf("service = %v", svc)
				}
			}
			if got != tt.want {
				t.Errorf("Match(%v) = %q, want %q", tt.request, got, tt.want)
			}
		})
	}
}

func TestRoutesOrder(t *testing.T) {
	tab := mustTable(t, `services:
  s: {versions: [{path: s.wasm}]}
routes:
  - {name: any, service: s}
  - {name: prefix, service: s, match: {path_prefix: /a}}
  - {name: exact, service: s, match: {path: /a}}
  - {name: host, service: s, match: {host: a.com}}
`)
	var names []string
	for _, r := range tab.Routes() {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, " "); got != "host exact prefix any" {
		t.Errorf("Routes() = %s", got)
	}
	tab.Routes()[0] = nil // a copy: must not change the table
	if tab.Routes()[0] == nil {
		t.Error("Routes returned the table's own slice")
	}
}

func TestRewrite(t *testing.T) {
	tests := []struct {
		prefix string
		strip  bool
		path   string
		want   string
	}{
		{"/hello", true, "/hello", "/"},
		{"/hello", true, "/hello/", "/"},
		{"/hello", true, "/hello/x/y", "/x/y"},
		{"/hello", true, "/hellox", "/hellox"},
		{"/hello", true, "/other", "/other"},
		{"/hello", false, "/hello/x", "/hello/x"},
		{"/", true, "/x", "/x"},
		{"", true, "/x", "/x"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s,%v,%s", tt.prefix, tt.strip, tt.path), func(t *testing.T) {
			r := &config.Route{StripPrefix: tt.strip, Match: config.Match{PathPrefix: tt.prefix}}
			if got := r.Rewrite(tt.path); got != tt.want {
				t.Errorf("Rewrite(%q) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

func TestNewTableErrors(t *testing.T) {
	cfg := mustParse(t, `services:
  a:
    versions:
      - module: sha256:aaaaaaaa
        weight: 50
      - path: missing.wasm
        weight: 50
  b:
    versions:
      - path: b.wasm
        weight: 50
      - path: ./b.wasm
        weight: 50
`)
	errMissing := errors.New("no such file")
	resolve := func(v *config.Version) (string, error) {
		switch v.Path {
		case "missing.wasm":
			return "", errMissing
		case "b.wasm", "./b.wasm":
			return "sha256:" + strings.Repeat("b", 64), nil
		}
		return "sha256:" + strings.Repeat("c", 64), nil // not the module's prefix
	}
	_, err := NewTable(cfg, resolve)
	want := []string{
		`wasmesh.yaml:4:17: services.a.versions[0].module: resolved to sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc, which does not start with sha256:aaaaaaaa`,
		`wasmesh.yaml:6:15: services.a.versions[1].path: no such file`,
		`wasmesh.yaml:12:15: services.b.versions[1].path: resolves to the same module as services.b.versions[0].path (sha256:bbbbbbbbbbbb)`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("NewTable error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	if !errors.Is(err, errMissing) {
		t.Error("resolver's error is not reachable with errors.Is")
	}
	if v := cfg.Services["b"].Versions[0]; v.Digest != "" {
		t.Errorf("Digest set despite errors: %q", v.Digest)
	}

	bad := func(*config.Version) (string, error) { return "sha256:ABC", nil }
	if _, err := NewTable(mustParse(t, svc), bad); err == nil || !strings.Contains(err.Error(), `resolved to "sha256:ABC", want "sha256:" and 64 lowercase hex digits`) {
		t.Errorf("bad digest: %v", err)
	}
}

// TestNewTableKeepsConfig checks that NewTable leaves the config it is given
// as it was and routes by a copy whose versions carry their digests.
func TestNewTableKeepsConfig(t *testing.T) {
	cfg := mustParse(t, svc+"routes:\n  - service: hello\n")
	tab, err := NewTable(cfg, fakeDigest)
	if err != nil {
		t.Fatal(err)
	}
	if d := cfg.Services["hello"].Versions[0].Digest; d != "" {
		t.Errorf("NewTable set the given config's Digest to %q", d)
	}
	want, _ := fakeDigest(cfg.Services["hello"].Versions[0])
	if d := tab.Config().Services["hello"].Versions[0].Digest; d != want {
		t.Errorf("table's config has Digest %q, want %q", d, want)
	}
	_, s, ok := tab.Match(request("GET", "/"))
	if !ok || s != tab.Config().Services["hello"] {
		t.Errorf("Match returned %p, want the table's own service %p", s, tab.Config().Services["hello"])
	}
}

func TestNewTableNilResolve(t *testing.T) {
	cfg := mustParse(t, svc)
	if _, err := NewTable(cfg, nil); err == nil {
		t.Fatal("NewTable(nil resolve) accepted a version without Digest")
	}
	cfg.Services["hello"].Versions[0].Digest = "sha256:" + strings.Repeat("0", 64)
	if _, err := NewTable(cfg, nil); err != nil {
		t.Fatal(err)
	}
}

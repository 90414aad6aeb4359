package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// svc is a valid service block for building bad configs around.
const svc = `services:
  hello:
    versions:
      - path: hello.wasm
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // one substring per error line, in order
	}{
		{"unknown top-level field", "listen: \":80\"\nadmin: off\nservics: {}\n",
			[]string{`wasmesh.yaml:3:1: unknown field "servics" (did you mean "services"?)`}},
		{"unknown nested field", svc + "        wieght: 5\n",
			[]string{`wasmesh.yaml:5:9: services.hello.versions[0]: unknown field "wieght" (did you mean "weight"?)`}},
		{"duplicate top-level key", "listen: \":80\"\nlisten: \":81\"\n",
			[]string{`wasmesh.yaml:2:1: duplicate key "listen" (first at line 1)`}},
		{"duplicate service", svc + "  hello:\n    versions: [{path: x.wasm}]\n",
			[]string{`wasmesh.yaml:5:3: services: duplicate key "hello" (first at line 2)`}},
		{"invalid UTF-8", "listen: \":80\"\n# caf\xe9\nadmin: off\n",
			[]string{`wasmesh.yaml:2:6: invalid UTF-8 (byte 0xe9)`}},
		{"syntax error", "services:\n  hello: [\n",
			[]string{`wasmesh.yaml:2: did not find expected node content`}},
		{"unclosed flow mapping", "listen: \":80\"\nadmin: off\nstore: s\nhealth: {x: /y?z}\n",
			[]string{`wasmesh.yaml:4: did not find expected ',' or '}'`}},
		{"unclosed flow sequence", "listen: \":80\"\nadmin: off\nservices: [1, 2\n",
			[]string{`wasmesh.yaml:3: did not find expected ',' or ']'`}},
		{"bad indentation", "listen: \":80\"\nservices:\n  - x\n y: 2\n",
			[]string{`wasmesh.yaml:4: did not find expected key`}},
		{"unclosed flow mapping on the first line", "services: {a: [1}\n",
			[]string{`wasmesh.yaml:1: did not find expected ',' or ']'`}},
		{"env names, each at its key", "services:\n  s:\n    versions: [{path: x.wasm}]\n    env: { A: 1,\n      HTTP_X: 2, \"B=C\": 3 }\n",
			[]string{`wasmesh.yaml:5:7: services.s.env: "HTTP_X" is set by the gateway`, `wasmesh.yaml:5:18: services.s.env: invalid variable name "B=C"`}},
		{"a link to no service, at its interface", "services:\n  s:\n    versions: [{path: x.wasm}]\n    links:\n      \"example:crypto/hash\": nope\n",
			[]string{`wasmesh.yaml:5:7: services.s.links["example:crypto/hash"]: unknown service "nope"`}},
		{"tab indentation", "services:\n\thello: {}\n",
			[]string{`wasmesh.yaml:2: found character that cannot start any token`}},
		{"two documents", svc + "---\nlisten: \":80\"\n",
			[]string{`wasmesh.yaml:5:1: only one YAML document is allowed`}},
		{"top level not a mapping", "- a\n- b\n",
			[]string{`wasmesh.yaml:1:1: must be a mapping, got a list`}},
		{"merge key", "x: &x {listen: \":1\"}\n<<: *x\n",
			[]string{`wasmesh.yaml:1:1: unknown field "x"`, `wasmesh.yaml:2:1: merge keys (<<) are not supported`}},
		{"weight out of range", `services:
  hello:
    versions:
      - module: sha256:4f9c0a1b
        weight: 90
      - path: hello.wasm
        weight: 140
`, []string{`wasmesh.yaml:7:17: services.hello.versions[1].weight: must be between 0 and 100, got 140`}},
		{"weight wrong type", `services:
  hello:
    versions:
      - module: sha256:4f9c0a1b
        weight: "90"
      - path: hello.wasm
        weight: 10.5
`, []string{
			`wasmesh.yaml:5:17: services.hello.versions[0].weight: must be an integer, got "90"`,
			`wasmesh.yaml:7:17: services.hello.versions[1].weight: must be an integer, got "10.5"`}},
		{"weights sum", `services:
  hello:
    versions:
      - module: sha256:4f9c0a1b
        weight: 80
      - path: hello.wasm
        weight: 10
`, []string{`wasmesh.yaml:2:3: services.hello: weights sum to 90, want 100`}},
		{"lone version with weight below 100", svc + "        weight: 50\n",
			[]string{`wasmesh.yaml:2:3: services.hello: weights sum to 50, want 100`}},
		{"missing weight", `services:
  hello:
    versions:
      - module: sha256:4f9c0a1b
      - path: hello.wasm
        weight: 100
`, []string{`wasmesh.yaml:4:17: services.hello.versions[0]: missing field "weight" (required when a service has more than one version)`}},
		{"module and path", svc + "        module: sha256:4f9c0a1b\n",
			[]string{`wasmesh.yaml:4:9: services.hello.versions[0]: set only one of module, path or upstream`}},
		{"neither module nor path", "services:\n  hello:\n    versions:\n      - name: x\n",
			[]string{`wasmesh.yaml:4:9: services.hello.versions[0]: missing field "module", "path" or "upstream"`}},
		{"version not a mapping", "services:\n  hello:\n    versions:\n      - hello.wasm\n",
			[]string{`wasmesh.yaml:4:9: services.hello.versions[0]: must be a mapping with "module" or "path", got "hello.wasm"`}},
		{"bad module", "services:\n  hello:\n    versions:\n      - module: sha256:4F9C\n",
			[]string{`wasmesh.yaml:4:17: services.hello.versions[0].module: must be sha256: and 8 to 64 lowercase hex digits, or oci://registry/repository@sha256:<64 hex>, got "sha256:4F9C"`}},
		{"oci module with a tag", "services:\n  hello:\n    versions:\n      - module: oci://ghcr.io/acme/hello:v1\n",
			[]string{`wasmesh.yaml:4:17: services.hello.versions[0].module: oci://ghcr.io/acme/hello:v1 names no digest: a config must pin content, so write oci://ghcr.io/acme/hello@sha256:<64 hex> (wasmesh artifact push prints it)`}},
		{"oci module without a reference", "services:\n  hello:\n    versions:\n      - module: oci://ghcr.io/acme/hello\n",
			[]string{`wasmesh.yaml:4:17: services.hello.versions[0].module: oci://ghcr.io/acme/hello names no digest`}},
		{"oci module malformed", "services:\n  hello:\n    versions:\n      - module: oci://ghcr.io/Acme@sha256:12\n",
			[]string{`wasmesh.yaml:4:17: services.hello.versions[0].module: invalid OCI reference "oci://ghcr.io/Acme@sha256:12"`}},
		{"registry name", "registries:\n  https://ghcr.io: { plain_http: true }\n",
			[]string{`wasmesh.yaml:2:3: registries: invalid registry "https://ghcr.io": want a host with an optional port`}},
		{"registry field", "registries:\n  127.0.0.1:5000: { plain_htp: true }\n",
			[]string{`wasmesh.yaml:2:21: registries.127.0.0.1:5000: unknown field "plain_htp" (did you mean "plain_http"?)`}},
		{"registry plain_http type", "registries:\n  127.0.0.1:5000: { plain_http: yes please }\n",
			[]string{`wasmesh.yaml:2:33: registries.127.0.0.1:5000.plain_http: must be`}},
		{"no versions", "services:\n  hello:\n    versions: []\n",
			[]string{`wasmesh.yaml:3:15: services.hello.versions: must list at least one version`}},
		{"missing versions", "services:\n  hello: {}\n",
			[]string{`wasmesh.yaml:2:3: services.hello: missing field "versions"`}},
		{"versions not a list", "services:\n  hello:\n    versions: {path: x.wasm}\n",
			[]string{`wasmesh.yaml:3:15: services.hello.versions: must be a list, got a mapping`}},
		{"duplicate version name", `services:
  hello:
    versions:
      - {module: sha256:4f9c0a1b, weight: 50, name: a}
      - {path: hello.wasm, weight: 50, name: a}
`, []string{`wasmesh.yaml:5:16: services.hello.versions[1].name: duplicate version name "a"`}},
		{"same module twice", `services:
  hello:
    versions:
      - {module: sha256:4f9c0a1b, weight: 50}
      - {module: sha256:4f9c0a1b, weight: 50}
`, []string{`wasmesh.yaml:5:18: services.hello.versions[1].module: "sha256:4f9c0a1b" is listed twice`}},
		{"bad service name", "services:\n  hello world:\n    versions: [{path: x.wasm}]\n",
			[]string{`wasmesh.yaml:2:3: services: invalid service name "hello world"`}},
		{"bad sticky", svc + "    sticky: query:user\n",
			[]string{`wasmesh.yaml:5:13: services.hello.sticky: must be "header:<name>" or "cookie:<name>", got "query:user"`}},
		{"sticky without name", svc + "    sticky: \"cookie:\"\n",
			[]string{`wasmesh.yaml:5:13: services.hello.sticky: must be "header:<name>" or "cookie:<name>", got "cookie:"`}},
		{"pin_header not bool", svc + "    pin_header: yes\n",
			[]string{`wasmesh.yaml:5:17: services.hello.pin_header: must be true or false, got "yes"`}},
		{"bad size", svc + "    limits: { memory: 32MB8 }\n",
			[]string{`wasmesh.yaml:5:23: services.hello.limits.memory: invalid size "32MB8": want a whole number of bytes`}},
		{"memory too small", svc + "    limits: { memory: 1KiB }\n",
			[]string{`wasmesh.yaml:5:23: services.hello.limits.memory: must be between 64KiB and 4GiB, got 1KiB`}},
		{"bad duration", svc + "    limits: { timeout: 2 }\n",
			[]string{`wasmesh.yaml:5:24: services.hello.limits.timeout: must be a duration like "2s" or "150ms", got "2"`}},
		{"zero timeout", svc + "    limits: { timeout: 0s }\n",
			[]string{`wasmesh.yaml:5:24: services.hello.limits.timeout: must be greater than 0`}},
		{"negative drain", "drain_delay: -1s\n",
			[]string{`wasmesh.yaml:1:14: drain_delay: must not be negative, got -1s`}},
		{"negative concurrency", svc + "    limits: { max_concurrency: -1 }\n",
			[]string{`wasmesh.yaml:5:32: services.hello.limits.max_concurrency: must not be negative, got -1`}},
		{"queue without concurrency", svc + "    limits: { max_queue: 5 }\n",
			[]string{`wasmesh.yaml:5:15: services.hello.limits.max_queue: needs max_concurrency to be set`}},
		{"warmup not a path", svc + "    warmup: healthz\n",
			[]string{`wasmesh.yaml:5:13: services.hello.warmup: must be a path starting with /, got "healthz"`}},
		{"unknown limit", svc + "    limits: { cpu: 1 }\n",
			[]string{`wasmesh.yaml:5:15: services.hello.limits: unknown field "cpu"`}},
		{"env value not scalar", svc + "    env: { A: [1] }\n",
			[]string{`wasmesh.yaml:5:15: services.hello.env.A: must be a string, got a list`}},
		{"null string", "listen:\n",
			[]string{`wasmesh.yaml:1:8: listen: must be a string, got null`}},
		{"bad listen", "listen: 8080\n",
			[]string{`wasmesh.yaml:1:9: listen: must be an address like ":8080" or "127.0.0.1:9901", got "8080"`}},
		{"bad admin", "admin: \"\"\n",
			[]string{`wasmesh.yaml:1:8: admin: must be an address like ":8080" or "127.0.0.1:9901" or "off", got ""`}},
		{"unknown service", svc + "routes:\n  - match: { path: /x }\n    service: helo\n",
			[]string{`wasmesh.yaml:7:14: routes[0].service: unknown service "helo" (did you mean "hello"?)`}},
		{"missing route service", svc + "routes:\n  - match: { path: /x }\n",
			[]string{`wasmesh.yaml:6:5: routes[0]: missing field "service"`}},
		{"route not a mapping", svc + "routes:\n  - hello\n",
			[]string{`wasmesh.yaml:6:5: routes[0]: must be a mapping, got "hello"`}},
		{"duplicate route name", svc + "routes:\n  - {name: a, service: hello, match: {path: /a}}\n  - {name: a, service: hello}\n",
			[]string{`wasmesh.yaml:7:12: routes[1].name: duplicate route name "a" (also routes[0])`}},
		{"default names collide", svc + "routes:\n  - {name: \"1:hello\", service: hello, match: {path: /a}}\n  - {service: hello}\n",
			[]string{`wasmesh.yaml:7:5: routes[1].name: duplicate route name "1:hello" (also routes[0])`}},
		{"same match", svc + "routes:\n  - {service: hello, match: {path: /a, headers: {X-A: b}}}\n  - {service: hello, match: {headers: {x-a: b}, path: /a}}\n",
			[]string{`wasmesh.yaml:7:5: routes[1].match: same match as routes[0] (host= path=/a path_prefix= method= x-a=b), so it can never be chosen`}},
		{"bad host", svc + "routes:\n  - {service: hello, match: {host: \"api.*.com\"}}\n",
			[]string{`wasmesh.yaml:6:36: routes[0].match.host: invalid host pattern "api.*.com"`}},
		{"host with port", svc + "routes:\n  - {service: hello, match: {host: \"a.com:80\"}}\n",
			[]string{`routes[0].match.host: invalid host pattern "a.com:80"`}},
		{"bare wildcard host", svc + "routes:\n  - {service: hello, match: {host: \"*\"}}\n",
			[]string{`routes[0].match.host: invalid host pattern "*"`}},
		{"relative path", svc + "routes:\n  - {service: hello, match: {path: api}}\n",
			[]string{`wasmesh.yaml:6:36: routes[0].match.path: must start with "/" and have no query, got "api"`}},
		{"relative prefix", svc + "routes:\n  - {service: hello, match: {path_prefix: api}}\n",
			[]string{`wasmesh.yaml:6:43: routes[0].match.path_prefix: must start with "/" and have no query, got "api"`}},
		{"path with query", svc + "routes:\n  - {service: hello, match: {path: \"/a?b=c\"}}\n",
			[]string{`routes[0].match.path: must start with "/" and have no query, got "/a?b=c"`}},
		{"path and prefix", svc + "routes:\n  - service: hello\n    match:\n      path: /a\n      path_prefix: /b\n",
			[]string{`wasmesh.yaml:9:7: routes[0].match: set only one of path or path_prefix`}},
		{"strip without prefix", svc + "routes:\n  - service: hello\n    strip_prefix: true\n    match: {path: /a}\n",
			[]string{`wasmesh.yaml:7:5: routes[0].strip_prefix: needs match.path_prefix`}},
		{"bad method", svc + "routes:\n  - {service: hello, match: {method: \"GET POST\"}}\n",
			[]string{`wasmesh.yaml:6:38: routes[0].match.method: invalid method "GET POST"`}},
		{"bad header name", svc + "routes:\n  - {service: hello, match: {headers: {\"x y\": z}}}\n",
			[]string{`routes[0].match.headers: invalid header name "x y"`}},
		{"duplicate header after lowercasing", svc + "routes:\n  - {service: hello, match: {headers: {X-A: b, x-a: c}}}\n",
			[]string{`wasmesh.yaml:6:48: routes[0].match.headers: duplicate key "x-a"`}},
		{"routes not a list", svc + "routes: {}\n",
			[]string{`wasmesh.yaml:5:9: routes: must be a list, got a mapping`}},
		{"non-string key", "? [a]\n: b\n",
			[]string{`wasmesh.yaml:1:3: keys must be strings, got a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("wasmesh.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error %d is\n%s\nwant it to contain\n%s", i, lines[i], w)
				}
			}
		})
	}
}

// TestParseCollectsAllErrors checks that every problem is reported, sorted by
// line, each as an *Error.
func TestParseCollectsAllErrors(t *testing.T) {
	src := `routes:
  - service: nope
services:
  hello:
    versions:
      - path: a.wasm
        weight: 101
    limits: { timeout: soon }
listen: nowhere
`
	_, err := Parse("w.yaml", []byte(src))
	want := []string{
		`w.yaml:2:14: routes[0].service: unknown service "nope"`,
		`w.yaml:7:17: services.hello.versions[0].weight: must be between 0 and 100, got 101`,
		`w.yaml:8:24: services.hello.limits.timeout: must be a duration like "2s" or "150ms", got "soon"`,
		`w.yaml:9:9: listen: must be an address like ":8080" or "127.0.0.1:9901", got "nowhere"`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("got\n%v\nwant\n%s", err, strings.Join(want, "\n"))
	}
	var e *Error
	if !errors.As(err, &e) || e.File != "w.yaml" || e.Line != 2 || e.Column != 14 || e.Field != "routes[0].service" {
		t.Errorf("errors.As = %+v", e)
	}
}

// TestParseAliasBomb: aliases that expand a small file to millions of
// nodes are refused at once, naming the alias; a config that aliases a
// shared block, as configs do, is not.
func TestParseAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("services:\n  s0: &svc\n    versions: [ { path: a.wasm } ]\n    env: {")
	for i := range 1000 {
		fmt.Fprintf(&b, " K%d: v,", i)
	}
	b.WriteString(" }\n")
	for i := 1; i < 1000; i++ {
		fmt.Fprintf(&b, "  s%d: *svc\n", i)
	}
	b.WriteString("routes: [ { match: { path_prefix: / }, service: s0 } ]\n")
	start := time.Now()
	_, err := Parse("w.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "aliases expand the config to") || !strings.HasPrefix(err.Error(), "w.yaml:5:") {
		t.Fatalf("an alias bomb (2 M nodes from 2,000 written): %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refusing it took %s", d)
	}

	b.Reset()
	b.WriteString("services:\n  s0: { versions: [ { path: a.wasm } ], limits: &limits { timeout: 2s, max_body: 1MiB } }\n")
	for i := 1; i < 1000; i++ {
		fmt.Fprintf(&b, "  s%d: { versions: [ { path: a.wasm } ], limits: *limits }\n", i)
	}
	b.WriteString("routes: [ { match: { path_prefix: / }, service: s0 } ]\n")
	if _, err := Parse("w.yaml", []byte(b.String())); err != nil {
		t.Errorf("a shared limits block: %v", err)
	}
}

func TestParseDefaults(t *testing.T) {
	t.Setenv("WASMESH_HOME", "")
	cfg := mustParse(t, svc)
	s := cfg.Services["hello"]
	want := Limits{Memory: 64 << 20, MaxBody: 4 << 20, Timeout: 10 * time.Second}
	switch {
	case cfg.Listen != ":8080", cfg.Admin != "127.0.0.1:9901":
		t.Errorf("addresses = %q, %q", cfg.Listen, cfg.Admin)
	case cfg.Store != filepath.Join(".", ".wasmesh/store"), cfg.Dir != ".":
		t.Errorf("store = %q, dir = %q", cfg.Store, cfg.Dir)
	case cfg.DrainDelay != 5*time.Second, cfg.DrainTimeout != 30*time.Second:
		t.Errorf("drain = %v, %v", cfg.DrainDelay, cfg.DrainTimeout)
	case s.Limits != want:
		t.Errorf("limits = %+v, want %+v", s.Limits, want)
	case !s.PinHeader, s.Sticky != (Sticky{}), s.Versions[0].Weight != 100:
		t.Errorf("service = %+v", s)
	case string(cfg.Raw) != svc:
		t.Errorf("Raw = %q", cfg.Raw)
	}
}

func TestParseValues(t *testing.T) {
	tests := []struct {
		name, src string
		check     func(*Config) bool
	}{
		{"admin off", "admin: off\n", func(c *Config) bool { return c.Admin == "" }},
		{"store relative to dir", "store: s\n", func(c *Config) bool { return c.Store == filepath.Join("conf", "s") }},
		{"store absolute", "store: /var/s/\n", func(c *Config) bool { return c.Store == "/var/s" }},
		{"drain zero", "drain_delay: 0s\ndrain_timeout: 150ms\n", func(c *Config) bool {
			return c.DrainDelay == 0 && c.DrainTimeout == 150*time.Millisecond
		}},
		{"queue defaults to twice concurrency", svc + "    limits: { max_concurrency: 8 }\n", func(c *Config) bool {
			return c.Services["hello"].Limits.MaxQueue == 16
		}},
		{"queue zero", svc + "    limits: { max_concurrency: 8, max_queue: 0 }\n", func(c *Config) bool {
			return c.Services["hello"].Limits.MaxQueue == 0
		}},
		{"sizes as numbers", svc + "    limits: { memory: 65536, max_body: 64MB }\n", func(c *Config) bool {
			l := c.Services["hello"].Limits
			return l.Memory == 65536 && l.MaxBody == 64e6
		}},
		{"env scalars as text", svc + "    env: { A: 3, B: true, C: \"\" }\n", func(c *Config) bool {
			e := c.Services["hello"].Env
			return e["A"] == "3" && e["B"] == "true" && e["C"] == "" && len(e) == 3
		}},
		{"cookie sticky", svc + "    sticky: cookie:session\n", func(c *Config) bool {
			return c.Services["hello"].Sticky == Sticky{"cookie", "session"}
		}},
		{"pin header off", svc + "    pin_header: false\n", func(c *Config) bool { return !c.Services["hello"].PinHeader }},
		{"warmup", svc + "    warmup: /healthz?deep=1\n", func(c *Config) bool { return c.Services["hello"].Warmup == "/healthz?deep=1" }},
		{"aliases", "x: &v [{path: a.wasm}]\n", nil},
		{"aliases resolved", "services:\n  a: {versions: &v [{path: a.wasm}]}\n  b: {versions: *v}\n", func(c *Config) bool {
			return c.Services["b"].Versions[0].Path == "a.wasm"
		}},
		{"route defaults", svc + "routes:\n  - service: hello\n    match: { host: API.Example.COM, path_prefix: /v1/, method: get, headers: { X-Env: prod } }\n",
			func(c *Config) bool {
				r := c.Routes[0]
				m := r.Match
				return r.Name == "0:hello" && r.Line == 6 && m.Host == "api.example.com" && m.PathPrefix == "/v1" &&
					m.Method == "GET" && m.Headers["x-env"] == "prod"
			}},
		{"version path", svc, func(c *Config) bool {
			v := c.Services["hello"].Versions[0]
			return v.AbsPath() == filepath.Join("conf", "hello.wasm") && v.Line == 4
		}},
		{"oci module", "services:\n  hello:\n    versions:\n      - module: oci://127.0.0.1:5000/hello@sha256:" + strings.Repeat("0a", 32) + "\n",
			func(c *Config) bool {
				v := c.Services["hello"].Versions[0]
				return v.IsOCI() && v.Module == "oci://127.0.0.1:5000/hello@sha256:"+strings.Repeat("0a", 32)
			}},
		{"registries", "registries:\n  127.0.0.1:5000: { plain_http: true }\n  ghcr.io: {}\n", func(c *Config) bool {
			return len(c.Registries) == 2 && c.Registries["127.0.0.1:5000"].PlainHTTP && !c.Registries["ghcr.io"].PlainHTTP
		}},
		{"no registries", "", func(c *Config) bool { return c.Registries != nil && len(c.Registries) == 0 }},
		{"empty file", "", func(c *Config) bool { return len(c.Services) == 0 && c.Listen == ":8080" }},
		{"comments only", "# nothing\n", func(c *Config) bool { return len(c.Routes) == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("WASMESH_HOME", "")
			cfg, err := Parse("conf/wasmesh.yaml", []byte(tt.src))
			if tt.check == nil {
				if err == nil {
					t.Fatal("Parse succeeded, want error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("unexpected config: %+v", cfg)
			}
		})
	}
}

func TestStoreFromEnv(t *testing.T) {
	t.Setenv("WASMESH_HOME", "/srv/wasmesh")
	if cfg := mustParse(t, ""); cfg.Store != "/srv/wasmesh/store" {
		t.Errorf("Store = %q, want $WASMESH_HOME/store", cfg.Store)
	}
	if cfg := mustParse(t, "store: here\n"); cfg.Store != "here" {
		t.Errorf("Store = %q, want the file's value", cfg.Store)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wasmesh.yaml")
	if err := os.WriteFile(path, []byte(svc), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dir != dir || cfg.Services["hello"].Versions[0].AbsPath() != filepath.Join(dir, "hello.wasm") {
		t.Errorf("Dir = %q, AbsPath = %q", cfg.Dir, cfg.Services["hello"].Versions[0].AbsPath())
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v", err)
	}
	if err := os.WriteFile(path, []byte("bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), path+":1:1: ") {
		t.Errorf("Load(bad) = %v, want an error naming %s", err, path)
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"65536", 65536, ""},
		{"0", 0, ""},
		{"32MiB", 32 << 20, ""},
		{"4MiB", 4 << 20, ""},
		{"512KiB", 512 << 10, ""},
		{"1GiB", 1 << 30, ""},
		{"2TiB", 2 << 40, ""},
		{"64MB", 64e6, ""},
		{"1KB", 1000, ""},
		{"3GB", 3e9, ""},
		{"10B", 10, ""},
		{"32 MiB", 32 << 20, ""},
		{"", 0, "want a number of bytes"},
		{"MiB", 0, "want a number of bytes"},
		{"32mib", 0, `unknown unit "mib"`},
		{"32XB", 0, `unknown unit "XB"`},
		{"1.5GiB", 0, "want a whole number"},
		{"-1", 0, "want a whole number"},
		{"+1", 0, "want a whole number"},
		{"32  MiB", 0, `unknown unit " MiB"`},
		{"9223372036854775807", 1<<63 - 1, ""},
		{"9223372036854775808", 0, "below 2^63"},
		{"8388608TiB", 0, "below 2^63"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), `"`+tt.in+`"`) {
					t.Fatalf("ParseSize(%q) = %d, %v; want error with %q and the input", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	for _, tt := range []struct {
		src  string
		want bool
	}{
		{"", true},
		{"\n \t\n", true},
		{"# a comment\n  # another\n", true},
		{"services: {}\n", false},
		{"# header\nlisten: :8080\n", false},
		// A null document, which parses as a config of defaults too.
		{"---\n", true},
		{"--- # generated\n# by a tool\n", true},
		{"---\n...\n", true},
		{"~\n", true},
		{"--- null\n", true},
		{"---\nservices: {}\n", false},
		{"--- {services: {}}\n", false},
		{"---x\n", false},
		{"nullable: true\n", false},
		{"{}\n", false}, // a mapping, if empty: written as it is
	} {
		if got := Empty([]byte(tt.src)); got != tt.want {
			t.Errorf("Empty(%q) = %v, want %v", tt.src, got, tt.want)
		}
	}
}

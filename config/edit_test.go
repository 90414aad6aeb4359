package config

import (
	"github.com/wasmesh/wasmesh/internal/testutil"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestSetVersions(t *testing.T) {
	input, err := os.ReadFile("testdata/edit/input.yaml")
	if err != nil {
		t.Fatal(err)
	}
	digest := "sha256:648131c71f12ac57c7834a8661c8bbda3ae4461e2a4a477377dcda8372a57dc9"
	tests := []struct {
		name     string
		service  string
		versions []*Version
	}{
		{"promote", "hello", []*Version{
			{Module: "sha256:4f9c0a1b", Weight: 0},
			{Path: "../examples/hello/zig/hello.wasm", Digest: digest, Name: "canary", Weight: 100},
		}},
		{"flow", "other", []*Version{
			{Module: "sha256:abcdef12", Weight: 80},
			{Path: "true", Weight: 20, Name: "odd-path"}, // must stay a string
		}},
		{"rollback", "hello", []*Version{{Module: "sha256:4f9c0a1b", Weight: 100}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := SetVersions(input, tt.service, tt.versions)
			if err != nil {
				t.Fatal(err)
			}
			testutil.CompareGolden(t, "testdata/edit/"+tt.name+".golden", out)

			// Every comment outside the replaced list survives.
			for _, c := range []string{"# wasmesh config for the demo cluster.", "# public port", "# The greeting service.",
				"# Versions are managed by `wasmesh deploy`.", "# Keep users on one version.", "# the main route", "# catch-all",
				"# More routes go here.", "# end of file"} {
				if !strings.Contains(string(out), c) {
					t.Errorf("comment %q lost", c)
				}
			}

			// The result parses to the input's config with the versions replaced.
			want := mustParse(t, string(input))
			var vs []*Version
			for _, v := range tt.versions {
				v := *v
				if v.Digest != "" {
					v.Module, v.Path, v.Digest = v.Digest, "", ""
				}
				vs = append(vs, &v)
			}
			want.Services[tt.service].Versions = vs
			got := mustParse(t, string(out))
			if a, b := comparable(want), comparable(got); !reflect.DeepEqual(a, b) {
				t.Errorf("re-parsed config differs:\ngot  %+v\nwant %+v", b, a)
			}
		})
	}
}

// comparable strips what legitimately differs between two configs with the
// same meaning: positions and raw bytes.
func comparable(c *Config) Config {
	out := *c
	out.Raw = nil
	out.Services = map[string]*Service{}
	for name, s := range c.Services {
		s2 := *s
		s2.Line, s2.col, s2.Versions = 0, 0, nil
		for _, v := range s.Versions {
			v2 := Version{Module: v.Module, Path: v.Path, Name: v.Name, Weight: v.Weight}
			s2.Versions = append(s2.Versions, &v2)
		}
		out.Services[name] = &s2
	}
	out.Routes = nil
	for _, r := range c.Routes {
		r2 := *r
		r2.Line, r2.col, r2.name, r2.service = 0, 0, pos{}, pos{}
		out.Routes = append(out.Routes, &r2)
	}
	return out
}

func TestSetVersionsErrors(t *testing.T) {
	tests := []struct {
		name, src, service string
		versions           []*Version
		want               string
	}{
		{"unknown service", svc, "nope", []*Version{{Path: "a.wasm", Weight: 100}}, `unknown service "nope"`},
		{"empty file", "", "hello", []*Version{{Path: "a.wasm", Weight: 100}}, `unknown service "hello"`},
		{"no source", svc, "hello", []*Version{{Weight: 100}}, "versions[0]: no digest, module or path"},
		{"bad weights", svc, "hello", []*Version{{Path: "a.wasm", Weight: 90}}, "edited config would be invalid: 2:3: services.hello: weights sum to 90, want 100"},
		{"syntax error", "services: [\n", "hello", nil, "config:1: did not find expected node content"},
		{"anchored", "services:\n  hello: &h {versions: [{path: a.wasm}]}\n  copy: *h\n", "hello",
			[]*Version{{Path: "b.wasm", Weight: 100}}, `service "hello" is shared through a YAML anchor`},
		{"alias", "services:\n  hello: &h {versions: [{path: a.wasm}]}\n  copy: *h\n", "copy",
			[]*Version{{Path: "b.wasm", Weight: 100}}, `service "copy" is shared through a YAML anchor`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := SetVersions([]byte(tt.src), tt.service, tt.versions)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("SetVersions = %q, %v; want error containing %q", out, err, tt.want)
			}
		})
	}
}

func TestSetVersionsAddsMissingKey(t *testing.T) {
	// An invalid config (no versions) can be repaired by SetVersions.
	out, err := SetVersions([]byte("services:\n  hello: {}\n"), "hello", []*Version{{Path: "a.wasm", Weight: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if v := mustParse(t, string(out)).Services["hello"].Versions; len(v) != 1 || v[0].Path != "a.wasm" {
		t.Errorf("got %s", out)
	}
}

// TestSetVersionsKeepsOCI: a version pulled from a registry keeps its
// reference when a release rewrites the list, not the wasm digest.
func TestSetVersionsKeepsOCI(t *testing.T) {
	ref := "oci://127.0.0.1:5000/hello@sha256:" + strings.Repeat("0a", 32)
	wasm := "sha256:" + strings.Repeat("1b", 32)
	in := []byte("services:\n  hello:\n    versions:\n      - module: " + ref + "\n")
	out, err := SetVersions(in, "hello", []*Version{{Module: ref, Digest: wasm, Weight: 90}, {Module: "sha256:4f9c0a1b", Digest: "sha256:4f9c0a1b" + strings.Repeat("0", 56), Weight: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "module: "+ref) || strings.Contains(string(out), wasm) {
		t.Errorf("SetVersions wrote\n%s\nwant the OCI reference kept, not the wasm digest", out)
	}
}

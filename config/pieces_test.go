package config

import (
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/wasmesh/wasmesh/internal/testca"
)

// sameTree reports where a and b, YAML trees, differ in anything the
// decoder reads (everything but comments); "" when they do not.
func sameTree(a, b *yaml.Node, at string) string {
	switch {
	case a == nil && b == nil:
		return ""
	case a == nil || b == nil:
		return fmt.Sprintf("%s: one tree is nil (%v, %v)", at, a == nil, b == nil)
	}
	if a.Kind != b.Kind || a.Style != b.Style || a.Tag != b.Tag || a.Value != b.Value || a.Anchor != b.Anchor ||
		a.Line != b.Line || a.Column != b.Column || len(a.Content) != len(b.Content) {
		return fmt.Sprintf("%s: kind %d/%d style %d/%d tag %q/%q value %q/%q anchor %q/%q at %d:%d/%d:%d, %d/%d children",
			at, a.Kind, b.Kind, a.Style, b.Style, a.Tag, b.Tag, a.Value, b.Value, a.Anchor, b.Anchor,
			a.Line, a.Column, b.Line, b.Column, len(a.Content), len(b.Content))
	}
	if (a.Alias == nil) != (b.Alias == nil) || a.Alias != nil && (a.Alias.Line != b.Alias.Line || a.Alias.Column != b.Alias.Column) {
		return at + ": aliases differ"
	}
	for i := range a.Content {
		if d := sameTree(a.Content[i], b.Content[i], fmt.Sprintf("%s/%d", at, i)); d != "" {
			return d
		}
	}
	return ""
}

// checkParser parses data with p and whole, and fails t unless both give
// the same tree, the same config and the same error.
func checkParser(t *testing.T, p *Parser, data string) {
	t.Helper()
	want, wantErr := decodeYAML("wasmesh.yaml", []byte(data))
	got, gotErr := p.tree("wasmesh.yaml", []byte(data))
	if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
		t.Fatalf("tree: error %v, parsed whole %v\n%s", gotErr, wantErr, data)
	}
	if d := sameTree(got, want, ""); d != "" {
		t.Fatalf("tree differs from the whole parse at %s\n%s", d, data)
	}
	cfg, err := p.Parse("wasmesh.yaml", []byte(data))
	wantCfg, wantErr := Parse("wasmesh.yaml", []byte(data))
	if fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Fatalf("Parse: error %v, parsed whole %v\n%s", err, wantErr, data)
	}
	if !reflect.DeepEqual(cfg, wantCfg) {
		t.Fatalf("Parse: config differs from the whole parse's\n%s", data)
	}
}

// fleet is a config of n services, each a version and a route; the
// services' entries start at line 3.
func fleet(n int, edit func(i int) string) string {
	var b strings.Builder
	b.WriteString("listen: 127.0.0.1:0\nservices:\n")
	for i := range n {
		fmt.Fprintf(&b, "  s%d: { versions: [ { path: m%d.wasm, weight: 100 } ]%s }\n", i, i, edit(i))
	}
	b.WriteString("routes:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - { match: { path_prefix: /s%d/ }, service: s%d }\n", i, i)
	}
	return b.String()
}

func noEdit(int) string { return "" }

func TestParserParsesWhatChanged(t *testing.T) {
	var p Parser
	checkParser(t, &p, fleet(100, noEdit))
	if p.whole != 1 || p.parsed != 0 {
		t.Fatalf("first parse: %d whole, %d pieces; want it whole", p.whole, p.parsed)
	}
	sticky := func(i int) string {
		if i == 7 {
			return `, sticky: "header:x-user"`
		}
		return ""
	}
	checkParser(t, &p, fleet(100, sticky))
	if p.whole != 1 || p.parsed != 1 {
		t.Fatalf("one service changed: %d whole, %d pieces; want one piece", p.whole, p.parsed)
	}
	// A service inserted first moves every line after it: the pieces are
	// reused at their new lines, and only the new one parsed.
	checkParser(t, &p, strings.Replace(fleet(100, sticky), "services:\n", "services:\n  new: { versions: [ { path: n.wasm } ] }\n", 1))
	if p.whole != 1 || p.parsed != 2 {
		t.Fatalf("a service inserted: %d whole, %d pieces; want one more piece", p.whole, p.parsed)
	}
	// Most of it changed: parsed whole.
	checkParser(t, &p, fleet(100, func(i int) string { return fmt.Sprintf(", pin_header: x-%d", i) }))
	if p.whole != 2 {
		t.Fatalf("every service changed: %d whole parses, want 2", p.whole)
	}
}

// TestParserKeepsDecodedServices: a reparse that changes one service
// decodes that one; the others, and the routes, are the values the last
// parse made.
func TestParserKeepsDecodedServices(t *testing.T) {
	var p Parser
	first, err := p.Parse("wasmesh.yaml", []byte(fleet(50, noEdit)))
	if err != nil {
		t.Fatal(err)
	}
	sticky := func(i int) string {
		if i == 7 {
			return `, sticky: "header:x-user"`
		}
		return ""
	}
	checkParser(t, &p, fleet(50, sticky))
	next, err := p.Parse("wasmesh.yaml", []byte(fleet(50, sticky)))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range next.Services {
		if kept := first.Services[name] == s; kept == (name == "s7") {
			t.Errorf("service %s: kept %v, want the changed one alone decoded again", name, kept)
		}
	}
	for i, r := range next.Routes {
		if r != first.Routes[i] {
			t.Errorf("routes[%d] decoded again; its node did not change", i)
		}
	}
	// Under another name (so another directory for relative paths) nothing
	// is kept.
	other, err := p.Parse(filepath.Join("elsewhere", "wasmesh.yaml"), []byte(fleet(50, sticky)))
	if err != nil {
		t.Fatal(err)
	}
	if other.Services["s1"] == next.Services["s1"] || other.Services["s1"].Versions[0].AbsPath() != filepath.Join("elsewhere", "m1.wasm") {
		t.Errorf("a config parsed under another name kept services decoded for the first")
	}
}

// TestParserReadsFilesAgain: an upstream's ca is read by every parse,
// whether or not its piece changed.
func TestParserReadsFilesAgain(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	cert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: testca.New(t, "example.org").Cert.Raw})
	if err := os.WriteFile(ca, cert, 0o644); err != nil {
		t.Fatal(err)
	}
	data := fleet(10, func(i int) string {
		if i == 3 {
			return ", sticky: \"header:x\" }\n  up: { versions: [ { upstream: { endpoints: [ \"https://x:1\" ], ca: ca.pem } } ]"
		}
		return ""
	})
	var p Parser
	name := filepath.Join(dir, "wasmesh.yaml")
	if _, err := p.Parse(name, []byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(ca); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse(name, []byte(data)); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("the ca file removed, the same config parsed again: %v", err)
	}
}

// TestParserMatchesParse parses configs, each after the one before, with
// one Parser: every tree, config and error is what Parse makes.
func TestParserMatchesParse(t *testing.T) {
	var files []string
	for _, f := range []string{"../examples/wasmesh.yaml", "../examples/mtls/a-config.yaml", "testdata/edit/input.yaml"} {
		b, err := os.ReadFile(filepath.FromSlash(f))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, string(b))
	}
	for _, f := range files {
		var p Parser
		for _, data := range append(variants(f), variants(fleet(20, noEdit))...) {
			checkParser(t, &p, f)
			checkParser(t, &p, data)
			checkParser(t, &p, data) // from its own pieces
		}
	}
}

// variants are edits of data a user makes, and ones that the pieces
// cannot take alone.
func variants(data string) []string {
	r := func(old, new string) string { return strings.Replace(data, old, new, 1) }
	return []string{
		data,
		r("services:\n", "services:\n  added: { versions: [ { path: a.wasm } ] }\n"),
		r("services:\n", "services:\n\n  # a comment\n  added:\n    versions:\n      - path: a.wasm\n"),
		r("services:\n", "services: # all of them\n"),
		r("routes:\n", "routes:\n- { match: { path: /x }, service: s1 }\n"),
		r("routes:\n", "routes:\n- service: s1\n  match: { path: /x }\n"),
		r("routes:\n", "routes:\n  -\n    service: s1\n"),
		r("services:\n", "services:\n  up:\n    versions:\n      - upstream:\n          endpoints: [\"http://x:1\"]\n        # c\n"),
		r("services:\n", "services:\n  a: { versions: [ { path: a.wasm } ],\n  sticky: \"header:x\" }\n"),
		r("services:\n", "services:\n  a: &v { versions: [ { path: a.wasm } ] }\n  b: *v\n"),
		r("services:\n", "x: &v { versions: [ { path: a.wasm } ] }\nservices:\n  b: *v\n"),
		r("services:\n", "services:\n\ta: {}\n"),
		r("services:\n", "services:\n  a: \"open\n  b: shut\"\n"),
		r("services:\n", "services:\n   a: { versions: [ { path: a.wasm } ] }\n  b: { versions: [ { path: b.wasm } ] }\n"),
		r("services:\n", "services:\n  - a\n"),
		r("services:\n", "services:\n  a: 1\n - b\n"),
		r("services:\n", "services: {}\nservices:\n"),
		r("services:\n", "services:\nlanes:\n"),
		r("services:\n", "---\nservices:\n"),
		r("services:\n", "--- {a: 1}\nservices:\n"),
		r("services:\n", "\"quoted\": 1\nservices:\n"),
		r("services:\n", "services:\n  a:b: {}\n"),
		r("services:\n", "services:\n  ? a\n  : {}\n"),
		"  " + data,
		"\xef\xbb\xbf" + data,
		r("services:\n", "services: # \x01\n"),
		r("services:\n", "services:\n  # \xff\n"),
		r("services:\n", "# \ufeff\nservices:\n"),
		strings.ReplaceAll(data, "\n", "\r\n"),
		r("services:\n", "services:\n  a: { versions: [ { path: a.wasm } ]\r }\n"),
		r("services:\n", "services:\n  a: { versions: [ { path: a.wasm } ]\u2028 }\n"),
		r("services:\n", "services:\n  a: { versions: [ { path: a.wasm } ]\u0085 }\n"),
		data + "---\nmore: 1\n",
		r("routes:\n", "routes:\n  "+strings.Repeat("- ", 10000)+"x\n"), // at yaml.v3's depth limit in the file, not alone
		data + "\nextra: [\n1 ]\n",
		data[:len(data)/2],
		"",
		"# nothing\n",
	}
}

func FuzzParser(f *testing.F) {
	base := fleet(20, noEdit)
	for _, v := range variants(base) {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, data string) {
		var p Parser
		checkParser(t, &p, base)
		checkParser(t, &p, data)
		checkParser(t, &p, data)
	})
}

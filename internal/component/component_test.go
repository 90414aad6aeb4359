package component

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wasmesh/wasmesh/internal/testutil"
)

// components are the test components: every .wasm in testdata/.
func components(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob("testdata/*.wasm")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata components: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = b
	}
	return out
}

// TestWorld checks the world of each test component against its golden
// file (go test -update rewrites them).
func TestWorld(t *testing.T) {
	for file, b := range components(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			if !IsComponent(b) {
				t.Fatal("IsComponent = false")
			}
			c, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			if _, err := c.World().WriteTo(&got); err != nil {
				t.Fatal(err)
			}
			testutil.CompareGolden(t, strings.TrimSuffix(file, ".wasm")+".world", got.Bytes())
		})
	}
}

// TestWorldLikeWasmTools compares the world printed here with what
// `wasm-tools component wit` prints for the same component: the same
// imports and exports, and the same functions with the same signatures in
// each interface.
func TestWorldLikeWasmTools(t *testing.T) {
	if _, err := exec.LookPath("wasm-tools"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("wasm-tools is not installed (make toolchains)")
		}
		t.Skip("wasm-tools is not installed (make toolchains)")
	}
	for file, b := range components(t) {
		t.Run(filepath.Base(file), func(t *testing.T) {
			out, err := exec.Command("wasm-tools", "component", "wit", file).Output()
			if err != nil {
				t.Fatalf("wasm-tools component wit: %v", err)
			}
			want := witSummary(string(out))
			c, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			got := worldSummary(c.World())
			if !slices.Equal(got, want) {
				t.Errorf("world differs from wasm-tools'\n--- here\n%s\n--- wasm-tools\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// worldSummary lists a World as lines "import NAME", "export NAME" and, for
// each free function of an instance, "NAME FUNC: SIGNATURE", sorted.
func worldSummary(w *World) []string {
	var out []string
	for _, g := range []struct {
		what  string
		items []Item
	}{{"import", w.Imports}, {"export", w.Exports}} {
		for _, it := range g.items {
			if it.Sort == (Sort{Kind: SortType}) {
				continue // wasm-tools writes a world's types as definitions, not imports
			}
			out = append(out, g.what+" "+it.Name)
			for _, f := range it.Funcs {
				if !strings.HasPrefix(f.Name, "[") {
					out = append(out, it.Name+" "+f.Name+": "+f.Signature)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

var (
	witWorldItem = regexp.MustCompile(`^  (import|export) (.+?)(: (func.*))?;$`)
	witInline    = regexp.MustCompile(`^  (import|export) ([a-z0-9-]+): interface \{$`)
	witPackage   = regexp.MustCompile(`^package ([^ ]+?)(@([^ ]+))? \{$`)
	witInterface = regexp.MustCompile(`^  interface ([^ ]+) \{$`)
	witFunc      = regexp.MustCompile(`^    ([a-z0-9-]+): (func.*);$`)
)

// witSummary reads the same lines as worldSummary from wasm-tools' WIT:
// the root world's imports and exports, and the functions of the
// interfaces of the packages after it.
func witSummary(wit string) []string {
	var out []string
	pkg, version, iface := "", "", ""
	funcs := map[string][]string{}
	for _, line := range strings.Split(wit, "\n") {
		if m := witWorldItem.FindStringSubmatch(line); m != nil {
			out = append(out, m[1]+" "+m[2])
			if m[4] != "" {
				out = append(out, m[2]+" "+m[2]+": "+m[4])
			}
			continue
		}
		if m := witInline.FindStringSubmatch(line); m != nil {
			// An interface of the world's own, by a plain name.
			out = append(out, m[1]+" "+m[2])
			iface = m[2]
			continue
		}
		if m := witPackage.FindStringSubmatch(line); m != nil {
			pkg, version = m[1], m[3]
			continue
		}
		if m := witInterface.FindStringSubmatch(line); m != nil {
			iface = pkg + "/" + m[1]
			if version != "" {
				iface += "@" + version
			}
			continue
		}
		if m := witFunc.FindStringSubmatch(line); m != nil && iface != "" {
			funcs[iface] = append(funcs[iface], m[1]+": "+m[2])
		}
	}
	// An interface's functions count once for each import and export of it.
	for _, line := range slices.Clone(out) {
		if name, ok := strings.CutPrefix(line, "import "); ok {
			for _, f := range funcs[name] {
				out = append(out, name+" "+f)
			}
		} else if name, ok := strings.CutPrefix(line, "export "); ok {
			for _, f := range funcs[name] {
				out = append(out, name+" "+f)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestDecodeErrors: malformed input is a *FormatError that names the place,
// never a panic, for every prefix of a real component and for hand-made
// damage.
func TestDecodeErrors(t *testing.T) {
	types, err := os.ReadFile("testdata/types.wasm")
	if err != nil {
		t.Fatal(err)
	}
	core := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	preamble := []byte{0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00}
	with := func(b ...byte) []byte { return append(slices.Clone(preamble), b...) }
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "at offset 0: 0 bytes: too short for a preamble"},
		{"not wasm", []byte("#!/bin/sh\necho"), "no \\0asm magic"},
		{"core module", core, "a core module, not a component"},
		{"other version", []byte{0x00, 0x61, 0x73, 0x6d, 0x0c, 0x00, 0x01, 0x00}, "component version 0c000100"},
		{"unknown section", with(0x0d, 0x00), "at offset 8: unknown section id 13"},
		{"section past the end", with(0x07, 0x05, 0x01), "type section at offset 8: unexpected end"},
		{"bytes left in a section", with(0x07, 0x03, 0x01, 0x7f, 0x00), "type section at offset 12: 1 bytes left over"},
		{"vector longer than its section", with(0x0a, 0x02, 0x7f, 0x00), "import section at offset 10: vector of 127 elements, but only 1 bytes left"},
		{"name not UTF-8", with(0x0a, 0x06, 0x01, 0x00, 0x02, 0xff, 0xfe, 0x01), "import section at offset 13: name is not valid UTF-8"},
		{"unknown extern type", with(0x0a, 0x05, 0x01, 0x00, 0x01, 'f', 0x09), "import section at offset 14: unknown extern type 0x09"},
		{"value type neither", with(0x07, 0x03, 0x01, 0x70, 0x50), "type section at offset 12: value type 0x50 is neither a primitive nor a type index"},
		{"type index of two bytes", with(0x07, 0x04, 0x01, 0x70, 0xc2, 0x01), ""},
		{"an export of itself", with(0x0b, 0x07, 0x01, 0x00, 0x01, 'f', 0x01, 0x00, 0x00), "export section at offset 15: export f: func 0 is not defined before it"},
		{"a module type in a module type", with(0x03, 0x05, 0x01, 0x50, 0x01, 0x01, 0x50), "a module type inside a module type"},
		{"a fixed-length list", with(0x07, 0x04, 0x01, 0x67, 0x7d, 0x7f), "fixed-length lists (a gated feature of the component model) are not supported"},
		{"empty record", with(0x07, 0x03, 0x01, 0x72, 0x00), "type section at offset 11: a record without fields"},
		{"too many flags", append(with(0x07, 0x24, 0x01, 0x6e, 0x21), bytes.Repeat([]byte{0x01, 'a'}, 0x21)...), "flags need 1 to 32 labels"},
		{"context.get", with(0x08, 0x02, 0x01, 0x0a), "canon section at offset 11: canon context.get (0x0a) is not supported: it is WASI 0.3's (async, streams, futures, threads), and this host serves WASI 0.2 components"},
		{"async canon", with(0x08, 0x02, 0x01, 0x24), "canon section at offset 11: canonical built-in 0x24 is not supported: it is WASI 0.3's"},
		{"canon option twice", with(0x08, 0x07, 0x01, 0x01, 0x00, 0x00, 0x02, 0x00, 0x01), "canon section at offset 16: canonical option 0x01 given twice or conflicting"},
		{"LEB128 too long", with(0x07, 0x06, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00), "type section at offset 10: integer representation too long or too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.in)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				return
			}
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode error %v, want a *FormatError containing %q", err, tc.want)
			}
		})
	}
	// A prefix that ends between sections is a valid (smaller) component;
	// one that ends inside a section is not.
	boundaries := map[int]bool{8: true}
	for r := (reader{b: types[8:], base: 8}); !r.done(); {
		r.byte()
		size, _ := r.u32()
		r.pos += int(size)
		boundaries[r.offset()] = true
	}
	for n := range len(types) {
		_, err := Decode(types[:n])
		var fe *FormatError
		if boundaries[n] != (err == nil) || err != nil && !errors.As(err, &fe) {
			t.Fatalf("the first %d bytes of types.wasm: error %v (a section boundary: %v)", n, err, boundaries[n])
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, b := range components(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			return
		}
		var out bytes.Buffer
		c.World().WriteTo(&out)
	})
}

// TestRole: what a component serves as, by its exports: a wasi:http
// handler this host serves, one of a version it does not (a pre-release),
// a wasi:cli command.
func TestRole(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"hostile.wasm", "wasi:http handler (exports wasi:http/incoming-handler@0.2"},
		{"nothandler-handler-rc.wasm", "a wasi:http handler of a version this host does not serve (exports wasi:http/incoming-handler@0.2.0-rc-2023-12-05; it serves 0.2.x)"},
		{"command-rust.wasm", "wasi:cli command (exports wasi:cli/run@0.2"},
	} {
		wasm, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		c, err := Decode(wasm)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.World().Role(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.file, got, tc.want)
		}
	}
}

package wasmbin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckLimits(t *testing.T) {
	const magic = "\x00asm\x01\x00\x00\x00"
	for _, tc := range []struct {
		name, wasm, wantErr string
	}{
		// Found by FuzzPrepare: wazero allocated 7 GB for it.
		{"element count", magic + "\x05\x03\x01\x000\t\x05\xe2\x9e\x9e0\x9e", "section 9 (element) at offset 13: element segments at offset 15: 101158754 entries declared, 1 bytes left"},
		{"type count", magic + "\x01\x05\xff\xff\xff\xff\x0f", "section 1 (type) at offset 8: types at offset 10: 4294967295 entries declared, 0 bytes left"},
		{"params count", magic + "\x01\x07\x01\x60\xff\xff\xff\xff\x0f", "value types at offset 12: 4294967295 entries declared"},
		{"import count", magic + "\x02\x03\xff\xff\x03", "section 2 (import) at offset 8: vector at offset 10: 65535 entries declared, 0 bytes left"},
		// One function declaring 2^32-1 locals in a 9-byte body.
		{"locals", magic + "\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x0a\x0b\x01\x09\x01\xff\xff\xff\xff\x0f\x7f\x0b\x00",
			"section 10 (code) at offset 18: function body 0 declares 4294967295 locals, more than 50000"},
		{"data size", magic + "\x05\x03\x01\x00\x01\x0b\x07\x01\x00\x41\x00\x0b\xff\x7f", "section 11 (data) at offset 13: data segment at offset 20: 16383 bytes declared, 0 left"},
		{"name map", magic + "\x00\x0b\x04name\x01\x04\xff\xff\xff\x0f", "section 0 (custom) at offset 8: names at offset 17: 33554431 entries declared, 0 bytes left"},
		{"not wasm", "hello", "not a WebAssembly binary"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckLimits([]byte(tc.wasm))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	// Every module of the repository passes.
	files, _ := filepath.Glob("../../examples/*/*/*.wasm")
	more, _ := filepath.Glob("../../host/testdata/*.wasm")
	files = append(append(files, more...), "testdata/yield.wasm", "testdata/tailcall.wasm")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(f, "validator_panic") {
			continue // malformed on purpose, but not in its sizes
		}
		if len(b) >= 8 && b[6] == 1 { // a component (layer 1): not a core module
			continue
		}
		if err := CheckLimits(b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if len(files) < 10 {
		t.Fatalf("only %d modules found", len(files))
	}
}

// nested is a module of one function that nests n structures opened by
// op (block 0x02, loop 0x03, if 0x04, whose condition it pushes).
func nested(op byte, n int) []byte {
	var code []byte
	code = append(code, 0) // no locals
	for range n {
		if op == 0x04 {
			code = append(code, 0x41, 0x00) // i32.const 0
		}
		code = append(code, op, 0x40)
	}
	for range n {
		code = append(code, 0x0b)
	}
	code = append(code, 0x0b)
	uleb := func(v int) []byte {
		var b []byte
		for {
			c := byte(v & 0x7f)
			if v >>= 7; v != 0 {
				b = append(b, c|0x80)
				continue
			}
			return append(b, c)
		}
	}
	body := append(uleb(len(code)), code...)
	sec := append([]byte{1}, body...) // one body
	out := []byte("\x00asm\x01\x00\x00\x00\x01\x04\x01\x60\x00\x00\x03\x02\x01\x00\x0a")
	out = append(out, uleb(len(sec))...)
	return append(out, sec...)
}

// TestNestingLimits: a function that nests structures deeper than a
// compile can take in reasonable time is refused before wazero compiles
// it (20,000 nested loops took wazero more than 4 minutes); nesting as
// deep as real compilers make compiles.
func TestNestingLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wasm    []byte
		wantErr string
	}{
		{"loops", nested(0x03, MaxLoopNesting+1), "function body 0 nests loops more than 1000 deep"},
		{"blocks", nested(0x02, 20_000), "the squares of their deepest nesting add up to more than 250000000 by function body 0 (20000 deep)"},
		{"ifs", nested(0x04, 20_000), "(20000 deep)"},
		{"loops, as deep as allowed", nested(0x03, MaxLoopNesting), ""},
		{"blocks, as deep as Go makes them", nested(0x02, 600), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckLimits(tc.wasm)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

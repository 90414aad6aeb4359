package wasmbin

import (
	"os"
	"strings"
	"testing"
)

func TestParseExamples(t *testing.T) {
	tests := []struct {
		file     string
		language string
		minPages uint64
		imports  string
	}{
		{"../../examples/hello/go/hello.wasm", "Go", 36, "wasi_snapshot_preview1"},
		{"../../examples/hello/rust/hello.wasm", "", 2, "wasi_snapshot_preview1"},
		{"../../examples/frontend/zig/frontend.wasm", "", 2, "wasi_snapshot_preview1,wasmesh"},
		{"../../host/testdata/exit7.wasm", "", 1, "wasi_snapshot_preview1"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			info, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if got := info.Language(); got != tc.language {
				t.Errorf("language %q, want %q", got, tc.language)
			}
			if len(info.Memories) != 1 || info.Memories[0].Min != tc.minPages {
				t.Errorf("memories %+v, want one of %d pages", info.Memories, tc.minPages)
			}
			if got := strings.Join(info.ImportModules(), ","); got != tc.imports {
				t.Errorf("import modules %q, want %q", got, tc.imports)
			}
			if info.WASI() != "preview1" {
				t.Errorf("WASI %q", info.WASI())
			}
			hasStart := false
			for _, e := range info.Exports {
				hasStart = hasStart || (e.Name == "_start" && e.Kind == "func")
			}
			if !hasStart {
				t.Errorf("no _start export in %+v", info.Exports)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "not a WebAssembly binary"},
		{"\x00asm\x02\x00\x00\x00", "unsupported WebAssembly version"},
		{"\x00asm\x01\x00\x00\x00\x02\x10", "truncated"},
		{"\x00asm\x01\x00\x00\x00\x02\x03\x01\x05a", "runs past the section"},
		{"\x00asm\x01\x00\x00\x00\x02\x07\x01\x01a\x01b\x09\x00", "unknown kind 9"},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("../../host/testdata/exit7.wasm")
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		if info, err := Parse(b); err == nil {
			_ = info.Language()
			_ = info.ImportModules()
		}
	})
}

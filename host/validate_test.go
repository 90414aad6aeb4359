package host

import (
	"context"
	"strings"
	"testing"
)

// TestValidate: a module or component that decodes but has a function
// that does not validate is refused, the function named with the offset
// of its body; valid ones pass.
func TestValidate(t *testing.T) {
	// One function of type () -> () whose body leaves an i32 on the stack,
	// after a valid one: the second body starts at offset 25.
	invalid := []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" + // type: () -> ()
		"\x03\x03\x02\x00\x00" + // two functions of it
		"\x0a\x09\x02\x02\x00\x0b\x04\x00\x41\x00\x0b") // code: end; i32.const 0, end
	for _, tc := range []struct {
		name string
		wasm []byte
		want string
	}{
		{"invalid function", invalid, "invalid function[1] (code section, body at offset 25)"},
		{"valid module", readFile(t, "../examples/hello/c/hello.wasm"), ""},
		{"valid component", readFile(t, "../examples/components/c/hello.wasm"), ""},
	} {
		err := Validate(context.Background(), tc.wasm)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

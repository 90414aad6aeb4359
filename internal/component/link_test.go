package component_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/wasmesh/wasmesh/internal/cabi"
	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/internal/wasip2"
)

func decode(t *testing.T, file string) *component.Component {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c, err := component.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRunCommands runs each command component made from a hello module:
// the CGI request in its environment and stdin, the response on stdout, as
// the module answers it.
func TestRunCommands(t *testing.T) {
	files, _ := filepath.Glob("testdata/command-*.wasm")
	if len(files) == 0 {
		t.Fatal("no command components in testdata")
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for _, file := range files {
		lang := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "command-"), ".wasm")
		t.Run(lang, func(t *testing.T) {
			l, err := component.Link(ctx, rt, decode(t, file), wasip2.Host())
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close(ctx)
			for run := range 2 { // a second instance starts afresh
				var out bytes.Buffer
				inst, err := l.Instantiate(ctx, &wasip2.Context{
					Args:  []string{"hello"},
					Env:   [][2]string{{"REQUEST_METHOD", "POST"}, {"PATH_INFO", "/hello"}, {"CONTENT_LENGTH", "5"}},
					Stdin: strings.NewReader("hello"), Stdout: &out,
				})
				if err != nil {
					t.Fatal(err)
				}
				res, err := inst.Call(ctx, "wasi:cli/run@0.2.12", "run")
				inst.Close(ctx)
				var exit *wasip2.ExitError
				if errors.As(err, &exit) && exit.Code == 0 {
					err, res = nil, []any{cabi.VariantValue{}}
				}
				if err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				want := "Content-Type: text/plain\n\nhello from " + lang + ": POST /hello 5 bytes\n"
				if res[0] != (cabi.VariantValue{}) || out.String() != want {
					t.Fatalf("run %d: %#v, stdout %q; want ok and %q", run, res, out.String(), want)
				}
			}
		})
	}
}

// TestLinkMissingImport: an import the host lacks is refused when linking,
// naming the interface and function.
func TestLinkMissingImport(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	_, err := component.Link(ctx, rt, decode(t, "testdata/command-c.wasm"), &component.Host{})
	if !errors.Is(err, component.ErrMissingImport) || !strings.Contains(err.Error(), "wasi:") {
		t.Fatalf("Link with no host functions: %v, want ErrMissingImport naming a wasi: function", err)
	}
	_, err = component.Link(ctx, rt, decode(t, "testdata/types.wasm"), wasip2.Host())
	if !errors.Is(err, component.ErrMissingImport) || !strings.Contains(err.Error(), "wasmesh:test/shapes@0.1#") {
		t.Fatalf("Link of a component importing a non-WASI interface: %v, want ErrMissingImport naming it", err)
	}
}

func TestInterface(t *testing.T) {
	for in, want := range map[string]string{
		"wasi:io/streams@0.2.12":           "wasi:io/streams@0.2",
		"wasi:http/types@0.2.0-rc-2023-11": "wasi:http/types@0.2.0-rc-2023-11",
		"example:crypto/hash@1.4.2":        "example:crypto/hash@1",
		"log":                              "log",
		"wasi:io/streams@":                 "wasi:io/streams@",
	} {
		if got := component.Interface(in); got != want {
			t.Errorf("Interface(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestResourceDestructor: dropping an own handle of the component's own
// resource calls the destructor its type names, with the resource's rep
// (testdata/dtor.wat).
func TestResourceDestructor(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	l, err := component.Link(ctx, rt, decode(t, "testdata/dtor.wasm"), &component.Host{})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := l.Instantiate(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := inst.Call(ctx, "", "run")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0] != uint32(42) {
		t.Errorf("run = %v, want [42]: the destructor got the rep", out)
	}
}

// checkedSet is a LinkOptions.Checked that counts its calls.
type checkedSet struct {
	m             map[[32]byte]bool
	known, record int
}

func (c *checkedSet) Known(sum [32]byte) bool { c.known++; return c.m[sum] }
func (c *checkedSet) Record(sum [32]byte)     { c.record++; c.m[sum] = true }

// TestLinkChecked: the core modules found resettable are recorded, and a
// second link of the same component finds them known; both links'
// instances run.
func TestLinkChecked(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	checked := &checkedSet{m: map[[32]byte]bool{}}
	for round := range 2 {
		l, err := component.LinkWith(ctx, rt, decode(t, "testdata/dtor.wasm"), &component.Host{}, component.LinkOptions{Checked: checked})
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Resettable(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		inst, err := l.Instantiate(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := inst.Call(ctx, "", "run"); err != nil || out[0] != uint32(42) {
			t.Fatalf("round %d: run = %v, %v", round, out, err)
		}
		l.Close(ctx)
	}
	if len(checked.m) != 2 || checked.known != 4 || checked.record != 4 {
		t.Errorf("%d modules recorded, %d Known and %d Record calls; want 2, 4, 4", len(checked.m), checked.known, checked.record)
	}
}

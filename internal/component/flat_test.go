package component_test

import (
	"context"
	"slices"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/wasmesh/wasmesh/internal/cabi"
	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/internal/wasip2"
)

// TestFlatImports: the functions every hello handler calls on each request
// are served on core values (wasip2's FlatFuncs), not through cabi values,
// whichever toolchain made the component; a FlatFunc whose type were
// spelt wrong would serve none.
// (componentize-js's and componentize-py's components match too; they take
// seconds to compile, so they are not linked here.)
func TestFlatImports(t *testing.T) {
	hot := []string{
		"wasi:http/types@0.2#[constructor]outgoing-response",
		"wasi:http/types@0.2#[method]incoming-body.stream",
		"wasi:http/types@0.2#[method]incoming-request.consume",
		"wasi:http/types@0.2#[method]incoming-request.path-with-query",
		"wasi:http/types@0.2#[static]fields.from-list",
		"wasi:http/types@0.2#[static]incoming-body.finish",
		"wasi:io/streams@0.2#[method]input-stream.blocking-read",
		"wasi:io/streams@0.2#[method]output-stream.blocking-write-and-flush",
		"wasi:http/types@0.2#[method]incoming-request.method",
		"wasi:http/types@0.2#[method]outgoing-body.write",
		"wasi:http/types@0.2#[method]outgoing-response.body",
		"wasi:http/types@0.2#[static]outgoing-body.finish",
		"wasi:http/types@0.2#[static]response-outparam.set",
	}
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	// Zig's standard library reads no environment for its hello.
	environ := map[string]bool{"c": true, "rust": true}
	for _, lang := range []string{"c", "zig", "rust"} {
		t.Run(lang, func(t *testing.T) {
			l, err := component.Link(ctx, rt, decode(t, "../../examples/components/"+lang+"/hello.wasm"), wasip2.Host())
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close(ctx)
			got := l.FlatImports()
			want := hot
			if environ[lang] {
				want = append(want[:len(want):len(want)], "wasi:cli/environment@0.2#get-environment")
			}
			for _, k := range want {
				if !slices.Contains(got, k) {
					t.Errorf("%s is not served flat; flat: %q", k, got)
				}
			}
		})
	}
}

// TestSignatureQuotes: a name that is not a plain label is quoted, so that
// no type can spell out another's signature (a FlatFunc would read its
// arguments as the other type's).
func TestSignatureQuotes(t *testing.T) {
	tests := []struct {
		t    *cabi.Type
		want string
	}{
		{cabi.VariantOf(cabi.Case{Name: "get"}, cabi.Case{Name: "other", Type: cabi.TString}), "func(variant{get, other(string)})"},
		{cabi.VariantOf(cabi.Case{Name: "get, head"}), `func(variant{"get, head"})`},
		{cabi.RecordOf(cabi.Field{Name: "a: u32}, b", Type: cabi.TU32}), `func(record{"a: u32}, b": u32})`},
		{cabi.EnumOf("x-y", "z)"), `func(enum{x-y, "z)"})`},
		{cabi.OwnOf(0), `func(own<"wasi:http/types@0.2#a>, own<b">)`},
	}
	names := []string{"wasi:http/types@0.2.3#a>, own<b"}
	for _, tt := range tests {
		if got := component.Signature([]*cabi.Type{tt.t}, nil, names); got != tt.want {
			t.Errorf("Signature = %s, want %s", got, tt.want)
		}
	}
}

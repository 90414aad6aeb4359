package cabi

import "testing"

// TestTypeString: a type's text spells it out, names quoted unless they
// are WIT identifiers, so that types that differ never read the same.
func TestTypeString(t *testing.T) {
	for _, tt := range []struct {
		t    *Type
		want string
	}{
		{ListOf(TU8, 0), "list<u8>"},
		{ListOf(TU32, 4), "list<u32, 4>"},
		{OptionOf(TString), "option<string>"},
		{ResultOf(TU32, TString), "result<u32, string>"},
		{ResultOf(nil, nil), "result<_, _>"},
		{TupleOf(TU8, TString), "tuple<u8, string>"},
		{RecordOf(Field{"x", TS32}, Field{"y-pos", TS32}), "record { x: s32, y-pos: s32 }"},
		{VariantOf(Case{"circle", TF64}, Case{"nothing", nil}), "variant { circle(f64), nothing }"},
		{EnumOf("red", "green"), "enum { red, green }"},
		{FlagsOf("bold", "italic"), "flags { bold, italic }"},
		{OwnOf(2), "own<resource 2>"},
		{EnumOf("a, b"), `enum { "a, b" }`},
		{VariantOf(Case{"a(u32), b", nil}), `variant { "a(u32), b" }`},
		{RecordOf(Field{"a: u32, b", TU32}), `record { "a: u32, b": u32 }`},
	} {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
	}
	if a, b := EnumOf("a, b").String(), EnumOf("a", "b").String(); a == b {
		t.Errorf("two enums read the same: %s", a)
	}
}

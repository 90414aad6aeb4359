// Package cabi is the component model's canonical ABI: how values of the
// component model's types are laid out in a guest's linear memory and
// passed as core WebAssembly values. It follows the component-model
// repository's design/mvp/CanonicalABI.md and its Python reference,
// canonical-abi/definitions.py, function for function (Alignment is
// alignment, Size elem_size, Load load, LowerFlat lower_flat, …), for
// 32-bit memories and synchronous calls.
//
// Values on the Go side:
//
//	bool, s8…u64          bool, int8, uint8, int16, uint16, int32, uint32, int64, uint64
//	f32, f64              float32, float64 (NaNs canonicalised when lifted)
//	char                  rune
//	string                string (UTF-8, whatever the guest's encoding)
//	list<u8>              []byte
//	list<T>               []any
//	record, tuple         []any, in field order
//	variant, enum,        VariantValue{Case, Value}: option is none (0) | some (1),
//	option, result        result ok (0) | error (1)
//	flags                 uint32, the first label in bit 0
//	own<R>, borrow<R>     uint32: the resource's representation (rep)
//
// A guest's mistake — a string that is not valid in its encoding, a list
// out of its memory, a variant case it does not have — is a *Trap.
package cabi

import (
	"fmt"
	"sync"
)

// Kind is the kind of a Type.
type Kind uint8

// Kinds of types. Tuple, Enum, Option and Result are specialisations that
// Despecialize turns into Record and Variant.
const (
	Bool Kind = iota + 1
	S8
	U8
	S16
	U16
	S32
	U32
	S64
	U64
	F32
	F64
	Char
	String
	List
	Record
	Tuple
	Variant
	Enum
	Option
	Result
	Flags
	Own
	Borrow
)

var kindNames = [...]string{Bool: "bool", S8: "s8", U8: "u8", S16: "s16", U16: "u16", S32: "s32", U32: "u32",
	S64: "s64", U64: "u64", F32: "f32", F64: "f64", Char: "char", String: "string", List: "list", Record: "record",
	Tuple: "tuple", Variant: "variant", Enum: "enum", Option: "option", Result: "result", Flags: "flags",
	Own: "own", Borrow: "borrow"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Type is a component value type.
type Type struct {
	Kind Kind
	// Elem is a list's element, an option's payload.
	Elem *Type
	// Len is a fixed-length list's length; 0 for a list of any length.
	Len uint32
	// Fields are a record's fields or a tuple's elements (names "0", "1", …).
	Fields []Field
	// Cases are a variant's cases.
	Cases []Case
	// Labels are an enum's cases or the flags' names.
	Labels []string
	// Ok and Err are a result's payloads, nil for none.
	Ok, Err *Type
	// Resource identifies an own's or borrow's resource type.
	Resource int

	// layout is what Despecialize, Alignment, Size and Flatten compute,
	// computed once: a type is immutable once it is first used.
	layoutOnce sync.Once
	layout     layout
}

type layout struct {
	despecialized *Type
	align, size   uint32
	flat          []CoreType
}

// lay returns t's layout, computing it on first use.
func (t *Type) lay() *layout {
	t.layoutOnce.Do(func() {
		d := despecialize(t)
		t.layout.despecialized = d
		t.layout.align = alignment(d)
		t.layout.size = size(d)
		t.layout.flat = flatten(nil, d)
	})
	return &t.layout
}

// Field is a record field.
type Field struct {
	Name string
	Type *Type
}

// Case is a variant case; Type is nil for a case without payload.
type Case struct {
	Name string
	Type *Type
}

// VariantValue is the Go value of a variant, enum, option or result: the
// index of its case, and the payload (nil for a case without one).
type VariantValue struct {
	Case  uint32
	Value any
}

// Constructors of types.
var (
	TBool   = &Type{Kind: Bool}
	TS8     = &Type{Kind: S8}
	TU8     = &Type{Kind: U8}
	TS16    = &Type{Kind: S16}
	TU16    = &Type{Kind: U16}
	TS32    = &Type{Kind: S32}
	TU32    = &Type{Kind: U32}
	TS64    = &Type{Kind: S64}
	TU64    = &Type{Kind: U64}
	TF32    = &Type{Kind: F32}
	TF64    = &Type{Kind: F64}
	TChar   = &Type{Kind: Char}
	TString = &Type{Kind: String}
)

// ListOf is list<elem>; with n > 0, the fixed-length list<elem, n>.
func ListOf(elem *Type, n uint32) *Type { return &Type{Kind: List, Elem: elem, Len: n} }

// RecordOf is a record with these fields.
func RecordOf(fields ...Field) *Type { return &Type{Kind: Record, Fields: fields} }

// TupleOf is tuple<ts…>.
func TupleOf(ts ...*Type) *Type {
	fs := make([]Field, len(ts))
	for i, t := range ts {
		fs[i] = Field{Name: fmt.Sprint(i), Type: t}
	}
	return &Type{Kind: Tuple, Fields: fs}
}

// VariantOf is a variant with these cases.
func VariantOf(cases ...Case) *Type { return &Type{Kind: Variant, Cases: cases} }

// EnumOf is an enum with these cases.
func EnumOf(labels ...string) *Type { return &Type{Kind: Enum, Labels: labels} }

// OptionOf is option<t>.
func OptionOf(t *Type) *Type { return &Type{Kind: Option, Elem: t} }

// ResultOf is result<ok, err>; nil for either means none.
func ResultOf(ok, err *Type) *Type { return &Type{Kind: Result, Ok: ok, Err: err} }

// FlagsOf is flags with these labels (1 to 32).
func FlagsOf(labels ...string) *Type { return &Type{Kind: Flags, Labels: labels} }

// OwnOf and BorrowOf are handles to resource type r.
func OwnOf(r int) *Type    { return &Type{Kind: Own, Resource: r} }
func BorrowOf(r int) *Type { return &Type{Kind: Borrow, Resource: r} }

// Despecialize turns a tuple into a record, an enum, option or result into
// a variant (CanonicalABI.md, despecialize); other types are returned as
// they are.
func Despecialize(t *Type) *Type { return t.lay().despecialized }

func despecialize(t *Type) *Type {
	switch t.Kind {
	case Tuple:
		return &Type{Kind: Record, Fields: t.Fields}
	case Enum:
		cs := make([]Case, len(t.Labels))
		for i, l := range t.Labels {
			cs[i] = Case{Name: l}
		}
		return &Type{Kind: Variant, Cases: cs}
	case Option:
		return &Type{Kind: Variant, Cases: []Case{{Name: "none"}, {Name: "some", Type: t.Elem}}}
	case Result:
		return &Type{Kind: Variant, Cases: []Case{{Name: "ok", Type: t.Ok}, {Name: "error", Type: t.Err}}}
	}
	return t
}

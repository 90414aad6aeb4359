package cabi

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// testMemory is a linear memory with a bump allocator as its realloc.
type testMemory struct {
	b    []byte
	next uint32
}

func newMemory(size int) *testMemory { return &testMemory{b: make([]byte, size), next: 8} }

func (m *testMemory) Read(off, n uint32) ([]byte, bool) {
	if uint64(off)+uint64(n) > uint64(len(m.b)) {
		return nil, false
	}
	return m.b[off : off+n], true
}

func (m *testMemory) Write(off uint32, b []byte) bool {
	if uint64(off)+uint64(len(b)) > uint64(len(m.b)) {
		return false
	}
	copy(m.b[off:], b)
	return true
}

func (m *testMemory) Size() uint32 { return uint32(len(m.b)) }

// realloc never frees: a shrink keeps the block, a grow copies.
func (m *testMemory) realloc(old, oldSize, align, size uint32) (uint32, error) {
	if old != 0 && size <= oldSize {
		return old, nil
	}
	p := alignTo(m.next, max(align, 1))
	if uint64(p)+uint64(size) > uint64(len(m.b)) {
		return 0, errors.New("out of memory")
	}
	m.next = p + size
	if old != 0 {
		copy(m.b[p:], m.b[old:old+oldSize])
	}
	return p, nil
}

func context(enc Encoding) (*Context, *testMemory) {
	m := newMemory(1 << 20)
	return &Context{Memory: m, Encoding: enc, Realloc: m.realloc, Resources: identityResources{}}, m
}

// identityResources hands out a handle equal to the rep plus 100.
type identityResources struct{}

func (identityResources) LiftOwn(h uint32, _ int) (uint32, error)    { return h - 100, nil }
func (identityResources) LiftBorrow(h uint32, _ int) (uint32, error) { return h - 100, nil }
func (identityResources) LowerOwn(r uint32, _ int) (uint32, error)   { return r + 100, nil }
func (identityResources) LowerBorrow(r uint32, _ int) (uint32, error) {
	return r + 100, nil
}

// TestLayout: size, alignment and flat types of each kind of type, as
// CanonicalABI.md's alignment, elem_size and flatten_type give them.
func TestLayout(t *testing.T) {
	many := make([]string, 9)
	for i := range many {
		many[i] = string(rune('a' + i))
	}
	manyCases := make([]Case, 257)
	for i := range manyCases {
		manyCases[i] = Case{Name: "c"}
	}
	tests := []struct {
		name        string
		t           *Type
		size, align uint32
		flat        []CoreType
	}{
		{"bool", TBool, 1, 1, []CoreType{I32}},
		{"s8", TS8, 1, 1, []CoreType{I32}},
		{"u16", TU16, 2, 2, []CoreType{I32}},
		{"s32", TS32, 4, 4, []CoreType{I32}},
		{"u64", TU64, 8, 8, []CoreType{I64}},
		{"f32", TF32, 4, 4, []CoreType{F32Core}},
		{"f64", TF64, 8, 8, []CoreType{F64Core}},
		{"char", TChar, 4, 4, []CoreType{I32}},
		{"string", TString, 8, 4, []CoreType{I32, I32}},
		{"list<u64>", ListOf(TU64, 0), 8, 4, []CoreType{I32, I32}},
		{"list<u16, 3>", ListOf(TU16, 3), 6, 2, []CoreType{I32, I32, I32}},
		{"record{u8, u32, u8}", RecordOf(Field{"a", TU8}, Field{"b", TU32}, Field{"c", TU8}), 12, 4, []CoreType{I32, I32, I32}},
		{"tuple<u8, u64>", TupleOf(TU8, TU64), 16, 8, []CoreType{I32, I64}},
		{"enum of 3", EnumOf("a", "b", "c"), 1, 1, []CoreType{I32}},
		{"option<f32>", OptionOf(TF32), 8, 4, []CoreType{I32, F32Core}},
		{"option<u64>", OptionOf(TU64), 16, 8, []CoreType{I32, I64}},
		{"result", ResultOf(nil, nil), 1, 1, []CoreType{I32}},
		{"result<u32, string>", ResultOf(TU32, TString), 12, 4, []CoreType{I32, I32, I32}},
		{"variant f32|u32 joins to i32", VariantOf(Case{"a", TF32}, Case{"b", TU32}), 8, 4, []CoreType{I32, I32}},
		{"variant f32|f64 joins to i64", VariantOf(Case{"a", TF32}, Case{"b", TF64}), 16, 8, []CoreType{I32, I64}},
		{"variant of 257 cases", VariantOf(manyCases...), 2, 2, []CoreType{I32}},
		{"flags of 3", FlagsOf("a", "b", "c"), 1, 1, []CoreType{I32}},
		{"flags of 9", FlagsOf(many...), 2, 2, []CoreType{I32}},
		{"own", OwnOf(0), 4, 4, []CoreType{I32}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Size(tc.t); got != tc.size {
				t.Errorf("Size = %d, want %d", got, tc.size)
			}
			if got := Alignment(tc.t); got != tc.align {
				t.Errorf("Alignment = %d, want %d", got, tc.align)
			}
			if got := Flatten(tc.t); !slices.Equal(got, tc.flat) {
				t.Errorf("Flatten = %v, want %v", got, tc.flat)
			}
		})
	}
}

func TestFlattenFunc(t *testing.T) {
	seventeen := slices.Repeat([]*Type{TU32}, 17)
	tests := []struct {
		name            string
		params, results []*Type
		lift            bool
		ps, rs          []CoreType
	}{
		{"flat", []*Type{TU32, TString}, []*Type{TU64}, true, []CoreType{I32, I32, I32}, []CoreType{I64}},
		{"17 params by pointer", seventeen, nil, true, []CoreType{I32}, nil},
		{"lifted string result by pointer", nil, []*Type{TString}, true, nil, []CoreType{I32}},
		{"lowered string result through an out pointer", []*Type{TU8}, []*Type{TString}, false, []CoreType{I32, I32}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, rs := FlattenFunc(tc.params, tc.results, tc.lift)
			if !slices.Equal(ps, tc.ps) || !slices.Equal(rs, tc.rs) {
				t.Errorf("FlattenFunc = %v → %v, want %v → %v", ps, rs, tc.ps, tc.rs)
			}
		})
	}
}

// TestStrings: each encoding stores and loads the same text, and stores it
// as CanonicalABI.md says (code units, latin-1 while it fits, the UTF-16
// tag).
func TestStrings(t *testing.T) {
	tests := []struct {
		enc   Encoding
		s     string
		units uint32
		bytes []byte
	}{
		{UTF8, "héllo", 6, []byte("héllo")},
		{UTF16, "hé", 2, []byte{'h', 0, 0xe9, 0}},
		{UTF16, "😀", 2, []byte{0x3d, 0xd8, 0x00, 0xde}},
		{Latin1UTF16, "hé", 2, []byte{'h', 0xe9}},
		{Latin1UTF16, "h€", 2 | utf16Tag, []byte{'h', 0, 0xac, 0x20}},
		{UTF8, "", 0, nil},
	}
	for _, tc := range tests {
		cx, m := context(tc.enc)
		flat, err := cx.LowerFlat(tc.s, TString)
		if err != nil {
			t.Fatalf("%q in %d: %v", tc.s, tc.enc, err)
		}
		if flat[1] != uint64(tc.units) || !slices.Equal(m.b[flat[0]:flat[0]+uint64(len(tc.bytes))], tc.bytes) {
			t.Errorf("%q in encoding %d: %d units %x, want %d units %x", tc.s, tc.enc, flat[1], m.b[flat[0]:flat[0]+uint64(len(tc.bytes))], tc.units, tc.bytes)
		}
		got, err := cx.LiftFlat(flat, TString)
		if err != nil || got != tc.s {
			t.Errorf("%q in encoding %d lifts as %q, %v", tc.s, tc.enc, got, err)
		}
	}
}

// TestLowerStringAllocs: a UTF-8 string goes into the guest's memory
// without a copy on the Go heap first.
func TestLowerStringAllocs(t *testing.T) {
	cx, m := context(UTF8)
	s := strings.Repeat("x", 100)
	if n := testing.AllocsPerRun(100, func() {
		m.next = 8
		if _, _, err := cx.LowerString(s); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("LowerString allocates %.0f times, want 0", n)
	}
}

// TestTraps: what a guest can get wrong is a *Trap, not a panic nor a
// wrong value.
func TestTraps(t *testing.T) {
	cx, m := context(UTF8)
	copy(m.b[64:], []byte{0xff, 0xfe, 'x'})
	copy(m.b[96:], []byte{0x00, 0xd8, 'a', 0}) // UTF-16: an unpaired high surrogate
	size := uint64(m.Size())
	tests := []struct {
		name string
		enc  Encoding
		vals []uint64
		t    *Type
		want string
	}{
		{"invalid UTF-8", UTF8, []uint64{64, 3}, TString, "not valid UTF-8"},
		{"unpaired surrogate", UTF16, []uint64{96, 2}, TString, "unpaired surrogate"},
		{"string past the end", UTF8, []uint64{size - 2, 3}, TString, "outside the memory"},
		{"string too long", UTF8, []uint64{0, MaxStringByteLength + 1}, TString, "longer than"},
		{"misaligned UTF-16", UTF16, []uint64{65, 1}, TString, "not aligned to 2"},
		{"char surrogate", UTF8, []uint64{0xd800}, TChar, "char 0xd800 is not a Unicode scalar value"},
		{"char too large", UTF8, []uint64{0x110000}, TChar, "not a Unicode scalar value"},
		{"list past the end", UTF8, []uint64{size - 4, 2}, ListOf(TU32, 0), "outside the memory"},
		{"list too long", UTF8, []uint64{0, 1 << 26}, ListOf(TU64, 0), "longer than"},
		{"misaligned list", UTF8, []uint64{2, 1}, ListOf(TU32, 0), "not aligned to 4"},
		{"variant case out of range", UTF8, []uint64{3, 0}, OptionOf(TU32), "variant case 3: it has 2 cases"},
		{"enum case out of range", UTF8, []uint64{7}, EnumOf("a", "b"), "variant case 7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cx.Encoding = tc.enc
			_, err := cx.LiftFlat(tc.vals, tc.t)
			var trap *Trap
			if !errors.As(err, &trap) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LiftFlat = %v, want a *Trap containing %q", err, tc.want)
			}
		})
	}
	t.Run("misaligned realloc", func(t *testing.T) {
		cx := &Context{Memory: m, Realloc: func(_, _, _, _ uint32) (uint32, error) { return 3, nil }}
		if _, err := cx.LowerFlat([]any{uint32(1)}, ListOf(TU32, 0)); err == nil || !strings.Contains(err.Error(), "not aligned to 4") {
			t.Errorf("LowerFlat with a realloc returning 3 = %v", err)
		}
	})
	t.Run("no realloc", func(t *testing.T) {
		cx := &Context{Memory: m}
		if _, err := cx.LowerFlat("x", TString); err == nil || !strings.Contains(err.Error(), "no realloc") {
			t.Errorf("LowerFlat without realloc = %v", err)
		}
	})
}

// TestNaNCanonicalised: a NaN lifts as the canonical NaN.
func TestNaNCanonicalised(t *testing.T) {
	cx, _ := context(UTF8)
	v, err := cx.LiftFlat([]uint64{0x7fc00001}, TF32)
	if err != nil || math.Float32bits(v.(float32)) != 0x7fc00000 {
		t.Errorf("f32 NaN lifts as %x, %v", math.Float32bits(v.(float32)), err)
	}
	v, err = cx.LiftFlat([]uint64{0xfff0000000000001}, TF64)
	if err != nil || math.Float64bits(v.(float64)) != 0x7ff8000000000000 {
		t.Errorf("f64 NaN lifts as %x, %v", math.Float64bits(v.(float64)), err)
	}
}

// TestValueErrors: a host value of the wrong Go type is an error naming
// both.
func TestValueErrors(t *testing.T) {
	cx, _ := context(UTF8)
	for _, tc := range []struct {
		v any
		t *Type
	}{{int32(1), TU32}, {"x", TBool}, {[]any{uint8(1)}, TupleOf(TU8, TU8)}, {VariantValue{Case: 2}, OptionOf(TU8)}, {rune(0xd800), TChar}} {
		if _, err := cx.LowerFlat(tc.v, tc.t); err == nil {
			t.Errorf("LowerFlat(%#v, %s) succeeded", tc.v, tc.t.Kind)
		}
	}
}

// TestRoundTrip: random values of random types come back equal from memory
// (Store, Load) and from flat values (LowerFlat, LiftFlat), in every
// string encoding, and through LowerFlatValues/LiftFlatValues with and
// without the spill to memory.
func TestRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		typ := randomType(r, 3)
		v := randomValue(r, typ)
		for _, enc := range []Encoding{UTF8, UTF16, Latin1UTF16} {
			cx, m := context(enc)
			ptr, err := m.realloc(0, 0, Alignment(typ), Size(typ))
			if err != nil {
				t.Fatal(err)
			}
			if err := cx.Store(v, typ, ptr); err != nil {
				t.Fatalf("#%d Store(%#v): %v", i, v, err)
			}
			got, err := cx.Load(ptr, typ)
			if err != nil || !reflect.DeepEqual(got, v) {
				t.Fatalf("#%d %s in memory, encoding %d: %#v, %v; want %#v", i, describe(typ), enc, got, err, v)
			}
			flat, err := cx.LowerFlat(v, typ)
			if err != nil {
				t.Fatalf("#%d LowerFlat: %v", i, err)
			}
			if len(flat) != len(Flatten(typ)) {
				t.Fatalf("#%d %s: %d flat values, Flatten says %d", i, describe(typ), len(flat), len(Flatten(typ)))
			}
			got, err = cx.LiftFlat(flat, typ)
			if err != nil || !reflect.DeepEqual(got, v) {
				t.Fatalf("#%d %s flat, encoding %d: %#v, %v; want %#v", i, describe(typ), enc, got, err, v)
			}
			for _, maxFlat := range []int{0, MaxFlatParams} {
				ts, vs := []*Type{typ, TU8}, []any{v, uint8(7)}
				flat, err := cx.LowerFlatValues(nil, vs, maxFlat, TupleOf(ts...), 0, false)
				if err != nil {
					t.Fatalf("#%d LowerFlatValues: %v", i, err)
				}
				got, err := cx.LiftFlatValues(nil, flat, maxFlat, TupleOf(ts...))
				if err != nil || !reflect.DeepEqual(got, vs) {
					t.Fatalf("#%d values (max %d): %#v, %v; want %#v", i, maxFlat, got, err, vs)
				}
			}
		}
	}
}

func describe(t *Type) string {
	var b strings.Builder
	b.WriteString(t.Kind.String())
	if t.Elem != nil {
		b.WriteString("<" + describe(t.Elem) + ">")
	}
	for _, f := range t.Fields {
		b.WriteString(" " + describe(f.Type))
	}
	for _, c := range t.Cases {
		if c.Type != nil {
			b.WriteString(" " + describe(c.Type))
		}
	}
	return b.String()
}

var scalars = []*Type{TBool, TS8, TU8, TS16, TU16, TS32, TU32, TS64, TU64, TF32, TF64, TChar, TString}

func randomType(r *rand.Rand, depth int) *Type {
	if depth == 0 || r.IntN(3) == 0 {
		return scalars[r.IntN(len(scalars))]
	}
	switch r.IntN(9) {
	case 0:
		return ListOf(randomType(r, depth-1), 0)
	case 1:
		return ListOf(randomType(r, depth-1), uint32(1+r.IntN(3)))
	case 2:
		fs := make([]Field, 1+r.IntN(4))
		for i := range fs {
			fs[i] = Field{Name: "f", Type: randomType(r, depth-1)}
		}
		return RecordOf(fs...)
	case 3:
		ts := make([]*Type, 1+r.IntN(3))
		for i := range ts {
			ts[i] = randomType(r, depth-1)
		}
		return TupleOf(ts...)
	case 4:
		cs := make([]Case, 1+r.IntN(4))
		for i := range cs {
			if r.IntN(3) > 0 {
				cs[i] = Case{Name: "c", Type: randomType(r, depth-1)}
			}
		}
		return VariantOf(cs...)
	case 5:
		return EnumOf("a", "b", "c")
	case 6:
		return OptionOf(randomType(r, depth-1))
	case 7:
		var ok, err *Type
		if r.IntN(2) == 0 {
			ok = randomType(r, depth-1)
		}
		if r.IntN(2) == 0 {
			err = randomType(r, depth-1)
		}
		return ResultOf(ok, err)
	}
	return FlagsOf("a", "b", "c", "d", "e", "f", "g", "h", "i")
}

var samples = []string{"", "ascii", "latin-1 é ÿ", "€uro", "emoji 😀 pair", "\x00nul"}

func randomValue(r *rand.Rand, t *Type) any {
	switch t.Kind {
	case Bool:
		return r.IntN(2) == 1
	case S8:
		return int8(r.Uint32())
	case U8:
		return uint8(r.Uint32())
	case S16:
		return int16(r.Uint32())
	case U16:
		return uint16(r.Uint32())
	case S32:
		return int32(r.Uint32())
	case U32:
		return r.Uint32()
	case S64:
		return int64(r.Uint64())
	case U64:
		return r.Uint64()
	case F32:
		return float32(r.NormFloat64())
	case F64:
		return r.NormFloat64()
	case Char:
		for {
			c := rune(r.IntN(0x110000))
			if c < 0xd800 || c > 0xdfff {
				return c
			}
		}
	case String:
		return samples[r.IntN(len(samples))]
	case List:
		n := t.Len
		if n == 0 {
			n = uint32(r.IntN(4))
		}
		if t.Elem.Kind == U8 {
			b := make([]byte, n)
			for i := range b {
				b[i] = uint8(r.Uint32())
			}
			return b
		}
		out := make([]any, n)
		for i := range out {
			out[i] = randomValue(r, t.Elem)
		}
		return out
	case Record, Tuple:
		out := make([]any, len(t.Fields))
		for i, f := range t.Fields {
			out[i] = randomValue(r, f.Type)
		}
		return out
	case Variant, Enum, Option, Result:
		cases := Despecialize(t).Cases
		c := r.IntN(len(cases))
		v := VariantValue{Case: uint32(c)}
		if cases[c].Type != nil {
			v.Value = randomValue(r, cases[c].Type)
		}
		return v
	case Flags:
		return r.Uint32() & (1<<len(t.Labels) - 1)
	}
	panic(t.Kind)
}

// FuzzLift: whatever a guest's memory and flat values hold, lifting is a
// value or an error, never a panic.
func FuzzLift(f *testing.F) {
	f.Add([]byte("\x08\x00\x00\x00\x03\x00\x00\x00abc\xff\xfe"), uint32(0), uint32(2), uint8(0))
	f.Add([]byte{1, 0, 0, 0, 0xff, 0xff, 0xff, 0x7f}, uint32(4), uint32(1), uint8(3))
	types := []*Type{TString, ListOf(TString, 0), RecordOf(Field{"a", TU8}, Field{"b", TString}), OptionOf(ListOf(TU64, 0)),
		ResultOf(TString, VariantOf(Case{"x", TF64}, Case{"y", nil})), ListOf(TupleOf(TChar, TU16), 2), FlagsOf("a", "b")}
	f.Fuzz(func(t *testing.T, mem []byte, a, b uint32, which uint8) {
		m := &testMemory{b: mem}
		for _, enc := range []Encoding{UTF8, UTF16, Latin1UTF16} {
			cx := &Context{Memory: m, Encoding: enc}
			typ := types[int(which)%len(types)]
			flat := []uint64{uint64(a), uint64(b)}[:min(2, len(Flatten(typ)))]
			for len(flat) < len(Flatten(typ)) {
				flat = append(flat, 0)
			}
			cx.LiftFlat(flat, typ)
			cx.Load(a, typ)
		}
	})
}

// TestUpperBitsIgnored: an i32 flat value's upper 32 bits, which wazero
// does not clear, change nothing.
func TestUpperBitsIgnored(t *testing.T) {
	cx, _ := context(UTF8)
	const junk = 0x3e_0000_0000
	for _, tc := range []struct {
		t    *Type
		flat []uint64
		want any
	}{
		{TBool, []uint64{junk}, false},
		{TU32, []uint64{junk | 7}, uint32(7)},
		{OptionOf(TU8), []uint64{junk | 1, junk | 9}, VariantValue{Case: 1, Value: uint8(9)}},
		{ResultOf(nil, nil), []uint64{junk}, VariantValue{Case: 0}},
		{EnumOf("a", "b"), []uint64{junk | 1}, VariantValue{Case: 1}},
	} {
		got, err := cx.LiftFlat(tc.flat, tc.t)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("LiftFlat(%x, %s) = %#v, %v; want %#v", tc.flat, tc.t.Kind, got, err, tc.want)
		}
	}
}

// TestLiftBudget: a list whose elements all point at one region costs the
// host what it copies, and a call may copy at most MaxLift.
func TestLiftBudget(t *testing.T) {
	cx, m := context(UTF8)
	cx.MaxLift = 1 << 16
	// 1,000 strings, each the same 1 KiB at offset 4096.
	const n = 1000
	for i := range n {
		binary := []byte{0, 16, 0, 0, 0, 4, 0, 0} // ptr 4096, len 1024
		copy(m.b[64+8*i:], binary)
	}
	_, err := cx.LiftFlat([]uint64{64, n}, ListOf(TString, 0))
	var trap *Trap
	if !errors.As(err, &trap) || !strings.Contains(err.Error(), "lifting more than 65536 bytes") {
		t.Fatalf("LiftFlat = %v, want the budget's trap", err)
	}
}

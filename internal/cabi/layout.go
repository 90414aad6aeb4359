package cabi

// CoreType is a core WebAssembly value type of a flattened value.
type CoreType byte

// Core value types, by their binary encoding.
const (
	I32     CoreType = 0x7f
	I64     CoreType = 0x7e
	F32Core CoreType = 0x7d
	F64Core CoreType = 0x7c
)

func (c CoreType) String() string {
	switch c {
	case I32:
		return "i32"
	case I64:
		return "i64"
	case F32Core:
		return "f32"
	case F64Core:
		return "f64"
	}
	return "?"
}

const ptrSize = 4 // 32-bit memories

// scalarSize is the size, and the alignment, of each scalar kind; 0 for
// the others.
var scalarSize = [...]uint32{Bool: 1, S8: 1, U8: 1, S16: 2, U16: 2, S32: 4, U32: 4, F32: 4, Char: 4, Own: 4, Borrow: 4,
	S64: 8, U64: 8, F64: 8}

// Alignment is t's alignment in linear memory, in bytes.
func Alignment(t *Type) uint32 {
	if s := scalarSize[t.Kind]; s != 0 {
		return s
	}
	return t.lay().align
}

// alignment is Alignment of a despecialized type.
func alignment(t *Type) uint32 {
	if s := scalarSize[t.Kind]; s != 0 {
		return s
	}
	switch t.Kind {
	case String:
		return ptrSize
	case List:
		if t.Len > 0 {
			return Alignment(t.Elem)
		}
		return ptrSize
	case Record:
		a := uint32(1)
		for _, f := range t.Fields {
			a = max(a, Alignment(f.Type))
		}
		return a
	case Variant:
		return max(discriminantSize(len(t.Cases)), maxCaseAlignment(t.Cases))
	case Flags:
		return flagsSize(len(t.Labels))
	}
	panic("cabi: alignment of " + t.Kind.String())
}

// discriminantSize is the byte size (and alignment) of the discriminant of
// a variant with n cases: u8, u16 or u32.
func discriminantSize(n int) uint32 {
	switch {
	case n <= 1<<8:
		return 1
	case n <= 1<<16:
		return 2
	}
	return 4
}

func maxCaseAlignment(cases []Case) uint32 {
	a := uint32(1)
	for _, c := range cases {
		if c.Type != nil {
			a = max(a, Alignment(c.Type))
		}
	}
	return a
}

func flagsSize(n int) uint32 {
	switch {
	case n <= 8:
		return 1
	case n <= 16:
		return 2
	}
	return 4
}

// alignTo rounds p up to a multiple of a.
func alignTo(p, a uint32) uint32 { return (p + a - 1) / a * a }

// Size is t's size in linear memory, in bytes (elem_size).
func Size(t *Type) uint32 {
	if s := scalarSize[t.Kind]; s != 0 {
		return s
	}
	return t.lay().size
}

// size is Size of a despecialized type.
func size(t *Type) uint32 {
	if s := scalarSize[t.Kind]; s != 0 {
		return s
	}
	switch t.Kind {
	case String:
		return 2 * ptrSize
	case List:
		if t.Len > 0 {
			return t.Len * Size(t.Elem)
		}
		return 2 * ptrSize
	case Record:
		var s uint32
		for _, f := range t.Fields {
			s = alignTo(s, Alignment(f.Type)) + Size(f.Type)
		}
		return alignTo(s, alignment(t))
	case Variant:
		s := alignTo(discriminantSize(len(t.Cases)), maxCaseAlignment(t.Cases))
		var cs uint32
		for _, c := range t.Cases {
			if c.Type != nil {
				cs = max(cs, Size(c.Type))
			}
		}
		return alignTo(s+cs, alignment(t))
	case Flags:
		return flagsSize(len(t.Labels))
	}
	panic("cabi: size of " + t.Kind.String())
}

// Flatten is the core value types that t is passed as (flatten_type). The
// slice is shared: the caller must not change it.
func Flatten(t *Type) []CoreType { return t.lay().flat }

// flatten appends the flat types of despecialized type t to out; a part of
// t is flattened by Flatten.
func flatten(out []CoreType, t *Type) []CoreType {
	switch t.Kind {
	case Bool, S8, U8, S16, U16, S32, U32, Char, Flags, Own, Borrow:
		return append(out, I32)
	case S64, U64:
		return append(out, I64)
	case F32:
		return append(out, F32Core)
	case F64:
		return append(out, F64Core)
	case String:
		return append(out, I32, I32)
	case List:
		if t.Len > 0 {
			for range t.Len {
				out = append(out, Flatten(t.Elem)...)
			}
			return out
		}
		return append(out, I32, I32)
	case Record:
		for _, f := range t.Fields {
			out = append(out, Flatten(f.Type)...)
		}
		return out
	case Variant:
		return append(flatten(out, &Type{Kind: discriminantKind(len(t.Cases))}), variantPayload(t.Cases)...)
	}
	panic("cabi: flatten of " + t.Kind.String())
}

func discriminantKind(n int) Kind {
	switch discriminantSize(n) {
	case 1:
		return U8
	case 2:
		return U16
	}
	return U32
}

// variantPayload is the joined flat types of a variant's cases.
func variantPayload(cases []Case) []CoreType {
	var flat []CoreType
	for _, c := range cases {
		if c.Type == nil {
			continue
		}
		for i, ft := range Flatten(c.Type) {
			if i < len(flat) {
				flat[i] = join(flat[i], ft)
			} else {
				flat = append(flat, ft)
			}
		}
	}
	return flat
}

func join(a, b CoreType) CoreType {
	switch {
	case a == b:
		return a
	case a == I32 && b == F32Core, a == F32Core && b == I32:
		return I32
	}
	return I64
}

// The flattening limits of synchronous calls.
const (
	MaxFlatParams  = 16
	MaxFlatResults = 1
)

// FlattenFunc is the core signature of a function with these parameter and
// result types (flatten_functype, synchronous): more than MaxFlatParams
// parameters are passed through memory by one pointer, more than
// MaxFlatResults results are returned through memory — by a returned
// pointer for a lifted function (lift), by a pointer parameter for a
// lowered one (lower).
func FlattenFunc(params, results []*Type, lift bool) (ps, rs []CoreType) {
	for _, t := range params {
		ps = append(ps, Flatten(t)...)
	}
	for _, t := range results {
		rs = append(rs, Flatten(t)...)
	}
	if len(ps) > MaxFlatParams {
		ps = []CoreType{I32}
	}
	if len(rs) > MaxFlatResults {
		if lift {
			rs = []CoreType{I32}
		} else {
			ps, rs = append(ps, I32), nil
		}
	}
	return ps, rs
}

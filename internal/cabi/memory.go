package cabi

import (
	"math"
	"unicode/utf16"
	"unicode/utf8"
)

// Load reads a value of type t at ptr (load). ptr must be aligned.
func (cx *Context) Load(ptr uint32, t *Type) (any, error) {
	if ptr != alignTo(ptr, Alignment(t)) {
		return nil, trapf("%s at %d is not aligned to %d", t.Kind, ptr, Alignment(t))
	}
	if uint64(ptr)+uint64(Size(t)) > uint64(cx.memSize()) {
		return nil, trapf("%s of %d bytes at %d is outside the memory", t.Kind, Size(t), ptr)
	}
	return cx.load(ptr, t)
}

func (cx *Context) memSize() uint32 {
	if cx.Memory == nil {
		return 0
	}
	return cx.Memory.Size()
}

func (cx *Context) load(ptr uint32, t *Type) (any, error) {
	switch t.Kind {
	case String:
		begin, err := cx.loadInt(ptr, 4)
		if err != nil {
			return nil, err
		}
		units, err := cx.loadInt(ptr+4, 4)
		if err != nil {
			return nil, err
		}
		return cx.loadString(uint32(begin), uint32(units))
	case List:
		if t.Len > 0 {
			return cx.loadListRange(ptr, t.Len, t.Elem)
		}
		begin, err := cx.loadInt(ptr, 4)
		if err != nil {
			return nil, err
		}
		n, err := cx.loadInt(ptr+4, 4)
		if err != nil {
			return nil, err
		}
		return cx.loadList(uint32(begin), uint32(n), t.Elem)
	case Record, Tuple:
		out := make([]any, len(t.Fields))
		for i, f := range t.Fields {
			ptr = alignTo(ptr, Alignment(f.Type))
			v, err := cx.load(ptr, f.Type)
			if err != nil {
				return nil, err
			}
			out[i] = v
			ptr += Size(f.Type)
		}
		return out, nil
	case Variant, Enum, Option, Result:
		cases := Despecialize(t).Cases
		ds := discriminantSize(len(cases))
		c, err := cx.loadInt(ptr, ds)
		if err != nil {
			return nil, err
		}
		if c >= uint64(len(cases)) {
			return nil, trapf("%s case %d: it has %d cases", t.Kind, c, len(cases))
		}
		v := VariantValue{Case: uint32(c)}
		if ct := cases[c].Type; ct != nil {
			if v.Value, err = cx.load(alignTo(ptr+ds, maxCaseAlignment(cases)), ct); err != nil {
				return nil, err
			}
		}
		return v, nil
	case Flags:
		i, err := cx.loadInt(ptr, flagsSize(len(t.Labels)))
		return uint32(i) & flagsMask(len(t.Labels)), err
	}
	i, err := cx.loadInt(ptr, Size(t))
	if err != nil {
		return nil, err
	}
	return cx.liftScalar(i, t)
}

// liftScalar turns the bits of a scalar (from memory or a flat value) into
// its Go value.
func (cx *Context) liftScalar(i uint64, t *Type) (any, error) {
	switch t.Kind {
	case Bool:
		return uint32(i) != 0, nil
	case U8:
		return uint8(i), nil
	case U16:
		return uint16(i), nil
	case U32:
		return uint32(i), nil
	case U64:
		return i, nil
	case S8:
		return int8(i), nil
	case S16:
		return int16(i), nil
	case S32:
		return int32(i), nil
	case S64:
		return int64(i), nil
	case F32:
		return canonicalizeNaN32(math.Float32frombits(uint32(i))), nil
	case F64:
		return canonicalizeNaN64(math.Float64frombits(i)), nil
	case Char:
		c := uint32(i)
		if c >= 0x110000 || c >= 0xd800 && c <= 0xdfff {
			return nil, trapf("char 0x%x is not a Unicode scalar value", c)
		}
		return rune(c), nil
	case Own, Borrow:
		if cx.Resources == nil {
			return nil, trapf("%s handle %d: no resources here", t.Kind, uint32(i))
		}
		if t.Kind == Own {
			return cx.Resources.LiftOwn(uint32(i), t.Resource)
		}
		return cx.Resources.LiftBorrow(uint32(i), t.Resource)
	}
	panic("cabi: liftScalar of " + t.Kind.String())
}

func canonicalizeNaN32(f float32) float32 {
	if f != f {
		return math.Float32frombits(0x7fc00000)
	}
	return f
}

func canonicalizeNaN64(f float64) float64 {
	if f != f {
		return math.Float64frombits(0x7ff8000000000000)
	}
	return f
}

// loadString reads a string of tagged code units at ptr in the guest's
// encoding (load_string_from_range).
func (cx *Context) loadString(ptr, taggedUnits uint32) (string, error) {
	align, n, enc := uint32(1), uint64(taggedUnits), cx.Encoding
	switch cx.Encoding {
	case UTF16:
		align, n = 2, 2*uint64(taggedUnits)
	case Latin1UTF16:
		align = 2
		if taggedUnits&utf16Tag != 0 {
			n, enc = 2*uint64(taggedUnits^utf16Tag), UTF16
		} else {
			enc = Latin1UTF16
		}
	}
	if n > MaxStringByteLength {
		return "", trapf("string of %d bytes: longer than %d", n, MaxStringByteLength)
	}
	if ptr != alignTo(ptr, align) {
		return "", trapf("string at %d is not aligned to %d", ptr, align)
	}
	if err := cx.charge(int64(n)); err != nil {
		return "", err
	}
	b, err := cx.read(ptr, uint32(n))
	if err != nil {
		return "", err
	}
	switch enc {
	case UTF8:
		if !utf8.Valid(b) {
			return "", trapf("string at %d is not valid UTF-8", ptr)
		}
		return string(b), nil
	case UTF16:
		units := make([]uint16, len(b)/2)
		for i := range units {
			units[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
		}
		for i := 0; i < len(units); i++ { // unpaired surrogates are invalid
			switch u := units[i]; {
			case u >= 0xd800 && u < 0xdc00:
				if i+1 == len(units) || units[i+1] < 0xdc00 || units[i+1] > 0xdfff {
					return "", trapf("string at %d is not valid UTF-16: unpaired surrogate", ptr)
				}
				i++
			case u >= 0xdc00 && u <= 0xdfff:
				return "", trapf("string at %d is not valid UTF-16: unpaired surrogate", ptr)
			}
		}
		return string(utf16.Decode(units)), nil
	}
	rs := make([]rune, len(b)) // latin-1: each byte is its code point
	for i, c := range b {
		rs[i] = rune(c)
	}
	return string(rs), nil
}

// loadList reads n elements of type elem at ptr (load_list_from_range).
func (cx *Context) loadList(ptr, n uint32, elem *Type) (any, error) {
	size := uint64(n) * uint64(Size(elem))
	if size > MaxListByteLength {
		return nil, trapf("list of %d bytes: longer than %d", size, MaxListByteLength)
	}
	if ptr != alignTo(ptr, Alignment(elem)) {
		return nil, trapf("list at %d is not aligned to %d", ptr, Alignment(elem))
	}
	if uint64(ptr)+size > uint64(cx.memSize()) {
		return nil, trapf("list of %d bytes at %d is outside the memory of %d bytes", size, ptr, cx.memSize())
	}
	return cx.loadListRange(ptr, n, elem)
}

func (cx *Context) loadListRange(ptr, n uint32, elem *Type) (any, error) {
	cost := int64(n)
	if elem.Kind != U8 {
		cost *= 16
	}
	if err := cx.charge(cost); err != nil {
		return nil, err
	}
	if elem.Kind == U8 {
		b, err := cx.read(ptr, n)
		if err != nil {
			return nil, err
		}
		return append(make([]byte, 0, n), b...), nil
	}
	out := make([]any, n)
	size := Size(elem)
	for i := range out {
		v, err := cx.load(ptr+uint32(i)*size, elem)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// flagsMask keeps the bits of n flags: the spec's unpacking ignores the rest.
func flagsMask(n int) uint32 {
	if n >= 32 {
		return ^uint32(0)
	}
	return 1<<n - 1
}

package cabi

import (
	"fmt"
	"math"
	"unicode/utf16"
	"unicode/utf8"
)

// Store writes v, of type t, at ptr (store). ptr must be aligned; strings
// and lists are allocated with the guest's realloc.
func (cx *Context) Store(v any, t *Type, ptr uint32) error {
	if err := cx.checkStore(t, ptr); err != nil {
		return err
	}
	return cx.store(v, t, ptr)
}

// checkStore checks that a value of type t fits at ptr.
func (cx *Context) checkStore(t *Type, ptr uint32) error {
	if ptr != alignTo(ptr, Alignment(t)) {
		return trapf("%s at %d is not aligned to %d", t.Kind, ptr, Alignment(t))
	}
	if uint64(ptr)+uint64(Size(t)) > uint64(cx.memSize()) {
		return trapf("%s of %d bytes at %d is outside the memory", t.Kind, Size(t), ptr)
	}
	return nil
}

// storeFields stores the fields of a record or tuple of type t.
func (cx *Context) storeFields(fs []any, t *Type, ptr uint32) error {
	for i, f := range t.Fields {
		ptr = alignTo(ptr, Alignment(f.Type))
		if err := cx.store(fs[i], f.Type, ptr); err != nil {
			return err
		}
		ptr += Size(f.Type)
	}
	return nil
}

// valueError is a host's mistake: a Go value that is not of its type.
func valueError(v any, t *Type) error {
	return fmt.Errorf("cabi: a %T is not a value of %s", v, t.Kind)
}

func (cx *Context) store(v any, t *Type, ptr uint32) error {
	switch t.Kind {
	case String:
		s, ok := v.(string)
		if !ok {
			return valueError(v, t)
		}
		begin, units, err := cx.storeString(s)
		if err != nil {
			return err
		}
		return cx.storePair(ptr, begin, units)
	case List:
		if t.Len > 0 {
			return cx.storeListRange(v, t, ptr)
		}
		begin, n, err := cx.storeList(v, t.Elem)
		if err != nil {
			return err
		}
		return cx.storePair(ptr, begin, n)
	case Record, Tuple:
		fs, ok := v.([]any)
		if !ok || len(fs) != len(t.Fields) {
			return valueError(v, t)
		}
		return cx.storeFields(fs, t, ptr)
	case Variant, Enum, Option, Result:
		cases := Despecialize(t).Cases
		vv, ok := v.(VariantValue)
		if !ok || vv.Case >= uint32(len(cases)) {
			return valueError(v, t)
		}
		ds := discriminantSize(len(cases))
		if err := cx.storeInt(ptr, ds, uint64(vv.Case)); err != nil {
			return err
		}
		if ct := cases[vv.Case].Type; ct != nil {
			return cx.store(vv.Value, ct, alignTo(ptr+ds, maxCaseAlignment(cases)))
		}
		return nil
	case Flags:
		f, ok := v.(uint32)
		if !ok {
			return valueError(v, t)
		}
		return cx.storeInt(ptr, flagsSize(len(t.Labels)), uint64(f))
	}
	i, err := cx.lowerScalar(v, t)
	if err != nil {
		return err
	}
	return cx.storeInt(ptr, Size(t), i)
}

func (cx *Context) storePair(ptr, a, b uint32) error {
	if err := cx.storeInt(ptr, 4, uint64(a)); err != nil {
		return err
	}
	return cx.storeInt(ptr+4, 4, uint64(b))
}

// lowerScalar turns a scalar's Go value into its bits.
func (cx *Context) lowerScalar(v any, t *Type) (uint64, error) {
	var i uint64
	ok := true
	switch t.Kind {
	case Bool:
		var b bool
		if b, ok = v.(bool); b {
			i = 1
		}
	case U8:
		var x uint8
		x, ok = v.(uint8)
		i = uint64(x)
	case U16:
		var x uint16
		x, ok = v.(uint16)
		i = uint64(x)
	case U32:
		var x uint32
		x, ok = v.(uint32)
		i = uint64(x)
	case U64:
		i, ok = v.(uint64)
	case S8:
		var x int8
		x, ok = v.(int8)
		i = uint64(uint32(int32(x)))
	case S16:
		var x int16
		x, ok = v.(int16)
		i = uint64(uint32(int32(x)))
	case S32:
		var x int32
		x, ok = v.(int32)
		i = uint64(uint32(x))
	case S64:
		var x int64
		x, ok = v.(int64)
		i = uint64(x)
	case F32:
		var x float32
		x, ok = v.(float32)
		i = uint64(math.Float32bits(x))
	case F64:
		var x float64
		x, ok = v.(float64)
		i = math.Float64bits(x)
	case Char:
		var r rune
		if r, ok = v.(rune); ok && (r < 0 || r >= 0x110000 || r >= 0xd800 && r <= 0xdfff) {
			return 0, fmt.Errorf("cabi: %U is not a Unicode scalar value", r)
		}
		i = uint64(uint32(r))
	case Own, Borrow:
		var rep uint32
		if rep, ok = v.(uint32); !ok {
			break
		}
		if cx.Resources == nil {
			return 0, fmt.Errorf("cabi: %s: no resources to lower rep %d into", t.Kind, rep)
		}
		var h uint32
		var err error
		if t.Kind == Own {
			h, err = cx.Resources.LowerOwn(rep, t.Resource)
		} else {
			h, err = cx.Resources.LowerBorrow(rep, t.Resource)
		}
		return uint64(h), err
	default:
		panic("cabi: lowerScalar of " + t.Kind.String())
	}
	if !ok {
		return 0, valueError(v, t)
	}
	return i, nil
}

// storeString copies a Go string into the guest, in its encoding, and
// returns where and how many (tagged) code units (store_string_into_range,
// from a UTF-8 source).
func (cx *Context) storeString(s string) (ptr, units uint32, err error) {
	if len(s) > MaxStringByteLength {
		return 0, 0, fmt.Errorf("cabi: a string of %d bytes: longer than %d", len(s), MaxStringByteLength)
	}
	if !utf8.ValidString(s) {
		return 0, 0, fmt.Errorf("cabi: a string that is not valid UTF-8 (%.40q)", s)
	}
	switch cx.Encoding {
	case UTF8:
		if ptr, err = cx.allocate(1, uint32(len(s))); err == nil {
			var b []byte
			if b, err = cx.read(ptr, uint32(len(s))); err == nil {
				copy(b, s) // into the memory's view: []byte(s) through Memory.Write would be a copy on the heap first
			}
		}
		return ptr, uint32(len(s)), err
	}
	if 2*len(s) > MaxStringByteLength { // the worst case of both encodings
		return 0, 0, fmt.Errorf("cabi: a string of %d bytes may take %d in UTF-16: longer than %d", len(s), 2*len(s), MaxStringByteLength)
	}
	if cx.Encoding == UTF16 {
		return cx.storeUTF16(s, uint32(len(s)))
	}
	return cx.storeLatin1OrUTF16(s)
}

// storeUTF16 is store_utf8_to_utf16: allocate the worst case (two bytes
// per source byte), write, shrink.
func (cx *Context) storeUTF16(s string, srcUnits uint32) (uint32, uint32, error) {
	worst := 2 * srcUnits
	ptr, err := cx.allocate(2, worst)
	if err != nil {
		return 0, 0, err
	}
	enc := encodeUTF16(s)
	if ptr, err = cx.writeShrink(ptr, worst, 2, enc); err != nil {
		return 0, 0, err
	}
	return ptr, uint32(len(enc) / 2), nil
}

// writeShrink writes b at ptr, in a block of size bytes that it then
// shrinks to len(b) with the guest's realloc.
func (cx *Context) writeShrink(ptr, size, align uint32, b []byte) (uint32, error) {
	if err := cx.write(ptr, b); err != nil {
		return 0, err
	}
	if uint32(len(b)) < size {
		return cx.reallocate(ptr, size, align, uint32(len(b)))
	}
	return ptr, nil
}

func encodeUTF16(s string) []byte {
	units := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(units))
	for i, u := range units {
		b[2*i], b[2*i+1] = byte(u), byte(u>>8)
	}
	return b
}

// storeLatin1OrUTF16 is store_string_to_latin1_or_utf16: latin-1 while
// every code point fits a byte, else UTF-16 with the tag bit set.
func (cx *Context) storeLatin1OrUTF16(s string) (uint32, uint32, error) {
	srcUnits := uint32(len(s))
	ptr, err := cx.allocate(2, srcUnits)
	if err != nil {
		return 0, 0, err
	}
	var latin []byte
	for _, r := range s {
		if r >= 1<<8 {
			worst := 2 * srcUnits
			if ptr, err = cx.reallocate(ptr, srcUnits, 2, worst); err != nil {
				return 0, 0, err
			}
			enc := encodeUTF16(s)
			if ptr, err = cx.writeShrink(ptr, worst, 2, enc); err != nil {
				return 0, 0, err
			}
			return ptr, uint32(len(enc)/2) | utf16Tag, nil
		}
		latin = append(latin, byte(r))
	}
	if ptr, err = cx.writeShrink(ptr, srcUnits, 2, latin); err != nil {
		return 0, 0, err
	}
	return ptr, uint32(len(latin)), nil
}

// storeList allocates a list of v's elements in the guest and writes them
// (store_list_into_range).
func (cx *Context) storeList(v any, elem *Type) (ptr, n uint32, err error) {
	var count int
	switch l := v.(type) {
	case []byte:
		if elem.Kind != U8 {
			return 0, 0, valueError(v, ListOf(elem, 0))
		}
		count = len(l)
	case []any:
		count = len(l)
	default:
		return 0, 0, valueError(v, ListOf(elem, 0))
	}
	size := uint64(count) * uint64(Size(elem))
	if size > MaxListByteLength {
		return 0, 0, fmt.Errorf("cabi: a list of %d bytes: longer than %d", size, MaxListByteLength)
	}
	if ptr, err = cx.allocate(Alignment(elem), uint32(size)); err != nil {
		return 0, 0, err
	}
	return ptr, uint32(count), cx.storeListRange(v, ListOf(elem, uint32(count)), ptr)
}

// storeListRange writes v's elements from ptr on; t is the list's type
// with its length.
func (cx *Context) storeListRange(v any, t *Type, ptr uint32) error {
	if b, ok := v.([]byte); ok && t.Elem.Kind == U8 {
		if uint32(len(b)) != t.Len {
			return valueError(v, t)
		}
		return cx.write(ptr, b)
	}
	l, ok := v.([]any)
	if !ok || uint32(len(l)) != t.Len {
		return valueError(v, t)
	}
	size := Size(t.Elem)
	for i, e := range l {
		if err := cx.store(e, t.Elem, ptr+uint32(i)*size); err != nil {
			return err
		}
	}
	return nil
}

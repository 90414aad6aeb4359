package cabi

import (
	"fmt"
	"math"
)

// Core values are passed as uint64s, as wazero passes them: an i32 in the
// low 32 bits (the upper bits of a value from the guest are not its own,
// and are ignored), floats as their bits.

// flatIter reads flat values in order (CoreValueIter).
type flatIter struct {
	vals []uint64
	i    int
}

func (it *flatIter) next() (uint64, error) {
	if it.i >= len(it.vals) {
		return 0, fmt.Errorf("cabi: %d flat values, more needed", len(it.vals))
	}
	v := it.vals[it.i]
	it.i++
	return v, nil
}

// LiftFlat lifts a value of type t from its flat core values (lift_flat).
func (cx *Context) LiftFlat(vals []uint64, t *Type) (any, error) {
	it := &flatIter{vals: vals}
	v, err := cx.liftFlat(it, t)
	if err == nil && it.i != len(vals) {
		err = fmt.Errorf("cabi: %d flat values for %s, %d used", len(vals), t.Kind, it.i)
	}
	return v, err
}

func (cx *Context) liftFlat(it *flatIter, t *Type) (any, error) {
	switch t.Kind {
	case String:
		ptr, err := it.next()
		if err != nil {
			return nil, err
		}
		units, err := it.next()
		if err != nil {
			return nil, err
		}
		return cx.loadString(uint32(ptr), uint32(units))
	case List:
		if t.Len > 0 {
			out := make([]any, t.Len)
			for i := range out {
				v, err := cx.liftFlat(it, t.Elem)
				if err != nil {
					return nil, err
				}
				out[i] = v
			}
			if t.Elem.Kind == U8 {
				return toBytes(out), nil
			}
			return out, nil
		}
		ptr, err := it.next()
		if err != nil {
			return nil, err
		}
		n, err := it.next()
		if err != nil {
			return nil, err
		}
		return cx.loadList(uint32(ptr), uint32(n), t.Elem)
	case Record, Tuple:
		out := make([]any, len(t.Fields))
		for i, f := range t.Fields {
			v, err := cx.liftFlat(it, f.Type)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case Variant, Enum, Option, Result:
		return cx.liftFlatVariant(it, Despecialize(t).Cases)
	case F32:
		v, err := it.next()
		return canonicalizeNaN32(math.Float32frombits(uint32(v))), err
	case F64:
		v, err := it.next()
		return canonicalizeNaN64(math.Float64frombits(v)), err
	case Flags:
		v, err := it.next()
		return uint32(v) & flagsMask(len(t.Labels)), err
	}
	v, err := it.next()
	if err != nil {
		return nil, err
	}
	return cx.liftScalar(v, t)
}

func toBytes(vs []any) []byte {
	b := make([]byte, len(vs))
	for i, v := range vs {
		b[i] = v.(uint8)
	}
	return b
}

// liftFlatVariant reads the case, then the payload from the joined flat
// types, coercing each to what the case's type wants.
func (cx *Context) liftFlatVariant(it *flatIter, cases []Case) (any, error) {
	c64, err := it.next()
	if err != nil {
		return nil, err
	}
	c := uint32(c64) // an i32: the upper bits are not the guest's
	if c >= uint32(len(cases)) {
		return nil, trapf("variant case %d: it has %d cases", c, len(cases))
	}
	joined := variantPayload(cases)
	payload := make([]uint64, len(joined))
	for i := range payload {
		if payload[i], err = it.next(); err != nil {
			return nil, err
		}
	}
	v := VariantValue{Case: c}
	ct := cases[c].Type
	if ct == nil {
		return v, nil
	}
	want := Flatten(ct)
	coerced := make([]uint64, len(want))
	for i, w := range want {
		x := payload[i]
		switch have := joined[i]; {
		case have == I64 && (w == I32 || w == F32Core):
			x = uint64(uint32(x)) // wrap_i64_to_i32 (and f32's bits)
		case have == w, have == I32 && w == F32Core, have == I64 && w == F64Core:
		default:
			return nil, fmt.Errorf("cabi: variant payload %s as %s", have, w)
		}
		coerced[i] = x
	}
	v.Value, err = cx.liftFlat(&flatIter{vals: coerced}, ct)
	return v, err
}

// LowerFlat lowers v, of type t, to its flat core values (lower_flat).
func (cx *Context) LowerFlat(v any, t *Type) ([]uint64, error) { return cx.lowerFlat(nil, v, t) }

func (cx *Context) lowerFlat(out []uint64, v any, t *Type) ([]uint64, error) {
	switch t.Kind {
	case String:
		s, ok := v.(string)
		if !ok {
			return nil, valueError(v, t)
		}
		ptr, units, err := cx.storeString(s)
		return append(out, uint64(ptr), uint64(units)), err
	case List:
		if t.Len > 0 {
			return cx.lowerFlatFixed(out, v, t)
		}
		ptr, n, err := cx.storeList(v, t.Elem)
		return append(out, uint64(ptr), uint64(n)), err
	case Record, Tuple:
		fs, ok := v.([]any)
		if !ok || len(fs) != len(t.Fields) {
			return nil, valueError(v, t)
		}
		var err error
		for i, f := range t.Fields {
			if out, err = cx.lowerFlat(out, fs[i], f.Type); err != nil {
				return nil, err
			}
		}
		return out, nil
	case Variant, Enum, Option, Result:
		return cx.lowerFlatVariant(out, v, t)
	case Flags:
		f, ok := v.(uint32)
		if !ok {
			return nil, valueError(v, t)
		}
		return append(out, uint64(f)), nil
	}
	i, err := cx.lowerScalar(v, t)
	return append(out, i), err
}

func (cx *Context) lowerFlatFixed(out []uint64, v any, t *Type) ([]uint64, error) {
	var elems []any
	switch l := v.(type) {
	case []byte:
		for _, b := range l {
			elems = append(elems, b)
		}
	case []any:
		elems = l
	}
	if uint32(len(elems)) != t.Len {
		return nil, valueError(v, t)
	}
	var err error
	for _, e := range elems {
		if out, err = cx.lowerFlat(out, e, t.Elem); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// lowerFlatVariant writes the case, the payload widened to the joined flat
// types, and zeros for the rest.
func (cx *Context) lowerFlatVariant(out []uint64, v any, t *Type) ([]uint64, error) {
	cases := Despecialize(t).Cases
	vv, ok := v.(VariantValue)
	if !ok || vv.Case >= uint32(len(cases)) {
		return nil, valueError(v, t)
	}
	out = append(out, uint64(vv.Case))
	joined := variantPayload(cases)
	var payload []uint64
	if ct := cases[vv.Case].Type; ct != nil {
		var err error
		if payload, err = cx.lowerFlat(nil, vv.Value, ct); err != nil {
			return nil, err
		}
		// i32 and f32 bits widen to i64 unchanged (and f32 to i32 is its bits).
	}
	for i := range joined {
		if i < len(payload) {
			out = append(out, payload[i])
		} else {
			out = append(out, 0)
		}
	}
	return out, nil
}

// LiftFlatValues lifts a function's parameters or results (lift_flat_values),
// whose types are tuple's fields: from their flat values, or, when they
// flatten to more than maxFlat, from a tuple in memory at the one pointer
// given. The values are appended to dst (which may be nil), as append does.
func (cx *Context) LiftFlatValues(dst []any, vals []uint64, maxFlat int, tuple *Type) ([]any, error) {
	cx.lifted = 0
	if len(Flatten(tuple)) > maxFlat {
		if len(vals) != 1 {
			return nil, fmt.Errorf("cabi: %d values given for a tuple passed by pointer", len(vals))
		}
		v, err := cx.Load(uint32(vals[0]), tuple)
		if err != nil {
			return nil, err
		}
		return append(dst, v.([]any)...), nil
	}
	it := flatIter{vals: vals}
	out := dst
	for _, f := range tuple.Fields {
		v, err := cx.liftFlat(&it, f.Type)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if it.i != len(vals) {
		return nil, fmt.Errorf("cabi: %d flat values, %d used", len(vals), it.i)
	}
	return out, nil
}

// LowerFlatValues lowers a function's parameters or results
// (lower_flat_values), whose types are tuple's fields: to flat values, or,
// when they flatten to more than maxFlat, into a tuple in memory — at
// outPtr when the caller provides one (hasOut: a lowered function's
// results), else allocated, its pointer the one flat value. The flat
// values are appended to dst (which may be nil), as append does.
func (cx *Context) LowerFlatValues(dst []uint64, vs []any, maxFlat int, tuple *Type, outPtr uint32, hasOut bool) ([]uint64, error) {
	if len(vs) != len(tuple.Fields) {
		return nil, fmt.Errorf("cabi: %d values for %d types", len(vs), len(tuple.Fields))
	}
	if len(Flatten(tuple)) > maxFlat {
		ptr, flat := outPtr, dst
		if !hasOut {
			var err error
			if ptr, err = cx.allocate(Alignment(tuple), Size(tuple)); err != nil {
				return nil, err
			}
			flat = append(flat, uint64(ptr))
		}
		if err := cx.checkStore(tuple, ptr); err != nil {
			return nil, err
		}
		return flat, cx.storeFields(vs, tuple, ptr) // vs as they are: boxed in an any, they would be copied to the heap
	}
	out := dst
	for i, f := range tuple.Fields {
		var err error
		if out, err = cx.lowerFlat(out, vs[i], f.Type); err != nil {
			return nil, err
		}
	}
	return out, nil
}

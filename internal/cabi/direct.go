package cabi

// What a host function written on core values (rather than on the values
// LiftFlatValues and LowerFlatValues make) needs of the ABI: the layout of
// a variant-like type in memory, and lifts and lowers of strings and byte
// lists without an `any` in between.

// CaseLayout is where a variant, enum, option or result t keeps its
// discriminant (size bytes at offset 0) and its payload (at payload), in
// memory. ok is false for any other type.
func CaseLayout(t *Type) (size, payload uint32, ok bool) {
	d := Despecialize(t)
	if d.Kind != Variant {
		return 0, 0, false
	}
	size = discriminantSize(len(d.Cases))
	return size, alignTo(size, maxCaseAlignment(d.Cases)), true
}

// CheckStore reports a trap unless a value of type t fits at ptr: aligned,
// and within the memory (what lowering checks before it writes).
func (cx *Context) CheckStore(t *Type, ptr uint32) error { return cx.checkStore(t, ptr) }

// StoreUint writes v at ptr as an unsigned integer of size bytes (1, 2, 4
// or 8): a discriminant, say, of the size CaseLayout gives.
func (cx *Context) StoreUint(ptr, size uint32, v uint64) error { return cx.storeInt(ptr, size, v) }

// Allocate calls the guest's realloc for size bytes aligned to align, and
// checks what it returns.
func (cx *Context) Allocate(align, size uint32) (uint32, error) { return cx.allocate(align, size) }

// StoreU32 writes v at ptr.
func (cx *Context) StoreU32(ptr, v uint32) error { return cx.storeInt(ptr, 4, uint64(v)) }

// LowerString copies s into the guest (through its realloc, in its
// encoding) and returns the pointer and the length a string's two core
// values are.
func (cx *Context) LowerString(s string) (ptr, units uint32, err error) { return cx.storeString(s) }

// LowerBytes copies b into the guest as a list<u8> and returns its pointer
// and length.
func (cx *Context) LowerBytes(b []byte) (ptr, n uint32, err error) {
	if len(b) > MaxListByteLength {
		return 0, 0, trapf("a list of %d bytes: longer than %d", len(b), MaxListByteLength)
	}
	if ptr, err = cx.allocate(1, uint32(len(b))); err == nil {
		err = cx.write(ptr, b)
	}
	return ptr, uint32(len(b)), err
}

// LiftString is the string whose core values are ptr and units, copied out
// of the guest (within MaxLift on its own).
func (cx *Context) LiftString(ptr, units uint32) (string, error) {
	cx.lifted = 0
	return cx.loadString(ptr, units)
}

// ViewBytes is the list<u8> whose core values are ptr and n, as a view of
// the guest's memory: valid until the guest runs again.
func (cx *Context) ViewBytes(ptr, n uint32) ([]byte, error) {
	if n > MaxListByteLength {
		return nil, trapf("a list of %d bytes: longer than %d", n, MaxListByteLength)
	}
	return cx.read(ptr, n)
}

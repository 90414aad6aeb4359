package cabi

import (
	"encoding/binary"
	"fmt"
)

// Memory is a guest's linear memory. wazero's api.Memory is one.
type Memory interface {
	// Read returns a view of n bytes at offset, false when out of range:
	// writing to it writes the memory.
	Read(offset, n uint32) ([]byte, bool)
	// Write copies b to offset, false when out of range.
	Write(offset uint32, b []byte) bool
	// Size is the memory's size in bytes.
	Size() uint32
}

// Encoding is a string encoding of the canonical ABI.
type Encoding uint8

// String encodings; UTF8 is the default.
const (
	UTF8 Encoding = iota
	UTF16
	Latin1UTF16
)

// Limits of the canonical ABI.
const (
	MaxStringByteLength = 1<<28 - 1
	MaxListByteLength   = 1<<28 - 1
	utf16Tag            = 1 << 31
)

// Context is what a lift or lower needs of the guest: its memory, its
// realloc, its string encoding and its resources.
type Context struct {
	Memory   Memory
	Encoding Encoding
	// Realloc is the guest's cabi_realloc: (old pointer, old size,
	// alignment, new size) → pointer. nil: lowering anything that needs
	// memory traps.
	Realloc func(oldPtr, oldSize, align, newSize uint32) (uint32, error)
	// Resources turns own and borrow handles into representations and
	// back; nil: any handle traps.
	Resources Resources
	// MaxLift bounds what lifting may copy out of the guest in one call
	// (one LiftFlatValues, which starts the count again; for the other
	// lifts, since StartCall): string and list bytes, plus 16 for
	// each element made. Default 0: DefaultMaxLift. (Lists whose elements all point at one region would
	// otherwise cost the host far more than the guest's memory.)
	MaxLift int64
	lifted  int64
}

// StartCall starts the lift budget again, for a new call whose lifts go
// through LiftFlat or Load (a host function's): the budget is one call's,
// not the instance's.
func (cx *Context) StartCall() { cx.lifted = 0 }

// DefaultMaxLift is Context.MaxLift's default.
const DefaultMaxLift = 64 << 20

// charge counts n bytes against the lift budget.
func (cx *Context) charge(n int64) error {
	cx.lifted += n
	limit := cx.MaxLift
	if limit == 0 {
		limit = DefaultMaxLift
	}
	if cx.lifted > limit {
		return trapf("lifting more than %d bytes in one call", limit)
	}
	return nil
}

// Resources is a component instance's handle table, as lifting and
// lowering see it (CanonicalABI.md, lift_own, lift_borrow, lower_own,
// lower_borrow).
type Resources interface {
	LiftOwn(handle uint32, resource int) (rep uint32, err error)
	LiftBorrow(handle uint32, resource int) (rep uint32, err error)
	LowerOwn(rep uint32, resource int) (handle uint32, err error)
	LowerBorrow(rep uint32, resource int) (handle uint32, err error)
}

// Trap is a guest's violation of the canonical ABI: the call that met it
// fails.
type Trap struct{ Msg string }

func (t *Trap) Error() string { return "canonical ABI: " + t.Msg }

func trapf(format string, args ...any) error { return &Trap{Msg: fmt.Sprintf(format, args...)} }

func (cx *Context) read(ptr, n uint32) ([]byte, error) {
	if cx.Memory == nil {
		return nil, trapf("no memory for %d bytes at %d", n, ptr)
	}
	b, ok := cx.Memory.Read(ptr, n)
	if !ok {
		return nil, trapf("%d bytes at %d are outside the memory of %d bytes", n, ptr, cx.Memory.Size())
	}
	return b, nil
}

func (cx *Context) write(ptr uint32, b []byte) error {
	if cx.Memory == nil || !cx.Memory.Write(ptr, b) {
		return trapf("%d bytes at %d are outside the memory", len(b), ptr)
	}
	return nil
}

func (cx *Context) loadInt(ptr, n uint32) (uint64, error) {
	b, err := cx.read(ptr, n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.LittleEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.LittleEndian.Uint32(b)), nil
	}
	return binary.LittleEndian.Uint64(b), nil
}

// storeInt writes v's low n bytes through a view of the memory (a byte
// array passed to Memory.Write would escape to the heap).
func (cx *Context) storeInt(ptr, n uint32, v uint64) error {
	b, err := cx.read(ptr, n)
	if err != nil {
		return err
	}
	switch n {
	case 1:
		b[0] = byte(v)
	case 2:
		binary.LittleEndian.PutUint16(b, uint16(v))
	case 4:
		binary.LittleEndian.PutUint32(b, uint32(v))
	default:
		binary.LittleEndian.PutUint64(b, v)
	}
	return nil
}

// allocate calls the guest's realloc for a new block, and checks what it
// returns.
func (cx *Context) allocate(align, size uint32) (uint32, error) {
	return cx.reallocate(0, 0, align, size)
}

func (cx *Context) reallocate(old, oldSize, align, size uint32) (uint32, error) {
	if cx.Realloc == nil {
		return 0, trapf("the guest has no realloc to allocate %d bytes with", size)
	}
	p, err := cx.Realloc(old, oldSize, align, size)
	if err != nil {
		return 0, err
	}
	if p != alignTo(p, align) {
		return 0, trapf("realloc returned %d, not aligned to %d", p, align)
	}
	if cx.Memory == nil || uint64(p)+uint64(size) > uint64(cx.Memory.Size()) {
		return 0, trapf("realloc returned %d bytes at %d, outside the memory", size, p)
	}
	return p, nil
}

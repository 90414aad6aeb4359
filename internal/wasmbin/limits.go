package wasmbin

import (
	"errors"
	"fmt"
)

// MaxLocals is the most locals CheckLimits lets a function declare, as
// in the engines of browsers (V8, SpiderMonkey).
const MaxLocals = 50_000

// CheckLimits refuses a module whose declared sizes cannot be true: a
// vector claiming more entries than the bytes left to hold them (each
// entry takes at least one), a data segment longer than its section, a
// function with more than MaxLocals locals. wazero allocates what a module
// declares before reading it (a 20-byte module declaring 2^28 element
// segments made it allocate 7 GB), so modules are checked first. The
// error names the section and offset.
func CheckLimits(b []byte) error {
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return errors.New("not a WebAssembly binary (no \\0asm magic)")
	}
	r := &reader{b: b, off: 8}
	for r.off < len(b) {
		start := r.off
		id := r.byte()
		size := r.u32()
		if r.err != nil || r.off+int(size) > len(b) {
			return fmt.Errorf("section at offset %d: truncated", start)
		}
		end := r.off + int(size)
		sec := &reader{b: b[:end], off: r.off}
		if err := checkSection(id, sec); err != nil {
			return fmt.Errorf("section %d at offset %d: %w", id, start, err)
		}
		r.off = end
	}
	return nil
}

// count reads a vector's length and refuses one longer than the bytes left.
func (r *reader) count(what string) (uint32, error) {
	at := r.off
	n := r.u32()
	if r.err != nil {
		return 0, r.err
	}
	if left := len(r.b) - r.off; int64(n) > int64(left) {
		return 0, fmt.Errorf("%s at offset %d: %d entries declared, %d bytes left", what, at, n, left)
	}
	return n, nil
}

func checkSection(id byte, r *reader) error {
	switch id {
	case 0:
		if r.name() == "name" && r.err == nil {
			return checkNames(r)
		}
		return nil
	case 1:
		return checkTypes(r)
	case 2, 3, 4, 5, 6, 7, 13:
		// wazero sizes these by their count; their entries are small.
		_, err := r.count("vector")
		return err
	case 9:
		return checkElements(r)
	case 10:
		return checkCode(r)
	case 11:
		return checkData(r)
	}
	return nil
}

func (r *reader) valType() {
	if t := r.byte(); t == 0x63 || t == 0x64 {
		r.skip() // heap type
	}
}

func checkTypes(r *reader) error {
	n, err := r.count("types")
	for ; n > 0 && err == nil && r.err == nil; n-- {
		if r.byte() != 0x60 {
			return nil // not a function type (GC): wazero refuses it
		}
		for range 2 { // params, results
			var k uint32
			if k, err = r.count("value types"); err != nil {
				return err
			}
			for ; k > 0 && r.err == nil; k-- {
				r.valType()
			}
		}
	}
	if err == nil {
		err = r.err
	}
	return err
}

func checkElements(r *reader) error {
	n, err := r.count("element segments")
	for ; n > 0 && err == nil && r.err == nil; n-- {
		flags := r.u32()
		if flags > 7 {
			return nil // wazero refuses it
		}
		if flags&3 == 2 {
			r.u32() // table index
		}
		if flags&1 == 0 {
			if err = scanUntilEnd(r); err != nil { // offset
				return err
			}
		}
		if flags&3 != 0 {
			if flags&4 != 0 {
				r.valType() // reference type
			} else {
				r.byte() // element kind
			}
		}
		var k uint32
		if k, err = r.count("element segment entries"); err != nil {
			return err
		}
		for ; k > 0 && r.err == nil && err == nil; k-- {
			if flags&4 != 0 {
				err = scanUntilEnd(r)
			} else {
				r.u32()
			}
		}
	}
	if err == nil {
		err = r.err
	}
	return err
}

func checkCode(r *reader) error {
	n, err := r.count("function bodies")
	for i := 0; n > 0 && err == nil && r.err == nil; n, i = n-1, i+1 {
		size := int(r.u32())
		if r.err != nil || size > len(r.b)-r.off {
			return fmt.Errorf("function body %d at offset %d runs past the section", i, r.off)
		}
		body := &reader{b: r.b[:r.off+size], off: r.off}
		r.off += size
		groups, err := body.count("local declarations")
		if err != nil {
			return fmt.Errorf("function body %d: %w", i, err)
		}
		var locals uint64
		for ; groups > 0 && body.err == nil; groups-- {
			locals += uint64(body.u32())
			body.valType()
		}
		if locals > MaxLocals {
			return fmt.Errorf("function body %d declares %d locals, more than %d", i, locals, MaxLocals)
		}
	}
	if err == nil {
		err = r.err
	}
	return err
}

func checkData(r *reader) error {
	n, err := r.count("data segments")
	for ; n > 0 && err == nil && r.err == nil; n-- {
		switch flags := r.u32(); flags {
		case 0:
			err = scanUntilEnd(r)
		case 1:
		case 2:
			r.u32()
			err = scanUntilEnd(r)
		default:
			return nil // wazero refuses it
		}
		if err != nil {
			return err
		}
		at := r.off
		size := r.u32()
		if r.err != nil {
			return r.err
		}
		if int64(size) > int64(len(r.b)-r.off) {
			return fmt.Errorf("data segment at offset %d: %d bytes declared, %d left", at, size, len(r.b)-r.off)
		}
		r.off += int(size)
	}
	if err == nil {
		err = r.err
	}
	return err
}

// checkNames checks the name section's maps (function names, local names
// and the others of the extended name section, all of the same shape).
func checkNames(r *reader) error {
	for r.off < len(r.b) && r.err == nil {
		id := r.byte()
		size := int(r.u32())
		if r.err != nil || size > len(r.b)-r.off {
			return fmt.Errorf("name subsection %d: truncated", id)
		}
		sub := &reader{b: r.b[:r.off+size], off: r.off}
		r.off += size
		if id == 0 { // the module's name
			continue
		}
		n, err := sub.count("names")
		for ; n > 0 && err == nil && sub.err == nil; n-- {
			sub.u32()                           // index
			if id != 2 && id != 3 && id != 10 { // a name map, not an indirect one
				sub.name()
				continue
			}
			var k uint32 // an indirect map: local names and the like
			if k, err = sub.count("names"); err != nil {
				return err
			}
			for ; k > 0 && sub.err == nil; k-- {
				sub.u32()
				sub.name()
			}
		}
		if err != nil {
			return err
		}
	}
	return nil // a malformed name section is wazero's to ignore
}

package wasmbin

import (
	"errors"
	"fmt"
)

// MaxLocals is the most locals CheckLimits lets a function declare, as
// in the engines of browsers (V8, SpiderMonkey).
const MaxLocals = 50_000

// The limits on nesting that CheckLimits applies: wazero's compiler takes
// time that grows faster than the square of a function's nesting (20,000
// nested blocks took 5 s, 40,000 28 s; 20,000 nested loops more than 4
// minutes, the load waiting on it). MaxLoopNesting bounds loops in loops
// in one function; MaxNestingCost the sum over the functions of the square
// of each one's deepest nesting of blocks, loops and ifs. The Go hello
// (1,654 functions, 549 deep at most, loops 1 deep) costs 1.8 million.
const (
	MaxLoopNesting = 1000
	MaxNestingCost = 250_000_000
)

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
			return fmt.Errorf("section %d (%s) at offset %d: truncated", id, SectionName(id), start)
		}
		end := r.off + int(size)
		sec := &reader{b: b[:end], off: r.off}
		if err := checkSection(id, sec); err != nil {
			return fmt.Errorf("section %d (%s) at offset %d: %w", id, SectionName(id), start, err)
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

// errUnchecked ends a check early where wazero refuses what follows.
var errUnchecked = errors.New("not checked further")

// each reads a vector: its count, checked, then each entry with entry.
func (r *reader) each(what string, entry func() error) error {
	n, err := r.count(what)
	for ; n > 0 && err == nil && r.err == nil; n-- {
		err = entry()
	}
	if err == nil {
		err = r.err
	}
	return err
}

func checkSection(id byte, r *reader) error {
	var err error
	switch id {
	case 0:
		if r.name() == "name" && r.err == nil {
			err = checkNames(r)
		}
	case 1:
		err = r.each("types", func() error {
			if r.byte() != 0x60 {
				return errUnchecked // not a function type (GC)
			}
			for range 2 { // params, results
				if err := r.each("value types", func() error { r.valType(); return nil }); err != nil {
					return err
				}
			}
			return nil
		})
	case 2, 3, 4, 5, 6, 7, 13:
		// wazero sizes these by their count; their entries are small.
		_, err = r.count("vector")
	case 9:
		err = r.each("element segments", r.checkElement)
	case 10:
		i := 0
		var cost uint64
		err = r.each("function bodies", func() error {
			i++
			depth, err := r.checkBody(i - 1)
			if cost += uint64(depth) * uint64(depth); err == nil && cost > MaxNestingCost {
				err = fmt.Errorf("function bodies nest too deep to compile in reasonable time: the squares of their deepest nesting add up to more than %d by function body %d (%d deep)", MaxNestingCost, i-1, depth)
			}
			return err
		})
	case 11:
		err = r.each("data segments", r.checkDataSegment)
	}
	if err == errUnchecked {
		return nil
	}
	return err
}

func (r *reader) valType() {
	if t := r.byte(); t == 0x63 || t == 0x64 {
		r.skip() // heap type
	}
}

func (r *reader) checkElement() error {
	flags := r.u32()
	if flags > 7 {
		return errUnchecked
	}
	if flags&3 == 2 {
		r.u32() // table index
	}
	if flags&1 == 0 {
		if err := scanUntilEnd(r); err != nil { // offset
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
	return r.each("element segment entries", func() error {
		if flags&4 != 0 {
			return scanUntilEnd(r)
		}
		r.u32()
		return nil
	})
}

// checkBody checks function body i's locals and loop nesting, and returns
// its deepest nesting of blocks, loops and ifs.
func (r *reader) checkBody(i int) (int, error) {
	size := int(r.u32())
	if r.err != nil || size > len(r.b)-r.off {
		return 0, fmt.Errorf("function body %d at offset %d runs past the section", i, r.off)
	}
	body := &reader{b: r.b[:r.off+size], off: r.off}
	r.off += size
	var locals uint64
	err := body.each("local declarations", func() error {
		locals += uint64(body.u32())
		body.valType()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("function body %d: %w", i, err)
	}
	if locals > MaxLocals {
		return 0, fmt.Errorf("function body %d declares %d locals, more than %d", i, locals, MaxLocals)
	}
	// The nesting, as far as the code reads (what does not is wazero's to
	// refuse): a stack of whether each open structure is a loop.
	var open []bool
	deepest, loops := 0, 0
	for body.off < len(body.b) && body.err == nil {
		switch op := body.b[body.off]; op {
		case 0x02, 0x03, 0x04, 0x06, 0x1f: // block, loop, if, try, try_table
			open = append(open, op == 0x03)
			deepest = max(deepest, len(open))
			if op == 0x03 {
				if loops++; loops > MaxLoopNesting {
					return 0, fmt.Errorf("function body %d nests loops more than %d deep", i, MaxLoopNesting)
				}
			}
		case 0x0b: // end
			if n := len(open); n > 0 {
				if open[n-1] {
					loops--
				}
				open = open[:n-1]
			}
		}
		if scanInstrMode(body, false) != nil {
			break
		}
	}
	return deepest, nil
}

func (r *reader) checkDataSegment() error {
	switch flags := r.u32(); flags {
	case 0:
		if err := scanUntilEnd(r); err != nil {
			return err
		}
	case 1:
	case 2:
		r.u32()
		if err := scanUntilEnd(r); err != nil {
			return err
		}
	default:
		return errUnchecked
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
	return nil
}

// checkNames checks the name section's maps (function names, local names
// and the others of the extended name section, all of the same shape).
// A malformed name section is otherwise wazero's to ignore.
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
		indirect := id == 2 || id == 3 || id == 10 // local names and the like
		err := sub.each("names", func() error {
			sub.u32() // index
			if !indirect {
				sub.name()
				return nil
			}
			return sub.each("names", func() error { sub.u32(); sub.name(); return nil })
		})
		if err != nil && sub.err == nil {
			return err
		}
	}
	return nil
}

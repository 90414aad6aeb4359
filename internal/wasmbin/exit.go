package wasmbin

import (
	"fmt"
	"slices"
)

// An exit from _start. A WASI command's _start that calls proc_exit in its
// own body (Zig's ends with proc_exit(main's code)) can return instead: the
// rewrite (Pristine.Exit) makes each such call store its code in a global
// and return from _start, which ends the run as the exit would, with
// nothing to unwind. In wazero an exit unwinds by a Go panic that its
// error builder catches and describes frame by frame before finding it
// was an exit: about 1.2 µs a run for the Zig hello, a quarter of it.
//
// Rewritten only when _start is reached from nothing but its export: no
// call, return_call or ref.func of it in the code, no table entry, no
// global initialised with it; a return from a _start that the guest itself
// had called would go back to its caller instead of ending the run.

// exitCall replaces "call $proc_exit" (the code on the stack): store the
// code, zero-extended, in the exit global, and return from _start.
func exitCall(exit uint32) []byte {
	b := append([]byte{0xad, 0x24}, appendU32(nil, exit)...) // i64.extend_i32_u, global.set
	return append(b, 0x0f)                                   // return
}

// exitRewrite says whether _start's exits can be rewritten, and which body
// is _start's.
func (p *preparer) exitRewrite() (body int, ok bool) {
	body = p.start - p.importedFuncs
	if !p.reuse || p.procExit < 0 || body < 0 || body >= len(p.bodies) || len(p.bodies[body].exits) == 0 {
		return 0, false
	}
	if p.startReferenced || slices.Contains(p.globalRefs, p.start) {
		return 0, false
	}
	return body, true
}

// readElements notes whether a segment of the element section refers to
// _start (the export section, before it, named it).
func (p *preparer) readElements(r *reader) error {
	note := func(f uint32) {
		if int(f) == p.start {
			p.startReferenced = true
		}
	}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		flags := r.u32()
		if flags > 7 {
			return fmt.Errorf("element segment with flags %d", flags)
		}
		if flags&2 != 0 && flags&1 == 0 { // 2, 6: a table index
			r.u32()
		}
		if flags&1 == 0 { // active: the offset
			if err := scanUntilEnd(r); err != nil {
				return err
			}
		}
		if flags&3 != 0 { // 1, 2, 3, 5, 6, 7: an element kind or reference type
			if t := r.byte(); t == 0x63 || t == 0x64 {
				r.skip()
			}
		}
		for m := r.u32(); m > 0 && r.err == nil; m-- {
			if flags&4 == 0 { // function indices
				note(r.u32())
				continue
			}
			refs, err := constExprRefs(r)
			if err != nil {
				return err
			}
			for _, f := range refs {
				note(f)
			}
		}
	}
	return r.err
}

// scanConstExpr reads a global's initialiser, keeping the functions it
// refers to (the export section, after it, names _start).
func (p *preparer) scanConstExpr(r *reader) error {
	refs, err := constExprRefs(r)
	for _, f := range refs {
		p.globalRefs = append(p.globalRefs, int(f))
	}
	return err
}

// constExprRefs reads a constant expression up to and including its end,
// returning the functions its ref.func instructions name.
func constExprRefs(r *reader) ([]uint32, error) {
	var refs []uint32
	for r.err == nil {
		if r.off < len(r.b) {
			switch r.b[r.off] {
			case 0x0b:
				r.off++
				return refs, nil
			case 0xd2:
				r.off++
				refs = append(refs, r.u32())
				continue
			}
		}
		if err := scanInstr(r); err != nil {
			return refs, err
		}
	}
	return refs, r.err
}

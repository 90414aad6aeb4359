package wasmbin

import (
	"fmt"
	"slices"
)

// funcBody is where a function body's parts are in the binary, and where
// yield checks go (yield.go).
type funcBody struct {
	start, code, end int // locals, instructions, end of the body
	// loops are the offsets just past each loop's block type: the head of
	// the loop, which every iteration runs.
	loops []int
	// tailCalls says the body has return_call or return_call_indirect,
	// which can loop without a loop instruction.
	tailCalls bool
	// calls are its direct calls (call) and indirect its call_indirects,
	// by offset. From them, recursionChecks finds sites: the calls before
	// which a check of the stop global goes, so that recursion stops too.
	calls    []callSite
	indirect []int
	sites    []int
	// fanOut says the body makes two calls or more that pass no check
	// (recursionChecks): it checks at its entry.
	fanOut bool
	// exits are the calls of proc_exit in it: where each starts and ends.
	exits [][2]int
}

// funcWatch is what scanCode looks for besides: calls of function procExit,
// and any call or ref.func of function start (referenced, then).
type funcWatch struct {
	procExit, start int
	referenced      bool
}

// scanCode reads every function body of a code section and refuses the
// instructions that change an instance's state outside linear memory and
// globals: those that write a table or drop a segment. It also refuses
// opcodes it does not know, so that a new proposal is never let through
// unread. It returns where each body's loops are. Not strict, it lets the
// table and segment instructions through (Instrument's walk).
//
// It also refuses global.get and global.set of a global the module does
// not have (globals is how many it has, imported ones included): invalid
// as it is, such a module would be valid once the fuel and stop globals
// are added, and could then set them and never stop.
func scanCode(r *reader, strict bool, globals uint32, w *funcWatch) ([]funcBody, error) {
	var bodies []funcBody
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		size := int(r.u32())
		if r.err != nil || size > len(r.b)-r.off {
			return nil, fmt.Errorf("function body at offset %d runs past the section", r.off)
		}
		body := &reader{b: r.b[:r.off+size], off: r.off}
		fb := funcBody{start: r.off, end: r.off + size}
		r.off += size
		for groups := body.u32(); groups > 0 && body.err == nil; groups-- {
			body.u32()
			if t := body.byte(); t == 0x63 || t == 0x64 {
				body.skip()
			}
		}
		fb.code = body.off
		for body.off < len(body.b) && body.err == nil {
			op := body.b[body.off]
			if op == 0x23 || op == 0x24 {
				at := body.off
				if i := (&reader{b: body.b, off: at + 1}).u32(); i >= globals {
					return nil, fmt.Errorf("global %d at offset %d: the module has %d globals", i, at, globals)
				}
			}
			at, exit := body.off, false
			if op == 0x10 || op == 0x12 || op == 0xd2 { // call, return_call, ref.func
				switch f := int((&reader{b: body.b, off: at + 1}).u32()); {
				case f == w.start:
					w.referenced = true
				case f == w.procExit && op == 0x10:
					exit = true
				}
			}
			if err := scanInstrMode(body, strict); err != nil {
				return nil, err
			}
			if exit {
				fb.exits = append(fb.exits, [2]int{at, body.off})
			}
			switch op {
			case 0x03:
				fb.loops = append(fb.loops, body.off)
			case 0x10:
				if !exit { // proc_exit does not return: no cycle goes through it
					fb.calls = append(fb.calls, callSite{at, (&reader{b: body.b, off: at + 1}).u32()})
				}
			case 0x11:
				fb.indirect = append(fb.indirect, at)
			case 0x12, 0x13:
				fb.tailCalls = true
			}
		}
		if body.err != nil {
			return nil, body.err
		}
		bodies = append(bodies, fb)
	}
	return bodies, nil
}

// scanUntilEnd reads a constant expression up to and including its end.
func scanUntilEnd(r *reader) error {
	for r.err == nil {
		if r.off < len(r.b) && r.b[r.off] == 0x0b {
			r.off++
			return nil
		}
		if err := scanInstr(r); err != nil {
			return err
		}
	}
	return r.err
}

func (r *reader) memarg() {
	if align := r.u32(); align&0x40 != 0 {
		r.u32() // memory index (multi-memory)
	}
	r.skip() // offset, u64 for memory64
}

func (r *reader) blockType() {
	if r.off < len(r.b) {
		if c := r.b[r.off]; c == 0x40 || (c >= 0x6f && c <= 0x7f) {
			r.off++
			return
		}
	}
	r.skip() // a type index as s33
}

// scanInstr reads one instruction, refusing those that write tables or
// drop segments.
func scanInstr(r *reader) error { return scanInstrMode(r, true) }

func scanInstrMode(r *reader, strict bool) error {
	at := r.off
	op := r.byte()
	switch {
	case op <= 0x01, op == 0x05, op == 0x0b, op == 0x0f, op == 0x19, op == 0x1a, op == 0x1b,
		op >= 0x45 && op <= 0xc4, op == 0xd1, op == 0xd3:
	case op >= 0x02 && op <= 0x04, op == 0x06:
		r.blockType()
	case op >= 0x07 && op <= 0x09, op == 0x0c, op == 0x0d, op == 0x10, op == 0x12, op == 0x14, op == 0x15,
		op == 0x18, op >= 0x20 && op <= 0x25, op == 0xd2, op == 0xd4, op == 0xd6, op == 0x3f, op == 0x40:
		r.u32()
	case op == 0x0e:
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			r.u32()
		}
		r.u32()
	case op == 0x11, op == 0x13:
		r.u32()
		r.u32()
	case op == 0x1c:
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			if t := r.byte(); t == 0x63 || t == 0x64 {
				r.skip()
			}
		}
	case op == 0x1f: // try_table
		r.blockType()
		for n := r.u32(); n > 0 && r.err == nil; n-- {
			if kind := r.byte(); kind < 2 {
				r.u32() // tag
			}
			r.u32() // label
		}
	case op == 0x26:
		if !strict {
			r.u32()
			return nil
		}
		return notReusable("table.set at offset %d", at)
	case op >= 0x28 && op <= 0x3e:
		r.memarg()
	case op == 0x41, op == 0x42, op == 0xd0:
		r.skip()
	case op == 0x43:
		r.bytes(4)
	case op == 0x44:
		r.bytes(8)
	case op == 0xfc:
		return scanFC(r, at, strict)
	case op == 0xfd:
		scanSIMD(r)
	case op == 0xfe:
		if sub := r.u32(); sub == 0x03 {
			r.byte() // atomic.fence
		} else {
			r.memarg()
		}
	default:
		return notReusable("unknown opcode 0x%02x at offset %d", op, at)
	}
	return nil
}

var fcNames = map[uint32]string{9: "data.drop", 12: "table.init", 13: "elem.drop", 14: "table.copy", 15: "table.grow", 17: "table.fill"}

func scanFC(r *reader, at int, strict bool) error {
	sub := r.u32()
	switch {
	case sub <= 7:
	case sub == 8, sub == 10, !strict && (sub == 12 || sub == 14):
		r.u32()
		r.u32()
	case sub == 11, sub == 16, !strict && (sub == 9 || sub == 13 || sub == 15 || sub == 17):
		r.u32()
	case fcNames[sub] != "":
		return notReusable("%s at offset %d", fcNames[sub], at)
	default:
		return notReusable("unknown opcode 0xfc %d at offset %d", sub, at)
	}
	return nil
}

func scanSIMD(r *reader) {
	switch sub := r.u32(); {
	case sub <= 11, sub == 92, sub == 93:
		r.memarg()
	case sub == 12, sub == 13:
		r.bytes(16)
	case sub >= 21 && sub <= 34:
		r.byte()
	case sub >= 84 && sub <= 91:
		r.memarg()
		r.byte()
	}
}

// callSite is a call instruction: where it is, and the function it calls.
type callSite struct {
	at     int
	target uint32
}

// recursionChecks sets the sites of the bodies: the calls before which the
// stop global is checked. A guest can run for ever without a loop by
// recursing (a function calling itself twice, 62 deep, makes 2^62 calls),
// so every cycle of calls must pass a check. A cycle of direct calls among
// the module's own functions has a call from one function of a strongly
// connected component of the call graph to another (Tarjan's algorithm
// finds them); one through another module or the host has a call of an
// import; one through a table, a call_indirect. The check goes before
// those calls only, not at every function's start: a guest pays for it
// when it recurses or calls through a table or out of the module, each of
// which costs more than the check. imported is how many of the module's
// functions are imported.
func recursionChecks(bodies []funcBody, imported int) {
	n := len(bodies)
	index := make([]int, n) // 0: not visited; else visit order + 1
	low := make([]int, n)
	comp := make([]int, n) // the strongly connected component of each; -1: in none that cycles
	onStack := make([]bool, n)
	var stack []int
	next, comps := 1, 0
	var visit func(v int)
	visit = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		self := false
		for _, c := range bodies[v].calls {
			w := int(c.target) - imported
			if w < 0 || w >= n {
				continue
			}
			self = self || w == v
			if index[w] == 0 {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] != index[v] {
			return
		}
		top := len(stack) - 1
		for stack[top] != v {
			top--
		}
		id := -1
		if len(stack)-top > 1 || self {
			id = comps
			comps++
		}
		for _, w := range stack[top:] {
			onStack[w] = false
			comp[w] = id
		}
		stack = stack[:top]
	}
	for v := range n {
		if index[v] == 0 {
			visit(v)
		}
	}
	for v := range bodies {
		fb := &bodies[v]
		var sites []int
		unchecked := 0 // calls of the module's functions that pass no check
		for _, c := range fb.calls {
			w := int(c.target) - imported
			switch {
			case w < 0 || w < n && comp[v] >= 0 && comp[w] == comp[v]:
				sites = append(sites, c.at)
			case w < n:
				unchecked++
			}
		}
		// With no cycle and no loop, a guest still runs for ever in effect
		// by fanning out: 60 functions each calling the next twice make
		// 2^60 calls. Every function that makes two calls or more checks
		// at its entry, so that between two checks a guest runs at most a
		// chain of single calls, each function's body once.
		fb.fanOut = unchecked >= 2
		sites = append(sites, fb.indirect...)
		slices.Sort(sites)
		fb.sites, fb.calls, fb.indirect = sites, nil, nil
	}
}

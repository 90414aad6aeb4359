package wasmbin

import "math"

// The yield check. wazero stops a guest whose context is done by exiting
// to Go at the head of every loop iteration (and starting a goroutine per
// call to watch the context), which doubles or triples the cost of a
// loop-heavy request. A prepared module checks for itself instead, at the
// head of every loop and at the entry of every function that makes tail
// calls or two calls or more, in a handful of instructions:
//
//	global.get $fuel
//	i32.eqz
//	if                       ;; every YieldEvery iterations:
//	  i32.const 0
//	  memory.grow 0          ;;   into the host and back: a preemption point
//	  drop
//	  global.get $stop
//	  if unreachable end     ;;   the host said stop: trap
//	  i32.const YieldEvery
//	  global.set $fuel
//	end
//	global.get $fuel
//	i32.const 1
//	i32.sub
//	global.set $fuel
//
// memory.grow by 0 pages changes nothing, but wazero runs it in Go, where
// the scheduler can preempt the goroutine: a guest spinning in a loop never
// holds up a garbage collection for more than YieldEvery iterations. The
// sequence leaves the operand stack as it found it, so it is valid at the
// head of any loop, whatever the loop's parameters.
//
// The other way to run for ever is to call without end: wazero's own check
// is at loops only, and a function that calls itself twice, 62 deep, makes
// 2^62 calls. Before each call a cycle of calls can go through (recursion,
// a call through a table or out of the module: recursionChecks) goes the
// same check, which leaves the call's operands where they are; and so
// does the entry of a function that calls twice or more, without which 60
// functions each calling the next twice make 2^60 calls with no cycle.

func yieldCheck(fuel, stop uint32) []byte {
	b := append([]byte{0x23}, appendU32(nil, fuel)...)
	b = append(b, 0x45, 0x04, 0x40, 0x41, 0x00, 0x40, 0x00, 0x1a, 0x23)
	b = appendU32(b, stop)
	b = append(b, 0x04, 0x40, 0x00, 0x0b, 0x41)
	b = appendS32(b, YieldEvery, 0x24)
	b = appendU32(b, fuel)
	b = append(b, 0x0b, 0x23)
	b = appendU32(b, fuel)
	b = append(b, 0x41, 0x01, 0x6b, 0x24)
	return appendU32(b, fuel)
}

// instrument returns the code section's function bodies with the yield
// check inserted, each with its new size, and in body exitBody (-1: none)
// each call of proc_exit replaced by exitCall(exit) (exit.go).
func (p *preparer) instrument(b []byte, fuel, stop uint32, exitBody int, exit uint32) [][]byte {
	// At the head of loops and before the calls a cycle can go through
	// alike: a guest that recurses without end must let a garbage
	// collection through as one that loops does. (build gives a module
	// without a memory one for the check.)
	check := yieldCheck(fuel, stop)
	halt := check
	entries := make([][]byte, len(p.bodies))
	for i, fb := range p.bodies {
		body := make([]byte, 0, fb.end-fb.start+len(check)*(len(fb.loops)+1)+len(halt)*len(fb.sites))
		body = append(body, b[fb.start:fb.code]...)
		if fb.tailCalls || fb.fanOut { // a loop of tail calls; a tree of calls
			body = append(body, check...)
		}
		var exits [][2]int
		if i == exitBody {
			exits = fb.exits
		}
		// What goes where, in order of offset: a check after each loop's
		// block type, the stop global's check before each call a cycle can
		// go through (recursionChecks), proc_exit's calls replaced.
		at, loops, sites := fb.code, fb.loops, fb.sites
		for len(loops) > 0 || len(sites) > 0 || len(exits) > 0 {
			switch next := nextOffset(loops, sites, exits); {
			case len(loops) > 0 && loops[0] == next:
				body = append(body, b[at:next]...)
				body = append(body, check...)
				at, loops = next, loops[1:]
			case len(sites) > 0 && sites[0] == next:
				body = append(body, b[at:next]...)
				body = append(body, halt...)
				at, sites = next, sites[1:]
			default:
				body = append(body, b[at:next]...)
				body = append(body, exitCall(exit)...)
				at, exits = exits[0][1], exits[1:]
			}
		}
		body = append(body, b[at:fb.end]...)
		entries[i] = append(appendU32(nil, uint32(len(body))), body...)
	}
	return entries
}

// nextOffset is the lowest offset at the head of the three lists.
func nextOffset(loops, sites []int, exits [][2]int) int {
	next := math.MaxInt
	if len(loops) > 0 {
		next = loops[0]
	}
	if len(sites) > 0 {
		next = min(next, sites[0])
	}
	if len(exits) > 0 {
		next = min(next, exits[0][0])
	}
	return next
}

// appendS32 appends v as a signed LEB128, then the bytes of then.
func appendS32(b []byte, v int32, then ...byte) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(append(b, c), then...)
		}
		b = append(b, c|0x80)
	}
}

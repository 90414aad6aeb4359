package wasmbin

// The yield check. wazero stops a guest whose context is done by exiting
// to Go at the head of every loop iteration (and starting a goroutine per
// call to watch the context), which doubles or triples the cost of a
// loop-heavy request. A prepared module checks for itself instead, at the
// head of every loop and at the entry of every function that makes tail
// calls (the other ways to run for ever), in a handful of instructions:
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
	check := yieldCheck(fuel, stop)
	entries := make([][]byte, len(p.bodies))
	for i, fb := range p.bodies {
		body := make([]byte, 0, fb.end-fb.start+len(check)*(len(fb.loops)+1))
		body = append(body, b[fb.start:fb.code]...)
		if fb.tailCalls {
			body = append(body, check...)
		}
		var exits [][2]int
		if i == exitBody {
			exits = fb.exits
		}
		at, loops := fb.code, fb.loops
		for len(loops) > 0 || len(exits) > 0 {
			if len(exits) == 0 || len(loops) > 0 && loops[0] <= exits[0][0] {
				body = append(body, b[at:loops[0]]...)
				body = append(body, check...)
				at, loops = loops[0], loops[1:]
				continue
			}
			body = append(body, b[at:exits[0][0]]...)
			body = append(body, exitCall(exit)...)
			at, exits = exits[0][1], exits[1:]
		}
		body = append(body, b[at:fb.end]...)
		entries[i] = append(appendU32(nil, uint32(len(body))), body...)
	}
	return entries
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

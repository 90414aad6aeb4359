package wasmbin

import "strconv"

// sectionNames are the core module sections' names, by id.
var sectionNames = [...]string{"custom", "type", "import", "function", "table", "memory", "global", "export",
	"start", "element", "code", "data", "data count", "tag"}

// SectionName is the name of the core module section id ("section 42" for
// one it does not know).
func SectionName(id byte) string {
	if int(id) < len(sectionNames) {
		return sectionNames[id]
	}
	return "section " + strconv.Itoa(int(id))
}

// FunctionBodyOffset is the offset in b, a core module, of the body of the
// function of index i in the code section (the module's own functions,
// imports not counted: what wazero's errors call function[i]); false when b
// has no such body.
func FunctionBodyOffset(b []byte, i int) (int, bool) {
	if len(b) < 8 || i < 0 {
		return 0, false
	}
	r := &reader{b: b, off: 8}
	for r.off < len(b) {
		id := r.byte()
		size := r.u32()
		if r.err != nil || r.off+int(size) > len(b) {
			return 0, false
		}
		end := r.off + int(size)
		if id != 10 {
			r.off = end
			continue
		}
		n := r.u32()
		for j := 0; j < int(n) && r.err == nil && r.off < end; j++ {
			at := r.off
			body := r.u32()
			if j == i {
				return at, r.err == nil
			}
			r.off += int(body)
		}
		return 0, false
	}
	return 0, false
}

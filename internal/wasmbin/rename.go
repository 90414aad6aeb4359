package wasmbin

import (
	"bytes"
	"fmt"
)

// RenameImports returns a copy of module b whose imports are renamed by
// rename(module, name, kind) → (module, name), everything else as it was.
// The component runtime uses it to point each import of a core module at
// the instance that provides it.
func RenameImports(b []byte, rename func(module, name string, kind byte) (string, string, error)) ([]byte, error) {
	if len(b) < 8 || !bytes.Equal(b[:4], []byte("\x00asm")) {
		return nil, fmt.Errorf("not a WebAssembly module")
	}
	out := append([]byte(nil), b[:8]...)
	r := &reader{b: b, off: 8}
	for r.off < len(b) && r.err == nil {
		start := r.off
		id := r.byte()
		size := int(r.u32())
		body := r.off
		r.bytes(size)
		if r.err != nil {
			break
		}
		if id != 2 {
			out = append(out, b[start:r.off]...)
			continue
		}
		sr := &reader{b: b[body:r.off]}
		var entries [][]byte
		for n := sr.u32(); n > 0 && sr.err == nil; n-- {
			mod, name := sr.name(), sr.name()
			descStart := sr.off
			kind := sr.byte()
			if err := (&preparer{}).skipImport(sr, kind); err != nil {
				return nil, err
			}
			if sr.err != nil {
				break
			}
			m, f, err := rename(mod, name, kind)
			if err != nil {
				return nil, err
			}
			entries = append(entries, append(appendName(appendName(nil, m), f), sr.b[descStart:sr.off]...))
		}
		if sr.err != nil {
			return nil, fmt.Errorf("import section: %w", sr.err)
		}
		out = append(out, encodeSection(2, entries)...)
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

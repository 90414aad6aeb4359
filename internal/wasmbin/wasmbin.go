// Package wasmbin reads the parts of a WebAssembly binary that describe it —
// imports, exports, memories, custom sections and the producers section —
// without compiling it. It checks structure only as far as it reads.
package wasmbin

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Info describes a module.
type Info struct {
	Imports        []Import        `json:"imports"`
	Exports        []Export        `json:"exports"`
	Memories       []Memory        `json:"memories"`
	CustomSections []CustomSection `json:"custom_sections"`
	// Producers is the "producers" custom section: field → tool names with
	// versions, e.g. "language" → ["Rust"], "processed-by" → ["rustc 1.63.0"].
	Producers map[string][]string `json:"producers,omitempty"`
}

// Import is one imported item.
type Import struct {
	Module string `json:"module"`
	Name   string `json:"name"`
	Kind   string `json:"kind"` // func, table, memory, global, tag
}

// Export is one exported item.
type Export struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
}

// Memory is a memory's limits in 64 KiB pages; Max is -1 when unbounded.
type Memory struct {
	Min      uint64 `json:"min_pages"`
	Max      int64  `json:"max_pages"`
	Imported bool   `json:"imported,omitempty"`
	Shared   bool   `json:"shared,omitempty"`
}

// CustomSection names a custom section and its size in bytes.
type CustomSection struct {
	Name string `json:"name"`
	Size int    `json:"size"`
}

var kinds = []string{"func", "table", "memory", "global", "tag"}

// Parse reads b. It returns an error naming the offset of the first thing it
// could not read.
func Parse(b []byte) (*Info, error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly binary (no \\0asm magic)")
	}
	if v := b[4:8]; string(v) != "\x01\x00\x00\x00" {
		return nil, fmt.Errorf("unsupported WebAssembly version % x", v)
	}
	info := &Info{}
	r := &reader{b: b, off: 8}
	for r.off < len(b) {
		id := r.byte()
		size := r.u32()
		start := r.off
		if r.err != nil || start+int(size) > len(b) {
			return nil, fmt.Errorf("section %d (%s) at offset %d: truncated", id, SectionName(id), start)
		}
		sec := &reader{b: b[:start+int(size)], off: start}
		switch id {
		case 0:
			info.readCustom(sec)
		case 2:
			info.readImports(sec)
		case 5:
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				info.Memories = append(info.Memories, sec.limits())
			}
		case 7:
			for n := sec.u32(); n > 0 && sec.err == nil; n-- {
				name, kind := sec.name(), sec.byte()
				sec.u32()
				info.Exports = append(info.Exports, Export{Name: name, Kind: kindName(kind)})
			}
		}
		if sec.err != nil {
			return nil, fmt.Errorf("section %d (%s) at offset %d: %w", id, SectionName(id), start, sec.err)
		}
		r.off = start + int(size)
	}
	return info, nil
}

func (info *Info) readImports(r *reader) {
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		imp := Import{Module: r.name(), Name: r.name()}
		kind := r.byte()
		imp.Kind = kindName(kind)
		switch kind {
		case 0: // func: type index
			r.u32()
		case 1: // table: reftype, limits
			r.byte()
			r.limits()
		case 2:
			mem := r.limits()
			mem.Imported = true
			info.Memories = append(info.Memories, mem)
		case 3: // global: valtype, mutability
			r.byte()
			r.byte()
		case 4: // tag: attribute, type index
			r.byte()
			r.u32()
		default:
			r.fail(fmt.Errorf("import %s.%s: unknown kind %d", imp.Module, imp.Name, kind))
		}
		info.Imports = append(info.Imports, imp)
	}
}

func (info *Info) readCustom(r *reader) {
	name := r.name()
	info.CustomSections = append(info.CustomSections, CustomSection{Name: name, Size: len(r.b) - r.off})
	if name != "producers" || r.err != nil {
		return
	}
	p := map[string][]string{}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		field := r.name()
		for m := r.u32(); m > 0 && r.err == nil; m-- {
			tool, version := r.name(), r.name()
			p[field] = append(p[field], strings.TrimSpace(tool+" "+version))
		}
	}
	if r.err == nil {
		info.Producers = p
	}
	r.err = nil // a broken producers section does not make a broken module
}

// Language guesses the source language: the producers section's "language"
// field where present, else a trace the toolchain is known to leave.
func (info *Info) Language() string {
	if langs := info.Producers["language"]; len(langs) > 0 {
		name, _, _ := strings.Cut(langs[0], " ")
		return name
	}
	for _, c := range info.CustomSections {
		if c.Name == "go:buildid" || c.Name == "go.buildid" {
			return "Go"
		}
	}
	for _, t := range info.Producers["processed-by"] {
		switch {
		case strings.HasPrefix(t, "rustc"):
			return "Rust"
		case strings.HasPrefix(t, "Zig") || strings.HasPrefix(t, "zig"):
			return "Zig"
		case strings.HasPrefix(t, "asc") || strings.HasPrefix(t, "AssemblyScript"):
			return "AssemblyScript"
		case strings.HasPrefix(t, "clang"):
			return "C"
		}
	}
	return ""
}

// WASI names the WASI version the module imports: "preview1",
// "unstable" (the pre-preview1 snapshot) or "" for none.
func (info *Info) WASI() string {
	for _, imp := range info.Imports {
		switch imp.Module {
		case "wasi_snapshot_preview1":
			return "preview1"
		case "wasi_unstable":
			return "unstable"
		}
	}
	return ""
}

// ImportModules lists the distinct modules the binary imports from, sorted.
func (info *Info) ImportModules() []string {
	seen := map[string]bool{}
	var mods []string
	for _, imp := range info.Imports {
		if !seen[imp.Module] {
			seen[imp.Module] = true
			mods = append(mods, imp.Module)
		}
	}
	sort.Strings(mods)
	return mods
}

func kindName(k byte) string {
	if int(k) < len(kinds) {
		return kinds[k]
	}
	return fmt.Sprintf("kind%d", k)
}

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.fail(fmt.Errorf("unexpected end at offset %d", r.off))
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// u32 reads an unsigned LEB128 of at most 5 bytes; 0 once reading failed,
// so that a truncated number is never taken for a size.
func (r *reader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.fail(fmt.Errorf("LEB128 too long at offset %d", r.off))
	return 0
}

func (r *reader) name() string {
	n := int(r.u32())
	if r.err != nil {
		return ""
	}
	if n > len(r.b)-r.off {
		r.fail(fmt.Errorf("name of %d bytes at offset %d runs past the section", n, r.off))
		return ""
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n
	return s
}

func (r *reader) limits() Memory {
	flags := r.byte()
	m := Memory{Min: uint64(r.u32()), Max: -1, Shared: flags&2 != 0}
	if flags&1 != 0 {
		m.Max = int64(r.u32())
	}
	return m
}

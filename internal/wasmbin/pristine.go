package wasmbin

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PageSize is the size of a WebAssembly memory page.
const PageSize = 64 << 10

// Pristine is a module prepared for instances that are reset and reused
// rather than created for every run: everything that an instance can change
// is either in linear memory, whose initial content is Image, or in a
// mutable global, which Module exports so that the host can read and reset
// it. Prepare refuses a module that could keep state anywhere else (a
// table, a dropped segment, a start function).
//
// The rewritten module also stops itself when told to, without the host
// having to check at every loop iteration (yield.go): each loop counts down
// a fuel global and, every YieldEvery iterations, calls into the host
// (memory.grow 0, a point where the Go scheduler can preempt it) and traps
// if the host has set the Stop global.
type Pristine struct {
	// Module is the module rewritten: its active data segments are no longer
	// applied at instantiation (their bytes are in Image), each mutable
	// global is also exported, under Globals[i], two globals are added (fuel
	// and Stop, and a third, Exit, when _start exits from its own body) and
	// the yield check is put at the head of every loop and at the entry of
	// every function that makes tail calls. DWARF sections are
	// dropped (their code offsets would be wrong); function indices, imports,
	// exports, tables and the other custom sections are kept.
	Module []byte
	// Image is the content of memory 0 after instantiation, MinPages whole
	// pages long; nil for a module without memory.
	Image []byte
	// MinPages is memory 0's initial size in pages.
	MinPages uint32
	// Globals are the export names given to the mutable globals, the
	// added ones included.
	Globals []string
	// Stop is the export name of the global that, once set to 1, makes the
	// guest trap at its next yield check.
	Stop string
	// Start is the export name of the module's start function, which no
	// longer runs at instantiation (Instrument's); "" for none.
	Start string
	// Exit is the export name of a global (i64) that holds the code a run
	// of _start passed to proc_exit from _start's own body, -1 if it did
	// not; "" when there is no such call to rewrite. Such a call (Zig's
	// _start ends with one) becomes "store the code, return": an exit
	// from _start needs no unwinding, which in wazero is a Go panic through
	// its error builder, a microsecond. Only done when nothing but the
	// export refers to _start (no call, table entry or ref.func): a return
	// then ends the run as proc_exit would.
	Exit string
}

// YieldEvery is how many loop iterations a rewritten module runs between
// two yields to the host: small enough that a guest in an endless loop is
// stopped, and lets the garbage collector stop the world, within
// microseconds; large enough that the yield costs nothing measurable.
const YieldEvery = 1000

// ErrNotReusable is wrapped by Prepare's errors for modules that can keep
// state outside memory and mutable globals.
var ErrNotReusable = errors.New("instances cannot be reset")

// ErrCannotInstantiate is wrapped by Prepare's errors for modules that
// compile but whose every instantiation fails: an active data segment
// that does not fit the initial memory.
var ErrCannotInstantiate = errors.New("every instantiation would fail")

// Prepare reads a valid module (one that compiles) and returns its pristine
// form, or an error wrapping ErrNotReusable that says what stands in the way.
func Prepare(b []byte) (*Pristine, error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" || string(b[4:8]) != "\x01\x00\x00\x00" {
		return nil, errors.New("not a WebAssembly 1.0 binary")
	}
	p := &preparer{reuse: true, procExit: -1, start: -1}
	if err := p.read(b); err != nil {
		return nil, err
	}
	return p.build(b)
}

// Snapshot is a core module of a component as Resettable rewrote it.
type Snapshot struct {
	// Module is the module with each mutable global it defines also
	// exported, under Globals[i] (GlobalExport), and, when Stop is set, the
	// yield check of Prepare (yield.go) at the head of every loop and the
	// entry of every function that makes tail calls.
	Module  []byte
	Globals []string
	// Stop is the export name of the global that, once set to 1, makes
	// the guest trap at its next yield check; "" when the module has no
	// check: its code has no loop and no function that can be entered
	// again and again without one (recursion, calls through a table or
	// an import, tail calls: so it cannot run for ever), or Unstoppable
	// says why it could not be given one. A module without a memory is
	// given one of 0 pages for the check's memory.grow 0.
	Stop string
	// Unstoppable is why the module has no yield check although its code
	// loops: it has a start function, which runs at instantiation, before
	// the host can reach the stop global. "" otherwise.
	Unstoppable string
}

// Resettable reads a valid module that is one of the core instances of a
// component, and returns it with each mutable global it defines also
// exported, so that the host can read and set them back, and with the
// yield check where it can be added (Snapshot.Stop); nothing else is
// changed. It refuses, with an error wrapping ErrNotReusable, a module that
// could keep state outside its linear memories and mutable globals: one
// whose code writes a table or drops a segment, or that has a shared
// memory. Unlike Prepare it accepts imported memories, tables and globals
// (another core instance of the component owns them), several memories, a
// start function and any data segments: the component's instances are
// reset to a snapshot taken after instantiation, not to the module's own
// initial state.
func Resettable(b []byte) (*Snapshot, error) { return resettable(b, false) }

// ResettableUnchecked is Resettable without the yield check: for a module
// of a component that the runtime stops by its own check at every loop
// iteration (another of its modules could not be given one), where ours
// would only add to that cost.
func ResettableUnchecked(b []byte) (*Snapshot, error) { return resettable(b, true) }

func resettable(b []byte, unchecked bool) (*Snapshot, error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" || string(b[4:8]) != "\x01\x00\x00\x00" {
		return nil, errors.New("not a WebAssembly 1.0 binary")
	}
	p := &preparer{reuse: true, snapshot: true, unchecked: unchecked, procExit: -1, start: -1}
	if err := p.read(b); err != nil {
		return nil, err
	}
	out, err := p.build(b)
	if err != nil {
		return nil, err
	}
	return &Snapshot{Module: out.Module, Globals: out.Globals, Stop: out.Stop, Unstoppable: p.unstoppable}, nil
}

// Instrument returns b with the yield check of Prepare (yield.go), its
// DWARF sections dropped as Prepare drops them (their code offsets would be
// wrong: a trap's stack trace keeps the name section's function names, not
// source lines) and nothing else changed, and the export name of its stop
// global: for modules whose instances are not reused but should still
// stop without wazero's per-iteration check (which makes a loop-heavy
// guest 4–5× slower, and which wazero makes at loop heads only: a guest
// that recurses without a loop would never stop, and the process's next
// garbage collection would wait for it for ever). A module without a
// memory is given one of 0 pages (the yield check's memory.grow 0 needs
// one). A start function, which would run at instantiation before the host
// can reach the stop global, no longer starts the module: it is exported
// as start, "" for none, for the host to call first once it can stop it.
// Opcodes it does not know are refused.
func Instrument(b []byte) (module []byte, stop, start string, err error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" || string(b[4:8]) != "\x01\x00\x00\x00" {
		return nil, "", "", errors.New("not a WebAssembly 1.0 binary")
	}
	p := &preparer{procExit: -1, start: -1}
	if err := p.read(b); err != nil {
		return nil, "", "", err
	}
	out, err := p.build(b)
	if err != nil {
		return nil, "", "", err
	}
	return out.Module, out.Stop, out.Start, nil
}

// StartExport is the name Instrument exports a module's start function
// under.
const StartExport = "wasmesh_start"

type section struct {
	id         byte
	start, end int    // the whole section, header included
	body       int    // where its content starts
	name       string // of a custom section
}

type dataSegment struct {
	passive bool
	raw     []byte // the segment as encoded, for passive ones
}

type preparer struct {
	// reuse is Prepare's: refuse what keeps state outside memory and
	// mutable globals, move the data into an image, export the globals.
	// Without it (Instrument) only the yield check is added.
	reuse bool
	// snapshot is Resettable's: reuse's refusals of code that writes
	// tables or drops segments, its exported globals and its yield check
	// (where the code loops and a memory and no start function allow it:
	// else unstoppable says why not), but imports of any kind, several
	// tables and memories, a start function and the data segments are
	// kept.
	snapshot        bool
	unchecked       bool // snapshot without the yield check (ResettableUnchecked)
	unstoppable     string
	hasStart        bool
	startFunc       uint32 // the start function's index, for Instrument
	sections        []section
	memories        int // defined and imported
	importedGlobals int
	minPages        uint32
	globals         []global
	bodies          []funcBody
	exports         [][]byte // each export entry as encoded
	exportNames     map[string]bool
	// importedFuncs counts the imported functions; procExit is the index
	// of wasi_snapshot_preview1.proc_exit among them, start that of the
	// function exported as _start, -1 for none; startReferenced says
	// something other than its export refers to it.
	importedFuncs   int
	procExit, start int
	startReferenced bool
	globalRefs      []int // functions named by global initialisers
	dataCount       bool
	segments        []dataSegment
	image           []byte
}

type global struct {
	raw     []byte // the entry as encoded
	mutable bool
	i32     int64 // the value, for an i32 initialised by i32.const
	isConst bool
}

func notReusable(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrNotReusable)
}

func (p *preparer) read(b []byte) error {
	r := &reader{b: b, off: 8}
	for r.off < len(b) {
		start := r.off
		id := r.byte()
		size := r.u32()
		body := r.off
		if r.err != nil || body+int(size) > len(b) {
			return fmt.Errorf("section at offset %d: truncated", start)
		}
		end := body + int(size)
		p.sections = append(p.sections, section{id: id, start: start, end: end, body: body})
		sec := &reader{b: b[:end], off: body}
		var err error
		switch id {
		case 0:
			p.sections[len(p.sections)-1].name = sec.name()
		case 2:
			err = p.readImports(sec)
		case 4:
			if n := sec.u32(); n > 1 && p.reuse && !p.snapshot {
				err = notReusable("%d tables", n)
			}
		case 5:
			if p.snapshot {
				err = p.readSnapshotMemories(sec)
				break
			}
			if !p.reuse {
				p.memories += int(sec.u32())
				break
			}
			p.memories = int(sec.u32())
			if p.memories > 1 {
				err = notReusable("%d memories", p.memories)
			} else if p.memories == 1 {
				m := sec.limits()
				if m.Shared {
					err = notReusable("shared memory")
				}
				if m.Min > 1<<16 {
					err = fmt.Errorf("memory of %d pages", m.Min)
				}
				p.minPages = uint32(m.Min)
			}
		case 6:
			err = p.readGlobals(sec)
		case 7:
			p.readExports(sec)
		case 8:
			p.hasStart = true
			switch {
			case p.reuse && !p.snapshot:
				err = notReusable("a start function runs at instantiation")
			case !p.reuse: // Instrument: exported instead
				p.startFunc = sec.u32()
			}
		case 9:
			err = p.readElements(sec)
		case 10:
			w := &funcWatch{procExit: p.procExit, start: p.start}
			p.bodies, err = scanCode(sec, p.reuse, uint32(p.importedGlobals+len(p.globals)), w)
			recursionChecks(p.bodies, p.importedFuncs)
			p.startReferenced = p.startReferenced || w.referenced
		case 11:
			if p.reuse && !p.snapshot {
				err = p.readData(sec)
			}
		case 12:
			p.dataCount = true
		}
		if err == nil {
			err = sec.err
		}
		if err != nil {
			return fmt.Errorf("section %d (%s) at offset %d: %w", id, SectionName(id), start, err)
		}
		r.off = end
	}
	if p.memories == 0 && p.reuse && !p.snapshot {
		return notReusable("no linear memory (the yield check needs memory.grow)")
	}
	return nil
}

// readSnapshotMemories reads the memory section for Resettable: a shared
// memory is refused (other threads could write it while it is reset).
func (p *preparer) readSnapshotMemories(r *reader) error {
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		if r.limits().Shared {
			return notReusable("shared memory")
		}
		p.memories++
	}
	return nil
}

// skipImport reads an import's descriptor, of any kind.
func (p *preparer) skipImport(r *reader, kind byte) error {
	switch kind {
	case 0: // function: its type
		r.u32()
		p.importedFuncs++
	case 1: // table: reference type, limits
		r.valType()
		r.limits()
	case 2:
		r.limits()
		p.memories++
	case 3: // global: value type, mutability
		r.valType()
		r.byte()
		p.importedGlobals++
	case 4: // tag: attribute, type
		r.byte()
		r.u32()
	default:
		return fmt.Errorf("import of unknown kind %d", kind)
	}
	return nil
}

func (p *preparer) readImports(r *reader) error {
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		mod, name := r.name(), r.name()
		kind := r.byte()
		if p.reuse && !p.snapshot && kind != 0 {
			return notReusable("imports %s.%s, a %s", mod, name, kindName(kind))
		}
		if kind == 0 && mod == "wasi_snapshot_preview1" && name == "proc_exit" {
			p.procExit = p.importedFuncs
		}
		if err := p.skipImport(r, kind); err != nil {
			return err
		}
	}
	return nil
}

func (p *preparer) readGlobals(r *reader) error {
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		start := r.off
		t := r.byte()
		g := global{mutable: r.byte() == 1}
		if t == 0x63 || t == 0x64 {
			if p.reuse {
				return notReusable("a global of a typed reference type")
			}
			r.skip() // heap type
		}
		if t == 0x7f && r.off < len(r.b) && r.b[r.off] == 0x41 {
			r.off++
			g.i32, g.isConst = r.s64(), true
		}
		if err := p.scanConstExpr(r); err != nil {
			return err
		}
		g.raw = r.b[start:r.off]
		p.globals = append(p.globals, g)
	}
	return nil
}

func (p *preparer) readExports(r *reader) {
	p.exportNames = map[string]bool{}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		start := r.off
		name := r.name()
		kind := r.byte()
		index := r.u32()
		if kind == 0 && name == "_start" {
			p.start = int(index)
		}
		p.exportNames[name] = true
		p.exports = append(p.exports, r.b[start:r.off])
	}
}

func (p *preparer) readData(r *reader) error {
	if p.memories == 1 {
		p.image = make([]byte, uint64(p.minPages)*PageSize)
	}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		start := r.off
		switch flag := r.u32(); flag {
		case 1:
			size := int(r.u32())
			if r.err != nil {
				return r.err
			}
			if size > len(r.b)-r.off {
				return fmt.Errorf("data segment at offset %d runs past the section", start)
			}
			r.off += size
			p.segments = append(p.segments, dataSegment{passive: true, raw: r.b[start:r.off]})
		case 0, 2:
			if flag == 2 && r.u32() != 0 {
				return fmt.Errorf("data segment at offset %d: memory index is not 0", start)
			}
			offset, err := p.constOffset(r)
			if err != nil {
				return fmt.Errorf("data segment at offset %d: %w", start, err)
			}
			size := int(r.u32())
			if r.err != nil {
				return r.err
			}
			if size > len(r.b)-r.off {
				return fmt.Errorf("data segment at offset %d runs past the section", start)
			}
			if offset+uint64(size) > uint64(len(p.image)) {
				return fmt.Errorf("data segment at offset %d: %d bytes at %d do not fit the initial memory of %d bytes: %w", start, size, offset, len(p.image), ErrCannotInstantiate)
			}
			copy(p.image[offset:], r.b[r.off:r.off+size])
			r.off += size
			p.segments = append(p.segments, dataSegment{})
		default:
			return fmt.Errorf("data segment at offset %d: unknown flag %d", start, flag)
		}
	}
	return nil
}

// constOffset evaluates an active data segment's offset: i32.const, or
// global.get of an immutable global initialised by one.
func (p *preparer) constOffset(r *reader) (uint64, error) {
	var v int64
	switch op := r.byte(); op {
	case 0x41:
		v = r.s64()
	case 0x23:
		i := int(r.u32())
		if i >= len(p.globals) || p.globals[i].mutable || !p.globals[i].isConst {
			return 0, notReusable("offset from global %d, not a constant", i)
		}
		v = p.globals[i].i32
	default:
		return 0, notReusable("offset expression with opcode 0x%02x", op)
	}
	if r.byte() != 0x0b {
		return 0, notReusable("offset expression of more than one instruction")
	}
	return uint64(uint32(v)), r.err
}

// build writes the rewritten module.
func (p *preparer) build(b []byte) (*Pristine, error) {
	out := &Pristine{MinPages: p.minPages, Image: p.image}
	if out.Image == nil {
		out.Image = make([]byte, uint64(p.minPages)*PageSize)
	}
	fuel := uint32(p.importedGlobals + len(p.globals))
	stop := fuel + 1
	yield := !p.snapshot
	if p.snapshot && !p.unchecked && p.loops() {
		switch {
		case p.hasStart:
			p.unstoppable = "its code loops, and its start function runs at instantiation, before the host can reach a stop global"
		default:
			yield = true
		}
	}
	if yield {
		p.globals = append(p.globals,
			global{mutable: true, raw: appendS32([]byte{0x7f, 1, 0x41}, YieldEvery, 0x0b)},
			global{mutable: true, raw: []byte{0x7f, 1, 0x41, 0, 0x0b}})
		out.Stop = GlobalExport(int(stop))
	}
	exitBody, exit := -1, uint32(0)
	if body, ok := p.exitRewrite(); ok && !p.snapshot {
		exitBody, exit = body, stop+1
		p.globals = append(p.globals, global{mutable: true, raw: []byte{0x7e, 1, 0x42, 0x7f, 0x0b}}) // i64, -1
		out.Exit = GlobalExport(int(exit))
	}

	exports := append([][]byte(nil), p.exports...)
	dropStart := !p.reuse && p.hasStart
	if dropStart {
		if p.exportNames[StartExport] {
			return nil, notReusable("the module already exports %q", StartExport)
		}
		e := appendName(nil, StartExport)
		e = append(e, 0) // a function
		exports = append(exports, appendU32(e, p.startFunc))
		out.Start = StartExport
	}
	globals := make([][]byte, len(p.globals))
	for i, g := range p.globals {
		globals[i] = g.raw
		index := p.importedGlobals + i
		if !g.mutable || (!p.reuse && uint32(index) != stop) {
			continue
		}
		name := GlobalExport(index)
		if p.exportNames[name] {
			return nil, notReusable("the module already exports %q", name)
		}
		out.Globals = append(out.Globals, name)
		e := appendName(nil, name)
		e = append(e, 3)
		exports = append(exports, appendU32(e, uint32(index)))
	}
	// Sections rewritten, or added where the module has none.
	replaced := map[byte][]byte{6: encodeSection(6, globals), 7: encodeSection(7, exports)}
	if yield && p.memories == 0 {
		// A memory of its own, 0 pages and at most 0, for the yield
		// check's memory.grow 0 alone: the way into Go where the scheduler
		// can preempt a guest spinning in this module. Without one, a
		// garbage collection waits for the guest, and with as few
		// processors as guests spinning, the timer that would set the stop
		// global waits for the collection: the whole process stops.
		replaced[5] = encodeSection(5, [][]byte{{0x01, 0x00, 0x00}})
		p.memories = 1
	}
	if p.bodies != nil && yield {
		replaced[10] = encodeSection(10, p.instrument(b, fuel, stop, exitBody, exit))
	}

	var w bytes.Buffer
	w.Write(b[:8])
	flush := func(before int) { // writes the replacements that go before this place
		for _, id := range []byte{5, 6, 7, 10} {
			if s, ok := replaced[id]; ok && order(id) < before {
				w.Write(s)
				delete(replaced, id)
			}
		}
	}
	for _, s := range p.sections {
		if s.id == 0 {
			if !strings.HasPrefix(s.name, ".debug_") {
				w.Write(b[s.start:s.end])
			}
			continue
		}
		flush(order(s.id))
		if s.id == 8 && dropStart {
			continue // exported as StartExport
		}
		if r, ok := replaced[s.id]; ok {
			w.Write(r)
			delete(replaced, s.id)
			continue
		}
		if s.id == 11 && p.reuse && !p.snapshot {
			if p.dataCount {
				// Keep the segment count that memory.init indices and the
				// data count section rely on: an active segment becomes an
				// empty passive one, as it is after instantiation anyway.
				segs := make([][]byte, len(p.segments))
				for i, seg := range p.segments {
					segs[i] = seg.raw
					if !seg.passive {
						segs[i] = []byte{1, 0}
					}
				}
				w.Write(encodeSection(11, segs))
			}
			continue
		}
		w.Write(b[s.start:s.end])
	}
	flush(1 << 30)
	out.Module = w.Bytes()
	return out, nil
}

// loops says whether some function body has a loop, or may be entered
// again and again without one (entryChecks).
func (p *preparer) loops() bool {
	for _, fb := range p.bodies {
		if len(fb.loops) > 0 || len(fb.sites) > 0 || fb.tailCalls {
			return true
		}
	}
	return false
}

// GlobalExport is the name under which Prepare exports global i.
func GlobalExport(i int) string { return "wasmesh.global." + strconv.Itoa(i) }

// order is a section's place in the sequence the binary format requires.
func order(id byte) int {
	switch id {
	case 13: // tag, between memory and global
		return 55
	case 12: // data count, between element and code
		return 95
	default:
		return int(id) * 10
	}
}

func encodeSection(id byte, entries [][]byte) []byte {
	content := appendU32(nil, uint32(len(entries)))
	for _, e := range entries {
		content = append(content, e...)
	}
	s := append([]byte{id}, appendU32(nil, uint32(len(content)))...)
	return append(s, content...)
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func appendName(b []byte, s string) []byte {
	return append(appendU32(b, uint32(len(s))), s...)
}

// s64 reads a signed LEB128 of at most 10 bytes.
func (r *reader) s64() int64 {
	var v int64
	var shift uint
	for shift < 70 {
		c := r.byte()
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
	r.fail(fmt.Errorf("LEB128 too long at offset %d", r.off))
	return 0
}

// skip reads and discards a LEB128 of at most 10 bytes.
func (r *reader) skip() { r.s64() }

func (r *reader) bytes(n int) {
	if n > len(r.b)-r.off {
		r.fail(fmt.Errorf("unexpected end at offset %d", r.off))
		return
	}
	r.off += n
}

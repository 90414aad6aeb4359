package component

import (
	"bytes"
	"fmt"
	"strings"
)

// Magic and the versions of the binary format's preamble: a core module has
// layer 0, a component layer 1.
var (
	magic            = []byte{0x00, 0x61, 0x73, 0x6d}
	componentVersion = []byte{0x0d, 0x00, 0x01, 0x00}
)

// IsComponent reports whether b starts like a component binary (its
// preamble's layer is 1), valid or not.
func IsComponent(b []byte) bool {
	return len(b) >= 8 && bytes.Equal(b[:4], magic) && b[6] == 0x01 && b[7] == 0x00
}

// Component is a decoded component: its definitions, and the index spaces
// they make, in the order of the binary.
type Component struct {
	Imports       []Import
	Exports       []Export
	Modules       []Module     // core modules defined here
	Components    []*Component // nested components
	CoreInstances []CoreInstanceDef
	Instances     []InstanceDef
	CoreTypes     []*CoreTypeDef
	Types         []*TypeDef
	Aliases       []Alias
	Canons        []Canon

	// Space lists, for each sort, how each index was introduced.
	Space map[Sort][]Def
}

// Def is an entry of an index space: which list of the Component defines
// it, and where in that list.
type Def struct {
	From byte // FromImport, FromExport, FromAlias, FromCanon, FromDefinition
	N    int
}

// Origins of an index.
const (
	FromDefinition byte = iota // Modules, Components, CoreInstances, Instances, CoreTypes or Types, by sort
	FromImport
	FromExport
	FromAlias
	FromCanon
)

// Import is an import definition.
type Import struct {
	Name   string
	Type   ExternType
	Offset int
}

// Export is an export definition.
type Export struct {
	Name   string
	Sort   Sort
	Idx    uint32
	Type   *ExternType // the optional ascribed type
	Offset int
}

// Module is a core module, as bytes of the binary.
type Module struct {
	Bytes  []byte
	Offset int
}

// CoreInstanceDef is a core instance definition: an instantiation of a core
// module with named instances as its imports, or a bundle of exports.
type CoreInstanceDef struct {
	Module  *uint32 // instantiate: the module index
	Args    []CoreArg
	Exports []CoreExport // a bundle
}

// CoreArg is one "with" argument of a core instantiation.
type CoreArg struct {
	Name     string
	Instance uint32
}

// CoreExport is an export of a bundle of core definitions.
type CoreExport struct {
	Name string
	Sort byte // a core sort
	Idx  uint32
}

// InstanceDef is a component instance definition: an instantiation of a
// component, or a bundle of exports.
type InstanceDef struct {
	Component *uint32
	Args      []Arg
	Exports   []Arg // a bundle: Name, Sort and Idx of each export
}

// Arg is a "with" argument of an instantiation, or an export of a bundle.
type Arg struct {
	Name string
	Sort Sort
	Idx  uint32
}

// Canon is a canonical definition.
type Canon struct {
	Op   byte   // CanonLift, CanonLower, CanonResourceNew, …
	Func uint32 // lift: the core func; lower: the component func
	Type uint32 // lift: the func type; resource.*: the resource type
	Opts CanonOpts
}

// Canonical definitions (Binary.md, canon); the ones WASI 0.3 adds
// (async, streams, futures, tasks, threads) are decoded as CanonOther.
const (
	CanonLift         byte = 0x00
	CanonLower        byte = 0x01
	CanonResourceNew  byte = 0x02
	CanonResourceDrop byte = 0x03
	CanonResourceRep  byte = 0x04
	CanonOther        byte = 0xff
)

// CanonOpts are a lift's or lower's options.
type CanonOpts struct {
	Encoding   byte // EncodingUTF8 (the default), EncodingUTF16, EncodingLatin1UTF16
	Memory     *uint32
	Realloc    *uint32
	PostReturn *uint32
	Async      bool
	Callback   *uint32
}

// String encodings of CanonOpts.
const (
	EncodingUTF8        byte = 0x00
	EncodingUTF16       byte = 0x01
	EncodingLatin1UTF16 byte = 0x02
)

// Limits on what Decode accepts, against hostile input.
const (
	maxNesting = 16 // nested components and types
)

// Decode decodes a component binary. Core modules are kept as bytes: the
// runtime compiles them. An error is a *FormatError naming the section
// and offset.
func Decode(b []byte) (*Component, error) {
	if len(b) < 8 {
		return nil, &FormatError{Offset: 0, Msg: fmt.Sprintf("%d bytes: too short for a preamble", len(b))}
	}
	if !bytes.Equal(b[:4], magic) {
		return nil, &FormatError{Offset: 0, Msg: "not WebAssembly: no \\0asm magic"}
	}
	if b[6] == 0 && b[7] == 0 {
		return nil, &FormatError{Offset: 4, Msg: "a core module, not a component"}
	}
	if !bytes.Equal(b[4:8], componentVersion) {
		return nil, &FormatError{Offset: 4, Msg: fmt.Sprintf("component version %x, want 0d000100 (the component model's pre-standard version)", b[4:8])}
	}
	d := decoder{depth: 0}
	return d.component(&reader{b: b[8:], base: 8})
}

type decoder struct{ depth int }

var sectionNames = [...]string{
	0: "custom section", 1: "core module section", 2: "core instance section", 3: "core type section",
	4: "component section", 5: "instance section", 6: "alias section", 7: "type section",
	8: "canon section", 9: "start section", 10: "import section", 11: "export section", 12: "value section",
}

func (d *decoder) component(r *reader) (*Component, error) {
	c := &Component{Space: map[Sort][]Def{}}
	for !r.done() {
		at := r.offset()
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		size, err := r.u32()
		if err != nil {
			return nil, err
		}
		if int(id) >= len(sectionNames) {
			return nil, &FormatError{Offset: at, Msg: fmt.Sprintf("unknown section id %d", id)}
		}
		sr, err := r.sub(int(size))
		if err != nil {
			return nil, &FormatError{Section: sectionNames[id], Offset: at, Msg: err.(*FormatError).Msg, err: errTruncated}
		}
		if err := d.section(c, id, sr); err != nil {
			if fe, ok := err.(*FormatError); ok && fe.Section == "" {
				fe.Section = sectionNames[id]
			}
			return nil, err
		}
		if !sr.done() {
			return nil, &FormatError{Section: sectionNames[id], Offset: sr.offset(), Msg: fmt.Sprintf("%d bytes left over", len(sr.b)-sr.pos)}
		}
	}
	return c, nil
}

func (c *Component) add(s Sort, from byte, n int) {
	c.Space[s] = append(c.Space[s], Def{From: from, N: n})
}

// defined checks that index i of sort s is defined by what came before: a
// definition refers only backwards, so nothing that follows references can
// loop.
func (c *Component) defined(r *reader, s Sort, i uint32, what string) error {
	if int(i) >= len(c.Space[s]) {
		return r.errorf("%s: %s %d is not defined before it", what, s, i)
	}
	return nil
}

func (d *decoder) section(c *Component, id byte, r *reader) error {
	switch id {
	case 0: // custom: skipped
		r.pos = len(r.b)
		return nil
	case 1:
		c.Modules = append(c.Modules, Module{Bytes: r.b, Offset: r.base})
		r.pos = len(r.b)
		c.add(Sort{Core: true, Kind: CoreModule}, FromDefinition, len(c.Modules)-1)
		return nil
	case 4:
		if d.depth >= maxNesting {
			return r.errorf("components nested more than %d deep", maxNesting)
		}
		if len(r.b) < 8 || !bytes.Equal(r.b[:4], magic) || !bytes.Equal(r.b[4:8], componentVersion) {
			return r.errorf("nested component without a component preamble")
		}
		inner := decoder{depth: d.depth + 1}
		nested, err := inner.component(&reader{b: r.b[8:], base: r.base + 8})
		if err != nil {
			return err
		}
		r.pos = len(r.b)
		c.Components = append(c.Components, nested)
		c.add(Sort{Kind: SortComponent}, FromDefinition, len(c.Components)-1)
		return nil
	case 9:
		return r.errorf("start functions (component values) are not supported")
	case 12:
		return r.errorf("component values are not supported")
	}
	n, err := r.count()
	if err != nil {
		return err
	}
	for range n {
		var err error
		switch id {
		case 2:
			err = d.coreInstance(c, r)
		case 3:
			err = d.coreTypeDef(c, r)
		case 5:
			err = d.instance(c, r)
		case 6:
			err = d.aliasDef(c, r)
		case 7:
			err = d.typeDef(c, r)
		case 8:
			err = d.canon(c, r)
		case 10:
			err = d.importDef(c, r)
		case 11:
			err = d.exportDef(c, r)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) coreSort(r *reader) (byte, error) {
	s, err := r.byte()
	if err != nil {
		return 0, err
	}
	switch s {
	case CoreFunc, CoreTable, CoreMemory, CoreGlobal, CoreTag, CoreType, CoreModule, CoreInstance:
		return s, nil
	}
	return 0, &FormatError{Offset: r.offset() - 1, Msg: fmt.Sprintf("unknown core sort 0x%02x", s)}
}

func (d *decoder) sort(r *reader) (Sort, error) {
	s, err := r.byte()
	if err != nil {
		return Sort{}, err
	}
	switch s {
	case SortCoreOuter:
		k, err := d.coreSort(r)
		return Sort{Core: true, Kind: k}, err
	case SortFunc, SortValue, SortType, SortComponent, SortInstance:
		return Sort{Kind: s}, nil
	}
	return Sort{}, &FormatError{Offset: r.offset() - 1, Msg: fmt.Sprintf("unknown sort 0x%02x", s)}
}

func (d *decoder) coreInstance(c *Component, r *reader) error {
	tag, err := r.byte()
	if err != nil {
		return err
	}
	var ci CoreInstanceDef
	switch tag {
	case 0x00:
		m, err := r.u32()
		if err != nil {
			return err
		}
		ci.Module = &m
		if err := c.defined(r, Sort{Core: true, Kind: CoreModule}, m, "core instance"); err != nil {
			return err
		}
		n, err := r.count()
		if err != nil {
			return err
		}
		for range n {
			name, err := r.name()
			if err != nil {
				return err
			}
			if s, err := r.byte(); err != nil {
				return err
			} else if s != CoreInstance {
				return r.errorf("core instantiation argument %q: sort 0x%02x, want an instance (0x12)", name, s)
			}
			i, err := r.u32()
			if err != nil {
				return err
			}
			if err := c.defined(r, Sort{Core: true, Kind: CoreInstance}, i, "core instantiation argument "+name); err != nil {
				return err
			}
			ci.Args = append(ci.Args, CoreArg{Name: name, Instance: i})
		}
	case 0x01:
		n, err := r.count()
		if err != nil {
			return err
		}
		for range n {
			name, err := r.name()
			if err != nil {
				return err
			}
			s, err := d.coreSort(r)
			if err != nil {
				return err
			}
			i, err := r.u32()
			if err != nil {
				return err
			}
			if err := c.defined(r, Sort{Core: true, Kind: s}, i, "core export "+name); err != nil {
				return err
			}
			ci.Exports = append(ci.Exports, CoreExport{Name: name, Sort: s, Idx: i})
		}
	default:
		return r.errorf("unknown core instance form 0x%02x", tag)
	}
	c.CoreInstances = append(c.CoreInstances, ci)
	c.add(Sort{Core: true, Kind: CoreInstance}, FromDefinition, len(c.CoreInstances)-1)
	return nil
}

func (d *decoder) instance(c *Component, r *reader) error {
	tag, err := r.byte()
	if err != nil {
		return err
	}
	var in InstanceDef
	switch tag {
	case 0x00:
		ci, err := r.u32()
		if err != nil {
			return err
		}
		in.Component = &ci
		if err := c.defined(r, Sort{Kind: SortComponent}, ci, "instance"); err != nil {
			return err
		}
		if in.Args, err = d.args(c, r, false); err != nil {
			return err
		}
	case 0x01:
		if in.Exports, err = d.args(c, r, true); err != nil {
			return err
		}
	default:
		return r.errorf("unknown instance form 0x%02x", tag)
	}
	c.Instances = append(c.Instances, in)
	c.add(Sort{Kind: SortInstance}, FromDefinition, len(c.Instances)-1)
	return nil
}

// args reads instantiation arguments, or a bundle's exports (whose names
// carry name attributes).
func (d *decoder) args(c *Component, r *reader, exports bool) ([]Arg, error) {
	n, err := r.count()
	if err != nil {
		return nil, err
	}
	out := make([]Arg, 0, min(n, 64))
	for range n {
		var name string
		if exports {
			name, err = d.externName(r)
		} else {
			name, err = r.name()
		}
		if err != nil {
			return nil, err
		}
		s, err := d.sort(r)
		if err != nil {
			return nil, err
		}
		i, err := r.u32()
		if err != nil {
			return nil, err
		}
		if err := c.defined(r, s, i, name); err != nil {
			return nil, err
		}
		out = append(out, Arg{Name: name, Sort: s, Idx: i})
	}
	return out, nil
}

// externName reads a nameattributes: the name, with attributes skipped.
func (d *decoder) externName(r *reader) (string, error) {
	tag, err := r.byte()
	if err != nil {
		return "", err
	}
	if tag > 0x02 {
		return "", r.errorf("unknown name form 0x%02x", tag)
	}
	name, err := r.name()
	if err != nil || tag != 0x02 {
		return name, err
	}
	n, err := r.count()
	if err != nil {
		return "", err
	}
	for range n {
		a, err := r.byte()
		if err != nil {
			return "", err
		}
		if a > 0x02 {
			return "", r.errorf("unknown name attribute 0x%02x", a)
		}
		if _, err := r.name(); err != nil {
			return "", err
		}
	}
	return name, nil
}

func (d *decoder) aliasDef(c *Component, r *reader) error {
	a, err := d.alias(r)
	if err != nil {
		return err
	}
	switch a.Kind {
	case AliasExport:
		err = c.defined(r, Sort{Kind: SortInstance}, a.Instance, "alias of "+a.Name)
	case AliasCoreExport:
		err = c.defined(r, Sort{Core: true, Kind: CoreInstance}, a.Instance, "alias of "+a.Name)
	}
	if err != nil {
		return err
	}
	c.Aliases = append(c.Aliases, a)
	c.add(a.Sort, FromAlias, len(c.Aliases)-1)
	return nil
}

func (d *decoder) alias(r *reader) (Alias, error) {
	s, err := d.sort(r)
	if err != nil {
		return Alias{}, err
	}
	a := Alias{Sort: s}
	if a.Kind, err = r.byte(); err != nil {
		return a, err
	}
	switch a.Kind {
	case AliasExport, AliasCoreExport:
		if a.Instance, err = r.u32(); err != nil {
			return a, err
		}
		a.Name, err = r.name()
	case AliasOuter:
		if a.Count, err = r.u32(); err != nil {
			return a, err
		}
		a.Idx, err = r.u32()
	default:
		err = r.errorf("unknown alias form 0x%02x", a.Kind)
	}
	return a, err
}

func (d *decoder) importDef(c *Component, r *reader) error {
	at := r.offset()
	name, err := d.externName(r)
	if err != nil {
		return err
	}
	et, err := d.externType(r)
	if err != nil {
		return err
	}
	if !et.SubResource && et.Sort != (Sort{Core: true, Kind: CoreModule}) {
		if err := c.defined(r, Sort{Kind: SortType}, et.Idx, "import "+name); err != nil {
			return err
		}
	}
	c.Imports = append(c.Imports, Import{Name: name, Type: et, Offset: at})
	c.add(et.Sort, FromImport, len(c.Imports)-1)
	return nil
}

func (d *decoder) exportDef(c *Component, r *reader) error {
	at := r.offset()
	name, err := d.externName(r)
	if err != nil {
		return err
	}
	s, err := d.sort(r)
	if err != nil {
		return err
	}
	i, err := r.u32()
	if err != nil {
		return err
	}
	if err := c.defined(r, s, i, "export "+name); err != nil {
		return err
	}
	e := Export{Name: name, Sort: s, Idx: i, Offset: at}
	has, err := r.byte()
	if err != nil {
		return err
	}
	switch has {
	case 0x00:
	case 0x01:
		et, err := d.externType(r)
		if err != nil {
			return err
		}
		e.Type = &et
	default:
		return r.errorf("export %q: optional type tag 0x%02x", name, has)
	}
	c.Exports = append(c.Exports, e)
	c.add(s, FromExport, len(c.Exports)-1)
	return nil
}

func (d *decoder) externType(r *reader) (ExternType, error) {
	tag, err := r.byte()
	if err != nil {
		return ExternType{}, err
	}
	switch tag {
	case 0x00:
		s, err := r.byte()
		if err != nil {
			return ExternType{}, err
		}
		if s != CoreModule {
			return ExternType{}, r.errorf("core extern type 0x%02x, want a module (0x11)", s)
		}
		i, err := r.u32()
		return ExternType{Sort: Sort{Core: true, Kind: CoreModule}, Idx: i}, err
	case SortFunc, SortComponent, SortInstance:
		i, err := r.u32()
		return ExternType{Sort: Sort{Kind: tag}, Idx: i}, err
	case SortType:
		b, err := r.byte()
		if err != nil {
			return ExternType{}, err
		}
		switch b {
		case 0x00:
			i, err := r.u32()
			return ExternType{Sort: Sort{Kind: SortType}, Idx: i}, err
		case 0x01:
			return ExternType{Sort: Sort{Kind: SortType}, SubResource: true}, nil
		}
		return ExternType{}, r.errorf("unknown type bound 0x%02x", b)
	case SortValue:
		return ExternType{}, r.errorf("component values are not supported")
	}
	return ExternType{}, r.errorf("unknown extern type 0x%02x", tag)
}

func (d *decoder) canon(c *Component, r *reader) error {
	op, err := r.byte()
	if err != nil {
		return err
	}
	cn := Canon{Op: op}
	switch op {
	case CanonLift:
		if err := d.zero(r, "canon lift"); err != nil {
			return err
		}
		if cn.Func, err = r.u32(); err != nil {
			return err
		}
		if cn.Opts, err = d.opts(r); err != nil {
			return err
		}
		if cn.Type, err = r.u32(); err != nil {
			return err
		}
		if err := c.checkCanon(r, cn); err != nil {
			return err
		}
		c.Canons = append(c.Canons, cn)
		c.add(Sort{Kind: SortFunc}, FromCanon, len(c.Canons)-1)
		return nil
	case CanonLower:
		if err := d.zero(r, "canon lower"); err != nil {
			return err
		}
		if cn.Func, err = r.u32(); err != nil {
			return err
		}
		if cn.Opts, err = d.opts(r); err != nil {
			return err
		}
	case CanonResourceNew, CanonResourceDrop, CanonResourceRep:
		if cn.Type, err = r.u32(); err != nil {
			return err
		}
	default:
		return r.errorf("%s is not supported: it is WASI 0.3's (async, streams, futures, threads), and this host serves WASI 0.2 components%s", canonName(op), c.wasi03Import())
	}
	if err := c.checkCanon(r, cn); err != nil {
		return err
	}
	c.Canons = append(c.Canons, cn)
	c.add(Sort{Core: true, Kind: CoreFunc}, FromCanon, len(c.Canons)-1)
	return nil
}

// checkCanon checks that what a canon definition names is defined.
func (c *Component) checkCanon(r *reader, cn Canon) error {
	var err error
	switch cn.Op {
	case CanonLift:
		if err = c.defined(r, Sort{Core: true, Kind: CoreFunc}, cn.Func, "canon lift"); err == nil {
			err = c.defined(r, Sort{Kind: SortType}, cn.Type, "canon lift")
		}
	case CanonLower:
		err = c.defined(r, Sort{Kind: SortFunc}, cn.Func, "canon lower")
	default:
		err = c.defined(r, Sort{Kind: SortType}, cn.Type, "resource built-in")
	}
	for _, o := range []struct {
		idx  *uint32
		sort byte
	}{{cn.Opts.Memory, CoreMemory}, {cn.Opts.Realloc, CoreFunc}, {cn.Opts.PostReturn, CoreFunc}, {cn.Opts.Callback, CoreFunc}} {
		if err == nil && o.idx != nil {
			err = c.defined(r, Sort{Core: true, Kind: o.sort}, *o.idx, "canon option")
		}
	}
	return err
}

func (d *decoder) zero(r *reader, what string) error {
	b, err := r.byte()
	if err == nil && b != 0x00 {
		err = r.errorf("%s: sort 0x%02x, want func (0x00)", what, b)
	}
	return err
}

func (d *decoder) opts(r *reader) (CanonOpts, error) {
	var o CanonOpts
	n, err := r.count()
	if err != nil {
		return o, err
	}
	seen := map[byte]bool{}
	for range n {
		at := r.offset()
		k, err := r.byte()
		if err != nil {
			return o, err
		}
		group := k
		if k <= EncodingLatin1UTF16 {
			group = 0 // one string encoding at most
		}
		if seen[group] {
			return o, &FormatError{Offset: at, Msg: fmt.Sprintf("canonical option 0x%02x given twice or conflicting", k)}
		}
		seen[group] = true
		switch k {
		case EncodingUTF8, EncodingUTF16, EncodingLatin1UTF16:
			o.Encoding = k
		case 0x03, 0x04, 0x05, 0x07:
			i, err := r.u32()
			if err != nil {
				return o, err
			}
			switch k {
			case 0x03:
				o.Memory = &i
			case 0x04:
				o.Realloc = &i
			case 0x05:
				o.PostReturn = &i
			case 0x07:
				o.Callback = &i
			}
		case 0x06:
			o.Async = true
		default:
			return o, &FormatError{Offset: at, Msg: fmt.Sprintf("unknown canonical option 0x%02x", k)}
		}
	}
	return o, nil
}

// canonNames name the canonical built-ins of WASI 0.3 (Binary.md's canon).
var canonNames = map[byte]string{
	0x05: "task.cancel", 0x06: "subtask.cancel", 0x07: "resource.drop async", 0x08: "backpressure.set",
	0x09: "task.return", 0x0a: "context.get", 0x0b: "context.set", 0x0c: "yield", 0x0d: "subtask.drop",
	0x0e: "stream.new", 0x0f: "stream.read", 0x10: "stream.write", 0x11: "stream.cancel-read",
	0x12: "stream.cancel-write", 0x13: "stream.drop-readable", 0x14: "stream.drop-writable",
	0x15: "future.new", 0x16: "future.read", 0x17: "future.write", 0x18: "future.cancel-read",
	0x19: "future.cancel-write", 0x1a: "future.drop-readable", 0x1b: "future.drop-writable",
	0x1c: "error-context.new", 0x1d: "error-context.debug-message", 0x1e: "error-context.drop",
	0x1f: "waitable-set.new", 0x20: "waitable-set.wait", 0x21: "waitable-set.poll", 0x22: "waitable-set.drop",
	0x23: "waitable.join", 0x40: "thread.spawn-ref", 0x41: "thread.spawn-indirect", 0x42: "thread.available-parallelism",
}

// canonName is "canon NAME" for a canonical built-in's opcode, or its
// opcode when it has no name here.
func canonName(op byte) string {
	if name, ok := canonNames[op]; ok {
		return fmt.Sprintf("canon %s (0x%02x)", name, op)
	}
	return fmt.Sprintf("canonical built-in 0x%02x", op)
}

// wasi03Import is ", as its import of NAME says" for the first of c's
// imports of a 0.3 interface, "" if none.
func (c *Component) wasi03Import() string {
	for _, im := range c.Imports {
		if _, version, _ := strings.Cut(im.Name, "@"); strings.HasPrefix(version, "0.3") {
			return " (it imports " + im.Name + ")"
		}
	}
	return ""
}

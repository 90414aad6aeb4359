package component

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// World is what a component imports and exports: its interfaces (instances),
// functions and types by name, with the functions' signatures in WIT
// syntax. It is what `wasmesh inspect` prints.
type World struct {
	Imports []Item `json:"imports"`
	Exports []Item `json:"exports"`
}

// Role says what the component is for, from its exports: a
// "wasi:http handler (exports wasi:http/incoming-handler@0.2.10)", a
// "wasi:cli command (exports wasi:cli/run@0.2.3)", or a "library
// (exports …)" of interfaces of its own.
func (w *World) Role() string {
	var own []string
	for _, ex := range w.Exports {
		switch base, _, _ := strings.Cut(ex.Name, "@"); base {
		case "wasi:http/incoming-handler":
			if Interface(ex.Name) != "wasi:http/incoming-handler@0.2" {
				return "a wasi:http handler of a version this host does not serve (exports " + ex.Name + "; it serves 0.2.x)"
			}
			return "wasi:http handler (exports " + ex.Name + ")"
		case "wasi:cli/run":
			return "wasi:cli command (exports " + ex.Name + ")"
		}
		if ex.Sort == (Sort{Kind: SortInstance}) && !strings.HasPrefix(ex.Name, "wasi:") {
			own = append(own, ex.Name)
		}
	}
	if len(own) == 0 {
		return "none: it exports no handler, command or interface of its own"
	}
	return "library (exports " + strings.Join(own, ", ") + ")"
}

// WASI is the WASI version of the world's wasi: imports and exports: the
// highest 0.2.x (or other) version named, "" for none.
func (w *World) WASI() string {
	best := ""
	for _, items := range [][]Item{w.Imports, w.Exports} {
		for _, it := range items {
			if !strings.HasPrefix(it.Name, "wasi:") {
				continue
			}
			if _, v, ok := strings.Cut(it.Name, "@"); ok && semverLess(best, v) {
				best = v
			}
		}
	}
	return best
}

// semverLess orders "major.minor.patch[-pre]" versions, "" first.
func semverLess(a, b string) bool {
	if a == "" {
		return b != ""
	}
	pa, pb := strings.SplitN(a, ".", 3), strings.SplitN(b, ".", 3)
	for i := 0; i < 3; i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(strings.SplitN(pa[i], "-", 2)[0])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(strings.SplitN(pb[i], "-", 2)[0])
		}
		if x != y {
			return x < y
		}
	}
	return false
}

// Packages are the packages of the world's imports ("wasi:http@0.2.10"),
// each once, sorted.
func (w *World) Packages() []string {
	seen := map[string]bool{}
	out := []string{}
	for _, it := range w.Imports {
		pkg, version, _ := strings.Cut(it.Name, "@")
		if ns, _, ok := strings.Cut(pkg, "/"); ok {
			pkg = ns
		}
		if version != "" {
			pkg += "@" + version
		}
		if !seen[pkg] {
			seen[pkg] = true
			out = append(out, pkg)
		}
	}
	slices.Sort(out)
	return out
}

// Item is one import or export of a World.
type Item struct {
	Name  string   `json:"name"`
	Sort  Sort     `json:"-"`
	Kind  string   `json:"kind"`            // Sort, as text: "instance", "func", …
	Funcs []Func   `json:"funcs,omitempty"` // an instance's functions, or the function itself
	Types []string `json:"types,omitempty"` // an instance's types: "resource fields", "record foo", …
}

// Func is a function's name and signature.
type Func struct {
	Name      string `json:"name"`
	Signature string `json:"signature"`
}

// WriteTo writes w as text: one import or export a line, an instance's
// functions and types indented under it.
func (w *World) WriteTo(out io.Writer) (int64, error) {
	var b strings.Builder
	for _, group := range []struct {
		what  string
		items []Item
	}{{"import", w.Imports}, {"export", w.Exports}} {
		for _, it := range group.items {
			fmt.Fprintf(&b, "%s %s %s\n", group.what, it.Sort, it.Name)
			for _, t := range it.Types {
				fmt.Fprintf(&b, "  %s\n", t)
			}
			for _, f := range it.Funcs {
				fmt.Fprintf(&b, "  %s: %s\n", f.Name, f.Signature)
			}
		}
	}
	n, err := io.WriteString(out, b.String())
	return int64(n), err
}

// World describes c's imports and exports. Types it cannot resolve are
// printed by index ("type 7"), never an error: a component that decodes
// has a world to show.
func (c *Component) World() *World {
	s := newScope(c, nil)
	w := &World{}
	for _, im := range c.Imports {
		w.Imports = append(w.Imports, s.item(im.Name, im.Type))
	}
	for _, ex := range c.Exports {
		w.Exports = append(w.Exports, s.exportItem(ex))
	}
	return w
}

// typeEntry is one index of a type index space, resolved.
type typeEntry struct {
	def      *TypeDef
	name     string // the name it was imported or exported under, if any
	resource bool   // an abstract or defined resource
	id       string // a resource's identity: "<instance import>#<name>", or "local#<n>"
	scope    *scope // where def's own type indices resolve
}

// scope is a type index space, with the scope around it for outer aliases.
type scope struct {
	types  []typeEntry
	parent *scope
	comp   *Component // the component whose space this is; nil for a type's
	owner  string     // the import an instance type's scope describes
}

func newScope(c *Component, parent *scope) *scope {
	s := &scope{parent: parent, comp: c}
	for i, d := range c.Space[Sort{Kind: SortType}] {
		s.types = append(s.types, s.componentType(i, d))
	}
	return s
}

func (s *scope) componentType(i int, d Def) typeEntry {
	c := s.comp
	switch d.From {
	case FromDefinition:
		t := c.Types[d.N]
		e := typeEntry{def: t, resource: t.Resource != nil, scope: s}
		if e.resource {
			e.id = "local#" + strconv.Itoa(i)
		}
		return e
	case FromImport:
		im := c.Imports[d.N]
		return s.bound(im.Name, im.Type)
	case FromExport:
		ex := c.Exports[d.N]
		e := s.at(ex.Idx)
		e.name = ex.Name
		return e
	case FromAlias:
		a := c.Aliases[d.N]
		switch a.Kind {
		case AliasOuter:
			return s.outer(a.Count, a.Idx)
		case AliasExport:
			return s.instanceExport(a.Instance, a.Name)
		}
	}
	return typeEntry{}
}

// bound is the type a type import or export declares: a fresh resource, or
// the type it equals.
func (s *scope) bound(name string, et ExternType) typeEntry {
	if et.SubResource {
		return typeEntry{name: name, resource: true, id: s.owner + "#" + name}
	}
	e := s.at(et.Idx)
	e.name = name
	return e
}

func (s *scope) at(i uint32) typeEntry {
	if int(i) < len(s.types) {
		return s.types[i]
	}
	return typeEntry{name: "type " + strconv.Itoa(int(i))}
}

func (s *scope) outer(count, i uint32) typeEntry {
	o := s
	for ; count > 0 && o != nil; count-- {
		o = o.parent
	}
	if o == nil {
		return typeEntry{name: "outer type " + strconv.Itoa(int(i))}
	}
	return o.at(i)
}

// instanceExport is the type an instance of the component exports as name.
func (s *scope) instanceExport(inst uint32, name string) typeEntry {
	it := s.instanceType(inst)
	if it == nil {
		return typeEntry{name: name}
	}
	for _, e := range it.exports {
		if e.name == name {
			return e.entry
		}
	}
	return typeEntry{name: name}
}

// declScope is an instance or component type's declarators resolved.
type declScope struct {
	*scope
	exports   []namedEntry
	funcs     []Func
	funcTypes map[string]uint32 // exported function → its type index in the scope
}

type namedEntry struct {
	name  string
	sort  Sort
	entry typeEntry
}

// instanceType resolves the type of instance inst of the component, for an
// imported instance; nil for instances made here.
func (s *scope) instanceType(inst uint32) *declScope {
	c := s.comp
	if c == nil {
		return nil
	}
	defs := c.Space[Sort{Kind: SortInstance}]
	if int(inst) >= len(defs) || defs[inst].From != FromImport {
		return nil
	}
	e := s.at(c.Imports[defs[inst].N].Type.Idx)
	if e.def == nil || e.def.Instance == nil {
		return nil
	}
	return e.scope.decls(e.def.Instance.Decls, c.Imports[defs[inst].N].Name)
}

// decls resolves the declarators of an instance or component type in a new
// scope inside s; owner is the import the type describes, which names its
// resources.
func (s *scope) decls(decls []Decl, owner string) *declScope {
	ds := &declScope{scope: &scope{parent: s, owner: owner}, funcTypes: map[string]uint32{}}
	for _, d := range decls {
		switch d.Kind {
		case DeclType:
			ds.types = append(ds.types, typeEntry{def: d.Type, resource: d.Type.Resource != nil, scope: ds.scope})
		case DeclAlias:
			a := d.Alias
			if a.Sort == (Sort{Kind: SortType}) && a.Kind == AliasOuter {
				ds.types = append(ds.types, ds.outer(a.Count, a.Idx))
			} else if a.Sort == (Sort{Kind: SortType}) {
				ds.types = append(ds.types, typeEntry{name: a.Name})
			}
		case DeclExport, DeclImport:
			et := *d.Extern
			switch et.Sort {
			case Sort{Kind: SortType}:
				e := ds.bound(d.Name, et)
				ds.types = append(ds.types, e)
				if d.Kind == DeclExport {
					ds.exports = append(ds.exports, namedEntry{name: d.Name, sort: et.Sort, entry: e})
				}
			case Sort{Kind: SortFunc}:
				if d.Kind == DeclExport {
					ds.funcs = append(ds.funcs, Func{Name: d.Name, Signature: ds.funcSig(et.Idx)})
					ds.funcTypes[d.Name] = et.Idx
				}
			}
		}
	}
	return ds
}

func (s *scope) item(name string, et ExternType) Item {
	it := Item{Name: name, Sort: et.Sort, Kind: et.Sort.String()}
	switch et.Sort {
	case Sort{Kind: SortInstance}:
		e := s.at(et.Idx)
		if e.def != nil && e.def.Instance != nil {
			ds := e.scope.decls(e.def.Instance.Decls, name)
			it.Types, it.Funcs = ds.typeLines(), ds.funcs
		}
	case Sort{Kind: SortFunc}:
		it.Funcs = []Func{{Name: name, Signature: s.funcSig(et.Idx)}}
	}
	return it
}

// exportItem describes an export: by its ascribed type when it has one,
// else by what the exported definition is.
func (s *scope) exportItem(ex Export) Item {
	if ex.Type != nil {
		return s.item(ex.Name, *ex.Type)
	}
	it := Item{Name: ex.Name, Sort: ex.Sort, Kind: ex.Sort.String()}
	c := s.comp
	switch ex.Sort {
	case Sort{Kind: SortFunc}:
		it.Funcs = []Func{{Name: ex.Name, Signature: s.liftedSig(ex.Idx)}}
	case Sort{Kind: SortInstance}:
		defs := c.Space[ex.Sort]
		if int(ex.Idx) >= len(defs) || defs[ex.Idx].From != FromDefinition {
			break
		}
		in := c.Instances[defs[ex.Idx].N]
		switch {
		case in.Component != nil: // the shim wit-component makes: its exports are typed
			it.Types, it.Funcs = s.nestedExports(*in.Component)
		default:
			for _, a := range in.Exports {
				if a.Sort == (Sort{Kind: SortFunc}) {
					it.Funcs = append(it.Funcs, Func{Name: a.Name, Signature: s.liftedSig(a.Idx)})
				}
			}
		}
	}
	return it
}

// nestedExports lists the typed exports of nested component ci.
func (s *scope) nestedExports(ci uint32) (types []string, funcs []Func) {
	defs := s.comp.Space[Sort{Kind: SortComponent}]
	if int(ci) >= len(defs) || defs[ci].From != FromDefinition {
		return nil, nil
	}
	inner := s.comp.Components[defs[ci].N]
	is := newScope(inner, s)
	for _, ex := range inner.Exports {
		switch ex.Sort {
		case Sort{Kind: SortType}:
			e := is.at(ex.Idx)
			types = append(types, kindOf(e)+" "+ex.Name)
		case Sort{Kind: SortFunc}:
			if ex.Type != nil {
				funcs = append(funcs, Func{Name: ex.Name, Signature: is.funcSig(ex.Type.Idx)})
			} else {
				funcs = append(funcs, Func{Name: ex.Name, Signature: is.liftedSig(ex.Idx)})
			}
		}
	}
	return types, funcs
}

// liftedSig is the signature of func index i, when a canon lift made it.
func (s *scope) liftedSig(i uint32) string {
	defs := s.comp.Space[Sort{Kind: SortFunc}]
	if int(i) < len(defs) && defs[i].From == FromCanon {
		return s.funcSig(s.comp.Canons[defs[i].N].Type)
	}
	return "func"
}

func (ds *declScope) typeLines() []string {
	var out []string
	for _, e := range ds.exports {
		out = append(out, kindOf(e.entry)+" "+e.name)
	}
	return out
}

func kindOf(e typeEntry) string {
	switch {
	case e.resource:
		return "resource"
	case e.def == nil:
		return "type"
	case e.def.Val != nil:
		switch e.def.Val.Kind {
		case KindRecord:
			return "record"
		case KindVariant:
			return "variant"
		case KindEnum:
			return "enum"
		case KindFlags:
			return "flags"
		}
	}
	return "type"
}

// funcSig prints the function type at index i in WIT syntax.
func (s *scope) funcSig(i uint32) string {
	e := s.at(i)
	if e.def == nil || e.def.Func == nil {
		return "func"
	}
	ft, ts := e.def.Func, e.scope
	budget := maxPrinted
	var b strings.Builder
	if ft.Async {
		b.WriteString("async ")
	}
	b.WriteString("func(")
	for i, p := range ft.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.Name + ": " + ts.valType(p.Type, 0, &budget))
	}
	b.WriteString(")")
	if ft.Result != nil {
		b.WriteString(" -> " + ts.valType(*ft.Result, 0, &budget))
	}
	return b.String()
}

var primNames = map[byte]string{
	Bool: "bool", S8: "s8", U8: "u8", S16: "s16", U16: "u16", S32: "s32", U32: "u32", S64: "s64", U64: "u64",
	F32: "f32", F64: "f64", Char: "char", String: "string", ErrorContext: "error-context",
}

// maxPrinted bounds the types a signature spells out: anonymous types
// nested in one another can describe a tree far larger than the binary.
const maxPrinted = 512

// valType prints v in WIT syntax: by name where the type has one; "…" once
// budget types have been spelled out.
func (s *scope) valType(v ValType, depth int, budget *int) string {
	if *budget--; *budget < 0 {
		return "…"
	}
	if v.Prim != 0 {
		return primNames[v.Prim]
	}
	e := s.at(v.Idx)
	if e.name != "" || depth > maxNesting {
		return e.name
	}
	if e.def == nil || e.def.Val == nil {
		return "type " + strconv.Itoa(int(v.Idx))
	}
	return e.scope.defValType(e.def.Val, depth+1, budget)
}

func (s *scope) defValType(t *DefValType, depth int, budget *int) string {
	opt := func(v *ValType) string {
		if v == nil {
			return "_"
		}
		return s.valType(*v, depth, budget)
	}
	switch t.Kind {
	case KindPrim:
		return primNames[t.Prim]
	case KindList:
		return "list<" + s.valType(t.Elem, depth, budget) + ">"
	case KindFixed:
		return "list<" + s.valType(t.Elem, depth, budget) + ", " + strconv.Itoa(int(t.Len)) + ">"
	case KindOption:
		return "option<" + s.valType(t.Elem, depth, budget) + ">"
	case KindResult:
		if t.Ok == nil && t.Err == nil {
			return "result"
		}
		return "result<" + opt(t.Ok) + ", " + opt(t.Err) + ">"
	case KindTuple:
		parts := make([]string, len(t.Types))
		for i, v := range t.Types {
			parts[i] = s.valType(v, depth, budget)
		}
		return "tuple<" + strings.Join(parts, ", ") + ">"
	case KindOwn:
		return s.at(t.Resource).name // WIT writes own<T> as T
	case KindBorrow:
		return "borrow<" + s.at(t.Resource).name + ">"
	case KindStream:
		return "stream<" + opt(t.Ok) + ">"
	case KindFuture:
		return "future<" + opt(t.Ok) + ">"
	case KindMap:
		return "map<" + s.valType(t.Key, depth, budget) + ", " + s.valType(t.Elem, depth, budget) + ">"
	case KindRecord:
		return "record { … }"
	case KindVariant:
		return "variant { … }"
	case KindEnum:
		return "enum { " + strings.Join(t.Labels, ", ") + " }"
	case KindFlags:
		return "flags { " + strings.Join(t.Labels, ", ") + " }"
	}
	return "type"
}

package component

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/wasmesh/wasmesh/internal/cabi"
)

// resourceIDs numbers the resource types a linked component uses, by
// identity (typeEntry.id).
type resourceIDs struct {
	byID  map[string]int
	names []string
	// budget is what is left of the types one function type may spell
	// out (maxTypeNodes each): nested anonymous types can describe a tree
	// far larger than the binary.
	budget int
}

// maxTypeNodes bounds the types one function's signature may expand to.
const maxTypeNodes = 4096

func (r *resourceIDs) of(id string) int {
	if n, ok := r.byID[id]; ok {
		return n
	}
	if r.byID == nil {
		r.byID = map[string]int{}
	}
	r.byID[id] = len(r.names)
	r.names = append(r.names, id)
	return len(r.names) - 1
}

// funcType is a function type in cabi's terms.
type funcType struct {
	params  []*cabi.Type
	results []*cabi.Type
	names   []string // the parameters' names
	// paramTuple and resultTuple are tuples of params and results, for
	// cabi.LiftFlatValues and cabi.LowerFlatValues.
	paramTuple, resultTuple *cabi.Type
}

// cabiFunc converts the function type at index i of scope s.
func (s *scope) cabiFunc(i uint32, ids *resourceIDs) (*funcType, error) {
	e := s.at(i)
	if e.def == nil || e.def.Func == nil {
		return nil, fmt.Errorf("type %d is not a function type", i)
	}
	ft, ts := e.def.Func, e.scope
	if ft.Async {
		return nil, fmt.Errorf("async functions (WASI 0.3) are not supported")
	}
	ids.budget = maxTypeNodes
	out := &funcType{}
	for _, p := range ft.Params {
		t, err := ts.cabiType(p.Type, ids, 0)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", p.Name, err)
		}
		out.params, out.names = append(out.params, t), append(out.names, p.Name)
	}
	if ft.Result != nil {
		t, err := ts.cabiType(*ft.Result, ids, 0)
		if err != nil {
			return nil, fmt.Errorf("result: %w", err)
		}
		out.results = []*cabi.Type{t}
	}
	out.paramTuple, out.resultTuple = cabi.TupleOf(out.params...), cabi.TupleOf(out.results...)
	return out, nil
}

var primKinds = map[byte]cabi.Kind{
	Bool: cabi.Bool, S8: cabi.S8, U8: cabi.U8, S16: cabi.S16, U16: cabi.U16, S32: cabi.S32, U32: cabi.U32,
	S64: cabi.S64, U64: cabi.U64, F32: cabi.F32, F64: cabi.F64, Char: cabi.Char, String: cabi.String,
}

func (s *scope) cabiType(v ValType, ids *resourceIDs, depth int) (*cabi.Type, error) {
	if depth > maxNesting {
		return nil, fmt.Errorf("types nested more than %d deep", maxNesting)
	}
	if ids.budget--; ids.budget < 0 {
		return nil, fmt.Errorf("a signature of more than %d types", maxTypeNodes)
	}
	if v.Prim != 0 {
		k, ok := primKinds[v.Prim]
		if !ok {
			return nil, fmt.Errorf("type 0x%02x is not supported", v.Prim)
		}
		return &cabi.Type{Kind: k}, nil
	}
	e := s.at(v.Idx)
	if e.def == nil || e.def.Val == nil {
		return nil, fmt.Errorf("type %d (%s) is not a value type", v.Idx, e.name)
	}
	return e.scope.cabiDef(e.def.Val, ids, depth+1)
}

func (s *scope) cabiDef(t *DefValType, ids *resourceIDs, depth int) (*cabi.Type, error) {
	conv := func(v ValType) (*cabi.Type, error) { return s.cabiType(v, ids, depth) }
	opt := func(v *ValType) (*cabi.Type, error) {
		if v == nil {
			return nil, nil
		}
		return conv(*v)
	}
	switch t.Kind {
	case KindPrim:
		return s.cabiType(ValType{Prim: t.Prim}, ids, depth)
	case KindList, KindFixed:
		e, err := conv(t.Elem)
		return cabi.ListOf(e, t.Len), err
	case KindOption:
		e, err := conv(t.Elem)
		return cabi.OptionOf(e), err
	case KindResult:
		ok, err := opt(t.Ok)
		if err != nil {
			return nil, err
		}
		bad, err := opt(t.Err)
		return cabi.ResultOf(ok, bad), err
	case KindRecord:
		fs := make([]cabi.Field, len(t.Fields))
		for i, f := range t.Fields {
			ft, err := conv(f.Type)
			if err != nil {
				return nil, err
			}
			fs[i] = cabi.Field{Name: f.Name, Type: ft}
		}
		return cabi.RecordOf(fs...), nil
	case KindTuple:
		ts := make([]*cabi.Type, len(t.Types))
		for i, v := range t.Types {
			var err error
			if ts[i], err = conv(v); err != nil {
				return nil, err
			}
		}
		return cabi.TupleOf(ts...), nil
	case KindVariant:
		cs := make([]cabi.Case, len(t.Cases))
		for i, c := range t.Cases {
			ct, err := opt(c.Type)
			if err != nil {
				return nil, err
			}
			cs[i] = cabi.Case{Name: c.Name, Type: ct}
		}
		return cabi.VariantOf(cs...), nil
	case KindEnum:
		return cabi.EnumOf(t.Labels...), nil
	case KindFlags:
		return cabi.FlagsOf(t.Labels...), nil
	case KindOwn, KindBorrow:
		r := s.at(t.Resource)
		if !r.resource || r.id == "" {
			return nil, fmt.Errorf("handle to type %d (%s), which is not a resource", t.Resource, r.name)
		}
		if t.Kind == KindOwn {
			return cabi.OwnOf(ids.of(r.id)), nil
		}
		return cabi.BorrowOf(ids.of(r.id)), nil
	}
	return nil, fmt.Errorf("%s types (WASI 0.3 and later) are not supported", kindName(t.Kind))
}

func kindName(k byte) string {
	switch k {
	case KindStream:
		return "stream"
	case KindFuture:
		return "future"
	case KindMap:
		return "map"
	}
	return "type 0x" + hex2(k)
}

// Interface is an import's or export's name without the patch (and
// prerelease) part of its version for 0.x versions, and with only the major
// part for later ones: the key that semver-compatible names share, as
// wasmtime matches them. "wasi:io/streams@0.2.12" → "wasi:io/streams@0.2";
// a 0.0.x version, or a pre-release, stays whole (it matches only itself).
func Interface(name string) string {
	base, version, ok := strings.Cut(name, "@")
	core := strings.FieldsFunc(version, func(r rune) bool { return r == '+' })
	if !ok || len(core) == 0 || strings.Contains(core[0], "-") {
		return name // a pre-release matches only itself
	}
	parts := strings.SplitN(core[0], ".", 3)
	if major, err := strconv.Atoi(parts[0]); err == nil && major > 0 {
		return base + "@" + parts[0]
	}
	if len(parts) >= 2 && parts[1] != "0" {
		return base + "@" + parts[0] + "." + parts[1]
	}
	return base + "@" + core[0]
}

package component

import (
	"fmt"
	"strings"

	"github.com/wasmesh/wasmesh/internal/cabi"
)

// FuncSig is a function's type in cabi's terms: its parameters, named,
// and its result (at most one).
type FuncSig struct {
	Params  []Param
	Results []*cabi.Type
}

// Param is a function's parameter.
type Param struct {
	Name string
	Type *cabi.Type
}

// String writes s in WIT's syntax, its types spelled out:
// "func(data: list<u8>) -> list<u8>".
func (s FuncSig) String() string {
	var b strings.Builder
	b.WriteString("func(")
	for i, p := range s.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %s", p.Name, p.Type)
	}
	b.WriteString(")")
	for _, r := range s.Results {
		fmt.Fprintf(&b, " -> %s", r)
	}
	return b.String()
}

// Same reports whether s and o have the same types: the same parameters in
// the same order (their names aside) and the same result. Two functions of
// the same signature take and give the same values.
func (s FuncSig) Same(o FuncSig) bool {
	if len(s.Params) != len(o.Params) || len(s.Results) != len(o.Results) {
		return false
	}
	for i := range s.Params {
		if s.Params[i].Type.String() != o.Params[i].Type.String() {
			return false
		}
	}
	for i := range s.Results {
		if s.Results[i].String() != o.Results[i].String() {
			return false
		}
	}
	return true
}

// HasResource reports whether a value s takes or gives holds a resource.
func (s FuncSig) HasResource() bool {
	for _, p := range s.Params {
		if p.Type.HasResource() {
			return true
		}
	}
	for _, r := range s.Results {
		if r.HasResource() {
			return true
		}
	}
	return false
}

func (ft *funcType) signature() FuncSig {
	s := FuncSig{Results: ft.results}
	for i, t := range ft.params {
		s.Params = append(s.Params, Param{Name: ft.names[i], Type: t})
	}
	return s
}

// Imported returns the functions the component imports, by their Host key
// ("<interface>#<function>", the interface as Interface gives it), with
// their signatures.
func (l *Linked) Imported() map[string]FuncSig {
	out := map[string]FuncSig{}
	for _, cf := range l.canons {
		if cf != nil && cf.op == CanonLower {
			out[cf.name] = cf.ft.signature()
		}
	}
	return out
}

// Exported returns the functions of the instances the component exports,
// by the export's name ("example:crypto/hash@0.1.0") and the function's,
// with their signatures. A function whose type cannot be found is left
// out.
func (l *Linked) Exported() map[string]map[string]FuncSig {
	out := map[string]map[string]FuncSig{}
	for _, it := range l.c.World().Exports {
		if it.Sort != (Sort{Kind: SortInstance}) {
			continue
		}
		fns := map[string]FuncSig{}
		for _, f := range it.Funcs {
			lift, err := l.exportedLift(it.Name, f.Name)
			if err != nil {
				continue
			}
			fns[f.Name] = l.lifts[lift].signature()
		}
		out[it.Name] = fns
	}
	return out
}

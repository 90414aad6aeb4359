package component

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/wasmesh/wasmesh/internal/cabi"
)

// FlatFunc implements an import on the core values of its calls, where a
// HostFunc gets cabi values: for the functions a handler calls on every
// request, whose arguments' lifting and results' lowering cost more than
// the functions do. It serves only an import whose type Signature spells
// as Type; an import of another type is served by the HostFunc of the
// same key, which the host must also provide.
type FlatFunc struct {
	Type string
	Func func(ctx context.Context, c *FlatCall) error
}

// FlatCall is a call of a FlatFunc: its core arguments, read through its
// methods, which check them as lifting would, and its result, set through
// them. Arguments are numbered as core values (a string takes two).
type FlatCall struct {
	Inst  *Instance
	cf    *canonFunc
	cx    *cabi.Context
	stack []uint64
	out   uint32 // where the results go, when they do not fit the stack
}

// flatPlan is what a FlatFunc's calls need of its import's type, worked
// out at link: the resource of each core argument that is a handle (a
// parameter's own, or the payload of its option or ok case), and of the
// result's own handle (directly or as a result's ok case).
type flatPlan struct {
	fn     func(context.Context, *FlatCall) error
	argRes []int // by core argument; -1: not a handle
	result *cabi.Type
	resRes int // -1: no own handle in the result
	// The result's discriminant size, payload offset and case count, when
	// it is a variant, enum, option or result kept in memory.
	caseSize, payload uint32
	cases             int
}

// planFlat returns the plan of cf's calls by ff, nil when its type is not
// ff's.
func planFlat(cf *canonFunc, ff FlatFunc, names []string) *flatPlan {
	if Signature(cf.ft.params, cf.ft.results, names) != ff.Type {
		return nil
	}
	if flat, _ := cabi.FlattenFunc(cf.ft.params, nil, false); len(flat) > cabi.MaxFlatParams {
		return nil // the arguments are in memory: not what a FlatFunc reads
	}
	p := &flatPlan{fn: ff.Func, argRes: make([]int, 0, cf.nparams), resRes: -1}
	handle := func(t *cabi.Type) int {
		if t != nil && (t.Kind == cabi.Own || t.Kind == cabi.Borrow) {
			return t.Resource
		}
		return -1
	}
	for _, t := range cf.ft.params {
		start := len(p.argRes)
		for range cabi.Flatten(t) {
			p.argRes = append(p.argRes, -1)
		}
		switch {
		case t.Kind == cabi.Own || t.Kind == cabi.Borrow:
			p.argRes[start] = t.Resource
		case t.Kind == cabi.Option && len(p.argRes) > start+1:
			p.argRes[start+1] = handle(t.Elem)
		case t.Kind == cabi.Result && len(p.argRes) > start+1:
			p.argRes[start+1] = handle(t.Ok)
		}
	}
	if len(cf.ft.results) == 1 {
		p.result = cf.ft.results[0]
		if size, payload, ok := cabi.CaseLayout(p.result); ok {
			p.caseSize, p.payload, p.cases = size, payload, len(cabi.Despecialize(p.result).Cases)
		}
		switch r := p.result; {
		case r.Kind == cabi.Own:
			p.resRes = r.Resource
		case r.Kind == cabi.Result && r.Ok != nil && r.Ok.Kind == cabi.Own:
			p.resRes = r.Ok.Resource
		}
	}
	return p
}

// Signature spells a function type as FlatFunc.Type takes it, with its
// resources named by names (their "<interface>@<version>#<resource>"
// ids, the interface's version as Interface gives it):
// "func(borrow<wasi:http/types@0.2#incoming-request>) -> option<string>".
func Signature(params, results []*cabi.Type, names []string) string {
	var b strings.Builder
	b.WriteString("func(")
	for i, t := range params {
		if i > 0 {
			b.WriteString(", ")
		}
		writeType(&b, t, names)
	}
	b.WriteString(")")
	if len(results) == 1 {
		b.WriteString(" -> ")
		writeType(&b, results[0], names)
	}
	return b.String()
}

// label is a field's, case's or flag's name as Signature spells it: as it
// is when it is a plain kebab-case label, quoted otherwise, so that no
// name can spell out a different type's text.
func label(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") == "" {
		return s
	}
	return strconv.Quote(s)
}

func writeType(b *strings.Builder, t *cabi.Type, names []string) {
	list := func(open string, n int, each func(int)) {
		b.WriteString(open)
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			each(i)
		}
		b.WriteString(map[string]string{"<": ">", "{": "}"}[open[len(open)-1:]])
	}
	switch t.Kind {
	case cabi.List:
		b.WriteString("list<")
		writeType(b, t.Elem, names)
		if t.Len > 0 {
			fmt.Fprintf(b, ", %d", t.Len)
		}
		b.WriteString(">")
	case cabi.Option:
		b.WriteString("option<")
		writeType(b, t.Elem, names)
		b.WriteString(">")
	case cabi.Result:
		b.WriteString("result<")
		if t.Ok == nil {
			b.WriteString("_")
		} else {
			writeType(b, t.Ok, names)
		}
		if t.Err != nil {
			b.WriteString(", ")
			writeType(b, t.Err, names)
		}
		b.WriteString(">")
	case cabi.Tuple:
		list("tuple<", len(t.Fields), func(i int) { writeType(b, t.Fields[i].Type, names) })
	case cabi.Record:
		list("record{", len(t.Fields), func(i int) {
			b.WriteString(label(t.Fields[i].Name) + ": ")
			writeType(b, t.Fields[i].Type, names)
		})
	case cabi.Variant:
		list("variant{", len(t.Cases), func(i int) {
			b.WriteString(label(t.Cases[i].Name))
			if t.Cases[i].Type != nil {
				b.WriteString("(")
				writeType(b, t.Cases[i].Type, names)
				b.WriteString(")")
			}
		})
	case cabi.Enum, cabi.Flags:
		list(t.Kind.String()+"{", len(t.Labels), func(i int) { b.WriteString(label(t.Labels[i])) })
	case cabi.Own, cabi.Borrow:
		name := "?"
		if t.Resource >= 0 && t.Resource < len(names) {
			iface, res, _ := strings.Cut(names[t.Resource], "#")
			if name = Interface(iface) + "#" + res; strings.ContainsAny(name, " ,<>(){}\"") {
				name = strconv.Quote(name)
			}
		}
		b.WriteString(t.Kind.String() + "<" + name + ">")
	default:
		b.WriteString(t.Kind.String())
	}
}

// FlatImports are the imports of l that FlatFuncs serve, by key, sorted.
func (l *Linked) FlatImports() []string {
	var keys []string
	for _, cf := range l.canons {
		if cf != nil && cf.plan != nil {
			keys = append(keys, cf.name)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// Arg is parameter k (not core argument: a parameter may take several),
// lifted as a HostFunc's arguments are: for a FlatFunc's rare cases.
func (c *FlatCall) Arg(k int) (any, error) {
	params := c.cf.ft.params
	if k < 0 || k >= len(params) {
		return nil, fmt.Errorf("no parameter %d", k)
	}
	at := 0
	for _, t := range params[:k] {
		at += len(cabi.Flatten(t))
	}
	return c.cx.LiftFlat(c.stack[at:at+len(cabi.Flatten(params[k]))], params[k])
}

// U32 is core argument i as a u32 (or any 32-bit value).
func (c *FlatCall) U32(i int) uint32 { return uint32(c.stack[i]) }

// U64 is core argument i as a u64.
func (c *FlatCall) U64(i int) uint64 { return c.stack[i] }

// Borrow is the host object behind the handle that is core argument i,
// which stays the guest's (a borrow, or an own lent for the call).
func (c *FlatCall) Borrow(i int) (any, error) {
	rep, err := c.Inst.handles.LiftBorrow(c.U32(i), c.cf.plan.argRes[i])
	if err != nil {
		return nil, fmt.Errorf("argument %d: %w", i, err)
	}
	return c.Inst.objects.get(rep), nil
}

// Own takes the handle that is core argument i from the guest, and
// returns the host object behind it and its representation.
func (c *FlatCall) Own(i int) (any, uint32, error) {
	rep, err := c.Inst.handles.LiftOwn(c.U32(i), c.cf.plan.argRes[i])
	if err != nil {
		return nil, 0, fmt.Errorf("argument %d: %w", i, err)
	}
	return c.Inst.objects.get(rep), rep, nil
}

// String is the string whose pointer and length are core arguments i and
// i+1.
func (c *FlatCall) String(i int) (string, error) {
	return c.cx.LiftString(c.U32(i), c.U32(i+1))
}

// Bytes is the list<u8> whose pointer and length are core arguments i and
// i+1: a view of the guest's memory, valid until the call returns.
func (c *FlatCall) Bytes(i int) ([]byte, error) {
	return c.cx.ViewBytes(c.U32(i), c.U32(i+1))
}

// Context is the call's canonical ABI context: its memory, realloc and
// handle table.
func (c *FlatCall) Context() *cabi.Context { return c.cx }

// Out is where results that flatten to more than one core value go, in
// the guest's memory; ok is false when they fit the stack (SetFlat).
func (c *FlatCall) Out() (ptr uint32, ok bool) { return c.out, c.cf.outParam }

// SetFlat sets the result that flattens to core value v.
func (c *FlatCall) SetFlat(v uint64) { c.stack[0] = v }

// SetOwn makes obj a host object, and the result a new own handle to it:
// the result itself (own<T>), or its ok case (result<own<T>, E>).
func (c *FlatCall) SetOwn(obj any) error {
	p := c.cf.plan
	if p.resRes < 0 {
		return errors.New("its result holds no own handle")
	}
	h, err := c.Inst.handles.LowerOwn(c.Inst.NewObject(obj), p.resRes)
	if err != nil {
		return err
	}
	if p.result.Kind == cabi.Own {
		c.stack[0] = uint64(h)
		return nil
	}
	return c.setCase(0, func(payload uint32) error { return c.cx.StoreU32(payload, h) })
}

// SetCase sets the result to case n of its variant, enum, option or
// result type, with the payload store writes at the address given (nil:
// none).
func (c *FlatCall) SetCase(n uint32, store func(payload uint32) error) error {
	return c.setCase(n, store)
}

func (c *FlatCall) setCase(n uint32, store func(payload uint32) error) error {
	if !c.cf.outParam {
		if store != nil {
			return errors.New("a payload in a flat result")
		}
		c.stack[0] = uint64(n)
		return nil
	}
	p := c.cf.plan
	if int(n) >= p.cases {
		return fmt.Errorf("case %d of a result with %d", n, p.cases)
	}
	if err := c.cx.StoreUint(c.out, p.caseSize, uint64(n)); err != nil {
		return err
	}
	if store == nil {
		return nil
	}
	return store(c.out + p.payload)
}

// Set sets the result to v, a cabi value, lowered as a HostFunc's is.
func (c *FlatCall) Set(v any) error {
	one := [1]any{v}
	_, err := c.cx.LowerFlatValues(c.stack[:0], one[:], cabi.MaxFlatResults, c.cf.ft.resultTuple, c.out, c.cf.outParam)
	return err
}

// flat calls cf's FlatFunc.
func (inst *Instance) flat(ctx context.Context, cf *canonFunc, stack []uint64) error {
	cx, err := inst.cabiContext(cf.index, cf.opts)
	if err != nil {
		return fmt.Errorf("%s: %w", cf.name, err)
	}
	// One FlatCall per instance: a flat function calls no guest code
	// that may call the host (realloc may not leave the instance).
	c := &inst.flatCall
	*c = FlatCall{Inst: inst, cf: cf, cx: cx, stack: stack}
	cx.StartCall()
	if cf.outParam {
		// As lowering does, before anything is written or allocated.
		c.out = uint32(stack[cf.nparams])
		if err := cx.CheckStore(cf.ft.resultTuple, c.out); err != nil {
			return fmt.Errorf("%s: results: %w", cf.name, err)
		}
	}
	err = cf.plan.fn(ctx, c)
	c.stack = nil
	if err != nil {
		return fmt.Errorf("%s: %w", cf.name, err)
	}
	return nil
}

package cabi

import (
	"strconv"
	"strings"
)

// String writes t in WIT's syntax, structurally: a record, variant, enum
// or flags type is spelled out with its fields, cases or labels (WIT names
// them; their names are not part of the type), a resource as
// own<resource N> or borrow<resource N>. Two types with the same text
// have the same values and the same canonical ABI.
func (t *Type) String() string {
	var b strings.Builder
	t.write(&b)
	return b.String()
}

func (t *Type) write(b *strings.Builder) {
	if t == nil {
		b.WriteString("_")
		return
	}
	switch t.Kind {
	case List:
		b.WriteString("list<")
		t.Elem.write(b)
		if t.Len > 0 {
			b.WriteString(", ")
			b.WriteString(strconv.FormatUint(uint64(t.Len), 10))
		}
		b.WriteString(">")
	case Option:
		b.WriteString("option<")
		t.Elem.write(b)
		b.WriteString(">")
	case Result:
		b.WriteString("result<")
		t.Ok.write(b)
		b.WriteString(", ")
		t.Err.write(b)
		b.WriteString(">")
	case Tuple:
		list(b, "tuple<", ">", len(t.Fields), func(i int) { t.Fields[i].Type.write(b) })
	case Record:
		list(b, "record { ", " }", len(t.Fields), func(i int) {
			b.WriteString(label(t.Fields[i].Name) + ": ")
			t.Fields[i].Type.write(b)
		})
	case Variant:
		list(b, "variant { ", " }", len(t.Cases), func(i int) {
			b.WriteString(label(t.Cases[i].Name))
			if c := t.Cases[i]; c.Type != nil {
				b.WriteString("(")
				c.Type.write(b)
				b.WriteString(")")
			}
		})
	case Enum, Flags:
		list(b, t.Kind.String()+" { ", " }", len(t.Labels), func(i int) { b.WriteString(label(t.Labels[i])) })
	case Own, Borrow:
		b.WriteString(t.Kind.String())
		b.WriteString("<resource ")
		b.WriteString(strconv.Itoa(t.Resource))
		b.WriteString(">")
	default:
		b.WriteString(t.Kind.String())
	}
}

// list writes open, n items written by item and separated by commas,
// then close.
func list(b *strings.Builder, open, close string, n int, item func(i int)) {
	b.WriteString(open)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		item(i)
	}
	b.WriteString(close)
}

// label is a field's, case's or label's name as String writes it: bare
// when it is a WIT identifier (words of letters and digits joined by '-'),
// quoted otherwise, so that no name can pass for punctuation.
func label(name string) string {
	plain := name != ""
	for i := 0; i < len(name) && plain; i++ {
		c := name[i]
		plain = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
	}
	if plain {
		return name
	}
	return strconv.Quote(name)
}

// HasResource reports whether a value of t holds a resource handle.
func (t *Type) HasResource() bool {
	if t == nil {
		return false
	}
	switch t.Kind {
	case Own, Borrow:
		return true
	case List, Option:
		return t.Elem.HasResource()
	case Result:
		return t.Ok.HasResource() || t.Err.HasResource()
	}
	for _, f := range t.Fields {
		if f.Type.HasResource() {
			return true
		}
	}
	for _, c := range t.Cases {
		if c.Type.HasResource() {
			return true
		}
	}
	return false
}

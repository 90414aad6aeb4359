package component

func (d *decoder) coreTypeDef(c *Component, r *reader) error {
	t, err := d.coreType(r)
	if err != nil {
		return err
	}
	c.CoreTypes = append(c.CoreTypes, t)
	c.add(Sort{Core: true, Kind: CoreType}, FromDefinition, len(c.CoreTypes)-1)
	return nil
}

// coreType reads a core:deftype: a function type, or a module type.
func (d *decoder) coreType(r *reader) (*CoreTypeDef, error) {
	at := r.pos
	tag, err := r.byte()
	if err != nil {
		return nil, err
	}
	switch tag {
	case 0x60:
		ft, err := d.coreFuncType(r)
		return &CoreTypeDef{Func: ft}, err
	case 0x50:
		n, err := r.count()
		if err != nil {
			return nil, err
		}
		for range n {
			if err := d.moduleDecl(r); err != nil {
				return nil, err
			}
		}
		return &CoreTypeDef{Module: r.b[at:r.pos]}, nil
	}
	return nil, r.errorf("core type 0x%02x is not supported (function 0x60 and module 0x50 types are)", tag)
}

func (d *decoder) coreFuncType(r *reader) (*CoreFuncType, error) {
	params, err := d.coreValTypes(r)
	if err != nil {
		return nil, err
	}
	results, err := d.coreValTypes(r)
	return &CoreFuncType{Params: params, Results: results}, err
}

func (d *decoder) coreValTypes(r *reader) ([]byte, error) {
	n, err := r.count()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, min(n, 64))
	for range n {
		out = append(out, 0)
		i := len(out) - 1
		if out[i], err = r.byte(); err != nil {
			return nil, err
		}
		switch out[i] {
		case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f: // i32 i64 f32 f64 v128 funcref externref
		default:
			return nil, &FormatError{Offset: r.offset() - 1, Msg: "unsupported core value type 0x" + hex2(out[i])}
		}
	}
	return out, nil
}

// moduleDecl reads (and checks the form of) one declarator of a core
// module type.
func (d *decoder) moduleDecl(r *reader) error {
	tag, err := r.byte()
	if err != nil {
		return err
	}
	switch tag {
	case 0x00: // import: module, name, externtype
		if _, err := r.name(); err != nil {
			return err
		}
		if _, err := r.name(); err != nil {
			return err
		}
		return d.coreExternType(r)
	case 0x01:
		if r.pos < len(r.b) && r.b[r.pos] == 0x50 {
			return &FormatError{Offset: r.offset(), Msg: "a module type inside a module type"}
		}
		_, err := d.coreType(r)
		return err
	case 0x02: // outer alias of a type
		for _, want := range []byte{0x10, 0x01} {
			if b, err := r.byte(); err != nil {
				return err
			} else if b != want {
				return r.errorf("core alias form 0x%02x, want an outer type alias", b)
			}
		}
		if _, err := r.u32(); err != nil {
			return err
		}
		_, err := r.u32()
		return err
	case 0x03: // export: name, externtype
		if _, err := r.name(); err != nil {
			return err
		}
		return d.coreExternType(r)
	}
	return r.errorf("unknown module type declarator 0x%02x", tag)
}

// coreExternType reads a core:externtype, as core imports write it.
func (d *decoder) coreExternType(r *reader) error {
	tag, err := r.byte()
	if err != nil {
		return err
	}
	switch tag {
	case 0x00: // func: type index
		_, err = r.u32()
	case 0x01: // table: reftype, limits
		if _, err = r.byte(); err == nil {
			err = d.limits(r)
		}
	case 0x02: // memory: limits
		err = d.limits(r)
	case 0x03: // global: valtype, mutability
		if _, err = r.byte(); err == nil {
			_, err = r.byte()
		}
	case 0x04: // tag: 0x00, type index
		if _, err = r.byte(); err == nil {
			_, err = r.u32()
		}
	default:
		err = r.errorf("unknown core extern type 0x%02x", tag)
	}
	return err
}

func (d *decoder) limits(r *reader) error {
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if flags > 0x07 {
		return r.errorf("unknown limits flags 0x%02x", flags)
	}
	if _, err := r.u32(); err != nil {
		return err
	}
	if flags&1 != 0 {
		_, err = r.u32()
	}
	return err
}

func (d *decoder) typeDef(c *Component, r *reader) error {
	t, err := d.defType(r)
	if err != nil {
		return err
	}
	c.Types = append(c.Types, t)
	c.add(Sort{Kind: SortType}, FromDefinition, len(c.Types)-1)
	return nil
}

// defType reads a deftype: a value, function, component, instance or
// resource type.
func (d *decoder) defType(r *reader) (*TypeDef, error) {
	tag, err := r.byte()
	if err != nil {
		return nil, err
	}
	switch tag {
	case 0x40, 0x43:
		ft, err := d.funcType(r, tag == 0x43)
		return &TypeDef{Func: ft}, err
	case 0x41, 0x42:
		if d.depth >= maxNesting {
			return nil, r.errorf("types nested more than %d deep", maxNesting)
		}
		d.depth++
		decls, err := d.decls(r, tag == 0x41)
		d.depth--
		if tag == 0x41 {
			return &TypeDef{Component: &ComponentType{Decls: decls}}, err
		}
		return &TypeDef{Instance: &InstanceType{Decls: decls}}, err
	case 0x3f:
		rep, err := r.byte()
		if err != nil {
			return nil, err
		}
		if rep != 0x7f {
			return nil, r.errorf("resource representation 0x%02x, want i32 (0x7f)", rep)
		}
		rt := &ResourceType{Rep: rep}
		has, err := r.byte()
		if err != nil {
			return nil, err
		}
		switch has {
		case 0x00:
		case 0x01:
			f, err := r.u32()
			if err != nil {
				return nil, err
			}
			rt.Dtor = &f
		default:
			return nil, r.errorf("resource destructor tag 0x%02x", has)
		}
		return &TypeDef{Resource: rt}, nil
	}
	r.pos--
	vt, err := d.defValType(r)
	return &TypeDef{Val: vt}, err
}

func (d *decoder) funcType(r *reader, async bool) (*FuncType, error) {
	ft := &FuncType{Async: async}
	var err error
	if ft.Params, err = d.labelled(r); err != nil {
		return nil, err
	}
	tag, err := r.byte()
	if err != nil {
		return nil, err
	}
	switch tag {
	case 0x00:
		t, err := d.valType(r)
		if err != nil {
			return nil, err
		}
		ft.Result = &t
	case 0x01:
		if b, err := r.byte(); err != nil {
			return nil, err
		} else if b != 0x00 {
			return nil, r.errorf("named results (0x01 0x%02x) are not supported", b)
		}
	default:
		return nil, r.errorf("unknown result list form 0x%02x", tag)
	}
	return ft, nil
}

func (d *decoder) labelled(r *reader) ([]Field, error) {
	n, err := r.count()
	if err != nil {
		return nil, err
	}
	out := make([]Field, 0, min(n, 64))
	seen := map[string]bool{}
	for range n {
		out = append(out, Field{})
		i := len(out) - 1
		if out[i].Name, err = r.name(); err != nil {
			return nil, err
		}
		if seen[out[i].Name] {
			return nil, r.errorf("label %q given twice", out[i].Name)
		}
		seen[out[i].Name] = true
		if out[i].Type, err = d.valType(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (d *decoder) decls(r *reader, component bool) ([]Decl, error) {
	n, err := r.count()
	if err != nil {
		return nil, err
	}
	out := make([]Decl, 0, min(n, 64))
	for range n {
		tag, err := r.byte()
		if err != nil {
			return nil, err
		}
		dc := Decl{Kind: tag}
		switch {
		case tag == DeclCoreType:
			dc.CoreType, err = d.coreType(r)
		case tag == DeclType:
			dc.Type, err = d.defType(r)
			if err == nil && dc.Type.Resource != nil {
				err = r.errorf("a resource type defined inside an instance or component type")
			}
		case tag == DeclAlias:
			var a Alias
			a, err = d.alias(r)
			dc.Alias = &a
		case tag == DeclExport, tag == DeclImport && component:
			dc.Name, err = d.externName(r)
			if err == nil {
				var et ExternType
				et, err = d.externType(r)
				dc.Extern = &et
			}
		default:
			err = r.errorf("unknown declarator 0x%02x", tag)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, dc)
	}
	return out, nil
}

func (d *decoder) valType(r *reader) (ValType, error) {
	at := r.offset()
	b, err := r.byte()
	if err != nil {
		return ValType{}, err
	}
	// An s33: one byte of 0x40 to 0x7f is negative, a primitive; anything
	// else is a non-negative type index, of one byte or more.
	if b >= 0x40 && b < 0x80 {
		if isPrim(b) {
			return ValType{Prim: b}, nil
		}
		return ValType{}, &FormatError{Offset: at, Msg: "value type 0x" + hex2(b) + " is neither a primitive nor a type index"}
	}
	r.pos--
	i, err := r.u32()
	return ValType{Idx: i}, err
}

func isPrim(b byte) bool { return b >= String && b <= Bool || b == ErrorContext }

func (d *decoder) defValType(r *reader) (*DefValType, error) {
	at := r.offset()
	tag, err := r.byte()
	if err != nil {
		return nil, err
	}
	if isPrim(tag) {
		return &DefValType{Kind: KindPrim, Prim: tag}, nil
	}
	t := &DefValType{Kind: tag}
	switch tag {
	case KindRecord:
		if t.Fields, err = d.labelled(r); err == nil && len(t.Fields) == 0 {
			err = &FormatError{Offset: at, Msg: "a record without fields"}
		}
	case KindVariant:
		var n int
		if n, err = r.count(); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, &FormatError{Offset: at, Msg: "a variant without cases"}
		}
		for range n {
			var cs Case
			if cs.Name, err = r.name(); err != nil {
				return nil, err
			}
			if cs.Type, err = d.optValType(r); err != nil {
				return nil, err
			}
			if b, err := r.byte(); err != nil {
				return nil, err
			} else if b != 0x00 {
				return nil, r.errorf("variant case %q: refinement 0x%02x is not supported", cs.Name, b)
			}
			t.Cases = append(t.Cases, cs)
		}
	case KindList, KindOption:
		t.Elem, err = d.valType(r)
	case KindFixed:
		err = &FormatError{Offset: at, Msg: "fixed-length lists (a gated feature of the component model) are not supported"}
	case KindTuple:
		var n int
		if n, err = r.count(); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, &FormatError{Offset: at, Msg: "an empty tuple"}
		}
		for range n {
			vt, err := d.valType(r)
			if err != nil {
				return nil, err
			}
			t.Types = append(t.Types, vt)
		}
	case KindFlags, KindEnum:
		var n int
		if n, err = r.count(); err != nil {
			return nil, err
		}
		if n == 0 || tag == KindFlags && n > 32 {
			return nil, &FormatError{Offset: at, Msg: "flags need 1 to 32 labels, enums at least 1"}
		}
		for range n {
			l, err := r.name()
			if err != nil {
				return nil, err
			}
			t.Labels = append(t.Labels, l)
		}
	case KindResult:
		if t.Ok, err = d.optValType(r); err == nil {
			t.Err, err = d.optValType(r)
		}
	case KindOwn, KindBorrow:
		t.Resource, err = r.u32()
	case KindStream, KindFuture:
		t.Ok, err = d.optValType(r)
	case KindMap:
		if t.Key, err = d.valType(r); err == nil {
			t.Elem, err = d.valType(r)
		}
	default:
		return nil, &FormatError{Offset: at, Msg: "unknown value type 0x" + hex2(tag)}
	}
	return t, err
}

func (d *decoder) optValType(r *reader) (*ValType, error) {
	b, err := r.byte()
	if err != nil {
		return nil, err
	}
	switch b {
	case 0x00:
		return nil, nil
	case 0x01:
		t, err := d.valType(r)
		return &t, err
	}
	return nil, r.errorf("optional value type tag 0x%02x", b)
}

package component

// Sort is what an index refers to: a component-level sort, or a core sort
// (Core true).
type Sort struct {
	Core bool
	Kind byte // for Core: a core sort (CoreFunc…); else a component sort (Func…)
}

// Component sorts (Binary.md, sort).
const (
	SortCoreOuter byte = 0x00 // followed by a core sort
	SortFunc      byte = 0x01
	SortValue     byte = 0x02
	SortType      byte = 0x03
	SortComponent byte = 0x04
	SortInstance  byte = 0x05
)

// Core sorts (Binary.md, core:sort).
const (
	CoreFunc     byte = 0x00
	CoreTable    byte = 0x01
	CoreMemory   byte = 0x02
	CoreGlobal   byte = 0x03
	CoreTag      byte = 0x04
	CoreType     byte = 0x10
	CoreModule   byte = 0x11
	CoreInstance byte = 0x12
)

func (s Sort) String() string {
	if s.Core {
		switch s.Kind {
		case CoreFunc:
			return "core func"
		case CoreTable:
			return "core table"
		case CoreMemory:
			return "core memory"
		case CoreGlobal:
			return "core global"
		case CoreTag:
			return "core tag"
		case CoreType:
			return "core type"
		case CoreModule:
			return "core module"
		case CoreInstance:
			return "core instance"
		}
		return "core sort 0x" + hex2(s.Kind)
	}
	switch s.Kind {
	case SortFunc:
		return "func"
	case SortValue:
		return "value"
	case SortType:
		return "type"
	case SortComponent:
		return "component"
	case SortInstance:
		return "instance"
	}
	return "sort 0x" + hex2(s.Kind)
}

func hex2(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&15]})
}

// Primitive value types (Binary.md, primvaltype).
const (
	Bool   byte = 0x7f
	S8     byte = 0x7e
	U8     byte = 0x7d
	S16    byte = 0x7c
	U16    byte = 0x7b
	S32    byte = 0x7a
	U32    byte = 0x79
	S64    byte = 0x78
	U64    byte = 0x77
	F32    byte = 0x76
	F64    byte = 0x75
	Char   byte = 0x74
	String byte = 0x73
	// ErrorContext is WASI 0.3's error-context.
	ErrorContext byte = 0x64
)

// Defined value type kinds (Binary.md, defvaltype).
const (
	KindPrim    byte = 0 // Prim is set
	KindRecord  byte = 0x72
	KindVariant byte = 0x71
	KindList    byte = 0x70
	KindFixed   byte = 0x67 // fixed-length list
	KindTuple   byte = 0x6f
	KindFlags   byte = 0x6e
	KindEnum    byte = 0x6d
	KindOption  byte = 0x6b
	KindResult  byte = 0x6a
	KindOwn     byte = 0x69
	KindBorrow  byte = 0x68
	KindStream  byte = 0x66
	KindFuture  byte = 0x65
	KindMap     byte = 0x63
)

// ValType is a value type as written: a primitive, or a type index into
// the enclosing scope's type index space.
type ValType struct {
	Prim byte   // a primitive type, or 0 when Idx is meant
	Idx  uint32 // type index, when Prim is 0
}

// Field is a named record field or function parameter.
type Field struct {
	Name string
	Type ValType
}

// Case is a variant case; Type is nil when the case has no payload.
type Case struct {
	Name string
	Type *ValType
}

// DefValType is a defined value type (record, variant, list, …).
type DefValType struct {
	Kind     byte
	Prim     byte      // KindPrim
	Fields   []Field   // KindRecord
	Cases    []Case    // KindVariant
	Elem     ValType   // KindList, KindFixed, KindOption, KindMap (the value)
	Key      ValType   // KindMap
	Len      uint32    // KindFixed
	Types    []ValType // KindTuple
	Labels   []string  // KindFlags, KindEnum
	Ok, Err  *ValType  // KindResult; KindStream and KindFuture use Ok for their element
	Resource uint32    // KindOwn, KindBorrow: the resource's type index
}

// FuncType is a component function type.
type FuncType struct {
	Params []Field
	Result *ValType // nil: no result
	Async  bool
}

// ResourceType is a resource defined in this component.
type ResourceType struct {
	Rep  byte    // the core representation type (0x7f: i32)
	Dtor *uint32 // core function index of the destructor, if any
}

// Decl is one declarator of an instance or component type.
type Decl struct {
	Kind     byte // DeclCoreType, DeclType, DeclAlias, DeclImport, DeclExport
	CoreType *CoreTypeDef
	Type     *TypeDef
	Alias    *Alias
	Name     string // import and export declarators
	Extern   *ExternType
}

// Declarator kinds (Binary.md, instancedecl and componentdecl).
const (
	DeclCoreType byte = 0x00
	DeclType     byte = 0x01
	DeclAlias    byte = 0x02
	DeclImport   byte = 0x03
	DeclExport   byte = 0x04
)

// InstanceType and ComponentType list their declarators.
type (
	InstanceType  struct{ Decls []Decl }
	ComponentType struct{ Decls []Decl }
)

// TypeDef is one type definition: exactly one field is set.
type TypeDef struct {
	Val       *DefValType
	Func      *FuncType
	Component *ComponentType
	Instance  *InstanceType
	Resource  *ResourceType
}

// CoreTypeDef is a core type definition: a core function type, or a
// module type (whose declarators are kept as bytes: nothing here needs
// them but their presence).
type CoreTypeDef struct {
	Func   *CoreFuncType
	Module []byte
}

// CoreFuncType is a core function type.
type CoreFuncType struct{ Params, Results []byte }

// ExternType is the type of an import or export (Binary.md, externtype).
type ExternType struct {
	Sort Sort
	// Idx is the type index (core type for a core module), for func,
	// component and instance; for a type bound, the type it equals.
	Idx uint32
	// SubResource is set for (type (sub resource)): a fresh abstract
	// resource type.
	SubResource bool
	// Value is a value bound's type (🪙 values).
	Value *ValType
}

// Alias is an alias definition.
type Alias struct {
	Sort     Sort
	Kind     byte // AliasExport, AliasCoreExport, AliasOuter
	Instance uint32
	Name     string
	Count    uint32 // outer: how many scopes out
	Idx      uint32 // outer: the index there
}

// Alias kinds.
const (
	AliasExport     byte = 0x00
	AliasCoreExport byte = 0x01
	AliasOuter      byte = 0x02
)

package cabi

import (
	"fmt"
	"testing"
)

func TestCaseLayout(t *testing.T) {
	many := make([]string, 300)
	for i := range many {
		many[i] = fmt.Sprint("l", i)
	}
	tests := []struct {
		name          string
		t             *Type
		size, payload uint32
		ok            bool
	}{
		{"option<string>", OptionOf(TString), 1, 4, true},
		{"result<u64, u8>", ResultOf(TU64, TU8), 1, 8, true},
		{"result<_, _>", ResultOf(nil, nil), 1, 1, true},
		{"enum of 300", EnumOf(many...), 2, 2, true},
		{"variant of u8", VariantOf(Case{Name: "a", Type: TU8}), 1, 1, true},
		{"record", RecordOf(Field{Name: "a", Type: TU32}), 0, 0, false},
		{"u32", TU32, 0, 0, false},
	}
	for _, tt := range tests {
		size, payload, ok := CaseLayout(tt.t)
		if size != tt.size || payload != tt.payload || ok != tt.ok {
			t.Errorf("%s: CaseLayout = %d, %d, %v; want %d, %d, %v", tt.name, size, payload, ok, tt.size, tt.payload, tt.ok)
		}
	}
}

func TestDirectBounds(t *testing.T) {
	cx := &Context{Memory: newMemory(64)}
	if _, err := cx.ViewBytes(60, 8); err == nil {
		t.Error("ViewBytes past the memory's end: no error")
	}
	if _, err := cx.ViewBytes(0, MaxListByteLength+1); err == nil {
		t.Error("ViewBytes over the list limit: no error")
	}
	if err := cx.StoreUint(62, 4, 1); err == nil {
		t.Error("StoreUint past the memory's end: no error")
	}
	if _, _, err := cx.LowerBytes([]byte("x")); err == nil {
		t.Error("LowerBytes without a realloc: no error")
	}
	b, err := cx.ViewBytes(8, 4)
	if err != nil || len(b) != 4 {
		t.Fatalf("ViewBytes(8, 4) = %d bytes, %v", len(b), err)
	}
	if err := cx.StoreU32(8, 0x01020304); err != nil || b[0] != 4 || b[3] != 1 {
		t.Errorf("StoreU32 wrote %v through the view (%v), want it little-endian", b, err)
	}
}

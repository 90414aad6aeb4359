package wasmbin

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"
)

func TestRenameImports(t *testing.T) {
	b, err := os.ReadFile("../../examples/hello/c/hello.wasm")
	if err != nil {
		t.Fatal(err)
	}
	out, err := RenameImports(b, func(mod, name string, kind byte) (string, string, error) {
		return "renamed:" + mod, name + "!", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := Parse(b)
	after, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Imports) != len(before.Imports) || len(before.Imports) == 0 {
		t.Fatalf("%d imports after, %d before", len(after.Imports), len(before.Imports))
	}
	for i, im := range after.Imports {
		if im.Module != "renamed:"+before.Imports[i].Module || im.Name != before.Imports[i].Name+"!" || im.Kind != before.Imports[i].Kind {
			t.Errorf("import %d: %+v, from %+v", i, im, before.Imports[i])
		}
	}
	// Everything but the import section is as it was, and wazero takes it.
	if !bytes.Contains(out, b[len(b)-100:]) {
		t.Error("the module's tail changed")
	}
	rt := wazero.NewRuntime(context.Background())
	defer rt.Close(context.Background())
	cm, err := rt.CompileModule(context.Background(), out)
	if err != nil {
		t.Fatalf("wazero refuses the renamed module: %v", err)
	}
	if mod, name, ok := cm.ImportedFunctions()[0].Import(); !ok || mod != "renamed:wasi_snapshot_preview1" || name == "" || name[len(name)-1] != '!' {
		t.Errorf("wazero sees the first import as %q.%q", mod, name)
	}
	if _, err := RenameImports([]byte("nope"), nil); err == nil {
		t.Error("RenameImports of no module succeeded")
	}
}

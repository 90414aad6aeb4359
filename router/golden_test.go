package router

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestGolden checks, for every testdata/*.yaml, Format and the parsed Config
// (with defaults filled in) against its .golden file.
func TestGolden(t *testing.T) {
	t.Setenv("WASMESH_HOME", "")
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			cfg, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			tab, err := NewTable(cfg, fakeDigest)
			if err != nil {
				t.Fatal(err)
			}
			var got bytes.Buffer
			tab.Format(&got)
			got.WriteString("\n")
			dumpConfig(t, &got, cfg)
			compareGolden(t, strings.TrimSuffix(file, ".yaml")+".golden", got.Bytes())
		})
	}
}

// dumpConfig writes cfg as YAML (durations as text), without Raw and with
// Dir shown as "<dir>".
func dumpConfig(t *testing.T, w *bytes.Buffer, cfg *Config) {
	c := *cfg
	c.Raw = nil
	c.Store = strings.Replace(c.Store, c.Dir, "<dir>", 1)
	c.Dir = "<dir>"
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&c); err != nil {
		t.Fatal(err)
	}
	enc.Close()
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
	}
}

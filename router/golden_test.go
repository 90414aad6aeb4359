package router

import (
	"bytes"
	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/testutil"
	"path/filepath"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// TestGolden checks, for every testdata/*.yaml, Format and the parsed config.Config
// (with defaults filled in) against its .golden file.
func TestGolden(t *testing.T) {
	t.Setenv("WASMESH_HOME", "")
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			cfg, err := config.Load(file)
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
			dumpConfig(t, &got, tab.Config())
			testutil.CompareGolden(t, strings.TrimSuffix(file, ".yaml")+".golden", got.Bytes())
		})
	}
}

// dumpConfig writes cfg as YAML (durations as text), without Raw and with
// Dir shown as "<dir>".
func dumpConfig(t *testing.T, w *bytes.Buffer, cfg *config.Config) {
	c := *cfg
	c.Raw = nil
	c.Store = strings.Replace(c.Store, c.Dir, "<dir>", 1)
	c.AdminAuth.TokenFile = strings.Replace(c.AdminAuth.TokenFile, c.Dir, "<dir>", 1)
	c.Dir = "<dir>"
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&c); err != nil {
		t.Fatal(err)
	}
	enc.Close()
}

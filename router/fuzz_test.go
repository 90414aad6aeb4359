package router

import (
	"bytes"
	"github.com/wasmesh/wasmesh/config"
	"net/http/httptest"
	"os"
	"testing"
)

// FuzzParse checks that no input makes Parse, NewTable, config.Match, Select,
// Format or SetVersions panic, and that SetVersions with a service's own
// versions gives a config that parses.
func FuzzParse(f *testing.F) {
	for _, file := range []string{"testdata/basic.yaml", "testdata/precedence.yaml", "testdata/edit/input.yaml"} {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("fuzz.yaml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		tab, err := NewTable(cfg, fakeDigest)
		if err != nil {
			return
		}
		tab.Format(&bytes.Buffer{})
		r := httptest.NewRequest("GET", "http://api.example.com/hello/x", nil)
		r.Header.Set("X-User-Id", "u1")
		r.Header.Set(VersionHeader, "canary")
		if _, s, ok := tab.Match(r); ok {
			Select(s, r, nil)
		}
		for name, s := range cfg.Services {
			out, err := config.SetVersions(data, name, s.Versions)
			if err != nil {
				continue // e.g. a service shared through an anchor
			}
			if _, err := config.Parse("fuzz.yaml", out); err != nil {
				t.Fatalf("SetVersions(%q) output does not parse: %v\n%s", name, err, out)
			}
		}
	})
}

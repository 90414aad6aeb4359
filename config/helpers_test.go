package config

import "testing"

func mustParse(t testing.TB, src string) *Config {
	t.Helper()
	cfg, err := Parse("wasmesh.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

package router

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeDigest maps a module or path to a deterministic digest: the sha256 of
// the string, with a module's prefix kept so it still matches.
func fakeDigest(v *Version) (string, error) {
	sum := sha256.Sum256([]byte(v.Module + v.Path))
	h := hex.EncodeToString(sum[:])
	prefix := strings.TrimPrefix(v.Module, "sha256:")
	return "sha256:" + prefix + h[len(prefix):], nil
}

func mustParse(t testing.TB, src string) *Config {
	t.Helper()
	cfg, err := Parse("wasmesh.yaml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return cfg
}

func mustTable(t testing.TB, src string) *Table {
	t.Helper()
	tab, err := NewTable(mustParse(t, src), fakeDigest)
	if err != nil {
		t.Fatalf("NewTable: %v", err)
	}
	return tab
}

// request builds a request; headers are "Name: value" pairs.
func request(method, url string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, url, nil)
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		r.Header.Add(k, strings.TrimSpace(v))
	}
	return r
}

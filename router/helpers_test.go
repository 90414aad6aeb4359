package router

import (
	"crypto/sha256"
	"encoding/hex"
	"github.com/wasmesh/wasmesh/config"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// svc is a valid service block for building configs around.
const svc = `services:
  hello:
    versions:
      - path: hello.wasm
`

// fakeDigest maps a module or path to a deterministic digest: the sha256 of
// the string, with a module's prefix kept so it still matches.
func fakeDigest(v *config.Version) (string, error) {
	sum := sha256.Sum256([]byte(v.Module + v.Path))
	h := hex.EncodeToString(sum[:])
	prefix := strings.TrimPrefix(v.Module, "sha256:")
	return "sha256:" + prefix + h[len(prefix):], nil
}

func mustParse(t testing.TB, src string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("wasmesh.yaml", []byte(src))
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

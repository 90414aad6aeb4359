package router_test

import (
	"crypto/sha256"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/router"
)

func ExampleNewTable() {
	cfg, err := config.Parse("wasmesh.yaml", []byte(`
services:
  hello:
    versions:
      - path: stable.wasm
        name: stable
        weight: 100
      - path: canary.wasm
        name: canary
        weight: 0
  api:
    versions:
      - path: api.wasm
routes:
  - match: { path_prefix: /hello }
    service: hello
  - match: { host: api.example.com }
    service: api
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	// A gateway resolves each version to its module's digest by reading
	// and compiling it; this one makes digests up.
	resolve := func(v *config.Version) (string, error) {
		return fmt.Sprintf("sha256:%x", sha256.Sum256([]byte(v.Path))), nil
	}
	table, err := router.NewTable(cfg, resolve)
	if err != nil {
		fmt.Println(err)
		return
	}

	r := httptest.NewRequest("GET", "http://api.example.com/hello/x", nil)
	route, svc, _ := table.Match(r) // the host is more specific than the path
	fmt.Println(route.Name, svc.Name)

	r = httptest.NewRequest("GET", "http://example.com/hello/x", nil)
	_, svc, _ = table.Match(r)
	v, _ := router.Select(svc, r, nil)
	fmt.Println(svc.Name, v.Name, strings.HasPrefix(v.Digest, "sha256:"))

	r.Header.Set(router.VersionHeader, "canary") // a pin reaches weight 0
	v, _ = router.Select(svc, r, nil)
	fmt.Println(v.Name)
	// Output:
	// 1:api api
	// hello stable true
	// canary
}

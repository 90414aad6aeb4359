package config_test

import (
	"fmt"

	"github.com/wasmesh/wasmesh/config"
)

func ExampleParse() {
	cfg, err := config.Parse("wasmesh.yaml", []byte(`
services:
  hello:
    versions:
      - module: sha256:4f9c0a1b
        weight: 90
      - path: hello.wasm
        weight: 10
        name: canary
    limits: { memory: 32MiB }
routes:
  - match: { path_prefix: /hello }
    service: hello
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	hello := cfg.Services["hello"]
	fmt.Println(cfg.Listen, len(hello.Versions), hello.Limits.Memory>>20, hello.Limits.Timeout)
	fmt.Println(hello.Versions[1].Name, hello.Versions[1].Weight, cfg.Routes[0].Name)
	// Output:
	// :8080 2 32 10s
	// canary 10 0:hello
}

// Every problem is reported at once, each with its file, line, column and
// field.
func ExampleParse_errors() {
	_, err := config.Parse("wasmesh.yaml", []byte(`
services:
  hello:
    versions:
      - module: sha256:4f9c0a1b
        weight: 140
    limits: { memroy: 32MiB }
`))
	fmt.Println(err)
	// Output:
	// wasmesh.yaml:6:17: services.hello.versions[0].weight: must be between 0 and 100, got 140
	// wasmesh.yaml:7:15: services.hello.limits: unknown field "memroy" (did you mean "memory"?)
}

package host_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/wasi"
)

// The engine on its own: compile a module once, then run it for a CGI
// request, as the gateway does for each of its requests.
func ExampleEngine() {
	ctx := context.Background()
	engine, err := host.New(ctx, host.Options{}) // no compilation cache, no host functions
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close(ctx)

	wasm, err := os.ReadFile("../examples/hello/zig/hello.wasm")
	if err != nil {
		log.Fatal(err)
	}
	mod, err := engine.Compile(ctx, modules.DigestOf(wasm), wasm)
	if err != nil {
		log.Fatal(err)
	}

	var stdout bytes.Buffer
	res, err := engine.Run(ctx, mod, host.Call{
		Capabilities: wasi.Capabilities{Env: []string{"REQUEST_METHOD=POST", "PATH_INFO=/hi", "CONTENT_LENGTH=5"}},
		Stdin:        strings.NewReader("hello"),
		Stdout:       &stdout,
		MemoryLimit:  16 << 20,
		Timeout:      time.Second,
	})
	if err != nil {
		log.Fatal(err) // a trap, the deadline, a limit: see the Err* values
	}
	resp, err := wasi.ParseResponse(stdout.Bytes())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.ExitCode, resp.Status, resp.Header.Get("Content-Type"))
	fmt.Println(string(resp.Body))
	// Output:
	// 0 200 text/plain
	// hello from zig: POST /hi 5 bytes
}

package mesh_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	"github.com/wasmesh/wasmesh/mesh"
)

// A gateway embedded in a Go program: one service whose only version is a
// .wasm file, served here by httptest (Serve would run the gateway's own
// listeners instead).
func Example() {
	dir, _ := os.MkdirTemp("", "wasmesh-example")
	defer os.RemoveAll(dir)
	wasm, _ := filepath.Abs("../examples/hello/c/hello.wasm")
	config := fmt.Sprintf(`store: store
services:
  hello:
    versions:
      - path: %s
routes:
  - match: { path_prefix: /hello }
    service: hello
`, wasm)
	path := filepath.Join(dir, "wasmesh.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		log.Fatal(err)
	}

	ctx := context.Background()
	g, err := mesh.New(ctx, mesh.Options{ConfigPath: path, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close(ctx)
	if err := g.LoadFile(ctx); err != nil {
		log.Fatal(err) // names the file, line and field of each problem
	}
	srv := httptest.NewServer(g)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/hello/world")
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.Status)
	fmt.Print(string(body))
	fmt.Println("version header set:", resp.Header.Get("X-Wasmesh-Version") != "")
	// Output:
	// 200 OK
	// hello from c: GET /hello/world 0 bytes
	// version header set: true
}

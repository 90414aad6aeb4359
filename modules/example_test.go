package modules_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/wasmesh/wasmesh/modules"
)

// A store keeps modules under their sha256; a prefix of 8 or more hex
// digits finds one again.
func ExampleStore() {
	dir, _ := os.MkdirTemp("", "wasmesh-store")
	defer os.RemoveAll(dir)
	store, err := modules.Open(dir, modules.Options{}) // a gateway also passes its engine's Validate
	if err != nil {
		log.Fatal(err)
	}
	wasm, err := os.ReadFile("../examples/hello/c/hello.wasm")
	if err != nil {
		log.Fatal(err)
	}
	digest, err := store.Put(context.Background(), bytes.NewReader(wasm))
	if err != nil {
		log.Fatal(err)
	}
	found, err := store.Resolve(digest[:len("sha256:")+8])
	fmt.Println(found == digest, err, digest == modules.DigestOf(wasm))

	_, err = store.Resolve("sha256:00000000")
	fmt.Println(errors.Is(err, modules.ErrNotFound))
	// Output:
	// true <nil> true
	// true
}

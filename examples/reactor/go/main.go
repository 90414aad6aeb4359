// Build (from this directory):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-s -o hello.wasm .
//
// The Go hello as a reactor (docs/abi.md, "Reactors"): instead of a main
// that runs once per request, the module exports wasmesh_handle, which the
// host calls for each request. The host runs _initialize (the Go runtime's
// start-up and the package's init) once, snapshots the result, and starts
// every request from that snapshot, so no request pays for the runtime's
// start-up. The request is CGI as for a command; only the environment must
// be read per request (request.go), since the Go runtime reads it once, at
// initialisation.
package main

import (
	"io"
	"os"
	"strconv"
)

//go:wasmexport wasmesh_handle
func handle() {
	env := requestEnv()
	n, _ := io.Copy(io.Discard, os.Stdin)
	// strconv rather than fmt: fmt pulls in reflect and ~350 KB more.
	os.Stdout.WriteString("Content-Type: text/plain\n\nhello from go reactor: " +
		getenv(env, "REQUEST_METHOD") + " " + getenv(env, "PATH_INFO") + " " + strconv.FormatInt(n, 10) + " bytes\n")
}

// main is not called in a reactor (-buildmode=c-shared); Go requires it.
func main() {}

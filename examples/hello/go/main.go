// Build (from this directory):
//
//	GOOS=wasip1 GOARCH=wasm go build -trimpath -ldflags=-s -o hello.wasm .
//
// A wasmesh guest: the request arrives CGI-style (RFC 3875) as environment
// variables plus the body on stdin; the response is CGI headers, a blank
// line and the body on stdout. This directory is its own module
// (example.com/hello), so it is not part of github.com/wasmesh/wasmesh.
package main

import (
	"io"
	"os"
	"strconv"
)

func main() {
	method := os.Getenv("REQUEST_METHOD")
	path := os.Getenv("PATH_INFO")
	_ = os.Getenv("QUERY_STRING")

	n, _ := io.Copy(io.Discard, os.Stdin)

	// strconv rather than fmt: fmt pulls in reflect and ~350 KB more.
	os.Stdout.WriteString("Content-Type: text/plain\n\nhello from go: " +
		method + " " + path + " " + strconv.FormatInt(n, 10) + " bytes\n")
}

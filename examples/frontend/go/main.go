// Build (from this directory):
//
//	GOOS=wasip1 GOARCH=wasm go build -trimpath -ldflags=-s -o frontend.wasm .
//
// frontend: a wasmesh guest that calls another service through the host's
// http_call (see wasmesh/wasmesh.go) and shows what it got, with the trace
// context it runs under. Env USERS_URL (if unset or empty:
// "wasmesh://users") is the target; this request's PATH_INFO and
// QUERY_STRING are appended to it. This directory is its own module
// (example.com/frontend), so it is not part of github.com/wasmesh/wasmesh.
package main

import (
	"errors"
	"os"
	"strconv"
	"strings"

	"example.com/frontend/wasmesh"
)

func main() {
	target := os.Getenv("USERS_URL")
	if target == "" {
		target = "wasmesh://users"
	}
	url := target + os.Getenv("PATH_INFO")
	if q := os.Getenv("QUERY_STRING"); q != "" {
		url += "?" + q
	}

	wasmesh.Log(wasmesh.LevelInfo, "frontend go calling "+url)
	tp, _ := wasmesh.TraceContext()

	// strconv/strings rather than fmt: fmt pulls in reflect and ~350 KB more.
	var out strings.Builder
	r, err := wasmesh.HTTPCall("GET", url, []wasmesh.Header{{Name: "X-From", Value: "frontend-go"}}, nil)
	if err != nil {
		var c wasmesh.Code
		if !errors.As(err, &c) {
			c = wasmesh.ErrInternal
		}
		out.WriteString("Status: 502\nContent-Type: text/plain\n\nfrontend go: http_call failed: " +
			c.Name() + " (" + strconv.Itoa(int(c)) + ")\n")
	} else {
		version := r.Get("X-Wasmesh-Version")
		if version == "" {
			version = "-"
		}
		out.WriteString("Content-Type: text/plain\n\nfrontend go (traceparent " + tp + ") -> " +
			strconv.Itoa(r.Status) + " " + version + " ")
		out.Write(r.Body)
		if len(r.Body) == 0 || r.Body[len(r.Body)-1] != '\n' {
			out.WriteByte('\n')
		}
	}
	os.Stdout.WriteString(out.String())
}

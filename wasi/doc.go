// Package wasi holds what wasmesh hands a WASI (preview 1) guest, independent of
// the runtime that runs it: the capabilities a guest is granted (arguments,
// environment, preopened directories) and the CGI codec that turns an HTTP
// request into environment variables and stdin, and the guest's stdout back into
// an HTTP response.
//
// The package does not import wazero; package host translates [Capabilities]
// into a wazero module configuration.
//
// A CGI round trip:
//
//	env := wasi.RequestEnv(r, wasi.Meta{Route: "hello", Version: digest, PathInfo: r.URL.Path})
//	// ... run the guest with env and r.Body as stdin, collecting stdout ...
//	resp, err := wasi.ParseResponse(stdout)
//	if err != nil { /* 502: the guest wrote a malformed response */ }
package wasi

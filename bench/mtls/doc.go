// Package mtls holds benchmarks of the gateway's mutual TLS: the cost of a
// handshake, and requests per second to the Rust hello guest with mTLS and
// without, on kept-alive connections and on a new connection per request;
// and the gateway side by side with a native net/http server answering the
// same bytes over the same protocol, plain, mTLS and HTTP/2 over mTLS
// (BenchmarkNative).
// The gateway runs in-process (mesh.New, Serve on a loopback listener) with
// an identity from the development CA (identity.NewCA(...).NewSource).
//
//	go test -run '^$' -bench . ./bench/mtls/
//
// See mtls_test.go for what each benchmark measures.
package mtls

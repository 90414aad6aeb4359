// users, native: the service as it runs today, before wasmesh — a plain Go
// net/http server, to put behind wasmesh as an upstream version and
// canary a wasm rewrite against (docs/operations.md, "Move a native
// service to wasm by canary").
//
//	go run . -listen 127.0.0.1:9090
//
// It answers like the hello guests ("users native: GET /path 0 bytes"),
// and says which gateway request it served (X-Request-Id) and which
// trace it is part of (traceparent), as the gateway sent them. This
// directory is its own module (example.com/native-users), so it is not
// part of github.com/wasmesh/wasmesh.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9090", "address to serve on")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "users native: %s %s %d bytes\n", r.Method, r.URL.Path, n)
		if id := r.Header.Get("X-Request-Id"); id != "" {
			fmt.Fprintf(w, "request id %s, traceparent %s\n", id, r.Header.Get("Traceparent"))
		}
	})
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("users native on http://%s\n", l.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}()
	if err := srv.Serve(l); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}

// Command native is the yardstick for wasmesh's HTTP benchmark: a plain Go
// net/http handler that answers exactly what the hello guests answer.
//
//	go run ./bench/native -listen 127.0.0.1:8081
package main

import (
	"flag"
	"io"
	"log"
	"net/http"
	"strconv"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to serve on")
	delay := flag.Duration("delay", 0, "how long each request waits before it is answered, as a service waits on its database (default 0)")
	flag.Parse()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/v1/traces" { // an OTLP/HTTP sink for the tracing-overhead run
			w.Header().Set("Content-Type", "application/x-protobuf")
			return
		}
		if *delay > 0 {
			time.Sleep(*delay)
		}
		body := "hello from native: " + r.Method + " " + r.URL.Path + " " + strconv.FormatInt(n, 10) + " bytes\n"
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
	})
	log.Fatal(http.ListenAndServe(*listen, handler))
}

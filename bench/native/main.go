// Command native is the yardstick for wasmesh's HTTP benchmark: a plain Go
// net/http handler that answers exactly what the hello guests answer, or,
// with -call, the native equivalent of the two-service frontend example: a
// handler that calls another service over a keep-alive connection pool and
// answers with what it got.
//
//	go run ./bench/native -listen 127.0.0.1:8081
//	go run ./bench/native -listen 127.0.0.1:8084 -call http://127.0.0.1:8081
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to serve on")
	delay := flag.Duration("delay", 0, "how long each request waits before it is answered, as a service waits on its database (default 0)")
	call := flag.String("call", "", "act as a frontend: GET this base URL with the request's path appended and answer with the reply (default: answer as the hello guests do)")
	flag.Parse()
	if *call != "" {
		log.Fatal(http.ListenAndServe(*listen, frontend(*call)))
	}
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

// frontend answers each request with the status and body of a GET of base
// plus the request's path, as examples/frontend does through http_call.
// Its client keeps up to 256 idle connections to the service, so that
// every concurrent request finds one kept alive.
func frontend(base string) http.Handler {
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second},
		Timeout:   10 * time.Second,
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, base+r.URL.RequestURI(), nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Header.Set("X-From", "frontend-native")
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, "frontend native: call failed: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, "frontend native: reading the reply: "+err.Error(), http.StatusBadGateway)
			return
		}
		out := fmt.Sprintf("frontend native -> %d %s", resp.StatusCode, body)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		io.WriteString(w, out)
	})
}

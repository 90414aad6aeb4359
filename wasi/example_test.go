package wasi_test

import (
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/wasmesh/wasmesh/wasi"
)

// A request becomes a guest's environment; what the guest writes to stdout
// becomes the response.
func Example() {
	r := httptest.NewRequest("GET", "http://api.example.com/hello/x?lang=en", nil)
	r.Header.Set("User-Agent", "curl")
	env := wasi.RequestEnv(r, wasi.Meta{PathInfo: "/x", ScriptName: "/hello", Route: "0:hello", Version: "sha256:4f9c", RequestID: "7"})
	for _, kv := range env {
		if strings.HasPrefix(kv, "PATH_INFO=") || strings.HasPrefix(kv, "QUERY_STRING=") || strings.HasPrefix(kv, "HTTP_USER_AGENT=") {
			fmt.Println(kv)
		}
	}

	resp, err := wasi.ParseResponse([]byte("Status: 201\nContent-Type: text/plain\nLocation: /hello/1\n\ncreated"))
	if err != nil {
		fmt.Println(err) // the gateway answers 502 and logs it
		return
	}
	fmt.Println(resp.Status, resp.Header.Get("Location"), string(resp.Body))
	// Output:
	// HTTP_USER_AGENT=curl
	// PATH_INFO=/x
	// QUERY_STRING=lang=en
	// 201 /hello/1 created
}

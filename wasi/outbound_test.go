package wasi

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestParseOutboundRequest(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
		method, url, body string
		header            map[string]string
	}{
		{name: "get", in: "GET wasmesh://users/x?a=1\n\n", method: "GET", url: "wasmesh://users/x?a=1"},
		{name: "post with headers", in: "POST https://api.example.com/v1\ncontent-type: text/plain\nX-A: b\n\nhello\nworld",
			method: "POST", url: "https://api.example.com/v1", body: "hello\nworld",
			header: map[string]string{"Content-Type": "text/plain", "X-A": "b"}},
		{name: "crlf", in: "PUT http://h/\r\nA: 1\r\n\r\nx", method: "PUT", url: "http://h/", body: "x", header: map[string]string{"A": "1"}},
		{name: "empty", in: "", wantErr: "no request line"},
		{name: "no url", in: "GET\n\n", wantErr: "want \"METHOD URL\""},
		{name: "space in url", in: "GET http://a b\n\n", wantErr: "want \"METHOD URL\""},
		{name: "no blank line", in: "GET http://a/\nA: b", wantErr: "no blank line"},
		{name: "bad header", in: "GET http://a/\nnot a header\n\n", wantErr: "line 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ParseOutboundRequest([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrMalformedRequest) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != tc.method || req.URL != tc.url || string(req.Body) != tc.body {
				t.Fatalf("got %s %s %q", req.Method, req.URL, req.Body)
			}
			for k, v := range tc.header {
				if req.Header.Get(k) != v {
					t.Fatalf("header %s = %q, want %q", k, req.Header.Get(k), v)
				}
			}
		})
	}
}

func TestOutboundRoundTrip(t *testing.T) {
	h := http.Header{"B": {"2"}, "A": {"1", "x\ny"}}
	enc := EncodeOutboundRequest("POST", "wasmesh://s/p", h, []byte("body"))
	req, err := ParseOutboundRequest(enc)
	if err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("B") != "2" || req.Header.Values("A")[1] != "x y" || string(req.Body) != "body" {
		t.Fatalf("round trip: %+v", req)
	}
	resp := EncodeOutboundResponse(404, http.Header{"Content-Type": {"text/plain"}}, []byte("nope"))
	if want := "404\nContent-Type: text/plain\n\nnope"; !bytes.Equal(resp, []byte(want)) {
		t.Fatalf("response = %q, want %q", resp, want)
	}
}

func FuzzParseOutboundRequest(f *testing.F) {
	f.Add([]byte("GET wasmesh://users/x\n\n"))
	f.Add([]byte("POST http://a/\nA: b\n\nbody"))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := ParseOutboundRequest(b)
		if err != nil {
			if !errors.Is(err, ErrMalformedRequest) {
				t.Fatal(err)
			}
			return
		}
		if _, err := http.NewRequest(req.Method, "http://x/", nil); err != nil && req.Method != "" {
			t.Skip() // not every token is a method net/http takes; the gateway reports that
		}
	})
}

package http1

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// TestResponseBody: a buffered body is written whole with its head,
// however it was written, and its buffer goes back to the pool at the
// response's end (an idle connection holds none) without an allocation.
func TestResponseBody(t *testing.T) {
	var out bytes.Buffer
	c := &conn{s: &Server{}, bw: bufio.NewWriter(&out)}
	w := &c.res
	w.c = c
	req := &http.Request{Method: http.MethodGet, ProtoMajor: 1, ProtoMinor: 1}
	for _, body := range []string{
		"hello|, world",
		strings.Repeat("x", 4096) + "|" + strings.Repeat("y", 100),
		strings.Repeat("x", 2000) + "|" + strings.Repeat("y", 6000),
	} {
		out.Reset()
		w.reset(req)
		for part := range strings.SplitSeq(body, "|") {
			if _, err := w.Write([]byte(part)); err != nil {
				t.Fatal(err)
			}
		}
		if !w.finish() {
			t.Fatal("finish failed")
		}
		if want := strings.ReplaceAll(body, "|", ""); !strings.HasSuffix(out.String(), "\r\n\r\n"+want) {
			t.Fatalf("response %.80q… does not end with the body of %d bytes", out.String(), len(want))
		}
		if w.body != nil || w.bodyBuf != nil {
			t.Errorf("a body buffer of %d bytes kept after the response", cap(w.body))
		}
	}
	small := []byte("hello")
	if a := testing.AllocsPerRun(100, func() {
		out.Reset()
		w.reset(req)
		w.Write(small)
		w.finish()
	}); a != 0 {
		t.Errorf("%v allocations a small response, want 0", a)
	}
}

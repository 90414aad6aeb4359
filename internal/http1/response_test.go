package http1

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// TestResponseBodyKept: a connection keeps the buffer of a small response
// body for its next responses, and gives a large one back to the pool at
// the end of its response; the bytes written are the body either way.
func TestResponseBodyKept(t *testing.T) {
	var out bytes.Buffer
	c := &conn{s: &Server{}, bw: bufio.NewWriter(&out)}
	w := &c.res
	w.c = c
	respond := func(body string) {
		t.Helper()
		out.Reset()
		w.reset(&http.Request{Method: http.MethodGet, ProtoMajor: 1, ProtoMinor: 1})
		for part := range strings.SplitSeq(body, "|") {
			if _, err := w.Write([]byte(part)); err != nil {
				t.Fatal(err)
			}
		}
		if !w.finish() {
			t.Fatal("finish failed")
		}
		want := strings.ReplaceAll(body, "|", "")
		if !strings.HasSuffix(out.String(), "\r\n\r\n"+want) {
			t.Fatalf("response %q does not end with the body %q", out.String(), want)
		}
	}
	respond("hello|, world")
	if cap(w.body) != keptBody {
		t.Fatalf("after a small response the buffer's capacity is %d, want keptBody (%d)", cap(w.body), keptBody)
	}
	kept := &w.body[:1][0]
	respond("again")
	if &w.body[:1][0] != kept {
		t.Error("the next small response did not use the kept buffer")
	}
	for _, body := range []string{
		strings.Repeat("x", keptBody) + "|" + strings.Repeat("y", 100), // large from its first write
		strings.Repeat("x", 2000) + "|" + strings.Repeat("y", 6000),    // small, then past keptBody
	} {
		respond(body)
		if cap(w.body) != keptBody || &w.body[:1][0] != kept {
			t.Errorf("after a response of %d bytes the connection's buffer is not the one it kept (capacity %d)", len(body)-1, cap(w.body))
		}
	}
	respond("small again")
	if &w.body[:1][0] != kept {
		t.Error("a small response after large ones did not use the kept buffer")
	}
}

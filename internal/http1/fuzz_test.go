package http1

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/testutil"
)

// FuzzServer sends arbitrary bytes as a connection's whole input: the
// server never panics (a recovered panic is logged, and fails the test) and
// still answers a good request on a new connection afterwards.
func FuzzServer(f *testing.F) {
	for _, seed := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"PUT /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
		"GET /big HTTP/1.0\r\nConnection: keep-alive\r\n\r\nHEAD /h HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /inject HTTP/1.1\r\nHost: x\r\n\r\n",
		h2Preface + "junk",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n\r\nshort",
		"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	var log testutil.LockedBuffer
	s := &Server{MaxHeaderBytes: 8 << 10, ReadHeaderTimeout: time.Second, IdleTimeout: time.Second,
		Logger: slog.New(slog.NewTextHandler(&log, nil)), HTTP2: func(c net.Conn) { c.Close() }}
	addr := serve(f, s)
	f.Fuzz(func(t *testing.T, in []byte) {
		c := dial(t, addr)
		c.Write(in)
		c.(*net.TCPConn).CloseWrite()
		if _, err := io.Copy(io.Discard, c); err != nil && !isReset(err) {
			t.Fatalf("reading the answers: %v", err)
		}
		c.Close()
		if l := log.String(); strings.Contains(l, "panic") && !strings.Contains(l, "test panic") {
			t.Fatalf("server panicked: %s", l)
		}
		good := dial(t, addr)
		io.WriteString(good, "GET /after HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(good), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("a good request after the input: %v %v", resp, err)
		}
	})
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

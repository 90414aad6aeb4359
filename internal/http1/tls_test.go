package http1

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/testca"
)

// TestTLS: on a TLS listener HTTP/1.1 is served with the connection state
// in Request.TLS, and a connection that negotiates h2 goes to HTTP2.
func TestTLS(t *testing.T) {
	// Any certificate does: the client does not verify it.
	cert := testca.TLSCertificate(testca.New(t, "example.org").SVID("spiffe://example.org/server"))
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h2 := make(chan string, 1)
	s := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.TLS == nil {
				fmt.Fprint(w, "no TLS state")
				return
			}
			fmt.Fprintf(w, "TLS %x %q", r.TLS.Version, r.TLS.NegotiatedProtocol)
		}),
		HTTP2: func(c net.Conn) {
			defer c.Close()
			tc, ok := c.(*tls.Conn)
			if !ok {
				h2 <- fmt.Sprintf("a %T", c)
				return
			}
			h2 <- tc.ConnectionState().NegotiatedProtocol
		},
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(tls.NewListener(ln, cfg)) }()
	defer func() {
		s.Close()
		<-done
	}()

	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if want := fmt.Sprintf("TLS %x %q", tls.VersionTLS13, "http/1.1"); string(body) != want {
		t.Errorf("HTTP/1.1 over TLS: %q, want %q", body, want)
	}

	// Plain HTTP to the TLS port: told so, as net/http does.
	plain := dial(t, ln.Addr().String())
	io.WriteString(plain, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if b, _ := io.ReadAll(plain); !strings.Contains(string(b), "400 Bad Request") || !strings.Contains(string(b), "HTTP request to an HTTPS server") {
		t.Errorf("plain HTTP to the TLS port: %q", b)
	}

	c2, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	select {
	case got := <-h2:
		if got != "h2" {
			t.Errorf("HTTP2 got %s, want the *tls.Conn that negotiated h2", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an h2 connection was not handed over")
	}
}

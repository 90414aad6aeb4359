//go:build linux

package http1

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair is a loopback TCP connection: the dialled end as a sysConn, and
// the accepted end as it is.
func tcpPair(t *testing.T) (*sysConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	sc, ok := wrapConn(c).(*sysConn)
	if !ok {
		t.Fatalf("wrapConn(%T) is not a sysConn", c)
	}
	return sc, peer
}

// TestSysConn holds a sysConn to what net.Conn does on a real socket: bytes
// both ways, a write larger than the socket's buffers (which waits for the
// peer to read), EOF, deadlines, a reset, a closed connection.
func TestSysConn(t *testing.T) {
	t.Run("both ways", func(t *testing.T) {
		c, peer := tcpPair(t)
		if n, err := c.Write([]byte("ping")); n != 4 || err != nil {
			t.Fatalf("Write: %d, %v", n, err)
		}
		b := make([]byte, 4)
		if _, err := io.ReadFull(peer, b); err != nil || string(b) != "ping" {
			t.Fatalf("peer read %q, %v", b, err)
		}
		peer.Write([]byte("pong"))
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "pong" {
			t.Fatalf("Read %q, %v", b, err)
		}
		if n, err := c.Read(nil); n != 0 || err != nil {
			t.Errorf("Read of nothing: %d, %v", n, err)
		}
	})
	t.Run("larger than the socket buffers", func(t *testing.T) {
		c, peer := tcpPair(t)
		want := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
		got := make(chan []byte)
		go func() {
			time.Sleep(50 * time.Millisecond) // the writer meets full buffers first
			b, _ := io.ReadAll(peer)
			got <- b
		}()
		if n, err := c.Write(want); n != len(want) || err != nil {
			t.Fatalf("Write: %d of %d, %v", n, len(want), err)
		}
		c.CloseWrite()
		if b := <-got; !bytes.Equal(b, want) {
			t.Fatalf("peer read %d bytes, not the %d written", len(b), len(want))
		}
	})
	t.Run("EOF", func(t *testing.T) {
		c, peer := tcpPair(t)
		peer.Write([]byte("last"))
		peer.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second)) // a failure, not a hang, if EOF never comes
		b, err := io.ReadAll(c)
		if err != nil || string(b) != "last" {
			t.Fatalf("ReadAll: %q, %v", b, err)
		}
		if n, err := c.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("Read past the end: %d, %v; want io.EOF", n, err)
		}
	})
	t.Run("read deadline", func(t *testing.T) {
		c, _ := tcpPair(t)
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read past its deadline: %v; want a timeout", err)
		}
	})
	t.Run("write deadline", func(t *testing.T) {
		c, _ := tcpPair(t) // the peer never reads
		c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := c.Write(make([]byte, 64<<20))
		if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n >= 64<<20 {
			t.Fatalf("Write past its deadline: %d, %v; want some bytes and a timeout", n, err)
		}
	})
	t.Run("deadline set while blocked", func(t *testing.T) {
		c, _ := tcpPair(t)
		time.AfterFunc(30*time.Millisecond, func() { c.SetReadDeadline(time.Now()) })
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read whose deadline came while it waited: %v; want a timeout", err)
		}
	})
	t.Run("closed while blocked", func(t *testing.T) {
		c, _ := tcpPair(t)
		time.AfterFunc(30*time.Millisecond, func() { c.Close() })
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read of a connection closed while it waited: %v; want net.ErrClosed", err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		c, peer := tcpPair(t)
		peer.(*net.TCPConn).SetLinger(0) // close with RST
		peer.Close()
		time.Sleep(20 * time.Millisecond)
		_, err := c.Read(make([]byte, 1))
		var oe *net.OpError
		if !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &oe) || oe.Op != "read" || oe.Addr == nil {
			t.Fatalf("Read of a reset connection: %#v; want a net.OpError of ECONNRESET", err)
		}
		_, err = c.Write([]byte("x"))
		if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("Write to a reset connection: %v; want EPIPE or ECONNRESET", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		c, _ := tcpPair(t)
		c.Close()
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read after Close: %v; want net.ErrClosed", err)
		}
		if _, err := c.Read(nil); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read of nothing after Close: %v; want net.ErrClosed", err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write after Close: %v; want net.ErrClosed", err)
		}
	})
}

// TestSysConnOrdering: what a goroutine did before a write happens before
// what the reader of those bytes does after, whichever end is a sysConn, as
// for net.Conn (under -race, a report of a race here is the failure).
func TestSysConnOrdering(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sysWrite bool
	}{{"sysConn writes, net.Conn reads", true}, {"net.Conn writes, sysConn reads", false}} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer := tcpPair(t)
			w, r := net.Conn(c), peer
			if !tc.sysWrite {
				w, r = peer, c
			}
			var shared int
			go func() {
				shared = 42
				w.Write([]byte{1})
			}()
			if _, err := io.ReadFull(r, make([]byte, 1)); err != nil {
				t.Fatal(err)
			}
			if shared != 42 {
				t.Fatalf("shared = %d after the read", shared)
			}
		})
	}
}

// TestWrapConn: only TCP connections are wrapped, and the server and the
// client wrap theirs.
func TestWrapConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if c := wrapConn(a); c != a {
		t.Errorf("wrapConn(net.Pipe()) = %T, want it unchanged", c)
	}

	states := make(chan net.Conn, 4)
	addr := serve(t, &Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ConnState: func(c net.Conn, _ http.ConnState) { states <- c },
	})
	cl := &Client{Addr: addr}
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	resp, err := cl.Do(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Fatalf("body %q", body)
	}
	if c := <-states; func() bool { _, ok := c.(*sysConn); return !ok }() {
		t.Errorf("the server's connection is a %T, not a sysConn", c)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if len(cl.idle) == 0 {
		t.Fatal("the client kept no idle connection to look at")
	}
	if cc := cl.idle[0]; func() bool { _, ok := cc.raw.(*sysConn); return !ok }() {
		t.Errorf("the client's connection is a %T, not a sysConn", cc.raw)
	}
}

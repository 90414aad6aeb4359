package testutil

import (
	"bufio"
	"net"
	"testing"
)

// RawServer serves each connection accepted on a loopback port with
// handle, given the connection and a reader of it, each on a goroutine of
// its own, until the test ends; it returns the address, "127.0.0.1:PORT".
// For peers that answer bytes no HTTP library would send.
func RawServer(tb testing.TB, handle func(conn net.Conn, br *bufio.Reader)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				handle(conn, bufio.NewReader(conn))
			}()
		}
	}()
	return ln.Addr().String()
}

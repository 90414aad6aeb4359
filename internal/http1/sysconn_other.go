//go:build !unix

package http1

import "net"

// wrapConn returns c: raw socket calls are for unix (sysconn_unix.go).
func wrapConn(c net.Conn) net.Conn { return c }

// NewListener returns ln: raw socket calls are for unix (sysconn_unix.go).
func NewListener(ln net.Listener) net.Listener { return ln }

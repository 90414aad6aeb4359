//go:build !linux

package http1

import (
	"net"
	"time"
)

// wrapConn returns c: raw socket calls are for Linux (sysconn_linux.go).
func wrapConn(c net.Conn) net.Conn { return c }

// NewListener returns ln: raw socket calls are for Linux (sysconn_linux.go).
func NewListener(ln net.Listener) net.Listener { return ln }

// guardWrites does nothing: Server.SendTimeout needs the raw socket calls
// of Linux.
func guardWrites(net.Conn, time.Duration) {}

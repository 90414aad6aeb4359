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

// GuardsWrites says whether the connections a Server accepts have their
// writes bounded by Server.SendTimeout: not on this system.
const GuardsWrites = false

// guardWrites does nothing: Server.SendTimeout needs the raw socket calls
// of Linux.
func guardWrites(net.Conn, time.Duration) {}

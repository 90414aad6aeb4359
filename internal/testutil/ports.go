package testutil

import (
	"fmt"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// RefusedAddr returns a loopback address, "127.0.0.1:PORT", that refuses
// connections for the rest of the test: a socket bound to its port, which
// does not listen, keeps any other listener from taking the port (a port
// closed after use may be handed to the next listener that asks for one).
func RefusedAddr(tb testing.TB) string {
	tb.Helper()
	return HoldPort(tb, "127.0.0.1:0")
}

// HoldPort binds a socket that does not listen to addr (an IPv4
// "HOST:PORT", the port 0 for any) until the test ends, and returns the
// address bound: connections to it are refused, and no listener can take
// it meanwhile (but one that names the port: see below). Call it right
// after closing a listener to keep its port for the test.
func HoldPort(tb testing.TB, addr string) string {
	tb.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		tb.Fatalf("HoldPort(%q): want an IPv4 HOST:PORT (%v)", addr, err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatalf("HoldPort(%q): socket: %v", addr, err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	// A port just closed may have connections in TIME_WAIT, which only a
	// socket with SO_REUSEADDR may share. Such a socket keeps the port
	// from listeners given any port (port 0), not from one that names it
	// with SO_REUSEADDR set (net.Listen sets it).
	if ap.Port() != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			tb.Fatalf("HoldPort(%q): SO_REUSEADDR: %v", addr, err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}); err != nil {
		tb.Fatalf("HoldPort(%q): bind: %v", addr, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		tb.Fatalf("HoldPort(%q): getsockname: %v", addr, err)
	}
	return fmt.Sprintf("%s:%d", ap.Addr(), sa.(*unix.SockaddrInet4).Port)
}

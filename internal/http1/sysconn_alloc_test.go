//go:build linux && !race

package http1

import (
	"net"
	"testing"
)

// TestSysConnAllocs: a read or write allocates nothing (RawConn's function
// made once per connection, not a closure per call).
func TestSysConnAllocs(t *testing.T) {
	c, peer := tcpPair(t)
	p := peer.(*net.TCPConn)
	b := make([]byte, 64)
	if a := testing.AllocsPerRun(1000, func() {
		c.Write(b)
		p.Read(b)
		p.Write(b)
		c.Read(b)
	}); a != 0 {
		t.Errorf("%v allocations a write and a read, want 0", a)
	}
}

//go:build unix

package http1

import (
	"crypto/tls"
	"errors"
	"syscall"
)

// alive reports whether an idle connection is still open: a read that
// does not block finds neither its end (the endpoint closed it) nor bytes
// it should not have sent.
func (cc *clientConn) alive() bool {
	if q, ok := cc.raw.(interface{ Quiet() bool }); ok { // a sysConn: no allocation, no syscall state
		return q.Quiet()
	}
	c := cc.raw
	if tc, ok := cc.conn.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = n < 0 && errors.Is(err, syscall.EAGAIN)
		return true
	})
	return err == nil && alive
}

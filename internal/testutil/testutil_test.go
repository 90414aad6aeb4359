package testutil

import (
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestLoadAndWaitFor(t *testing.T) {
	var calls atomic.Int64
	stop := make(chan struct{})
	wait := Load(3, stop, func() { calls.Add(1); time.Sleep(time.Millisecond) })
	WaitFor(t, "30 calls", func() bool { return calls.Load() >= 30 })
	close(stop)
	wait()
	after := calls.Load()
	time.Sleep(20 * time.Millisecond)
	if calls.Load() != after {
		t.Fatal("Load kept calling after stop and wait")
	}
}

func TestRefusedAddr(t *testing.T) {
	addr := RefusedAddr(t)
	if c, err := net.Dial("tcp", addr); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
	if l, err := net.Listen("tcp", addr); err == nil {
		l.Close()
		t.Fatalf("a listener took %s, which RefusedAddr holds", addr)
	}
}

func TestHoldPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	c, err := net.Dial("tcp", addr) // a connection, so that the port has one in TIME_WAIT once closed
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	c.Close()
	l.Close()
	if got := HoldPort(t, addr); got != addr {
		t.Fatalf("HoldPort(%s) = %s", addr, got)
	}
	if c, err := net.Dial("tcp", addr); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("dial %s: %v, want connection refused", addr, err)
	}
}

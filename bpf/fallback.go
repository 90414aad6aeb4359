package bpf

import (
	"sync"
	"sync/atomic"
	"syscall"
)

// fallback colours sockets with setsockopt (SO_MARK, IP_TOS, IPV6_TCLASS) and
// counts in userspace whatever Count is told.
type fallback struct {
	opts   Options
	reason string
	marks  bool // SO_MARK is permitted
	counts userCounters
	closed atomic.Bool
}

func newFallback(opts Options, why string) *fallback {
	f := &fallback{opts: opts, reason: "fallback: " + why, marks: true}
	if err := probeMark(); err != nil {
		f.marks = false
		f.reason += "; marks off: " + err.Error()
	}
	return f
}

func (f *fallback) SetColour(conn syscall.Conn, c Colour, dscp int) error {
	if err := f.opts.checkColour(c, dscp); err != nil {
		return err
	}
	if f.closed.Load() {
		return ErrClosed
	}
	err := control(conn, func(fd uintptr) error {
		if dscp >= 0 {
			if err := setDSCP(fd, dscp); err != nil {
				return err
			}
		}
		if f.marks {
			value, mask := f.opts.Mark(c)
			return setMark(fd, value, mask)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if c != 0 {
		f.counts.get(c)
	}
	return nil
}

func (f *fallback) Count(c Colour, d Direction, n int) {
	if c == 0 || n < 0 || d > Ingress {
		return
	}
	f.counts.get(c).add(d, uint64(n))
}

func (f *fallback) Counters() (map[Colour]Counter, error) {
	if f.closed.Load() {
		return nil, ErrClosed
	}
	return f.counts.snapshot(), nil
}

func (f *fallback) Mode() string   { return ModeFallback }
func (f *fallback) Reason() string { return f.reason }

func (f *fallback) Close() error {
	f.closed.Store(true)
	return nil
}

// userCounters are per-colour counters that need no lock to update.
type userCounters struct{ m sync.Map } // Colour → *userCounter

type userCounter struct {
	packets, bytes [2]atomic.Uint64 // by Direction
}

func (u *userCounters) get(c Colour) *userCounter {
	if v, ok := u.m.Load(c); ok {
		return v.(*userCounter)
	}
	v, _ := u.m.LoadOrStore(c, new(userCounter))
	return v.(*userCounter)
}

func (c *userCounter) add(d Direction, n uint64) {
	c.packets[d].Add(1)
	c.bytes[d].Add(n)
}

func (u *userCounters) snapshot() map[Colour]Counter {
	out := make(map[Colour]Counter)
	u.m.Range(func(k, v any) bool {
		c := v.(*userCounter)
		out[k.(Colour)] = Counter{
			EgressPackets: c.packets[Egress].Load(), EgressBytes: c.bytes[Egress].Load(),
			IngressPackets: c.packets[Ingress].Load(), IngressBytes: c.bytes[Ingress].Load(),
		}
		return true
	})
	return out
}

package wasip1

import (
	"context"
	"math"
	"time"
)

// Subscription and event layout and values (witx: subscription, event).
const (
	subscriptionSize = 48
	eventSize        = 32

	eventClock   = 0
	eventFdRead  = 1
	eventFdWrite = 2

	clockRealtime  = 0
	clockMonotonic = 1

	subclockAbstime = 1
)

// maxSubscriptions bounds a poll_oneoff's subscriptions (EINVAL beyond):
// a run has at most a few hundred descriptors to subscribe to.
const maxSubscriptions = 4096

// pollOneoff answers at once for the descriptors subscribed to (files and
// the standard streams are always ready, as poll(2) says of regular files;
// an unknown descriptor is an event with EBADF), and otherwise waits for
// the earliest clock, within the run's deadline.
func pollOneoff(ctx context.Context, c call, p []uint64) errno {
	in, out, n := uint32(p[0]), uint32(p[1]), uint32(p[2])
	if n == 0 || n > maxSubscriptions {
		return errnoInval
	}
	subs, en := c.read(in, n*subscriptionSize)
	if en != 0 {
		return en
	}
	events, en := c.read(out, n*eventSize)
	if en != 0 {
		return en
	}
	// The subscriptions are read before any event is written: in and out
	// may overlap.
	subs = append([]byte(nil), subs...)
	clear(events)
	nevents := uint32(0)
	emit := func(sub []byte, typ uint8, e errno, nbytes uint64) {
		ev := events[nevents*eventSize:]
		copy(ev[0:8], sub[0:8]) // userdata
		le.PutUint16(ev[8:], uint16(e))
		ev[10] = typ
		if typ != eventClock {
			le.PutUint64(ev[16:], nbytes)
		}
		nevents++
	}
	now := time.Now()
	// When each clock subscription is due, by subscription (zero: not a
	// clock, or one answered with an error).
	due := make([]time.Time, n)
	first := time.Time{}
	// The reads of a stdin that may have nothing yet (a terminal, a
	// pipe), which wait with the clocks.
	var poller Poller
	var waiting []uint32
	for i := range n {
		sub := subs[i*subscriptionSize : (i+1)*subscriptionSize]
		switch typ := sub[8]; typ {
		case eventClock:
			d, en := c.clockTimeout(sub[16:])
			if en != 0 {
				emit(sub, typ, en, 0)
				continue
			}
			due[i] = now.Add(d)
			if first.IsZero() || due[i].Before(first) {
				first = due[i]
			}
		case eventFdRead, eventFdWrite:
			e, en := c.t.getRights(le.Uint32(sub[16:]), rightPollFdReadwrite)
			if en != 0 {
				emit(sub, typ, en, 0)
				continue
			}
			if p := e.poller(); typ == eventFdRead && p != nil {
				if poller == nil || poller == p {
					poller, waiting = p, append(waiting, i)
					continue
				}
			}
			emit(sub, typ, 0, e.pending(typ))
		default:
			return errnoInval
		}
	}
	if c.host.Wait != nil {
		ctx = c.host.Wait(ctx)
	}
	if poller != nil {
		wait := time.Duration(0) // others are ready: stdin is asked, not waited for
		if nevents == 0 {
			wait = time.Duration(math.MaxInt64)
			if !first.IsZero() {
				wait = max(time.Until(first), 0)
			}
		}
		if poller.Poll(ctx, wait) {
			for _, i := range waiting {
				emit(subs[i*subscriptionSize:], eventFdRead, 0, 0)
			}
			return c.u32(uint32(p[3]), nevents)
		}
		if ctx.Err() != nil {
			return errnoIntr
		}
	}
	if nevents == 0 && !first.IsZero() {
		if wait := time.Until(first); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return errnoIntr
			}
		}
		// Every clock subscription that is due by now.
		now := time.Now()
		for i := range n {
			if !due[i].IsZero() && !due[i].After(now) {
				emit(subs[i*subscriptionSize:], eventClock, 0, 0)
			}
		}
	}
	return c.u32(uint32(p[3]), nevents)
}

// clockTimeout is how long a clock subscription waits from now.
func (c call) clockTimeout(b []byte) (time.Duration, errno) {
	id, timeout, flags := le.Uint32(b[0:]), le.Uint64(b[8:]), le.Uint16(b[24:])
	if flags&^subclockAbstime != 0 {
		return 0, errnoInval
	}
	if flags&subclockAbstime == 0 {
		if id != clockRealtime && id != clockMonotonic {
			return 0, errnoInval
		}
		return time.Duration(min(timeout, math.MaxInt64)), 0
	}
	if id != clockRealtime {
		// The guest's monotonic clock counts from an origin only wazero
		// knows.
		return 0, errnoNotsup
	}
	now := time.Now().UnixNano()
	if c.host.Walltime != nil {
		now = c.host.Walltime()
	}
	return time.Duration(int64(min(timeout, math.MaxInt64)) - now), 0
}

// Poller is a standard input that may have nothing to read yet (a
// terminal, a pipe): poll_oneoff asks it rather than finding it ready.
// Poll reports whether a read would return at once, waiting up to timeout
// (0: not at all) or until ctx is done. A stdin without it is always
// ready, as a file is.
type Poller interface {
	Poll(ctx context.Context, timeout time.Duration) bool
}

// poller is e's Poller, if it is a standard input that has one.
func (e *entry) poller() Poller {
	if in, ok := e.file.(*stdin); ok {
		p, _ := in.r.(Poller)
		return p
	}
	return nil
}

// pending is the nbytes of a ready event: for reading a regular file, the
// bytes after its offset; else 0.
func (e *entry) pending(typ uint8) uint64 {
	if typ != eventFdRead || e.ftype != filetypeRegularFile {
		return 0
	}
	st, serr := e.file.Stat()
	if serr != 0 {
		return 0
	}
	pos, serr := e.file.Seek(0, 1)
	if serr != 0 || pos > st.Size {
		return 0
	}
	return uint64(st.Size - pos)
}

// The sockets: none are given to guests (wasmesh preopens none), so every
// descriptor is either unknown or not a socket.
func notSocket(c call, fd uint32) errno {
	if _, en := c.t.get(fd); en != 0 {
		return en
	}
	return errnoNotsock
}

func sockAccept(_ context.Context, c call, p []uint64) errno {
	return notSocket(c, uint32(p[0]))
}

func sockRecv(_ context.Context, c call, p []uint64) errno {
	return notSocket(c, uint32(p[0]))
}

func sockSend(_ context.Context, c call, p []uint64) errno {
	return notSocket(c, uint32(p[0]))
}

func sockShutdown(_ context.Context, c call, p []uint64) errno {
	return notSocket(c, uint32(p[0]))
}

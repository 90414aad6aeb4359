package dataplane

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/wasmesh/wasmesh/config"
)

var errOverloaded = errors.New("overloaded")

// limiter bounds the requests a service serves at once, with a bounded queue
// of waiters; past both, requests are refused at once.
type limiter struct {
	max, maxQueue int
	slots         chan struct{}
	queued        atomic.Int64
}

// limiterFor returns the service's limiter, kept across reloads while the
// service's limits stay the same.
func (p *Plane) limiterFor(s *config.Service) *limiter {
	if s.Limits.MaxConcurrency <= 0 {
		return nil
	}
	// Requests arriving together must share one limiter: each found none
	// and stored its own before, and all of them ran at once.
	for {
		old, ok := p.limiters.Load(s.Name)
		if ok {
			if l := old.(*limiter); l.max == s.Limits.MaxConcurrency && l.maxQueue == s.Limits.MaxQueue {
				return l
			}
		}
		l := &limiter{max: s.Limits.MaxConcurrency, maxQueue: s.Limits.MaxQueue, slots: make(chan struct{}, s.Limits.MaxConcurrency)}
		if !ok {
			if _, loaded := p.limiters.LoadOrStore(s.Name, l); !loaded {
				return l
			}
		} else if p.limiters.CompareAndSwap(s.Name, old, l) {
			return l
		}
	}
}

// acquire takes a slot, waiting in the queue up to wait. The returned func
// gives the slot back. A nil limiter admits everything.
func (l *limiter) acquire(ctx context.Context, wait time.Duration) (func(), error) {
	if l == nil {
		return func() {}, nil
	}
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	default:
	}
	if l.queued.Add(1) > int64(l.maxQueue) {
		l.queued.Add(-1)
		return nil, fmt.Errorf("%w: %d requests in flight and %d queued", errOverloaded, l.max, l.maxQueue)
	}
	defer l.queued.Add(-1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return l.release, nil
	case <-t.C:
		return nil, fmt.Errorf("%w: no slot free within %s", errOverloaded, wait)
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			// The request's deadline (an in-process call's, its caller's)
			// passed while it waited: no slot came, as at wait.
			return nil, fmt.Errorf("%w: no slot free before the request's deadline", errOverloaded)
		}
		return nil, ctx.Err() // its client gone
	}
}

func (l *limiter) release() { <-l.slots }

// Package warm runs calls on goroutines kept between them, whose stacks
// have grown already.
//
// A goroutine's stack starts small and grows by doubling as a call goes
// deeper, each time copied with every frame walked; and the garbage
// collector halves the stack of a goroutine that uses less than a quarter
// of it, as a connection's goroutine does while it waits for its next
// request. A request's path in the gateway (the handler, a guest's run on
// wazero, the host functions under it) goes tens of KiB deep: run on a new
// goroutine (HTTP/2 starts one for each stream) or on a connection's
// goroutine that waited through a collection, it grows that stack again.
// Pool.Run hands the call to one of the goroutines kept waiting after
// earlier calls (a new one when none waits) and waits for it, which costs
// two goroutine switches.
package warm

import (
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
)

// MaxIdle is how many goroutines a Pool keeps waiting for calls at most.
// More run when more calls do at once, and end after theirs.
const MaxIdle = 64

// Pool is a set of kept goroutines. The zero Pool is ready to use. Of its
// idle goroutines, the last to finish a call runs the next: those that
// wait long, whose stacks the collector shrinks, are the last to be used.
type Pool struct {
	mu   sync.Mutex
	idle []*worker
}

type worker struct{ calls chan call }

type call struct {
	f    func()
	done chan *Panic
}

// Panic is a panic raised by a call that Run ran: its value and the stack
// it was raised on (none for http.ErrAbortHandler, the panic with which a
// handler aborts its response on purpose).
type Panic struct {
	Value any
	Stack []byte
}

// String is the panic's value and its stack, as a log shows a panic.
func (p *Panic) String() string { return fmt.Sprintf("%v\n%s", p.Value, p.Stack) }

// Raise panics again, in the caller's goroutine: with http.ErrAbortHandler
// itself, which HTTP servers recover without logging, and with anything
// else as its String, so that a log shows the stack it was first raised
// on.
func (p *Panic) Raise() {
	if p.Value == http.ErrAbortHandler {
		panic(http.ErrAbortHandler)
	}
	panic(p.String())
}

// goexit is what a worker reports for a call that called runtime.Goexit.
var goexit = &Panic{Value: "runtime.Goexit"}

var dones = sync.Pool{New: func() any { return make(chan *Panic, 1) }}

// Run calls f on one of the pool's goroutines and returns once f has
// returned, with nil, or with the panic f raised (recovered on f's
// goroutine; the caller decides whether to raise it again). If f calls
// runtime.Goexit, Run calls it too, in the caller's goroutine.
func (p *Pool) Run(f func()) *Panic {
	p.mu.Lock()
	var w *worker
	if n := len(p.idle); n > 0 {
		w, p.idle = p.idle[n-1], p.idle[:n-1]
	}
	p.mu.Unlock()
	if w == nil {
		w = &worker{calls: make(chan call)}
		go w.run(p)
	}
	done := dones.Get().(chan *Panic)
	w.calls <- call{f, done}
	r := <-done
	dones.Put(done)
	if r == goexit {
		runtime.Goexit()
	}
	return r
}

// idleWorkers is how many goroutines wait for calls, for tests.
func (p *Pool) idleWorkers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

func (w *worker) run(p *Pool) {
	for c := range w.calls {
		c.run() // a Goexit in it ends this goroutine, after done is sent
		p.mu.Lock()
		keep := len(p.idle) < MaxIdle
		if keep {
			p.idle = append(p.idle, w)
		}
		p.mu.Unlock()
		if !keep {
			return
		}
	}
}

// run calls f and sends on done nil, the panic it raised, or goexit.
func (c call) run() {
	returned := false
	defer func() {
		if returned {
			c.done <- nil
			return
		}
		v := recover()
		switch {
		case v == nil: // runtime.Goexit: nothing to recover
			c.done <- goexit
		case v == http.ErrAbortHandler:
			c.done <- &Panic{Value: v}
		default:
			c.done <- &Panic{Value: v, Stack: debug.Stack()}
		}
	}()
	c.f()
	returned = true
}

package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/experimental"

	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/internal/wasip2"
	"github.com/wasmesh/wasmesh/internal/wasmbin"
)

// Reused component instances.
//
// Instantiating a component costs more than serving most requests: the
// 13 MB JavaScript engine of a componentize-js component spends about 3 ms
// applying its data segments and element tables. A component whose core
// modules keep their state only in linear memories and mutable globals
// (component.Linked.Resettable) is instead served by instances that are
// reset between requests to the state instantiation left them in:
//
//   - memories: after the first instantiation, each memory's content
//     becomes an image (image_linux.go) that the instance's memory is
//     remapped onto, copy-on-write; a reset copies back the pages a request
//     wrote. A later instance whose memory comes out of instantiation
//     equal to the image shares it; one that differs (wasi-libc seeds its
//     stack protector or allocator from wasi:random at start) gets an
//     image of its own, so that each instance is reset to what its own
//     instantiation made, as a fresh instance would be;
//   - mutable globals: exported by the rewritten core modules and set back
//     (component.Instance.Reset);
//   - handles and host objects: emptied; the next request's handles are
//     numbered as in a fresh instance.
//
// An instance whose call failed (a trap, the deadline, a host error) or
// whose memory grew is closed instead, so a guest can never observe what
// an earlier request left, and a misbehaving request costs at most one
// instantiation.

// components keeps a component's reset instances, per memory ceiling, and
// the images of its memories.
type components struct {
	linked  *component.Linked
	e       *Engine
	handler string // the wasi:http/incoming-handler export, for warm-ups
	digest  string // the component's, for the log

	mu sync.Mutex
	// pools are told apart by memory ceiling, and by the arguments and
	// environment instances are made with (a start function may read
	// them, as wasi-libc's reactor start does); a version has one or two.
	pools  []*componentPool
	images []*image // by the order in which instantiation allocates memories
	// empty is what every memory starts instantiation with: zeros, as
	// start functions expect (wasi-libc's _initialize traps when its
	// "initialized" flag, in memory, is set already).
	empty  *image
	closed bool
}

type componentPool struct {
	c       *components
	ceiling uint64
	args    []string
	env     [][2]string
	// warmup is the path of the GET each new instance serves before its
	// state is kept (HTTPRequest.Warmup), "" for none.
	warmup string
	// checked says a warmed instance was seen to answer another GET;
	// unwarmed that one did not, and the pool's instances are not warmed.
	checked, unwarmed atomic.Bool
	// disabled is why the pool's instances are no longer reused (its
	// warm-up failed), nil while they are; c.mu guards it.
	disabled error

	idle idleSet[*pooledComponent]
}

// pooledComponent is one reusable instance and its memories as
// instantiation left them.
type pooledComponent struct {
	inst  *component.Instance
	mems  []*cowMemory
	sizes []uint64
}

func newComponents(e *Engine, digest string, l *component.Linked, handler string) (*components, error) {
	empty, err := newImage(nil)
	if err != nil {
		return nil, err
	}
	return &components{linked: l, e: e, digest: digest, empty: empty, handler: handler}, nil
}

// pool returns the pool of ceiling, args and env, or nil when instances
// are not reused.
func (c *components) pool(ceiling uint64, args []string, env [][2]string, warmup string) *componentPool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	for _, p := range c.pools {
		if p.ceiling == ceiling && slices.Equal(p.args, args) && slices.Equal(p.env, env) && p.warmup == warmup {
			if p.disabled != nil {
				return nil
			}
			return p
		}
	}
	p := &componentPool{c: c, ceiling: ceiling, args: slices.Clone(args), env: slices.Clone(env), warmup: warmup}
	c.pools = append(c.pools, p)
	return p
}

// disable stops reusing p's instances, for why, and says so once. The
// component's other pools (another service's warm-up, arguments,
// environment or memory) go on reusing theirs.
func (p *componentPool) disable(why error) {
	p.c.mu.Lock()
	first := p.disabled == nil
	if first {
		p.disabled = why
	}
	p.c.mu.Unlock()
	if first {
		p.c.e.log.Warn("component instances are not reused for this service's settings (warm-up, arguments, environment, memory): every request makes one",
			"module", p.c.digest, "warmup", p.warmup, "why", why)
	}
}

// imageOf returns an image of content, memory k of an instance after
// instantiation: the component's shared image of memory k when content
// equals it (or there is none yet, and it becomes one), else one of its
// own, which the caller closes once its memory maps it (shared false).
func (c *components) imageOf(k int, content []byte) (img *image, shared bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false, errors.New("the component was released")
	}
	for len(c.images) <= k {
		c.images = append(c.images, nil)
	}
	if img := c.images[k]; img != nil {
		if bytes.Equal(img.view, content) {
			return img, true, nil
		}
		img, err := newImage(content)
		return img, false, err
	}
	if img, err = newImage(content); err != nil {
		return nil, false, err
	}
	c.images[k] = img
	return img, true, nil
}

// get returns an idle instance, or a new one made in the context ctx
// gives (asked for only then).
func (p *componentPool) get(ctx func() context.Context) (*pooledComponent, error) {
	for {
		pc, mark, ok := p.idle.take()
		if !ok {
			break
		}
		if !pc.reset(mark) {
			p.c.e.discarded.Add(1)
			_ = pc.inst.Close(context.Background())
			continue
		}
		p.c.e.reused.Add(1)
		return pc, nil
	}
	p.c.e.created.Add(1)
	return p.instantiate(ctx())
}

func (p *componentPool) instantiate(ctx context.Context) (*pooledComponent, error) {
	pc := &pooledComponent{}
	var memErr error
	ctx = experimental.WithMemoryAllocator(ctx, experimental.MemoryAllocatorFunc(func(_, max uint64) experimental.LinearMemory {
		m, err := newCowMemory(p.c.empty, min(max, p.ceiling))
		if err != nil {
			memErr = err
			return &sliceMemory{} // fails the instantiation
		}
		pc.mems = append(pc.mems, m)
		return m
	}))
	// Start functions see the arguments and environment; nothing else of
	// a request exists yet.
	inst, err := p.c.linked.Instantiate(ctx, &wasip2.Context{Args: p.args, Env: p.env})
	if err != nil {
		return nil, errors.Join(err, memErr)
	}
	pc.inst = inst
	if p.warmup != "" && !p.unwarmed.Load() {
		if err := p.warm(ctx, inst); err != nil {
			_ = inst.Close(context.Background())
			return nil, err
		}
		if !p.checked.Load() {
			// Once: can a warmed instance answer another request? Some
			// cannot (componentize-js's engine answers one request an
			// instance): their pool serves unwarmed instances instead.
			err := p.warm(ctx, inst)
			_ = inst.Close(context.Background())
			switch {
			case err == nil:
				p.checked.Store(true)
			case !errors.Is(err, wasmbin.ErrNotReusable):
				return nil, err // cut short by the request it serves
			default:
				p.unwarmed.Store(true)
				p.c.e.log.Warn("warmup: a warmed instance of the component cannot answer another request; its instances start unwarmed",
					"module", p.c.digest, "warmup", p.warmup, "error", err)
			}
			return p.instantiate(ctx)
		}
	}
	if err := inst.Snapshot(); err != nil {
		_ = inst.Close(context.Background())
		return nil, err
	}
	for k, m := range pc.mems {
		img, shared, err := p.c.imageOf(k, m.buf[:m.size])
		if err == nil {
			err = m.rebase(img)
			if !shared {
				img.close() // the memory's reference keeps it
			}
		}
		if err != nil {
			_ = inst.Close(context.Background())
			return nil, err
		}
		pc.sizes = append(pc.sizes, m.size)
	}
	return pc, nil
}

// WarmupHeader is set on the request a component serves to warm up
// (HTTPRequest.Warmup), so that it can tell.
const WarmupHeader = "X-Wasmesh-Warmup"

// warm has a new instance serve a GET of p.warmup, with no body and no
// outbound calls, its response dropped, and then forget that request's
// host objects and handles, as a reset after any request does (a handle
// the guest kept in its memory is gone); the state it leaves is the one
// every request starts from. It runs within the context of the request
// that needed the instance. A warm-up that traps or sets no response is
// an error wrapping wasmbin.ErrNotReusable: the version is then served by
// fresh instances, as a module that cannot be reset is; one cut short by
// that request's deadline or caller is that request's failure alone.
func (p *componentPool) warm(ctx context.Context, inst *component.Instance) error {
	req := &wasip2.IncomingRequest{Method: "GET", PathWithQuery: p.warmup, Scheme: "http", Authority: "localhost",
		Header: http.Header{WarmupHeader: {"1"}}}
	out := &wasip2.ResponseOutparam{}
	inst.State = &wasip2.Context{Args: p.args, Env: p.env}
	_, err := inst.Call(ctx, p.c.handler, "handle", inst.NewObject(req), inst.NewObject(out))
	if err == nil && !out.Set() {
		err = ErrNoResponse
	}
	switch {
	case err != nil && (ctx.Err() != nil || pastDeadline(ctx)):
		// Cut short by the request it serves: that request's failure,
		// not the warm-up's.
		return fmt.Errorf("warm-up GET %s: %w", p.warmup, err)
	case err != nil:
		return fmt.Errorf("warm-up GET %s: %w: %w", p.warmup, err, wasmbin.ErrNotReusable)
	}
	inst.Settle()
	return nil
}

// pastDeadline says ctx's deadline has passed, which the instance's watch
// may have acted on before ctx's own timer did.
func pastDeadline(ctx context.Context) bool {
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// put keeps pc idle for the next request, or closes it. Its globals,
// handles and host objects are reset now (the request's are let go); its
// memories when it is taken again (get), with the faultMark the idle set
// takes now: what the request left in them stays until then, where no
// guest sees it.
func (p *componentPool) put(pc *pooledComponent, clean bool) {
	if !clean || pc.grew() || p.c.isClosed() {
		p.c.e.discarded.Add(1)
		_ = pc.inst.Close(context.Background())
		return
	}
	pc.inst.Reset()
	if !p.idle.put(pc, p.c.e.maxIdle) {
		_ = pc.inst.Close(context.Background())
	}
}

// grew says a memory grew past its size at instantiation.
func (pc *pooledComponent) grew() bool {
	for k, m := range pc.mems {
		if m.size != pc.sizes[k] {
			return true
		}
	}
	return false
}

// reset returns the memories of an instance put back idle to the state
// instantiation left them in, given the faultMark taken when its last
// request ended, or reports false when a memory grew.
func (pc *pooledComponent) reset(mark uint64) bool {
	if pc.grew() {
		return false
	}
	if len(pc.mems) == 0 {
		return true
	}
	faults, counted := faultsSince(mark)
	for _, m := range pc.mems {
		m.resetAt(faults, counted)
	}
	return true
}

func (c *components) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// trim closes the instances idle since before cutoff (their memories are
// unmapped, not kept: see cowMemory.rebased), and returns how many.
func (c *components) trim(cutoff time.Time) int {
	c.mu.Lock()
	pools := slices.Clone(c.pools)
	c.mu.Unlock()
	closed := 0
	for _, p := range pools {
		expired := p.idle.expire(cutoff)
		for _, pc := range expired {
			_ = pc.inst.Close(context.Background())
		}
		closed += len(expired)
	}
	return closed
}

// close closes the idle instances and drops the images; instances still
// serving are closed when they finish.
func (c *components) close() {
	c.mu.Lock()
	c.closed = true
	pools, images := c.pools, c.images
	c.pools, c.images = nil, nil
	c.mu.Unlock()
	for _, p := range pools {
		for _, pc := range p.idle.drain() {
			_ = pc.inst.Close(context.Background())
		}
	}
	for _, img := range images {
		if img != nil {
			img.close()
		}
	}
	c.empty.close()
}

package control

import (
	"bytes"
	"context"
	"time"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/modules/oci"
)

// The slow parts of a load or an edit, pulling an oci:// module (up to
// PullTimeout from a registry that does not answer) and compiling a module
// (seconds for a JavaScript engine), are done before it takes the
// controller's lock, into the store and the engine's cache, so that a
// rollback or a deploy does not wait behind them. The load does the same
// steps again under the lock, from the caches, and reports their errors;
// a pull that failed here fails the load without asking the registry again
// (prefetched.pullErrs). What was compiled here for a load or an edit that
// did not take it (refused, or replaced first) is released after it.

// prefetched is what a prefetch did: the config parsed (its Raw the
// bytes prefetched), the pulls that failed (by reference), the modules it
// compiled and the stamps of the path modules' files it read.
type prefetched struct {
	cfg      *config.Config
	pullErrs map[string]error
	compiled []string
	stamps   map[string]seqStamp // by absolute path
	slow     int                 // the slow steps (reads, pulls, compiles) the prefetch made
	began    time.Time           // when the prefetch of a load began: the load's time counts from there
	done     time.Time           // when it ended
}

// staleAfter is how long after the prefetch ended its stamps stand for
// the files: a load that took the lock later (behind another) stats them
// again. About what a load of a large config takes between its stat of a
// file and its swap, where a file changed is not seen either.
const staleAfter = 5 * time.Millisecond

// seqStamp is a stamp the prefetch took, after slow of its slow steps.
type seqStamp struct {
	pathStamp
	slow int
}

// prefetch pulls and compiles the modules a load of data needs and has
// not got. The first load (nothing serves, nothing waits), a config that
// does not parse and the one serving are left to the load: nil.
func (c *Controller) prefetch(ctx context.Context, data []byte) *prefetched {
	began := time.Now()
	hash := contentHash(data)
	if st := c.plane.Snapshot(); st == nil || st.Hash == hash {
		return nil
	}
	cfg, err := c.parser.Parse(c.opts.ConfigPath, data)
	if err != nil {
		return nil
	}
	engine := c.plane.Engine()
	store, err := modules.Open(cfg.Store, modules.Options{Validate: engine.Validate})
	if err != nil {
		return nil
	}
	pre := &prefetched{cfg: cfg, stamps: map[string]seqStamp{}, began: began}
	defer func() { pre.done = time.Now() }()
	known := c.known.Load().in(cfg.Store)
	var registry *oci.Client
	for _, s := range cfg.Services {
		for _, v := range s.Versions {
			if ctx.Err() != nil {
				return pre
			}
			if v.IsUpstream() {
				continue
			}
			var stamp pathStamp
			if v.Path != "" {
				stamp = statPath(v.AbsPath())
				pre.stamps[v.AbsPath()] = seqStamp{stamp, pre.slow}
			}
			if digest := knownDigest(known, v, stamp); digest != "" && engine.Compiled(digest) != nil {
				continue
			}
			pre.slow++ // a read at least follows; the stamps taken before may be stale by its end
			if v.IsOCI() && registry == nil {
				if registry, err = newRegistryClient(cfg); err != nil {
					return pre
				}
			}
			wasm, digest, err := c.moduleBytes(ctx, store, registry, v)
			if err != nil {
				if v.IsOCI() {
					if pre.pullErrs == nil {
						pre.pullErrs = map[string]error{}
					}
					pre.pullErrs[v.Module] = err
				}
				continue
			}
			if engine.Compiled(digest) == nil {
				if _, err := engine.Compile(setupLimit(ctx, s), digest, wasm); err == nil {
					pre.compiled = append(pre.compiled, digest)
				}
			}
		}
	}
	return pre
}

// prefetchRef pulls or compiles the module a deploy or promote of ref
// to service needs, before the edit takes the lock: an oci:// reference
// that names no version of the service is pulled, and its module's
// digest and pinned reference returned (the edit uses them rather than
// pulling again); a module in the store is compiled.
func (c *Controller) prefetchRef(ctx context.Context, service, ref string) (digest, pinned string, pre *prefetched, err error) {
	st := c.plane.Snapshot()
	if st == nil {
		return "", "", nil, nil
	}
	svc := st.Config.Services[service]
	if svc == nil || namesVersion(svc, ref) {
		return "", "", nil, nil // the edit says what is wrong, or has its module
	}
	pre = &prefetched{}
	switch {
	case oci.IsReference(ref):
		if digest, pinned, err = c.pullForRelease(ctx, st.Config, ref); err != nil {
			return "", "", nil, err
		}
		c.compileStored(setupLimit(ctx, svc), st.Config.Store, digest, pre)
		return digest, pinned, pre, nil
	case modules.IsDigest(ref):
		c.compileStored(setupLimit(ctx, svc), st.Config.Store, ref, pre)
	}
	return "", "", pre, nil
}

// prefetchSplit compiles the modules of versions (a split a rollback
// puts back) that the engine has released since they served.
func (c *Controller) prefetchSplit(ctx context.Context, store string, versions []*config.Version) *prefetched {
	pre := &prefetched{}
	for _, v := range versions {
		if v.Upstream == nil && v.Digest != "" {
			c.compileStored(ctx, store, v.Digest, pre)
		}
	}
	return pre
}

// setupLimit bounds the memory of the runs a compile or warm-up of a
// module of s makes (a reactor's initialisation) at s's memory limit.
func setupLimit(ctx context.Context, s *config.Service) context.Context {
	if s == nil {
		return ctx
	}
	return host.WithSetupMemoryLimit(ctx, s.Limits.Memory)
}

// compileStored compiles the module ref (a digest or prefix) names in the
// store at dir, unless the engine has it, and notes it in pre.
func (c *Controller) compileStored(ctx context.Context, dir, ref string, pre *prefetched) {
	engine := c.plane.Engine()
	if engine.Compiled(ref) != nil {
		return
	}
	store, err := modules.OpenExisting(dir, modules.Options{})
	if err != nil {
		return
	}
	if digest, wasm, err := store.Get(ref); err == nil && engine.Compiled(digest) == nil {
		if _, err := engine.Compile(ctx, digest, wasm); err == nil {
			pre.compiled = append(pre.compiled, digest)
		}
	}
}

// releasePrefetched releases the modules pre compiled that the config
// serving does not use (its load or edit was refused, or another replaced
// it), after the time a request of an earlier config may still run them
// (as releaseUnused waits), with the lock held, so that no load in
// progress has taken one of them.
func (c *Controller) releasePrefetched(pre *prefetched) {
	if pre == nil || len(pre.compiled) == 0 {
		return
	}
	wait := time.Second
	if st := c.plane.Snapshot(); st != nil {
		for _, s := range st.Config.Services {
			wait = max(wait, 3*s.Limits.Timeout+time.Second)
		}
	}
	time.AfterFunc(wait, func() { c.releaseIfUnused(pre.compiled) })
}

// namesVersion reports whether ref is the name or the digest of one of
// svc's versions.
func namesVersion(svc *config.Service, ref string) bool {
	for _, v := range svc.Versions {
		if (v.Name != "" && v.Name == ref) || v.Digest == ref {
			return true
		}
	}
	return false
}

// config is the config the prefetch parsed, if it was of data's bytes;
// nil otherwise (and for a nil pre).
func (pre *prefetched) config(data []byte) *config.Config {
	if pre == nil || pre.cfg == nil || !pre.of(data) {
		return nil
	}
	return pre.cfg
}

// of reports whether pre is the prefetch of the config data.
func (pre *prefetched) of(data []byte) bool {
	return pre != nil && pre.cfg != nil && bytes.Equal(pre.cfg.Raw, data)
}

// fresh is pre when the load that took the lock now may take its stamps
// for the files (those no slow step followed, stampOf): when the prefetch
// ended less than staleAfter ago; nil otherwise (or for a nil pre). A
// file rebuilt while the prefetch read, pulled or compiled others, or
// while the load waited for the lock, is seen by the load.
func (pre *prefetched) fresh() *prefetched {
	if pre == nil || time.Since(pre.done) >= staleAfter {
		return nil
	}
	return pre
}

// stampOf is the stamp of the file at path that fresh (a prefetch's, or
// nil) took with no slow step after it, or one taken now.
func stampOf(fresh *prefetched, path string) pathStamp {
	if fresh != nil {
		if s, ok := fresh.stamps[path]; ok && s.slow == fresh.slow {
			return s.pathStamp
		}
	}
	return statPath(path)
}

// pullErr is the error of the prefetch's pull of ref, nil if it did not
// fail (or pre is nil).
func (pre *prefetched) pullErr(ref string) error {
	if pre == nil {
		return nil
	}
	return pre.pullErrs[ref]
}

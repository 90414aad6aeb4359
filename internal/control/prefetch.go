package control

import (
	"context"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/modules/oci"
)

// The slow parts of a load or an edit, pulling an oci:// module (up to
// PullTimeout from a registry that does not answer) and compiling a module
// (seconds for a JavaScript engine), are done before it takes the
// controller's lock, into the store and the engine's cache, so that a
// rollback or a deploy does not wait behind them. The load does the same
// steps again under the lock, from the caches, and reports their errors:
// the steps here report none.

// prefetch pulls and compiles the modules a load of data needs and has
// not got. The first load (nothing serves, nothing waits), a config that
// does not parse and the one serving are left to the load.
func (c *Controller) prefetch(ctx context.Context, data []byte) {
	if st := c.plane.Snapshot(); st == nil || st.Hash == contentHash(data) {
		return
	}
	cfg, err := config.Parse(c.opts.ConfigPath, data)
	if err != nil {
		return
	}
	engine := c.plane.Engine()
	store, err := modules.Open(cfg.Store, modules.Options{Validate: engine.Validate})
	if err != nil {
		return
	}
	known := c.known.Load().in(cfg.Store)
	var registry *oci.Client
	for _, s := range cfg.Services {
		for _, v := range s.Versions {
			if ctx.Err() != nil {
				return
			}
			if v.IsUpstream() {
				continue
			}
			var stamp pathStamp
			if v.Path != "" {
				stamp = statPath(v.AbsPath())
			}
			if digest := knownDigest(known, v, stamp); digest != "" && engine.Compiled(digest) != nil {
				continue
			}
			if v.IsOCI() && registry == nil {
				if registry, err = newRegistryClient(cfg); err != nil {
					return
				}
			}
			if wasm, digest, err := c.moduleBytes(ctx, store, registry, v); err == nil {
				engine.Compile(ctx, digest, wasm) //nolint:errcheck // the load reports it
			}
		}
	}
}

// prefetchRef pulls or compiles the module a deploy or promote of ref
// to service needs, before the edit takes the lock: an oci:// reference
// that names no version of the service is pulled, and its module's
// digest and pinned reference returned (the edit uses them rather than
// pulling again); a module in the store is compiled.
func (c *Controller) prefetchRef(ctx context.Context, service, ref string) (digest, pinned string, err error) {
	st := c.plane.Snapshot()
	if st == nil {
		return "", "", nil
	}
	svc := st.Config.Services[service]
	if svc == nil || namesVersion(svc, ref) {
		return "", "", nil // the edit says what is wrong, or has its module
	}
	switch {
	case oci.IsReference(ref):
		if digest, pinned, err = c.pullForRelease(ctx, st.Config, ref); err != nil {
			return "", "", err
		}
		c.compileStored(ctx, st.Config.Store, digest)
		return digest, pinned, nil
	case modules.IsDigest(ref):
		c.compileStored(ctx, st.Config.Store, ref)
	}
	return "", "", nil
}

// prefetchSplit compiles the modules of versions (a split a rollback
// puts back) that the engine has released since they served.
func (c *Controller) prefetchSplit(ctx context.Context, store string, versions []*config.Version) {
	for _, v := range versions {
		if v.Upstream == nil && v.Digest != "" {
			c.compileStored(ctx, store, v.Digest)
		}
	}
}

// compileStored compiles the module ref (a digest or prefix) names in the
// store at dir, unless the engine has it.
func (c *Controller) compileStored(ctx context.Context, dir, ref string) {
	engine := c.plane.Engine()
	if engine.Compiled(ref) != nil {
		return
	}
	store, err := modules.OpenExisting(dir, modules.Options{})
	if err != nil {
		return
	}
	if digest, wasm, err := store.Get(ref); err == nil && engine.Compiled(digest) == nil {
		engine.Compile(ctx, digest, wasm) //nolint:errcheck // the edit's load reports it
	}
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

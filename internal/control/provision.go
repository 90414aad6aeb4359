package control

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/dataplane"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/modules/oci"
	"github.com/wasmesh/wasmesh/router"
)

// PullTimeout bounds the pull of one oci:// version during a load.
const PullTimeout = time.Minute

// provision builds a snapshot from config bytes without publishing it,
// and record, which records it once it serves: the colour table and the
// store's record of the config's modules, synced file writes in proportion
// to the config, which the new config does not wait for. c.mu held, by
// record too.
func (c *Controller) provision(ctx context.Context, data []byte) (_ *dataplane.Snapshot, record func(), err error) {
	pre := c.pre
	cfg := pre.config(data)
	if cfg == nil {
		pre = nil // the prefetch of other bytes
		if cfg, err = c.parser.Parse(c.opts.ConfigPath, data); err != nil {
			return nil, nil, err
		}
	}
	fresh := pre.fresh() // judged once, as the load takes the lock
	defer func() {
		if err != nil {
			err = &provisionError{err}
		}
	}()
	engine := c.plane.Engine()
	store, err := modules.Open(cfg.Store, modules.Options{Validate: engine.Validate})
	if err != nil {
		return nil, nil, err
	}
	versions := 0
	for _, s := range cfg.Services {
		versions += len(s.Versions)
	}
	// The maps by module are sized for a module a version, what most
	// configs have, rather than grown by doubling on the way.
	st := &dataplane.Snapshot{LoadedAt: time.Now(), Modules: make(map[string]*host.Module, versions), Peers: map[string]*identity.AllowList{}}
	for name, s := range cfg.Services {
		if len(s.AllowPeers) > 0 {
			if st.Peers[name], err = identity.ParseAllowPeers(s.AllowPeers); err != nil {
				return nil, nil, fmt.Errorf("services.%s: %w", name, err)
			}
		}
	}
	if len(cfg.LanePeers) > 0 {
		if st.LanePeers, err = identity.ParseAllowPeers(cfg.LanePeers); err != nil {
			return nil, nil, fmt.Errorf("lane_peers: %w", err)
		}
	}
	var registry *oci.Client // made at the first oci:// version
	policy, err := store.Policy()
	if err != nil {
		return nil, nil, err
	}
	paths := make(map[string]pathStamp, versions) // the path modules read or known in this load
	known := c.known.Load().in(cfg.Store)         // those of the last load, in the same store
	// served says whether the upstream version of digest d serves now:
	// the set made at a reload's first dns version (most configs have none).
	old := c.plane.Snapshot()
	var servedSet map[string]bool
	served := func(d string) bool {
		if servedSet == nil {
			servedSet = map[string]bool{}
			for _, s := range old.Config.Services {
				for _, ov := range s.Versions {
					if ov.Upstream != nil {
						servedSet[ov.Digest] = true
					}
				}
			}
		}
		return servedSet[d]
	}
	var serviceOf map[*config.Version]*config.Service // each version's, for setupLimit
	resolve := func(v *config.Version) (string, error) {
		if v.IsUpstream() { // no module: addressed by its endpoints
			d := v.Upstream.UpstreamDigest()
			// A reload that brings a name that does not resolve (a typo,
			// or a headless Service with no ready pod yet, which DNS
			// answers alike) serves 503s for it until it resolves: said
			// at once, as a warning, not only at its first request.
			if dns := v.Upstream.DNS; dns != nil && old != nil && !served(d) {
				if err := c.plane.CheckResolves(ctx, dns.Hostname()); err != nil {
					c.log.Warn("upstream name does not resolve: its version answers 503 until it does (resolved again every dns_interval)",
						"dns", dns.String(), "version", modules.Short(d), "error", err)
				}
			}
			return d, nil
		}
		// A module compiled already, by its digest or by a file unchanged
		// since it was read: nothing to read, hash or compile again.
		// The prefetch's stamp of a path module when it is fresh, else
		// taken now (stampOf).
		var stamp pathStamp
		if v.Path != "" {
			stamp = stampOf(fresh, v.AbsPath())
		}
		if digest := knownDigest(known, v, stamp); digest != "" && (v.Path != "" || storeHas(store, digest)) {
			if mod := engine.Compiled(digest); mod != nil {
				if policy.RequireSigned {
					if err := store.CheckPolicy(digest); err != nil {
						return "", err
					}
				}
				if v.Path != "" {
					stamp.digest = digest
					paths[v.AbsPath()] = stamp
				}
				st.Modules[digest] = mod
				return digest, nil
			}
		}
		if v.IsOCI() && registry == nil {
			if registry, err = newRegistryClient(cfg); err != nil {
				return "", err
			}
		}
		if err := pre.pullErr(v.Module); v.IsOCI() && err != nil {
			return "", err // the prefetch's pull failed moments ago: not asked again with c.mu held
		}
		wasm, digest, err := c.moduleBytes(ctx, store, registry, v)
		if err != nil {
			return "", err
		}
		if serviceOf == nil { // made at the load's first compile: most reloads compile nothing
			serviceOf = map[*config.Version]*config.Service{}
			for _, s := range cfg.Services {
				for _, sv := range s.Versions {
					serviceOf[sv] = s
				}
			}
		}
		setup := setupLimit(ctx, serviceOf[v]) // the memory a module's set-up may take
		mod, err := engine.Compile(setup, digest, wasm)
		if err != nil {
			return "", err
		}
		if !mod.Reusable && !c.opts.FreshInstances {
			c.log.Info("module's instances cannot be reset: every request creates one", "module", digest, "why", mod.NotReusable)
		}
		// Before the version takes traffic: one synthetic run sizes the
		// memory its reused instances start with.
		if err := engine.Warm(setup, mod); err != nil {
			c.log.Warn("warm-up run failed: instances start with the module's initial memory", "module", digest, "error", err)
		}
		st.Modules[digest] = mod
		if v.Path != "" && stamp.known() {
			stamp.digest = digest
			paths[v.AbsPath()] = stamp
		}
		return digest, nil
	}
	if st.Table, err = router.NewTable(cfg, resolve); err != nil {
		return nil, nil, err
	}
	if testHookResolved != nil {
		testHookResolved()
	}
	c.known.Store(&knownPaths{store: cfg.Store, stamps: paths})
	st.Config = st.Table.Config() // with every version's digest
	if err := memoriesFit(st); err != nil {
		return nil, nil, err
	}
	if err := resolveLinks(st); err != nil {
		return nil, nil, err
	}
	var saveColours func()
	if c.opts.Colours {
		st.Colours, saveColours = c.assignColours(st.Config)
	}
	return st, func() {
		c.setRefsLocked(store, st) // first: until it is written, artifact rm may take a module that serves
		if saveColours != nil {
			saveColours()
		}
	}, nil
}

// setRefsLocked records in store, as the config's, the digests of st's
// modules and of those a rollback may bring back (the history), so that
// `artifact rm` refuses them. c.mu held.
func (c *Controller) setRefsLocked(store *modules.Store, st *dataplane.Snapshot) {
	if c.opts.RecordNothing {
		return
	}
	set := make(map[string]struct{}, len(st.Modules))
	for d := range st.Modules {
		set[d] = struct{}{}
	}
	for _, splits := range c.history {
		for _, vs := range splits {
			for _, v := range vs {
				if v.Upstream == nil && v.Digest != "" {
					set[v.Digest] = struct{}{}
				}
			}
		}
	}
	// SetRefs compares with the file, which may have changed since the
	// last load (removed by hand, written by another process): it writes
	// only what differs.
	if err := store.SetRefs(c.opts.ConfigPath, slices.Sorted(maps.Keys(set))); err != nil {
		c.log.Warn("could not record the config's artifacts in the store", "error", err)
	}
}

// refreshRefsLocked is setRefsLocked for the snapshot serving, after the
// history changed. c.mu held.
func (c *Controller) refreshRefsLocked() {
	st := c.plane.Snapshot()
	store, err := modules.Open(st.Config.Store, modules.Options{})
	if err != nil {
		c.log.Warn("could not record the config's artifacts in the store", "error", err)
		return
	}
	c.setRefsLocked(store, st)
}

// newRegistryClient is the client that pulls a config's oci:// versions,
// with its registries' settings. Credentials come from the Docker config
// file, read again at each load.
func newRegistryClient(cfg *config.Config) (*oci.Client, error) {
	return oci.New(oci.Options{PlainHTTP: cfg.PlainHTTPRegistries()})
}

// pull brings the oci:// reference ref into store, within PullTimeout, and
// logs what a registry sent.
func (c *Controller) pull(ctx context.Context, store *modules.Store, registry *oci.Client, ref string) (oci.Pulled, error) {
	r, err := oci.ParseReference(ref)
	if err != nil {
		return oci.Pulled{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, PullTimeout)
	defer cancel()
	got, err := registry.Pull(ctx, store, r)
	if err == nil && !got.Cached {
		c.log.Info("pulled module", "ref", got.Ref.String(), "module", got.Module, "signatures", got.Signatures)
	}
	return got, err
}

// moduleBytes returns a version's module and its full digest: a `path:`
// file is put into the store first (so it can be pinned and rolled back to
// by digest); an `oci://` module is pulled into the store unless the
// store's index shows that its manifest was pulled before. The digest is
// the one the store computed as it stored the bytes or read them back.
func (c *Controller) moduleBytes(ctx context.Context, store *modules.Store, registry *oci.Client, v *config.Version) (wasm []byte, digest string, err error) {
	switch {
	case v.IsOCI():
		got, err := c.pull(ctx, store, registry, v.Module)
		if err != nil {
			return nil, "", err
		}
		digest = got.Module
	case v.Path == "":
		digest = v.Module
	default:
		wasm, err := modules.ReadFile(v.AbsPath())
		if err != nil {
			return nil, "", err
		}
		digest, err := store.PutBytes(ctx, wasm)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", v.Path, err)
		}
		return wasm, digest, nil
	}
	digest, wasm, err = store.Get(digest)
	return wasm, digest, err
}

// pathStamp is what a path module's file was when it was read: while the
// file is the same (device, inode, size, modification and change times),
// so is its digest.
type pathStamp struct {
	size, mtime, ctime int64
	dev, ino           uint64
	digest             string
}

func (p pathStamp) known() bool { return p.mtime != 0 }

// same reports whether p and q stamp the same file content.
func (p pathStamp) same(q pathStamp) bool {
	return p.known() && p.size == q.size && p.mtime == q.mtime && p.ctime == q.ctime && p.dev == q.dev && p.ino == q.ino
}

// statPath is the file at path's stamp, without a digest; the zero stamp
// when it cannot be read.
func statPath(path string) pathStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return pathStamp{}
	}
	p := pathStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		p.ctime = sys.Ctim.Nano()
		p.dev, p.ino = uint64(sys.Dev), sys.Ino
	}
	return p
}

// knownDigest is v's module's digest when it is known without reading
// it: a full digest, or a path whose file has the stamp it had in known
// (the last load's). "" when it is not.
func knownDigest(known map[string]pathStamp, v *config.Version, stamp pathStamp) string {
	switch {
	case v.Path != "":
		if was, ok := known[v.AbsPath()]; ok && stamp.same(was) {
			return was.digest
		}
	case strings.HasPrefix(v.Module, modules.Prefix) && len(v.Module) == len(modules.Prefix)+64: // a full digest
		return v.Module
	}
	return ""
}

// storeHas reports whether the store holds the module of digest (a full
// one).
func storeHas(store *modules.Store, digest string) bool {
	_, err := store.Resolve(digest)
	return err == nil
}

// provisionError is a load's failure after its config parsed: a module
// missing or refused, a registry that did not answer, the store. A later
// try of the same bytes may succeed.
type provisionError struct{ err error }

// Retryable reports whether a load refused with err may succeed with the
// same bytes later: the config parsed, and a module could not be read,
// pulled or compiled, a registry did not answer (what a watched file's
// failed load is tried again for). A config that is wrong is not.
func Retryable(err error) bool {
	var pe *provisionError
	return errors.As(err, &pe)
}

func (e *provisionError) Error() string { return e.err.Error() }
func (e *provisionError) Unwrap() error { return e.err }

// memoriesFit refuses a version whose module or component needs more
// memory at start than its service's limits.memory: every request would
// fail.
func memoriesFit(st *dataplane.Snapshot) error {
	for _, s := range st.Config.Services {
		for _, v := range s.Versions {
			mod := st.Modules[v.Digest]
			if mod == nil {
				continue
			}
			if need := mod.MinMemory(); need > uint64(s.Limits.Memory) {
				return v.ErrorAt(fmt.Errorf("%s needs %d bytes of memory at start, more than the service's limits.memory of %d",
					v.Digest[:min(len(v.Digest), 19)], need, s.Limits.Memory))
			}
		}
	}
	return nil
}

// testHookResolved, when set by a test, is called by a load once its
// versions are resolved (their modules compiled or taken), before it is
// swapped in.
var testHookResolved func()

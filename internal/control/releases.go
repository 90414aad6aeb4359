package control

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/atomicfile"
	"github.com/wasmesh/wasmesh/internal/dataplane"
	"github.com/wasmesh/wasmesh/modules"
	"github.com/wasmesh/wasmesh/modules/oci"
)

// ErrNotFound is wrapped by release errors for an unknown service or version,
// and by lane edits for an unknown lane.
var ErrNotFound = errors.New("not found")

// ErrExists is wrapped by the error of creating a lane that exists.
var ErrExists = errors.New("already exists")

// ErrConflict is wrapped by the error of an edit that lost to another
// made meanwhile where the config comes from (Options.Write).
var ErrConflict = errors.New("conflict")

// ErrUnavailable is wrapped by the error of an edit that the config's
// source (Options.Write) could not take now: it did not answer, or
// answered that it could not (a network error, a timeout, a 5xx). The
// same edit may succeed later.
var ErrUnavailable = errors.New("the config's source did not answer")

// ErrExternal is wrapped by the errors of edits and reloads of the file
// when the config comes from elsewhere (Options.External).
var ErrExternal = errors.New("the config is not the file's")

// external is the error of an edit of the file when the config comes from
// elsewhere, nil when it does not.
func (c *Controller) external() error {
	if c.opts.External == "" {
		return nil
	}
	return fmt.Errorf("%w: it comes from %s; change it there", ErrExternal, c.opts.External)
}

// maxHistory is how many earlier splits per service rollback remembers.
const maxHistory = 32

// Deploy adds the module ref names (a digest or prefix in the store, or an
// oci:// reference, which is pulled into the store first and written to the
// config pinned to its manifest digest) to a service at weight percent,
// scaling the other versions down in proportion; if it already is a
// version, its weight changes. The config file is rewritten and reloaded;
// it returns the service's new versions.
func (c *Controller) Deploy(ctx context.Context, service, ref string, weight int, name string) ([]*config.Version, error) {
	return c.deployRecord(ctx, service, ref, weight, name, true)
}

// Shift sets the weight of the version ref names as Deploy does, for the
// release controller: the guard does not refuse it, and rollback does not
// remember the split it replaces (a release's steps are not splits to go
// back to).
func (c *Controller) Shift(ctx context.Context, service, ref string, weight int) ([]*config.Version, error) {
	return c.deployRecord(ctx, service, ref, weight, "", false)
}

// Settled returns the snapshot being served once an edit in progress (a
// deploy, promote or rollback that its guard let through) has been
// applied: a release that starts reads its split after that.
func (c *Controller) Settled() *dataplane.Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.plane.Snapshot()
}

// SetWeights gives each version of service the weight weights has for its
// digest (those it has not keep theirs), as a release ending restores the
// split it started from; the guard does not refuse it.
func (c *Controller) SetWeights(ctx context.Context, service string, weights map[string]int) ([]*config.Version, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, svc, err := c.serviceLocked(service)
	if err != nil {
		return nil, err
	}
	next := make([]*config.Version, len(svc.Versions))
	for i, v := range svc.Versions {
		cp := *v
		if w, ok := weights[v.Digest]; ok {
			cp.Weight = w
		}
		next[i] = &cp
	}
	return c.applyLocked(ctx, service, next, false)
}

// Guard makes Deploy, Promote and Rollback of a service fail with the
// error the guards return for it (a release in progress); nil lets them
// all. early is asked first, before the edit's slow steps (a pull, a
// compile) so that a refused edit does not take them; locked is asked with
// the controller's lock held, in the same hold as the change it allows, so
// that a release that starts meanwhile (its guard then refusing) sees the
// change applied (Settled) or refuses it. locked should need no network
// (it holds up every load and edit); neither may call the controller.
func (c *Controller) Guard(early, locked func(service string) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.guard, c.guardLocked = early, locked
}

// GuardLanes makes SetLane and DeleteLane of a lane fail with the error
// locked returns for it (a release moving its candidate in the lane),
// asked with the controller's lock held; nil lets them all. It should need
// no network and may not call the controller.
func (c *Controller) GuardLanes(locked func(lane string) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.laneGuardLocked = locked
}

// guardedEarly is the early guard's error for an edit of service.
func (c *Controller) guardedEarly(service string) error {
	c.mu.Lock()
	guard := c.guard
	c.mu.Unlock()
	if guard == nil {
		return nil
	}
	return guard(service)
}

// guardedLocked is the locked guard's error for an edit of service, c.mu
// held.
func (c *Controller) guardedLocked(service string) error {
	if c.guardLocked == nil {
		return nil
	}
	return c.guardLocked(service)
}

func (c *Controller) deployRecord(ctx context.Context, service, ref string, weight int, name string, record bool) ([]*config.Version, error) {
	if weight < 0 || weight > 100 {
		return nil, fmt.Errorf("weight must be between 0 and 100, got %d", weight)
	}
	return c.release(ctx, service, record, func(cur []*config.Version, digest, module string) ([]*config.Version, error) {
		// A version the service has keeps its place and its source (a
		// path stays a path, an oci:// reference where replicas pull
		// it); a new one comes last.
		at := slices.IndexFunc(cur, func(v *config.Version) bool { return v.Digest == digest })
		target := &config.Version{Module: module, Digest: digest, Name: name}
		others := slices.Clone(cur)
		if at >= 0 {
			cp := *cur[at]
			cp.Name = cmp.Or(name, cp.Name)
			target, others = &cp, slices.Delete(others, at, at+1)
		}
		if err := scaleWeights(others, 100-weight); err != nil {
			return nil, err
		}
		target.Weight = weight
		if at < 0 {
			return append(others, target), nil
		}
		return slices.Insert(others, at, target), nil
	}, ref)
}

// Promote sends all of a service's traffic to the version ref names,
// removing the others from the config (rollback brings them back).
func (c *Controller) Promote(ctx context.Context, service, ref string) ([]*config.Version, error) {
	return c.release(ctx, service, true, func(cur []*config.Version, digest, _ string) ([]*config.Version, error) {
		for _, v := range cur {
			if v.Digest == digest {
				// The version as it is written (a development path: version
				// stays one), a digest prefix made whole.
				module := digest
				switch {
				case v.Path != "":
					module = ""
				case v.IsOCI():
					module = v.Module
				}
				return []*config.Version{{Module: module, Path: v.Path, Digest: digest, Name: v.Name, DSCP: v.DSCP, Weight: 100, Upstream: v.Upstream}}, nil
			}
		}
		return nil, fmt.Errorf("%w: %s is not a version of service %q (deploy it first)", ErrNotFound, modules.Short(digest), service)
	}, ref)
}

// Rollback restores the service's split from before its last deploy or
// promote made by this gateway process; repeated, it goes further back.
func (c *Controller) Rollback(ctx context.Context, service string) ([]*config.Version, error) {
	if err := c.guardedEarly(service); err != nil {
		return nil, err
	}
	c.mu.Lock()
	hist := c.history[service] // its modules compiled first, if released
	c.mu.Unlock()
	if st := c.plane.Snapshot(); st != nil && len(hist) > 0 {
		defer c.releasePrefetched(c.prefetchSplit(setupLimit(ctx, st.Config.Services[service]), st.Config.Store, hist[len(hist)-1]))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, _, err := c.serviceLocked(service); err != nil {
		return nil, err
	}
	if err := c.guardedLocked(service); err != nil {
		return nil, err
	}
	if err := c.refusedEditLocked(); err != nil {
		return nil, err
	}
	hist = c.history[service]
	if len(hist) == 0 {
		return nil, fmt.Errorf("%w: no earlier split of service %q recorded since this gateway started", ErrNotFound, service)
	}
	// Popped before the load, whose refs then name what is left of the
	// history (the split restored is the config's).
	c.history[service] = hist[:len(hist)-1]
	vs, err := c.applyLocked(ctx, service, hist[len(hist)-1], false)
	if err != nil {
		c.history[service] = hist
		c.refreshRefsLocked()
		return nil, err
	}
	return vs, nil
}

// serviceLocked is the snapshot being served and its service.
func (c *Controller) serviceLocked(service string) (*dataplane.Snapshot, *config.Service, error) {
	st := c.plane.Snapshot()
	if st == nil {
		return nil, nil, errors.New("no config loaded")
	}
	svc, ok := st.Config.Services[service]
	if !ok {
		names := slices.Sorted(maps.Keys(st.Config.Services))
		return nil, nil, fmt.Errorf("%w: service %q (the config's services: %s)", ErrNotFound, service, strings.Join(names, ", "))
	}
	return st, svc, nil
}

// release resolves ref and applies change to a service's versions, with the
// module's digest and what the config should say of it: the digest, or
// for an oci:// ref, the reference pinned to its manifest. An operator's
// edit (record) is one the guard may refuse, and keeps the split it
// replaces for rollback; a release's own step is neither.
func (c *Controller) release(ctx context.Context, service string, record bool, change func(cur []*config.Version, digest, module string) ([]*config.Version, error), ref string) ([]*config.Version, error) {
	if record {
		if err := c.guardedEarly(service); err != nil {
			return nil, err
		}
	}
	pulled, pinned, pre, err := c.prefetchRef(ctx, service, ref)
	if err != nil {
		return nil, err
	}
	defer c.releasePrefetched(pre)
	c.mu.Lock()
	defer c.mu.Unlock()
	st, svc, err := c.serviceLocked(service)
	if err != nil {
		return nil, err
	}
	if record {
		if err := c.guardedLocked(service); err != nil {
			return nil, err
		}
		if err := c.refusedEditLocked(); err != nil {
			return nil, err
		}
	}
	digest, module := "", ""
	// A version's name works as well as its digest or a prefix of it (an
	// upstream's is in no store); the service's own versions first, and
	// one that two of them could be is said to be.
	var matched []*config.Version
	prefix, isPrefix := "", modules.IsDigest(ref)
	if isPrefix {
		prefix = modules.Prefix + strings.TrimPrefix(strings.ToLower(ref), modules.Prefix)
		// As the store's: at least MinPrefix hex digits (fewer are refused
		// there, naming the rule).
		isPrefix = len(prefix)-len(modules.Prefix) >= modules.MinPrefix
	}
	for _, v := range svc.Versions {
		if v.Name != "" && v.Name == ref || v.Digest == ref || isPrefix && strings.HasPrefix(v.Digest, prefix) {
			matched = append(matched, v)
		}
	}
	switch len(matched) {
	case 0:
	case 1:
		digest = matched[0].Digest
	default:
		var which []string
		for _, v := range matched {
			which = append(which, cmp.Or(v.Name, "-")+"="+modules.Short(v.Digest))
		}
		return nil, fmt.Errorf("%q is ambiguous in service %q: it names or begins the digest of %s; give more of the digest", ref, service, strings.Join(which, " and "))
	}
	if digest == "" && oci.IsReference(ref) {
		digest, module = pulled, pinned
		if digest == "" {
			if digest, module, err = c.pullForRelease(ctx, st.Config, ref); err != nil {
				return nil, err
			}
		}
	}
	if digest == "" && !modules.IsDigest(ref) {
		names := make([]string, 0, len(svc.Versions))
		for _, v := range svc.Versions {
			names = append(names, cmp.Or(v.Name, modules.Short(v.Digest)))
		}
		return nil, fmt.Errorf("%w: %q names no version of service %q (its versions: %s) and is no digest", ErrNotFound, ref, service, strings.Join(names, ", "))
	}
	if digest == "" {
		store, err := modules.Open(st.Config.Store, modules.Options{})
		if err != nil {
			return nil, err
		}
		if digest, err = store.Resolve(ref); err != nil {
			return nil, err
		}
	}
	if module == "" {
		module = digest
	}
	next, err := change(svc.Versions, digest, module)
	if err != nil {
		return nil, err
	}
	return c.applyLocked(ctx, service, next, record)
}

// applyLocked writes versions into the service's part of the config file,
// reloads, and when record is set remembers the split it replaced for
// rollback. On failure neither the running config nor the file changes.
func (c *Controller) applyLocked(ctx context.Context, service string, versions []*config.Version, record bool) ([]*config.Version, error) {
	st := c.plane.Snapshot()
	if st == nil || st.Config.Services[service] == nil {
		return nil, fmt.Errorf("%w: service %q is not in the active config", ErrNotFound, service)
	}
	prev := st.Config.Services[service].Versions
	if sameSplit(prev, versions) {
		// Nothing to change: not a step a rollback would undo (the refs
		// follow a rollback's history, popped all the same).
		c.refreshRefsLocked()
		return prev, nil
	}
	data, err := config.SetVersions(st.Config.Raw, service, forFile(versions))
	if err != nil {
		return nil, err
	}
	before := c.history[service]
	if record {
		// Recorded before the load, so that its refs keep prev's modules
		// (a version promoted away from stays in the store).
		hist := append(slices.Clip(before), prev)
		if len(hist) > maxHistory {
			hist = hist[1:]
		}
		c.history[service] = hist
	}
	if err := c.commitLocked(ctx, st, data); err != nil {
		if record {
			c.history[service] = before
			c.refreshRefsLocked()
		}
		return nil, err
	}
	return c.plane.Snapshot().Config.Services[service].Versions, nil // the load logged the change
}

// commitLocked loads data, an edit of st's config, and writes it to the
// config file. On failure neither the running config nor the file changes.
func (c *Controller) commitLocked(ctx context.Context, st *dataplane.Snapshot, data []byte) error {
	c.operating = true
	defer func() { c.operating = false }()
	if c.opts.External != "" && c.opts.Write != nil {
		// Checked here first (nothing is written that would be refused),
		// then written where the config comes from, then loaded.
		if _, err := c.parser.Parse(c.opts.ConfigPath, data); err != nil {
			return err
		}
		if err := c.opts.Write(ctx, st.Config.Raw, data); err != nil {
			return err
		}
		return c.loadLocked(ctx, data, false)
	}
	if err := c.external(); err != nil {
		return err
	}
	c.keepEditLocked(st)
	// The file is written only if the edit loads: its failure is the
	// caller's answer, not the config's last error. (Written to an
	// external source first, above, the edit is what the source holds:
	// its failure is the config's.)
	c.editing = true
	defer func() { c.editing = false }()
	// Written (not yet in place) before the load, so that a file that
	// cannot be written (a read-only ConfigMap) refuses the change before
	// it serves a request.
	staged, err := stageConfig(c.opts.ConfigPath, data)
	if err != nil {
		return fmt.Errorf("write %s: %w", c.opts.ConfigPath, err)
	}
	if err := c.loadLocked(ctx, data, false); err != nil {
		staged.Abort()
		return err
	}
	if err := staged.Commit(); err != nil {
		// Put the old config back in service so that file and gateway agree.
		if rerr := c.loadLocked(ctx, st.Config.Raw, false); rerr != nil {
			c.log.Error("could not restore the previous config", "error", rerr)
		}
		return fmt.Errorf("write %s: %w", c.opts.ConfigPath, err)
	}
	return nil
}

// refusedEdit is the config file's content and the failed load when the
// file holds an edit whose load failed (it differs from the config st
// serves); nil when its last load did not fail (an edit not loaded yet,
// or bytes given to Load, are not refused edits) or it comes from
// elsewhere.
func (c *Controller) refusedEdit(st *dataplane.Snapshot) ([]byte, *LoadError) {
	failed := c.lastErr.Load()
	if failed == nil || !failed.File || c.opts.External != "" || st == nil {
		return nil, nil
	}
	file, err := os.ReadFile(c.opts.ConfigPath)
	if err != nil || bytes.Equal(file, st.Config.Raw) {
		return nil, nil
	}
	return file, failed
}

// refusedEditLocked refuses an operator's edit of the file (deploy,
// promote, rollback, lanes) while it holds a refused edit: the edit is
// made to the config serving and would write over it, losing it.
// Editable is nil, or, when the config file holds an edit that was
// refused, the error an operator's change (a deploy, a lane, a release's
// start) is refused with: it would write over the edit.
func (c *Controller) Editable() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refusedEditLocked()
}

func (c *Controller) refusedEditLocked() error {
	if _, failed := c.refusedEdit(c.plane.Snapshot()); failed != nil {
		return fmt.Errorf("%w: %s holds an edit that was refused (%v); this change would write over it: fix or revert the edit first (wasmesh status shows it)",
			ErrConflict, c.opts.ConfigPath, failed.Err)
	}
	return nil
}

// keepEditLocked copies the config file to FILE.refused when it holds a
// refused edit that a release's own step (which is not refused: a
// rollback of a failing candidate must go through) is about to write
// over, and to FILE.unloaded when it holds an edit not loaded yet (the
// watch's load of it waits on a pull or a compile, or has not begun) that
// an operation is about to write over; and says so.
func (c *Controller) keepEditLocked(st *dataplane.Snapshot) {
	kept, what := c.opts.ConfigPath+".refused", "refused edit"
	file, failed := c.refusedEdit(st)
	if failed == nil {
		var err error
		if file, err = os.ReadFile(c.opts.ConfigPath); err != nil || st == nil || bytes.Equal(file, st.Config.Raw) {
			return
		}
		kept, what = c.opts.ConfigPath+".unloaded", "edit not loaded yet"
	}
	if err := os.WriteFile(kept, file, 0o600); err != nil {
		c.log.Error("an operation writes over the config file's "+what+", which could not be kept", "file", c.opts.ConfigPath, "error", err)
		return
	}
	c.log.Warn("an operation writes over the config file's "+what+": the edit is kept beside it, to be applied again", "file", c.opts.ConfigPath, "kept", kept)
}

// forFile copies versions for SetVersions, keeping development `path:`
// versions as paths (re-read on every reload) rather than pinning them.
func forFile(vs []*config.Version) []*config.Version {
	out := make([]*config.Version, len(vs))
	for i, v := range vs {
		c := *v
		if c.Path != "" {
			c.Digest = ""
		}
		out[i] = &c
	}
	return out
}

// sameSplit reports whether a and b are the same versions with the same
// weights, names and settings, in the same order.
func sameSplit(a, b []*config.Version) bool {
	return slices.EqualFunc(a, b, func(x, y *config.Version) bool {
		return x.Digest == y.Digest && x.Weight == y.Weight && x.Name == y.Name && x.DSCP == y.DSCP &&
			x.Module == y.Module && x.Path == y.Path && (x.Upstream == nil) == (y.Upstream == nil)
	})
}

// scaleWeights sets the weights of vs to sum to total, in proportion to
// their current weights (largest remainders get the rounding).
func scaleWeights(vs []*config.Version, total int) error {
	sum := 0
	for _, v := range vs {
		sum += v.Weight
	}
	if len(vs) == 0 {
		if total != 0 {
			return fmt.Errorf("the new version is the only one: its weight must be 100, not %d", 100-total)
		}
		return nil
	}
	if sum == 0 {
		if total != 0 {
			return fmt.Errorf("the other versions all have weight 0: nothing to scale to %d%%", total)
		}
		return nil
	}
	given, rems := 0, make([]int, len(vs))
	scaled := make([]*config.Version, len(vs))
	for i, v := range vs {
		c := *v
		c.Weight = v.Weight * total / sum
		rems[i] = v.Weight * total % sum
		given += c.Weight
		scaled[i] = &c
	}
	for given < total {
		best := 0
		for i := range rems {
			if rems[i] > rems[best] {
				best = i
			}
		}
		scaled[best].Weight++
		rems[best] = -1
		given++
	}
	copy(vs, scaled)
	return nil
}

func describe(vs []*config.Version) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprintf("%s=%d%%", modules.Short(v.Digest), v.Weight)
	}
	return out
}

// stageConfig stages the replacement of path by data, keeping the file's mode.
func stageConfig(path string, data []byte) (*atomicfile.Staged, error) {
	return atomicfile.Stage(path, data, modeOf(path, 0o644), "")
}

// modeOf is the permissions of the file at path, def when it cannot be
// read.
func modeOf(path string, def os.FileMode) os.FileMode {
	if fi, err := os.Stat(path); err == nil {
		return fi.Mode().Perm()
	}
	return def
}

// pullForRelease pulls an oci:// reference into the config's store, as a
// load would, and returns the module's digest and the reference pinned to
// the manifest it got (a tag is resolved once, here).
func (c *Controller) pullForRelease(ctx context.Context, cfg *config.Config, ref string) (digest, pinned string, err error) {
	store, err := modules.Open(cfg.Store, modules.Options{Validate: c.plane.Engine().Validate})
	if err != nil {
		return "", "", err
	}
	registry, err := newRegistryClient(cfg)
	if err != nil {
		return "", "", err
	}
	got, err := c.pull(ctx, store, registry, ref)
	if err != nil {
		return "", "", err
	}
	return got.Module, got.Ref.String(), nil
}

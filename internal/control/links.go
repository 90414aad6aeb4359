package control

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/host"
	"github.com/wasmesh/wasmesh/internal/component"
	"github.com/wasmesh/wasmesh/internal/dataplane"
	"github.com/wasmesh/wasmesh/modules"
)

// resolveLinks checks the typed calls of a config about to be served and
// records where they go (Snapshot.Links): every interface other than
// WASI's that a component version imports is named by its service's
// links, and every version of the service they name is a component that
// exports it with the same types, function by function, without
// resources. A config that fails is refused, saying both sides' types.
func resolveLinks(st *dataplane.Snapshot) error {
	cfg := st.Config
	// A library serves links only: nothing routes a request to it.
	for _, r := range cfg.Routes {
		for _, v := range cfg.Services[r.Service].Versions {
			if mod := st.Modules[v.Digest]; mod != nil && mod.IsLibrary() {
				if why := mod.NotHandler(); why != "" {
					return fmt.Errorf("routes[%d] leads to service %s, whose version %s is not a wasi:http handler: %s",
						r.Index, r.Service, versionName(v), why)
				}
				return fmt.Errorf("routes[%d] leads to service %s, whose version %s is a library (it exports %s, no wasi:http/incoming-handler): only links reach it",
					r.Index, r.Service, versionName(v), strings.Join(slices.Sorted(maps.Keys(mod.LinkExports())), ", "))
			}
		}
	}
	st.Links = map[string]map[string]string{}
	for _, name := range cfg.ServiceNames() {
		s := cfg.Services[name]
		for _, v := range s.Versions {
			mod := st.Modules[v.Digest]
			if mod == nil {
				continue // an upstream
			}
			imports := mod.LinkImports()
			for _, iface := range slices.Sorted(maps.Keys(imports)) {
				at := fmt.Sprintf("services.%s: version %s", name, versionName(v))
				to, ok := linkTarget(s.Links, iface)
				if !ok {
					return fmt.Errorf("%s imports %s, which the service's links do not name (links: { %q: SERVICE })", at, iface, strings.SplitN(iface, "@", 2)[0])
				}
				if err := checkExporter(st, cfg.Services[to], iface, imports[iface]); err != nil {
					return fmt.Errorf("%s imports %s, linked to service %s: %w", at, iface, to, err)
				}
				if st.Links[name] == nil {
					st.Links[name] = map[string]string{}
				}
				st.Links[name][iface] = to
			}
		}
	}
	return nil
}

// checkExporter checks that every version of svc exports iface with the
// functions want, of the same types.
func checkExporter(st *dataplane.Snapshot, svc *config.Service, iface string, want map[string]host.LinkFunc) error {
	for _, v := range svc.Versions {
		mod := st.Modules[v.Digest]
		if mod == nil {
			return fmt.Errorf("its version %s is an upstream; a link leads to components", versionName(v))
		}
		have, ok := mod.LinkExports()[iface]
		if !ok {
			return fmt.Errorf("its version %s does not export %s", versionName(v), iface)
		}
		for _, fn := range slices.Sorted(maps.Keys(want)) {
			w := want[fn]
			h, ok := have[fn]
			switch {
			case w.Resources:
				return fmt.Errorf("%s passes a resource (%s): resources do not cross links", fn, w.Signature)
			case !ok:
				return fmt.Errorf("its version %s exports no function %s in %s (the import: %s %s)", versionName(v), fn, iface, fn, w.Signature)
			case h.Types != w.Types:
				return fmt.Errorf("the types of %s differ: the import is %s %s, version %s exports %s %s", fn, fn, w.Signature, versionName(v), fn, h.Signature)
			}
		}
	}
	return nil
}

// linkTarget is the service links name for iface (as component.Interface
// gives it): a key without a version names every version of the
// interface, one with a version those semver-compatible with it.
func linkTarget(links map[string]string, iface string) (string, bool) {
	base := strings.SplitN(iface, "@", 2)[0]
	for key, to := range links {
		kbase, _, versioned := strings.Cut(key, "@")
		if kbase == base && (!versioned || component.Interface(key) == iface) {
			return to, true
		}
	}
	return "", false
}

func versionName(v *config.Version) string {
	if v.Name != "" {
		return v.Name
	}
	return modules.Short(v.Digest)
}

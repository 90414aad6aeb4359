package router

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/wasmesh/wasmesh/config"
)

// Resolve is called once per version to turn Module/Path into a full digest
// "sha256:<64 hex>". An error is reported with the version's file:line and
// field, and stays reachable through errors.Is/As.
type Resolve func(v *config.Version) (digest string, err error)

// Table is an immutable routing table, safe for concurrent use.
type Table struct {
	cfg    *config.Config
	routes []*config.Route   // in precedence order
	svcs   []*config.Service // svcs[i] serves routes[i]
	lanes  map[string]*Lane
	sorted []*Lane // lanes by name
	byPath pathIndex
}

// pathIndex finds the routes whose path match a request's path can
// satisfy without trying every route: positions in routes, ascending.
type pathIndex struct {
	exact  map[string][]int // by Match.Path
	prefix map[string][]int // by Match.PathPrefix, but "/"
	any    []int            // neither: any path
}

func newPathIndex(routes []*config.Route) pathIndex {
	x := pathIndex{exact: map[string][]int{}, prefix: map[string][]int{}}
	for i, r := range routes {
		switch m := &r.Match; {
		case m.Path != "":
			x.exact[m.Path] = append(x.exact[m.Path], i)
		case m.PathPrefix == "" || m.PathPrefix == "/":
			x.any = append(x.any, i)
		default:
			x.prefix[m.PathPrefix] = append(x.prefix[m.PathPrefix], i)
		}
	}
	return x
}

// NewTable resolves every version of cfg (collecting all errors) and builds
// the routing table over a copy of cfg whose versions carry their digests
// (see Config). A resolved digest must be well-formed, start with the
// version's Module, and differ from the other versions' of the service.
// With a nil resolve, the Digest fields already set are used. cfg itself is
// not changed.
func NewTable(cfg *config.Config, resolve Resolve) (*Table, error) {
	n := 0
	for _, s := range cfg.Services {
		n += len(s.Versions)
	}
	digests := make(map[*config.Version]string, n)
	var errs []*config.Error
	for _, name := range cfg.ServiceNames() {
		vs := cfg.Services[name].Versions
		for i, v := range vs {
			d, err := resolveVersion(v, resolve)
			if err == nil {
				// A service has a handful of versions: compared in turn.
				for _, w := range vs[:i] {
					if digests[w] == d {
						err = fmt.Errorf("resolves to the same module as %s (%s)", w.Field(), short(d))
						break
					}
				}
			}
			if err != nil {
				errs = append(errs, v.ErrorAt(err))
				continue
			}
			digests[v] = d
		}
	}
	if err := config.JoinErrors(errs); err != nil {
		return nil, err
	}
	resolved := cfg.WithDigests(digests)
	t := &Table{cfg: resolved, routes: slices.Clone(resolved.Routes)}
	slices.SortStableFunc(t.routes, compareRoutes)
	for _, r := range t.routes {
		s := resolved.Services[r.Service]
		if s == nil {
			return nil, fmt.Errorf("routes[%d].service: unknown service %q", r.Index, r.Service)
		}
		t.svcs = append(t.svcs, s)
	}
	t.byPath = newPathIndex(t.routes)
	var err error
	if t.lanes, t.sorted, err = newLanes(resolved); err != nil {
		return nil, err
	}
	return t, nil
}

func resolveVersion(v *config.Version, resolve Resolve) (string, error) {
	d := v.Digest
	if resolve != nil {
		var err error
		if d, err = resolve(v); err != nil {
			return "", err
		}
	}
	hex, ok := strings.CutPrefix(d, "sha256:")
	switch {
	case !ok || len(hex) != 64 || !isHex(hex):
		return "", fmt.Errorf(`resolved to %q, want "sha256:" and 64 lowercase hex digits`, d)
	case !v.IsOCI() && !strings.HasPrefix(d, v.Module):
		return "", fmt.Errorf("resolved to %s, which does not start with %s", d, v.Module)
	}
	return d, nil
}

// Config returns the config the table routes by: a copy of the one given
// to NewTable in which every version's Digest is set.
func (t *Table) Config() *config.Config { return t.cfg }

// Routes returns the routes in precedence order.
func (t *Table) Routes() []*config.Route { return slices.Clone(t.routes) }

// Match finds the route for r, the first in precedence order whose match r
// satisfies, and the service it sends to. The host is r.Host (r.URL.Host if
// empty) without port or trailing dot, compared case-insensitively; the path
// is r.URL.Path as is ("" counts as "/"), so callers should clean it first.
//
// Only the routes whose path match p can satisfy are tried: those of path
// p, those of a path prefix p has (p itself, or p up to one of its '/'),
// and those of any path; the first of them in precedence order whose
// match r satisfies wins, as if every route were tried in turn.
func (t *Table) Match(r *http.Request) (*config.Route, *config.Service, bool) {
	host, p := requestHost(r), requestPath(r)
	best := len(t.routes)
	try := func(positions []int) {
		for _, i := range positions {
			if i >= best {
				return
			}
			if matches(&t.routes[i].Match, host, r) {
				best = i
				return
			}
		}
	}
	try(t.byPath.any)
	try(t.byPath.exact[p])
	if len(t.byPath.prefix) > 0 {
		try(t.byPath.prefix[p])
		for i := range len(p) {
			if p[i] == '/' && i > 0 {
				try(t.byPath.prefix[p[:i]])
			}
		}
	}
	if best == len(t.routes) {
		return nil, nil, false
	}
	return t.routes[best], t.svcs[best], true
}

// Format writes the table as aligned text, one route per line in precedence
// order: precedence, name, host, path match ("/x" exact, "/api/*" prefix
// "/api", "strip" when StripPrefix), method, headers, service and versions with
// weights and short digests. "*" means any.
func (t *Table) Format(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tROUTE\tHOST\tPATH\tMETHOD\tHEADERS\tSERVICE\tVERSIONS")
	for i, r := range t.routes {
		m := &r.Match
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i+1, r.Name, cmp.Or(m.Host, "*"), formatPath(r),
			cmp.Or(m.Method, "*"), formatHeaders(m.Headers), r.Service, formatVersions(t.svcs[i]))
	}
	tw.Flush()
}

func formatPath(r *config.Route) string {
	switch {
	case r.Match.Path != "":
		return r.Match.Path
	case r.Match.PathPrefix == "":
		return "*"
	}
	p := strings.TrimSuffix(r.Match.PathPrefix, "/") + "/*"
	if r.StripPrefix {
		p += " strip"
	}
	return p
}

func formatHeaders(h map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(h)) {
		parts = append(parts, k+"="+h[k])
	}
	return cmp.Or(strings.Join(parts, ","), "*")
}

// formatVersions renders "90% stable sha256:4f9c0a1b2c3d, 10% sha256:…".
func formatVersions(s *config.Service) string {
	var parts []string
	for _, v := range s.Versions {
		p := fmt.Sprintf("%d%%", v.Weight)
		if v.Name != "" {
			p += " " + v.Name
		}
		parts = append(parts, p+" "+short(v.Digest))
	}
	return strings.Join(parts, ", ")
}

// short abbreviates a digest to "sha256:" and 12 hex digits.
func short(digest string) string {
	if len(digest) > len("sha256:")+12 {
		return digest[:len("sha256:")+12]
	}
	return digest
}

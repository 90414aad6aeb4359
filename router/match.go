package router

import (
	"cmp"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// matches reports whether r satisfies m. host is r's host, lowercased and
// without port.
func (m *Match) matches(host string, r *http.Request) bool {
	return m.matchHost(host) && m.matchPath(requestPath(r)) &&
		(m.Method == "" || m.Method == r.Method) && m.matchHeaders(r.Header)
}

func (m *Match) matchHost(host string) bool {
	if suffix, ok := strings.CutPrefix(m.Host, "*"); ok {
		return strings.HasSuffix(host, suffix)
	}
	return m.Host == "" || m.Host == host
}

func (m *Match) matchPath(p string) bool {
	switch {
	case m.Path != "":
		return p == m.Path
	case m.PathPrefix == "" || m.PathPrefix == "/":
		return true
	}
	rest, ok := strings.CutPrefix(p, m.PathPrefix)
	return ok && (rest == "" || rest[0] == '/')
}

func (m *Match) matchHeaders(h http.Header) bool {
	for name, want := range m.Headers {
		if !slices.Contains(h.Values(name), want) {
			return false
		}
	}
	return true
}

// key is a canonical text of m: equal matches have equal keys.
func (m *Match) key() string {
	var b strings.Builder
	b.WriteString("host=" + m.Host + " path=" + m.Path + " path_prefix=" + m.PathPrefix + " method=" + m.Method)
	for _, h := range slices.Sorted(maps.Keys(m.Headers)) {
		b.WriteString(" " + h + "=" + m.Headers[h])
	}
	return b.String()
}

// Rewrite returns path with the route's path prefix removed when StripPrefix
// is set; otherwise, or if path lacks the prefix, path unchanged. The result
// always starts with "/": stripping "/hello" gives "/" for "/hello" and
// "/hello/", and "/x" for "/hello/x".
func (r *Route) Rewrite(path string) string {
	if !r.StripPrefix || r.Match.PathPrefix == "" || r.Match.PathPrefix == "/" {
		return path
	}
	rest, ok := strings.CutPrefix(path, r.Match.PathPrefix)
	switch {
	case !ok || (rest != "" && rest[0] != '/'):
		return path
	case rest == "":
		return "/"
	}
	return rest
}

// requestHost returns r's host lowercased, without port or trailing dot.
func requestHost(r *http.Request) string {
	h := r.Host
	if h == "" && r.URL != nil {
		h = r.URL.Host
	}
	if strings.HasPrefix(h, "[") { // IPv6 literal
		if end := strings.IndexByte(h, ']'); end > 0 {
			h = h[1:end]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

func requestPath(r *http.Request) string {
	if r.URL == nil || r.URL.Path == "" {
		return "/"
	}
	return r.URL.Path
}

// compareRoutes orders routes by precedence; see the package documentation.
func compareRoutes(a, b *Route) int {
	x, y := &a.Match, &b.Match
	return cmp.Or(
		-cmp.Compare(hostRank(x.Host), hostRank(y.Host)),
		-cmp.Compare(wildcardLen(x.Host), wildcardLen(y.Host)),
		-cmp.Compare(pathRank(x), pathRank(y)),
		-cmp.Compare(len(x.Path)+len(x.PathPrefix), len(y.Path)+len(y.PathPrefix)),
		-cmp.Compare(b2i(x.Method != ""), b2i(y.Method != "")),
		-cmp.Compare(len(x.Headers), len(y.Headers)),
		cmp.Compare(a.Index, b.Index),
	)
}

func hostRank(h string) int {
	switch {
	case h == "":
		return 0
	case strings.HasPrefix(h, "*."):
		return 1
	}
	return 2
}

func wildcardLen(h string) int {
	if hostRank(h) == 1 {
		return len(h)
	}
	return 0
}

func pathRank(m *Match) int {
	switch {
	case m.Path != "":
		return 2
	case m.PathPrefix != "":
		return 1
	}
	return 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

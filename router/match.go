package router

import (
	"cmp"
	"net/http"
	"slices"
	"strings"

	"github.com/wasmesh/wasmesh/config"
)

// matches reports whether r satisfies m. host is r's host, lowercased and
// without port.
func matches(m *config.Match, host string, r *http.Request) bool {
	return matchHost(m, host) && matchPath(m, requestPath(r)) &&
		(m.Method == "" || m.Method == r.Method) && matchHeaders(m, r.Header)
}

func matchHost(m *config.Match, host string) bool {
	if suffix, ok := strings.CutPrefix(m.Host, "*"); ok {
		return strings.HasSuffix(host, suffix)
	}
	return m.Host == "" || m.Host == host
}

func matchPath(m *config.Match, p string) bool {
	switch {
	case m.Path != "":
		return p == m.Path
	case m.PathPrefix == "" || m.PathPrefix == "/":
		return true
	}
	rest, ok := strings.CutPrefix(p, m.PathPrefix)
	return ok && (rest == "" || rest[0] == '/')
}

func matchHeaders(m *config.Match, h http.Header) bool {
	for name, want := range m.Headers {
		if !slices.Contains(h.Values(name), want) {
			return false
		}
	}
	return true
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
func compareRoutes(a, b *config.Route) int {
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

func pathRank(m *config.Match) int {
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

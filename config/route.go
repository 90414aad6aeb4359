package config

import (
	"maps"
	"slices"
	"strings"
)

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

package router

import (
	"fmt"
	"net/url"
	"strings"
)

// parseOutbound checks an outbound allow-list entry.
func parseOutbound(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid outbound target %q: %v", s, err)
	}
	switch {
	case u.Scheme != "wasmesh" && u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("outbound target %q: want wasmesh://SERVICE or http(s)://host[:port][/path]", s)
	case u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("outbound target %q: want a host and no user, query or fragment", s)
	}
	u.Host = strings.ToLower(u.Host)
	return u, nil
}

// AllowsOutbound reports whether the service's allow-list admits target: an
// entry with the same scheme and host (and port), whose path, if any, is a
// segment-aware prefix of target's ("https://api.example.com/v1" admits
// "/v1" and "/v1/users", not "/v10").
func (s *Service) AllowsOutbound(target *url.URL) bool {
	host := strings.ToLower(target.Host)
	for _, u := range s.Outbound {
		if u.Scheme == target.Scheme && u.Host == host && pathHasPrefix(target.Path, u.Path) {
			return true
		}
	}
	return false
}

func pathHasPrefix(path, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return true
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
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

// AllowsOutbound returns the entry of the service's allow-list that admits
// target: the same scheme and host (and port), and a path, if the entry has
// one, that is a segment-aware prefix of target's
// ("https://api.example.com/v1" admits "/v1" and "/v1/users", not "/v10").
// An http:// entry without a port admits the wasmesh:// target of the same
// host too: a component's request to http://SERVICE/… is the in-process
// call wasmesh://SERVICE/…, and the entry is written as the component
// writes its URL.
func (s *Service) AllowsOutbound(target *url.URL) (Outbound, bool) {
	host := strings.ToLower(target.Host)
	for _, o := range s.Outbound {
		u := o.URL
		scheme := u.Scheme == target.Scheme || target.Scheme == "wasmesh" && u.Scheme == "http" && u.Port() == ""
		if scheme && u.Host == host && pathHasPrefix(target, u.EscapedPath()) {
			return o, true
		}
	}
	return Outbound{}, false
}

// checkSpiffeID checks an exact SPIFFE ID.
func checkSpiffeID(id string) error {
	if _, err := spiffeid.FromString(id); err != nil {
		return fmt.Errorf("invalid SPIFFE ID %q: %v", id, err)
	}
	return nil
}

// checkPeerPattern checks an allow_peers entry: a SPIFFE ID, or
// "spiffe://<trust domain>/*" for every member of a trust domain.
func checkPeerPattern(p string) error {
	if td, ok := strings.CutSuffix(p, "/*"); ok {
		if _, err := spiffeid.TrustDomainFromString(td); err != nil {
			return fmt.Errorf("invalid trust domain in %q: %v", p, err)
		}
		return nil
	}
	return checkSpiffeID(p)
}

// pathHasPrefix reports whether target's path is prefix (an entry's path),
// or under it by whole segments. The path is taken as it is sent (escaped:
// "/v1%2Fx" is not under "/v1", whatever a server makes of it), and one
// a server may resolve out of it is under no prefix: a "." or ".."
// segment, escaped or not ("/v1/../admin" is "/admin"), one with path
// parameters ("/v1/..;/admin" is "/admin" to Tomcat, Jetty and Spring),
// and a backslash, raw or escaped (a separator to IIS and some Node
// servers).
func pathHasPrefix(target *url.URL, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/")
	if prefix == "" {
		return true
	}
	if strings.ContainsRune(target.Path, '\\') {
		return false
	}
	for seg := range strings.SplitSeq(target.Path, "/") {
		if dots, _, _ := strings.Cut(seg, ";"); dots == "." || dots == ".." {
			return false
		}
	}
	path := target.EscapedPath()
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

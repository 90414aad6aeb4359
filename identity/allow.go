package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
)

// AllowList is a parsed allow_peers list: the SPIFFE IDs a service accepts
// calls from. Its zero value allows no one.
type AllowList struct {
	patterns []string
	ids      map[spiffeid.ID]bool
	domains  map[spiffeid.TrustDomain]bool
	prefixes []spiffeid.ID // "spiffe://td/a/*": IDs below /a
}

// ParseAllowPeers parses allow_peers patterns:
//
//	spiffe://example.org/ns/dev/sa/web  that ID exactly
//	spiffe://example.org/ns/dev/*       any ID below /ns/dev (not /ns/dev itself)
//	spiffe://example.org/*              any ID in trust domain example.org
//
// A "*" anywhere else is an error, as is an ID that go-spiffe would not
// accept (upper case, a query, "..", no path for an exact ID). An empty list
// allows no one: a gateway that means "any authenticated peer" when
// allow_peers is absent should not call ParseAllowPeers then.
func ParseAllowPeers(patterns []string) (*AllowList, error) {
	a := &AllowList{ids: map[spiffeid.ID]bool{}, domains: map[spiffeid.TrustDomain]bool{}}
	for _, p := range patterns {
		if err := a.add(p); err != nil {
			return nil, fmt.Errorf("allow_peers %q: %w", p, err)
		}
		a.patterns = append(a.patterns, p)
	}
	return a, nil
}

func (a *AllowList) add(p string) error {
	base, wildcard := strings.CutSuffix(p, "/*")
	if strings.Contains(base, "*") {
		return errors.New("a wildcard may only end the pattern, as in spiffe://example.org/*")
	}
	id, err := spiffeid.FromString(base)
	if err != nil {
		return err
	}
	switch {
	case wildcard && id.Path() == "":
		a.domains[id.TrustDomain()] = true
	case wildcard:
		a.prefixes = append(a.prefixes, id)
	case id.Path() == "":
		return fmt.Errorf("want an ID with a path, or spiffe://%s/* for the whole trust domain", id.TrustDomain())
	default:
		a.ids[id] = true
	}
	return nil
}

// Allows reports whether id matches one of the patterns.
func (a *AllowList) Allows(id spiffeid.ID) bool {
	if a == nil || id.IsZero() {
		return false
	}
	if a.ids[id] || a.domains[id.TrustDomain()] {
		return true
	}
	for _, p := range a.prefixes {
		if id.MemberOf(p.TrustDomain()) && strings.HasPrefix(id.Path(), p.Path()+"/") {
			return true
		}
	}
	return false
}

// Match is Allows as a spiffeid.Matcher: nil, or an error naming id.
func (a *AllowList) Match(id spiffeid.ID) error {
	if a.Allows(id) {
		return nil
	}
	return fmt.Errorf("peer %q is not allowed (allow_peers: %s)", id, a)
}

// Authorizer is Match as a tlsconfig.Authorizer, for ServerConfig and
// ClientConfigAuthorized.
func (a *AllowList) Authorizer() tlsconfig.Authorizer {
	return func(id spiffeid.ID, _ [][]*x509.Certificate) error { return a.Match(id) }
}

// String lists the patterns, comma-separated.
func (a *AllowList) String() string {
	if a == nil || len(a.patterns) == 0 {
		return "none"
	}
	return strings.Join(a.patterns, ", ")
}

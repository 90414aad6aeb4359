package identity

import (
	"strings"
	"testing"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

func TestAllowList(t *testing.T) {
	allow, err := ParseAllowPeers([]string{
		"spiffe://example.org/ns/dev/sa/web",
		"spiffe://example.org/ns/ops/*",
		"spiffe://partner.example/*",
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{
		"spiffe://example.org/ns/dev/sa/web":     true,
		"spiffe://example.org/ns/dev/sa/web/x":   false, // exact means exact
		"spiffe://example.org/ns/dev/sa/db":      false,
		"spiffe://example.org/ns/ops/sa/backup":  true,
		"spiffe://example.org/ns/ops":            false, // "/*" is below, not at
		"spiffe://example.org/ns/opsx/sa/backup": false, // prefixes end at a segment
		"spiffe://other.org/ns/ops/sa/backup":    false,
		"spiffe://partner.example/anything":      true,
		"spiffe://partner.example.evil/anything": false,
	} {
		if got := allow.Allows(spiffeid.RequireFromString(id)); got != want {
			t.Errorf("Allows(%s) = %v; want %v", id, got, want)
		}
		if err := allow.Match(spiffeid.RequireFromString(id)); (err == nil) != want {
			t.Errorf("Match(%s) = %v; want allowed %v", id, err, want)
		}
	}
	if allow.Allows(spiffeid.ID{}) {
		t.Error("the zero ID is allowed")
	}
	err = allow.Authorizer()(spiffeid.RequireFromString("spiffe://example.org/x"), nil)
	if !errContains(err, `peer "spiffe://example.org/x" is not allowed (allow_peers: spiffe://example.org/ns/dev/sa/web, `) {
		t.Errorf("Authorizer error = %v", err)
	}

	none, err := ParseAllowPeers(nil)
	if err != nil || none.Allows(spiffeid.RequireFromString("spiffe://example.org/a")) || none.String() != "none" {
		t.Errorf("empty allow list: %v, %v", none, err)
	}
}

func TestParseAllowPeersErrors(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"", "cannot be empty"},
		{"*", "a wildcard may only end the pattern"},
		{"spiffe://*/web", "a wildcard may only end the pattern"},
		{"spiffe://example.org/ns/*/sa/web", "a wildcard may only end the pattern"},
		{"spiffe://example.org/web*", "a wildcard may only end the pattern"},
		{"spiffe://example.org", "want an ID with a path, or spiffe://example.org/* for the whole trust domain"},
		{"spiffe://Example.org/web", "trust domain characters are limited"},
		{"https://example.org/web", "scheme is missing or invalid"},
		{"example.org/web", "scheme is missing or invalid"},
		{"spiffe://example.org/a/../b", "path cannot contain dot segments"},
		{"spiffe://example.org/web?x=1", "path segment characters are limited"},
	}
	for _, tc := range tests {
		_, err := ParseAllowPeers([]string{"spiffe://example.org/ok", tc.pattern})
		if !errContains(err, tc.want) || !strings.Contains(err.Error(), "allow_peers "+quote(tc.pattern)) {
			t.Errorf("ParseAllowPeers(%q) error = %v; want one naming it and containing %q", tc.pattern, err, tc.want)
		}
	}
}

func quote(s string) string { return `"` + s + `"` }

// FuzzParseAllowPeers: any accepted pattern allows what it names and nothing
// outside its trust domain.
func FuzzParseAllowPeers(f *testing.F) {
	for _, s := range []string{"spiffe://example.org/a", "spiffe://example.org/*", "spiffe://example.org/a/*", "spiffe://x/*/y"} {
		f.Add(s)
	}
	outsider := spiffeid.RequireFromString("spiffe://outsider.test/a")
	f.Fuzz(func(t *testing.T, p string) {
		allow, err := ParseAllowPeers([]string{p})
		if err != nil {
			return
		}
		base, wildcard := strings.CutSuffix(p, "/*")
		id, err := spiffeid.FromString(base)
		if err != nil {
			t.Fatalf("accepted %q whose base does not parse: %v", p, err)
		}
		if !wildcard && !allow.Allows(id) {
			t.Errorf("%q does not allow itself", p)
		}
		if below, err := id.AppendPath("/x"); err == nil && wildcard && !allow.Allows(below) {
			t.Errorf("%q does not allow %s", p, below)
		}
		if id.TrustDomain() != outsider.TrustDomain() && allow.Allows(outsider) {
			t.Errorf("%q allows %s", p, outsider)
		}
	})
}

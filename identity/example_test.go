package identity_test

import (
	"fmt"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/wasmesh/wasmesh/identity"
)

// An allow-list names SPIFFE IDs, or whole trust domains with "/*".
func ExampleParseAllowPeers() {
	allow, err := identity.ParseAllowPeers([]string{
		"spiffe://example.org/ns/web/sa/frontend",
		"spiffe://partner.example/*",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, id := range []string{
		"spiffe://example.org/ns/web/sa/frontend",
		"spiffe://example.org/ns/web/sa/admin",
		"spiffe://partner.example/billing",
	} {
		fmt.Println(id, allow.Allows(spiffeid.RequireFromString(id)))
	}
	_, err = identity.ParseAllowPeers([]string{"https://example.org/x"})
	fmt.Println(err != nil)
	// Output:
	// spiffe://example.org/ns/web/sa/frontend true
	// spiffe://example.org/ns/web/sa/admin false
	// spiffe://partner.example/billing true
	// true
}

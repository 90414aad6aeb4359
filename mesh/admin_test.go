package mesh

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/testca"
)

// staticSource is an X509Source that never rotates.
type staticSource struct {
	svid   *x509svid.SVID
	bundle *x509bundle.Bundle
}

func (s staticSource) GetX509SVID() (*x509svid.SVID, error) { return s.svid, nil }
func (s staticSource) GetX509BundleForTrustDomain(spiffeid.TrustDomain) (*x509bundle.Bundle, error) {
	return s.bundle, nil
}

// TestAdminMTLS: with admin.allow_ids, the admin listener serves TLS with
// the gateway's SVID; a caller whose SVID is allowed gets in, another gets
// 403, and one without a certificate or the token gets 401, over real
// handshakes on loopback.
func TestAdminMTLS(t *testing.T) {
	ca := testca.New(t, "example.org")
	gw := staticSource{ca.SVID("spiffe://example.org/gateway"), ca.Bundle()}
	f := newFixtureWith(t, `
tls: { spiffe_socket: unix:///unused }
drain_delay: 0s
admin: { listen: "127.0.0.1:0", allow_ids: [ "spiffe://example.org/ops/*" ] }
`+oneVersion("rust"), Options{Identity: gw})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.g.Serve(ctx, ln, adminLn) }()
	t.Cleanup(func() { cancel(); <-done })

	get := func(svid string) (int, error) {
		var cfg = identity.ClientConfig(staticSource{ca.SVID(svid), ca.Bundle()}, spiffeid.RequireFromString("spiffe://example.org/gateway"))
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := client.Get("https://" + adminLn.Addr().String() + "/v1/config")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	for svid, want := range map[string]int{"spiffe://example.org/ops/cli": 200, "spiffe://example.org/web": 403} {
		if got, err := get(svid); err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", svid, got, err, want)
		}
	}
	// No certificate: the handshake passes (certificates are asked for,
	// not required), the call does not.
	cfg := identity.ClientConfigAuthorized(staticSource{nil, ca.Bundle()}, nil)
	cfg.GetClientCertificate = nil
	noCert := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	if resp, err := noCert.Get("https://" + adminLn.Addr().String() + "/v1/config"); err != nil || resp.StatusCode != 401 {
		t.Errorf("no certificate: %v %v, want 401", resp, err)
	}
	// Probes need no certificate either.
	if resp, err := noCert.Get("https://" + adminLn.Addr().String() + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz without a certificate: %v %v, want 200", resp, err)
	}
}

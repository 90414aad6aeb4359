package identity

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// ClientAuth is what a server asks of its clients (config: client_auth).
type ClientAuth int

const (
	// RequireClientCert ("require", the default) refuses a client without a
	// valid, authorized X.509-SVID.
	RequireClientCert ClientAuth = iota
	// RequestClientCert ("request") accepts a client without a certificate
	// (PeerID then reports none) but refuses an invalid or unauthorized one.
	RequestClientCert
	// NoClientCert ("none") does not ask for a client certificate: TLS only.
	NoClientCert
)

// ParseClientAuth parses "require", "request" or "none"; "" is "require".
func ParseClientAuth(s string) (ClientAuth, error) {
	switch s {
	case "", "require":
		return RequireClientCert, nil
	case "request":
		return RequestClientCert, nil
	case "none":
		return NoClientCert, nil
	}
	return 0, fmt.Errorf("client_auth %q: want require, request or none", s)
}

func (c ClientAuth) String() string {
	switch c {
	case RequireClientCert:
		return "require"
	case RequestClientCert:
		return "request"
	case NoClientCert:
		return "none"
	}
	return fmt.Sprintf("ClientAuth(%d)", int(c))
}

// ServerOption changes a ServerConfig default.
type ServerOption func(*serverOptions)

type serverOptions struct{ clientAuth ClientAuth }

// WithClientAuth sets what the server asks of clients. Default
// RequireClientCert.
func WithClientAuth(mode ClientAuth) ServerOption {
	return func(o *serverOptions) { o.clientAuth = mode }
}

// ServerConfig returns a TLS config for http.Server.TLSConfig that presents
// src's current SVID and, by default, requires clients to present an
// X.509-SVID that verifies against src's bundles and that authorize accepts.
// A nil authorize accepts any such client (tlsconfig.AuthorizeAny); a gateway
// that authorizes per service leaves it nil and checks PeerID after the
// handshake.
//
// # Notes
//
//   - Built on go-spiffe's tlsconfig.MTLSServerConfig (TLSServerConfig for
//     NoClientCert). Hostnames are not checked: the SPIFFE ID is the identity.
//   - Resumed TLS sessions, which skip certificate verification in
//     crypto/tls, are verified again against the current bundles and
//     authorize, so a peer whose CA left the bundle cannot resume its way in.
//   - NextProtos is left empty; http.Server.ServeTLS adds h2 and http/1.1.
//   - Leave Certificates empty: crypto/tls prefers them to GetCertificate
//     when the client sends no server name, so the SVID would not be served.
//     (httptest.Server.StartTLS adds one; serve with http.Server instead.)
func ServerConfig(src X509Source, authorize tlsconfig.Authorizer, opts ...ServerOption) *tls.Config {
	var o serverOptions
	for _, opt := range opts {
		opt(&o)
	}
	if authorize == nil {
		authorize = tlsconfig.AuthorizeAny()
	}
	switch o.clientAuth {
	case NoClientCert:
		return tlsconfig.TLSServerConfig(src)
	case RequestClientCert:
		cfg := tlsconfig.MTLSServerConfig(src, src, authorize)
		cfg.ClientAuth = tls.RequestClientCert
		verify := cfg.VerifyPeerCertificate
		cfg.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return nil // no certificate: allowed, and PeerID says so
			}
			return verify(raw, chains)
		}
		cfg.VerifyConnection = verifyResumed(src, authorize, true)
		return cfg
	default:
		cfg := tlsconfig.MTLSServerConfig(src, src, authorize)
		cfg.VerifyConnection = verifyResumed(src, authorize, false)
		return cfg
	}
}

// ClientConfig returns a TLS config for http.Transport.TLSClientConfig that
// presents src's current SVID and accepts only a server whose X.509-SVID
// verifies against src's bundles and whose SPIFFE ID is expectID.
//
// With http.Transport set ForceAttemptHTTP2 for HTTP/2, and remember that
// one Transport shares its config across hosts: for targets with different
// IDs use ClientConfigAuthorized, or one Transport per ID.
func ClientConfig(src X509Source, expectID spiffeid.ID) *tls.Config {
	if expectID.IsZero() {
		return ClientConfigAuthorized(src, func(spiffeid.ID, [][]*x509.Certificate) error {
			return errors.New("no expected server SPIFFE ID configured")
		})
	}
	return ClientConfigAuthorized(src, tlsconfig.AuthorizeID(expectID))
}

// ClientConfigAuthorized is ClientConfig with any authorizer, an
// AllowList's say. A nil authorize accepts any server with a valid SVID.
func ClientConfigAuthorized(src X509Source, authorize tlsconfig.Authorizer) *tls.Config {
	if authorize == nil {
		authorize = tlsconfig.AuthorizeAny()
	}
	cfg := tlsconfig.MTLSClientConfig(src, src, authorize)
	cfg.VerifyConnection = verifyResumed(src, authorize, false)
	return cfg
}

// verifyResumed verifies the peer of a resumed session, for which crypto/tls
// calls VerifyConnection but not VerifyPeerCertificate.
func verifyResumed(bundles x509bundle.Source, authorize tlsconfig.Authorizer, optional bool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if !cs.DidResume {
			return nil
		}
		if len(cs.PeerCertificates) == 0 {
			if optional {
				return nil
			}
			return errors.New("resumed session without a peer certificate")
		}
		id, chains, err := x509svid.Verify(cs.PeerCertificates, bundles)
		if err != nil {
			return fmt.Errorf("resumed session: %w", err)
		}
		if err := authorize(id, chains); err != nil {
			return fmt.Errorf("resumed session: %w", err)
		}
		return nil
	}
}

// PeerID is the SPIFFE ID of the peer of a connection (r.TLS for an
// http.Request, resp.TLS for an http.Response), and false when the peer
// presented no certificate or cs is nil.
//
// It reads the ID without verifying anything: use it on connections made
// with ServerConfig or ClientConfig, whose handshakes verified the SVID.
func PeerID(cs *tls.ConnectionState) (spiffeid.ID, bool) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return spiffeid.ID{}, false
	}
	id, err := x509svid.IDFromCert(cs.PeerCertificates[0])
	if err != nil {
		return spiffeid.ID{}, false
	}
	return id, true
}

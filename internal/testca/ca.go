// Package testca is an in-memory SPIFFE certificate authority for tests, and a
// fake SPIFFE Workload API that serves its SVIDs on a unix socket.
//
// Unlike identity.CA it checks nothing: a test can craft any certificate it
// likes (a CA used as a leaf, two URI SANs, an expired one) by passing an
// Option that edits the template before signing.
package testca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net/url"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

// CA is a root or intermediate certificate authority of one trust domain.
type CA struct {
	tb     testing.TB
	td     spiffeid.TrustDomain
	parent *CA
	Cert   *x509.Certificate
	Key    crypto.Signer
}

// Option edits a certificate template before it is signed.
type Option func(*x509.Certificate)

// New returns a self-signed root CA for trustDomain ("example.org"), valid
// from a minute ago for a day, with the trust domain's URI SAN.
func New(tb testing.TB, trustDomain string, opts ...Option) *CA {
	tb.Helper()
	td := spiffeid.RequireTrustDomainFromString(trustDomain)
	ca := &CA{tb: tb, td: td}
	ca.Cert, ca.Key = ca.sign(caTemplate(td), nil, opts)
	return ca
}

// Intermediate returns a CA signed by ca, in the same trust domain.
func (ca *CA) Intermediate(opts ...Option) *CA {
	ca.tb.Helper()
	child := &CA{tb: ca.tb, td: ca.td, parent: ca}
	child.Cert, child.Key = ca.sign(caTemplate(ca.td), ca, opts)
	return child
}

// TrustDomain is the CA's trust domain.
func (ca *CA) TrustDomain() spiffeid.TrustDomain { return ca.td }

// Root is the CA at the top of ca's chain (ca itself for a root).
func (ca *CA) Root() *CA {
	for ca.parent != nil {
		ca = ca.parent
	}
	return ca
}

// Bundle is the X.509 bundle that trusts ca: its root certificate.
func (ca *CA) Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(ca.td, []*x509.Certificate{ca.Root().Cert})
}

// SVID issues a leaf for id ("spiffe://example.org/web"): ECDSA P-256,
// DigitalSignature, server and client auth, valid from a minute ago for an
// hour, with the intermediates up to (not including) the root after it. The
// options may make it anything; when the result has no single valid SPIFFE
// ID the SVID's ID is zero.
func (ca *CA) SVID(id string, opts ...Option) *x509svid.SVID {
	ca.tb.Helper()
	u, err := url.Parse(id)
	if err != nil {
		ca.tb.Fatalf("testca: SPIFFE ID %q: %v", id, err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"testca"}},
		URIs:                  []*url.URL{u},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	cert, key := ca.sign(tmpl, ca, opts)
	svid := &x509svid.SVID{Certificates: append([]*x509.Certificate{cert}, ca.chain()...), PrivateKey: key}
	if parsed, err := x509svid.IDFromCert(cert); err == nil {
		svid.ID = parsed
	}
	return svid
}

// TLSCertificate turns an SVID into a certificate for tls.Config.Certificates,
// for a peer that presents it without any checks.
func TLSCertificate(svid *x509svid.SVID) tls.Certificate {
	c := tls.Certificate{PrivateKey: svid.PrivateKey, Leaf: svid.Certificates[0]}
	for _, cert := range svid.Certificates {
		c.Certificate = append(c.Certificate, cert.Raw)
	}
	return c
}

// chain is ca and its parents, without the root.
func (ca *CA) chain() []*x509.Certificate {
	var certs []*x509.Certificate
	for c := ca; c.parent != nil; c = c.parent {
		certs = append(certs, c.Cert)
	}
	return certs
}

func caTemplate(td spiffeid.TrustDomain) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"testca"}, CommonName: "testca " + td.Name()},
		URIs:                  []*url.URL{td.ID().URL()},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// sign applies opts to tmpl and signs it with parent (self-signed when parent
// is nil) over a new key.
func (ca *CA) sign(tmpl *x509.Certificate, parent *CA, opts []Option) (*x509.Certificate, crypto.Signer) {
	ca.tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.tb.Fatalf("testca: generating a key: %v", err)
	}
	for _, opt := range opts {
		opt(tmpl)
	}
	issuer, issuerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		issuer, issuerKey = parent.Cert, parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), issuerKey)
	if err != nil {
		ca.tb.Fatalf("testca: signing a certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		ca.tb.Fatalf("testca: parsing a certificate: %v", err)
	}
	return cert, key
}

// Validity sets the validity period.
func Validity(notBefore, notAfter time.Time) Option {
	return func(c *x509.Certificate) { c.NotBefore, c.NotAfter = notBefore, notAfter }
}

// URIs replaces the URI SANs (none when called without arguments).
func URIs(uris ...string) Option {
	return func(c *x509.Certificate) {
		c.URIs = nil
		for _, s := range uris {
			u, err := url.Parse(s)
			if err != nil {
				panic("testca: URI " + s + ": " + err.Error())
			}
			c.URIs = append(c.URIs, u)
		}
	}
}

// AsCA makes the certificate a CA (basic constraints CA:true, CertSign).
func AsCA() Option {
	return func(c *x509.Certificate) {
		c.IsCA = true
		c.KeyUsage |= x509.KeyUsageCertSign
	}
}

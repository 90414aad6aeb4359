package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/wasmesh/wasmesh/internal/atomicfile"
)

// Names of the files of a CA directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca.key"
)

// CALifetime is how long a CA made by NewCA or InitCA is valid.
const CALifetime = 365 * 24 * time.Hour

// maxSkew is how far back a certificate's NotBefore is set, so that a peer
// whose clock is a little behind accepts it.
const maxSkew = time.Minute

// CA is a development certificate authority: a self-signed ECDSA P-256 root
// of one trust domain that issues short-lived X.509-SVIDs. It is for
// development and tests; in production use SPIRE or cert-manager through
// NewWorkloadSource or NewFileSource.
type CA struct {
	cert *x509.Certificate
	key  crypto.Signer
	td   spiffeid.TrustDomain
	now  func() time.Time
}

// DefaultCADir is where the CLI keeps the development CA: $WASMESH_HOME/ca
// when WASMESH_HOME is set, else .wasmesh/ca.
func DefaultCADir() string {
	if home := os.Getenv("WASMESH_HOME"); home != "" {
		return filepath.Join(home, "ca")
	}
	return filepath.Join(".wasmesh", "ca")
}

// NewCA returns a CA for td that exists only in memory.
func NewCA(td spiffeid.TrustDomain) (*CA, error) {
	if td.IsZero() {
		return nil, errors.New("a CA needs a trust domain")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		// SerialNumber nil: x509.CreateCertificate picks a random one.
		Subject:               pkix.Name{Organization: []string{"wasmesh"}, CommonName: "wasmesh development CA " + td.Name()},
		URIs:                  []*url.URL{td.ID().URL()},
		NotBefore:             now.Add(-maxSkew),
		NotAfter:              now.Add(CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // it signs leaves only
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the CA certificate: %w", err)
	}
	return &CA{cert: cert, key: key, td: td, now: time.Now}, nil
}

// InitCA makes a CA for td and writes it into dir (created 0700 if missing)
// as CACertFile and CAKeyFile (mode 0600). It refuses to overwrite a CA key.
func InitCA(dir string, td spiffeid.TrustDomain) (*CA, error) {
	ca, err := NewCA(td)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(ca.key)
	if err != nil {
		return nil, fmt.Errorf("encoding the CA key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	keyPath := filepath.Join(dir, CAKeyFile)
	f, err := os.OpenFile(keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%s exists: refusing to overwrite a CA key", keyPath)
	}
	if err != nil {
		return nil, err
	}
	_, err = f.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(keyPath)
		return nil, fmt.Errorf("writing %s: %w", keyPath, err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
	if err := atomicfile.WriteFile(filepath.Join(dir, CACertFile), certPEM, 0o644, ""); err != nil {
		os.Remove(keyPath)
		return nil, err
	}
	return ca, nil
}

// LoadCA reads a CA that InitCA wrote into dir. It refuses a key file that
// others than its owner may read.
func LoadCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(keyPath)
	if err != nil {
		return nil, err
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("%s has mode %#o: want 0600 (chmod 600 %s)", keyPath, perm, keyPath)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	ders, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	cert, err := x509.ParseCertificate(ders[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	keyDER, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	key, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok || !publicKeysEqual(signer.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("%s does not match %s", keyPath, certPath)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s is not a CA certificate", certPath)
	}
	if len(cert.URIs) != 1 {
		return nil, fmt.Errorf("%s: want one URI SAN, the trust domain, got %d", certPath, len(cert.URIs))
	}
	td, err := spiffeid.TrustDomainFromURI(cert.URIs[0])
	if err != nil || cert.URIs[0].Path != "" {
		return nil, fmt.Errorf("%s: URI SAN %q is not a trust domain", certPath, cert.URIs[0])
	}
	return &CA{cert: cert, key: signer, td: td, now: time.Now}, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// TrustDomain is the CA's trust domain.
func (ca *CA) TrustDomain() spiffeid.TrustDomain { return ca.td }

// Certificate is the CA's self-signed certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Bundle is the trust bundle of the CA's trust domain: its certificate.
func (ca *CA) Bundle() *x509bundle.Bundle {
	return x509bundle.FromX509Authorities(ca.td, []*x509.Certificate{ca.cert})
}

// Issue signs an X.509-SVID for id, valid for ttl: a new ECDSA P-256 key and
// a leaf with id as its only URI SAN, key usage DigitalSignature, extended
// key usages ServerAuth and ClientAuth, and CA:false.
//
// # Notes
//
//   - NotBefore is set back by a quarter of ttl, at most a minute, for peers
//     whose clocks are behind; NotAfter is ttl from now. Neither goes past
//     the CA's own validity.
//   - id must be in the CA's trust domain and have a path.
func (ca *CA) Issue(id spiffeid.ID, ttl time.Duration) (*x509svid.SVID, error) {
	switch {
	case ttl <= 0:
		return nil, fmt.Errorf("SVID lifetime %v: want more than 0", ttl)
	case !id.MemberOf(ca.td):
		return nil, fmt.Errorf("cannot issue %q: the CA is for trust domain %q", id, ca.td)
	case id.Path() == "":
		return nil, fmt.Errorf("cannot issue %q: an SVID's ID needs a path", id)
	}
	now := ca.now()
	notBefore, notAfter := now.Add(-min(maxSkew, ttl/4)), now.Add(ttl)
	if notBefore.Before(ca.cert.NotBefore) {
		notBefore = ca.cert.NotBefore
	}
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("the CA expired at %s", ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating an SVID key: %w", err)
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"wasmesh"}},
		URIs:                  []*url.URL{id.URL()},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature, // +KeyEncipherment only for RSA keys
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  false,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing the SVID for %s: %w", id, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the SVID for %s: %w", id, err)
	}
	return &x509svid.SVID{ID: id, Certificates: []*x509.Certificate{cert}, PrivateKey: key}, nil
}

// NewSource returns a Source serving an SVID for id that the CA issues now
// and issues again at each half of ttl (at least a second), until Close.
func (ca *CA) NewSource(id spiffeid.ID, ttl time.Duration) (*Source, error) {
	if ttl < time.Second {
		return nil, fmt.Errorf("SVID lifetime %v: want at least 1s for a source that renews it", ttl)
	}
	svid, err := ca.Issue(id, ttl)
	if err != nil {
		return nil, err
	}
	s := newSource(nil, nil)
	st := &store{}
	bundles := x509bundle.NewSet(ca.Bundle())
	st.cur.Store(&snapshot{svid: svid, bundles: bundles})
	s.svids, s.bundles = st, st
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		renew := time.NewTicker(ttl / 2)
		defer renew.Stop()
		for {
			select {
			case <-done:
				return
			case <-renew.C:
				svid, err := ca.Issue(id, ttl)
				if err != nil {
					s.report(err)
					continue
				}
				st.cur.Store(&snapshot{svid: svid, bundles: bundles})
				s.updated()
			}
		}
	}()
	s.stop = func() error {
		close(done)
		<-stopped
		return nil
	}
	return s, nil
}

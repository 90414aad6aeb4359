package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

var exampleOrg = spiffeid.RequireTrustDomainFromString("example.org")

func TestInitCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	ca, err := InitCA(dir, exampleOrg)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && info.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %#o; want 0600", CAKeyFile, info.Mode().Perm())
	}

	cert := ca.Certificate()
	switch {
	case !cert.IsCA || !cert.BasicConstraintsValid:
		t.Error("the CA certificate is not a CA")
	case cert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign:
		t.Errorf("CA key usage %v; want CertSign|CRLSign", cert.KeyUsage)
	case len(cert.URIs) != 1 || cert.URIs[0].String() != "spiffe://example.org":
		t.Errorf("CA URI SANs %v; want [spiffe://example.org]", cert.URIs)
	case cert.MaxPathLen != 0 || !cert.MaxPathLenZero:
		t.Errorf("CA path length %d; want 0", cert.MaxPathLen)
	case cert.CheckSignatureFrom(cert) != nil:
		t.Error("the CA certificate is not self-signed")
	}
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("CA key %T; want ECDSA P-256", cert.PublicKey)
	}

	if _, err := InitCA(dir, exampleOrg); !errContains(err, "refusing to overwrite a CA key") {
		t.Errorf("second InitCA: %v", err)
	}

	loaded, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Certificate().Equal(cert) || loaded.TrustDomain() != exampleOrg {
		t.Error("LoadCA returned another CA")
	}
	svid, err := loaded.Issue(spiffeid.RequireFromString("spiffe://example.org/web"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := x509svid.Verify(svid.Certificates, ca.Bundle()); err != nil {
		t.Errorf("an SVID of the loaded CA does not verify against the initial CA's bundle: %v", err)
	}

	if runtime.GOOS != "windows" {
		if err := os.Chmod(filepath.Join(dir, CAKeyFile), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadCA(dir); !errContains(err, "has mode 0644: want 0600") {
			t.Errorf("LoadCA with a readable key: %v", err)
		}
	}
}

func TestLoadCAErrors(t *testing.T) {
	ca1, ca2 := t.TempDir(), t.TempDir()
	if _, err := InitCA(ca1, exampleOrg); err != nil {
		t.Fatal(err)
	}
	if _, err := InitCA(ca2, exampleOrg); err != nil {
		t.Fatal(err)
	}
	mixed := t.TempDir()
	copyFile(t, filepath.Join(ca1, CACertFile), filepath.Join(mixed, CACertFile))
	copyFile(t, filepath.Join(ca2, CAKeyFile), filepath.Join(mixed, CAKeyFile))

	if _, err := LoadCA(t.TempDir()); !errContains(err, "no such file or directory") {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := LoadCA(mixed); !errContains(err, "does not match") {
		t.Errorf("key of another CA: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCAIssue(t *testing.T) {
	ca, err := NewCA(exampleOrg)
	if err != nil {
		t.Fatal(err)
	}
	id := spiffeid.RequireFromString("spiffe://example.org/ns/dev/sa/web")
	before := time.Now().Truncate(time.Second)
	svid, err := ca.Issue(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(svid.Certificates) != 1 {
		t.Fatalf("chain of %d certificates; want the leaf only", len(svid.Certificates))
	}
	leaf := svid.Certificates[0]
	switch {
	case len(leaf.URIs) != 1 || leaf.URIs[0].String() != id.String():
		t.Errorf("URI SANs %v; want exactly [%s]", leaf.URIs, id)
	case len(leaf.DNSNames)+len(leaf.IPAddresses)+len(leaf.EmailAddresses) != 0:
		t.Error("the leaf has SANs besides its URI")
	case leaf.KeyUsage != x509.KeyUsageDigitalSignature:
		t.Errorf("key usage %v; want DigitalSignature only (ECDSA: no KeyEncipherment)", leaf.KeyUsage)
	case !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}):
		t.Errorf("extended key usage %v; want ServerAuth, ClientAuth", leaf.ExtKeyUsage)
	case leaf.IsCA || !leaf.BasicConstraintsValid:
		t.Error("the leaf is a CA, or lacks basic constraints")
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("leaf key %T; want ECDSA P-256", leaf.PublicKey)
	}
	if got := leaf.NotAfter.Sub(before); got < time.Hour || got > time.Hour+2*time.Second {
		t.Errorf("NotAfter is %v after the issue; want an hour", got)
	}
	if got := before.Sub(leaf.NotBefore); got < maxSkew-time.Second || got > maxSkew+time.Second {
		t.Errorf("NotBefore is %v before the issue; want %v of clock skew allowance", got, maxSkew)
	}
	gotID, chains, err := x509svid.Verify(svid.Certificates, ca.Bundle())
	if err != nil || gotID != id || len(chains) != 1 {
		t.Errorf("x509svid.Verify: %v, %v, %d chains", gotID, err, len(chains))
	}
	certPEM, keyPEM, err := svid.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509svid.Parse(certPEM, keyPEM); err != nil { // go-spiffe's SVID rules
		t.Errorf("x509svid.Parse: %v", err)
	}
	// And it works for TLS both ways.
	peer, err := ca.Issue(spiffeid.RequireFromString(serverID), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	server, _ := memSource(t, peer, ca.Bundle())
	client, _ := memSource(t, svid, ca.Bundle())
	if r := handshake(t, ServerConfig(server, nil), ClientConfig(client, peer.ID)); r.serverErr != nil || r.clientErr != nil {
		t.Errorf("handshake: server: %v; client: %v", r.serverErr, r.clientErr)
	}
}

func TestCAIssueValidity(t *testing.T) {
	ca, err := NewCA(exampleOrg)
	if err != nil {
		t.Fatal(err)
	}
	id := spiffeid.RequireFromString("spiffe://example.org/web")
	now := ca.Certificate().NotBefore.Add(time.Hour)
	ca.now = func() time.Time { return now }

	short, err := ca.Issue(id, 8*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := now.Sub(short.Certificates[0].NotBefore); got != 2*time.Second {
		t.Errorf("an 8s SVID is backdated %v; want a quarter of its lifetime, 2s", got)
	}

	now = ca.Certificate().NotAfter.Add(-time.Minute)
	late, err := ca.Issue(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !late.Certificates[0].NotAfter.Equal(ca.Certificate().NotAfter) {
		t.Errorf("NotAfter %v goes past the CA's %v", late.Certificates[0].NotAfter, ca.Certificate().NotAfter)
	}

	now = ca.Certificate().NotAfter.Add(time.Second)
	if _, err := ca.Issue(id, time.Hour); !errContains(err, "the CA expired at") {
		t.Errorf("Issue after the CA expired: %v", err)
	}
}

func TestCAIssueErrors(t *testing.T) {
	ca, err := NewCA(exampleOrg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   string
		ttl  time.Duration
		want string
	}{
		{"spiffe://example.org/web", 0, "want more than 0"},
		{"spiffe://example.org/web", -time.Hour, "want more than 0"},
		{"spiffe://other.org/web", time.Hour, `the CA is for trust domain "example.org"`},
		{"spiffe://example.org", time.Hour, "an SVID's ID needs a path"},
	} {
		if _, err := ca.Issue(spiffeid.RequireFromString(tc.id), tc.ttl); !errContains(err, tc.want) {
			t.Errorf("Issue(%s, %v) error = %v; want %q", tc.id, tc.ttl, err, tc.want)
		}
	}
	if _, err := NewCA(spiffeid.TrustDomain{}); !errContains(err, "needs a trust domain") {
		t.Errorf("NewCA without a trust domain: %v", err)
	}
}

func TestCASourceRenews(t *testing.T) {
	ca, err := NewCA(exampleOrg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.NewSource(spiffeid.RequireFromString(serverID), 500*time.Millisecond); !errContains(err, "want at least 1s") {
		t.Errorf("NewSource with a 500ms lifetime: %v", err)
	}
	src, err := ca.NewSource(spiffeid.RequireFromString(serverID), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	first, err := src.Status()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	statuses := make(chan Status, 16)
	go src.Watch(ctx, func(st Status) { statuses <- st })
	deadline := time.After(10 * time.Second)
	for {
		select {
		case st := <-statuses: // the first, maybe an expiry warning, then the renewal
			if st.Serial.Cmp(first.Serial) != 0 {
				if st.ID != first.ID || !st.NotAfter.After(first.NotAfter) {
					t.Errorf("renewed SVID %v; first %v", st, first)
				}
				return
			}
		case <-deadline:
			t.Fatal("the SVID was not renewed")
		}
	}
}

package identity

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/wasmesh/wasmesh/internal/atomicfile"
	"github.com/wasmesh/wasmesh/internal/testca"
)

// fileFixture is a file source in a directory, and a client to shake hands
// with a server that uses it.
type fileFixture struct {
	dir       string
	src       *Source
	errs      chan error
	serverCfg *tls.Config
	clientCfg *tls.Config
}

func newFileFixture(t *testing.T, ca *testca.CA, opts FileOptions, svid *x509svid.SVID) *fileFixture {
	t.Helper()
	f := &fileFixture{dir: filepath.Dir(opts.CertFile), errs: make(chan error, 16)}
	if svid != nil {
		if err := WriteFiles(f.dir, svid, ca.Bundle()); err != nil {
			t.Fatal(err)
		}
	}
	opts.Logger = quiet
	opts.OnError = func(err error) { f.errs <- err }
	src, err := NewFileSource(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	client, _ := memSource(t, ca.SVID(clientID), ca.Bundle())
	f.src, f.serverCfg, f.clientCfg = src, ServerConfig(src, nil), ClientConfig(client, mustID(t, serverID))
	return f
}

// waitServed waits until new connections are served the certificate serial.
func (f *fileFixture) waitServed(t *testing.T, serial *big.Int) {
	t.Helper()
	waitFor(t, 10*time.Second, "the new certificate to be served", func() bool {
		return servedSerial(t, f.serverCfg, f.clientCfg).Cmp(serial) == 0
	})
}

// waitError waits for an update error containing want.
func (f *fileFixture) waitError(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-f.errs:
			if errContains(err, want) {
				return
			}
			t.Logf("other update error: %v", err)
		case <-deadline:
			t.Fatalf("no update error containing %q", want)
		}
	}
}

func TestFileSourceRotation(t *testing.T) {
	ca := testca.New(t, "example.org")

	t.Run("files replaced by rename", func(t *testing.T) {
		svid1, svid2 := ca.SVID(serverID), ca.SVID(serverID)
		f := newFileFixture(t, ca, FilesIn(t.TempDir()), svid1)
		if got := servedSerial(t, f.serverCfg, f.clientCfg); got.Cmp(svid1.Certificates[0].SerialNumber) != 0 {
			t.Fatalf("served serial %x; want %x", got, svid1.Certificates[0].SerialNumber)
		}
		if err := WriteFiles(f.dir, svid2, ca.Bundle()); err != nil {
			t.Fatal(err)
		}
		f.waitServed(t, svid2.Certificates[0].SerialNumber)
		if err := f.src.Err(); err != nil {
			t.Errorf("Err after a good update: %v", err)
		}
	})

	t.Run("Kubernetes volume: ..data symlink swapped", func(t *testing.T) {
		svid1, svid2 := ca.SVID(serverID), ca.SVID(serverID)
		dir := t.TempDir()
		kubeWrite := func(version string, svid *x509svid.SVID) {
			if err := WriteFiles(filepath.Join(dir, version), svid, ca.Bundle()); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(version, filepath.Join(dir, "..data_tmp")); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
		}
		kubeWrite("..2026_01_01_00_00_00.1", svid1)
		for _, name := range []string{SVIDFile, KeyFile, BundleFile} {
			if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
		f := newFileFixture(t, ca, FilesIn(dir), nil)
		if got := servedSerial(t, f.serverCfg, f.clientCfg); got.Cmp(svid1.Certificates[0].SerialNumber) != 0 {
			t.Fatalf("served serial %x; want %x", got, svid1.Certificates[0].SerialNumber)
		}
		kubeWrite("..2026_01_01_00_10_00.2", svid2)
		f.waitServed(t, svid2.Certificates[0].SerialNumber)
	})

	t.Run("SVID not valid yet goes into service when it is", func(t *testing.T) {
		svid1 := ca.SVID(serverID)
		start := time.Now().Add(2 * time.Second)
		svid2 := ca.SVID(serverID, testca.Validity(start, start.Add(time.Hour)))
		notBefore := svid2.Certificates[0].NotBefore // whole seconds
		f := newFileFixture(t, ca, FilesIn(t.TempDir()), svid1)
		if err := WriteFiles(f.dir, svid2, ca.Bundle()); err != nil {
			t.Fatal(err)
		}
		f.waitError(t, "the SVID is not valid until")
		if time.Now().Before(notBefore) {
			if got := servedSerial(t, f.serverCfg, f.clientCfg); got.Cmp(svid1.Certificates[0].SerialNumber) != 0 {
				t.Errorf("before its NotBefore the new SVID is served")
			}
		}
		f.waitServed(t, svid2.Certificates[0].SerialNumber) // with no further file event
		if now := time.Now(); now.Before(notBefore) {
			t.Errorf("served at %v, before its NotBefore %v", now, notBefore)
		}
	})
}

// TestFileSourceKeepsIdentityOnBadUpdate: each bad update is reported and
// leaves the old certificate in service; a good one afterwards is taken.
func TestFileSourceKeepsIdentityOnBadUpdate(t *testing.T) {
	ca := testca.New(t, "example.org")
	rogue := testca.New(t, "example.org")
	now := time.Now()
	pemOf := func(svid *x509svid.SVID) (certPEM, keyPEM []byte) {
		c, k, err := svid.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return c, k
	}

	tests := []struct {
		name  string
		files func() map[string][]byte
		want  string
	}{
		{"corrupt certificate", func() map[string][]byte {
			return map[string][]byte{SVIDFile: []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")}
		}, "no PEM certificates found"},
		{"truncated certificate", func() map[string][]byte {
			c, _ := pemOf(ca.SVID(serverID))
			return map[string][]byte{SVIDFile: c[:len(c)/2]}
		}, "no PEM certificates found"},
		{"key of another SVID", func() map[string][]byte {
			_, k := pemOf(ca.SVID(serverID))
			return map[string][]byte{KeyFile: k}
		}, "leaf certificate does not match private key"},
		{"SVID of a CA not in the bundle", func() map[string][]byte {
			c, k := pemOf(rogue.SVID(serverID))
			return map[string][]byte{KeyFile: k, SVIDFile: c}
		}, "the SVID does not verify against the bundle"},
		{"bundle without the SVID's CA", func() map[string][]byte {
			b, _ := rogue.Bundle().Marshal()
			return map[string][]byte{BundleFile: b}
		}, "the SVID does not verify against the bundle"},
		{"empty bundle", func() map[string][]byte {
			return map[string][]byte{BundleFile: nil}
		}, "no CA certificates"},
		{"expired SVID", func() map[string][]byte {
			c, k := pemOf(ca.SVID(serverID, testca.Validity(now.Add(-2*time.Hour), now.Add(-time.Hour))))
			return map[string][]byte{KeyFile: k, SVIDFile: c}
		}, "the SVID expired at"},
		{"CA certificate as the SVID", func() map[string][]byte {
			c, k := pemOf(ca.SVID(serverID, testca.AsCA()))
			return map[string][]byte{KeyFile: k, SVIDFile: c}
		}, "leaf certificate must not have CA flag set to true"},
		{"key in the certificate file", func() map[string][]byte {
			c, k := pemOf(ca.SVID(serverID))
			return map[string][]byte{SVIDFile: append(c, k...)}
		}, `unexpected PEM block "PRIVATE KEY" among the certificates`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svid1 := ca.SVID(serverID)
			f := newFileFixture(t, ca, FilesIn(t.TempDir()), svid1)
			for name, data := range tc.files() {
				if err := atomicfile.WriteFile(filepath.Join(f.dir, name), data, 0o600, ""); err != nil {
					t.Fatal(err)
				}
			}
			f.waitError(t, tc.want)
			if got := servedSerial(t, f.serverCfg, f.clientCfg); got.Cmp(svid1.Certificates[0].SerialNumber) != 0 {
				t.Errorf("after a bad update the server presents serial %x; want the old %x", got, svid1.Certificates[0].SerialNumber)
			}
			if !errContains(f.src.Err(), tc.want) {
				t.Errorf("Err = %v; want %q", f.src.Err(), tc.want)
			}

			svid3 := ca.SVID(serverID)
			if err := WriteFiles(f.dir, svid3, ca.Bundle()); err != nil {
				t.Fatal(err)
			}
			f.waitServed(t, svid3.Certificates[0].SerialNumber)
			waitFor(t, 10*time.Second, "Err to clear", func() bool { return f.src.Err() == nil })
		})
	}
}

func TestNewFileSourceErrors(t *testing.T) {
	ca := testca.New(t, "example.org")
	good := t.TempDir()
	if err := WriteFiles(good, ca.SVID(serverID), ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	missing := FilesIn(good)
	missing.BundleFile = filepath.Join(good, "nope.pem")
	expired := t.TempDir()
	if err := WriteFiles(expired, ca.SVID(serverID, testca.Validity(time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour))), ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	later := t.TempDir()
	if err := WriteFiles(later, ca.SVID(serverID, testca.Validity(time.Now().Add(time.Hour), time.Now().Add(2*time.Hour))), ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts FileOptions
		want string
	}{
		{"no files", FileOptions{}, "needs a certificate, a key and a bundle file"},
		{"missing bundle", missing, "nope.pem: no such file or directory"},
		{"expired", FilesIn(expired), "the SVID expired at"},
		// Not "will load it then": a start has nothing to serve until then.
		{"not valid yet", FilesIn(later), "no identity to start with"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Logger = quiet
			src, err := NewFileSource(tc.opts)
			if err == nil {
				src.Close()
			}
			if !errContains(err, tc.want) {
				t.Errorf("error = %v; want %q", err, tc.want)
			}
		})
	}
}

// TestFileSourceKeyEncodings: cert-manager writes PKCS#1 and SEC 1 keys as
// well as PKCS#8.
func TestFileSourceKeyEncodings(t *testing.T) {
	ca := testca.New(t, "example.org")
	svid := ca.SVID(serverID)
	sec1, err := x509.MarshalECPrivateKey(svid.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteFiles(dir, svid, ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	keyPEM := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...)
	if err := os.WriteFile(filepath.Join(dir, KeyFile), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := FilesIn(dir)
	opts.Logger = quiet
	src, err := NewFileSource(opts)
	if err != nil {
		t.Fatalf("SEC 1 key: %v", err)
	}
	src.Close()

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := parseKeyPEM(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)}))
	if err != nil {
		t.Fatalf("PKCS#1 key: %v", err)
	}
	if back, err := x509.ParsePKCS8PrivateKey(der); err != nil || !rsaKey.Equal(back) {
		t.Errorf("PKCS#1 key round trip: %v", err)
	}
	if _, err := parseKeyPEM([]byte("nothing")); !errContains(err, "no PEM private key found") {
		t.Errorf("no key: %v", err)
	}
}

func TestWriteFiles(t *testing.T) {
	ca := testca.New(t, "example.org")
	svid := ca.SVID(serverID)
	dir := filepath.Join(t.TempDir(), "new")
	if err := WriteFiles(dir, svid, ca.Bundle()); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{SVIDFile: 0o644, KeyFile: 0o600, BundleFile: 0o644} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != mode {
			t.Errorf("%s: mode %#o; want %#o", name, info.Mode().Perm(), mode)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("%d files in the directory; want 3 (no temporary files left)", len(entries))
	}
	back, err := x509svid.Load(filepath.Join(dir, SVIDFile), filepath.Join(dir, KeyFile))
	if err != nil || back.ID != svid.ID {
		t.Fatalf("x509svid.Load: %v, %v", back, err)
	}
	bundle, err := x509bundle.Load(ca.TrustDomain(), filepath.Join(dir, BundleFile))
	if err != nil || !bundle.Equal(ca.Bundle()) {
		t.Errorf("bundle round trip: %v", err)
	}
}

// TestFileBundleTrustDomains: a partner's CA appended to the bundle file
// (its URI SAN naming its trust domain) is that trust domain's root: its
// peers verify, and an SVID it minted for the gateway's own trust domain
// does not.
func TestFileBundleTrustDomains(t *testing.T) {
	own, partner := testca.New(t, "example.org"), testca.New(t, "partner.org")
	dir := t.TempDir()
	if err := WriteFiles(dir, own.SVID(serverID), own.Bundle()); err != nil {
		t.Fatal(err)
	}
	partnerPEM, err := partner.Bundle().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, BundleFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(partnerPEM)
	f.Close()
	opts := FilesIn(dir)
	opts.Logger = quiet
	src, err := NewFileSource(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, tc := range []struct {
		name string
		svid *x509svid.SVID
		ok   bool
	}{
		{"own CA, own domain", own.SVID("spiffe://example.org/client"), true},
		{"partner CA, partner domain", partner.SVID("spiffe://partner.org/client"), true},
		{"partner CA, own domain", partner.SVID("spiffe://example.org/admin"), false},
	} {
		_, _, err := x509svid.Verify(tc.svid.Certificates, src)
		if (err == nil) != tc.ok {
			t.Errorf("%s: verify error %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}

package identity

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/wasmesh/wasmesh/internal/atomicfile"
)

// WriteFiles writes svid and bundle into dir (created 0700 if missing) as
// SVIDFile, KeyFile (mode 0600) and BundleFile. Each file is replaced by
// rename, so a NewFileSource watching dir never reads a half-written file.
func WriteFiles(dir string, svid *x509svid.SVID, bundle *x509bundle.Bundle) error {
	certPEM, keyPEM, err := svid.Marshal()
	if err != nil {
		return fmt.Errorf("encoding the SVID: %w", err)
	}
	bundlePEM, err := bundle.Marshal()
	if err != nil {
		return fmt.Errorf("encoding the bundle: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The key first: until the certificate follows, a watcher sees a
	// mismatched pair, which it rejects, and then the matching one.
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{KeyFile, keyPEM, 0o600}, {SVIDFile, certPEM, 0o644}, {BundleFile, bundlePEM, 0o644}} {
		if err := atomicfile.WriteFile(filepath.Join(dir, f.name), f.data, f.mode, ""); err != nil {
			return err
		}
	}
	return nil
}

// Fingerprint is "sha256:" and the hex SHA-256 of cert's DER, as printed by
// `wasmesh identity` (openssl x509 -fingerprint -sha256 prints the same
// digest in upper case with colons).
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// errNoCertificates is parseCertsPEM's error for data with no certificate.
var errNoCertificates = errors.New("no PEM certificates found")

// parseCertsPEM returns the DER of every CERTIFICATE block, refusing other
// blocks so that a key pasted into the wrong file is noticed.
func parseCertsPEM(data []byte) ([][]byte, error) {
	var ders [][]byte
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("unexpected PEM block %q among the certificates", block.Type)
		}
		ders = append(ders, block.Bytes)
	}
	if len(ders) == 0 {
		return nil, errNoCertificates
	}
	return ders, nil
}

// parseKeyPEM returns the PKCS#8 DER of the first private key in data.
func parseKeyPEM(data []byte) ([]byte, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("no PEM private key found")
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			return block.Bytes, nil
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue // "EC PARAMETERS" and the like
		}
		if err != nil {
			return nil, fmt.Errorf("parsing the %s: %w", block.Type, err)
		}
		return x509.MarshalPKCS8PrivateKey(key)
	}
}

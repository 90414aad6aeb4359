package modules

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Signatures are ed25519 over the digest string itself, "sha256:<64 hex>", so
// that anyone can check one with standard tools, for example
//
//	printf %s sha256:… > msg && openssl pkeyutl -verify -pubin -inkey key.pub -rawin -in msg -sigfile sig.bin
//
// Keys are PEM: PKCS #8 "PRIVATE KEY" and PKIX "PUBLIC KEY", as openssl writes them.

// ErrUnsigned is wrapped by errors for a module that the policy requires to be
// signed and that has no valid signature by a trusted key.
var ErrUnsigned = errors.New("artifact is not signed by a trusted key")

// GenerateKey returns a new ed25519 key pair as PEM.
func GenerateKey() (pubPEM, privPEM []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), nil
}

// ParsePrivateKey reads a PEM PKCS #8 ed25519 private key.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("not a PEM \"PRIVATE KEY\"")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	priv, ok := key.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, want ed25519", key)
	}
	return priv, nil
}

// ParsePublicKey reads a PEM PKIX ed25519 public key.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("not a PEM \"PUBLIC KEY\"")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := key.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %T, want ed25519", key)
	}
	return pub, nil
}

// KeyID names a public key: the first 16 hex digits of its sha256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Sign signs digest, which must be a full "sha256:<64 hex>".
func Sign(priv ed25519.PrivateKey, digest string) ([]byte, error) {
	if _, err := fullHex(digest); err != nil {
		return nil, err
	}
	return ed25519.Sign(priv, []byte(digest)), nil
}

func fullHex(digest string) (string, error) {
	h, err := parseRef(digest)
	if err != nil {
		return "", err
	}
	if len(h) != 64 {
		return "", fmt.Errorf("digest %s is abbreviated: a signature needs all 64 hex digits", digest)
	}
	return h, nil
}

// AddSignature stores sig, by the key pub, for digest — which need not be in
// the store yet, so that a module can be signed before a store that requires
// signatures accepts its push. A signature that does not verify is refused.
func (s *Store) AddSignature(digest string, pub ed25519.PublicKey, sig []byte) error {
	h, err := fullHex(digest)
	if err != nil {
		return err
	}
	if !ed25519.Verify(pub, []byte(Prefix+h), sig) {
		return fmt.Errorf("signature by key %s does not verify for %s", KeyID(pub), Prefix+h)
	}
	dir := filepath.Join(s.root, "signatures", h)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The public key goes next to the signature, so that the signature can
	// travel with the module (to an OCI registry) and be checked elsewhere.
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return err
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	if err := writeAtomic(filepath.Join(s.root, "tmp"), filepath.Join(dir, KeyID(pub)+".pub"), pubPEM, 0o644); err != nil {
		return err
	}
	data := []byte(base64.StdEncoding.EncodeToString(sig) + "\n")
	return writeAtomic(filepath.Join(s.root, "tmp"), filepath.Join(dir, KeyID(pub)+".sig"), data, 0o644)
}

// RemoveSignature removes the signature of digest by the key keyID, and the
// key kept with it, if they are stored.
func (s *Store) RemoveSignature(digest, keyID string) error {
	h, err := fullHex(digest)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.root, "signatures", h)
	for _, ext := range []string{".sig", ".pub"} {
		if err := os.Remove(filepath.Join(dir, keyID+ext)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	_ = os.Remove(dir) // when it is empty
	return nil
}

// Signature is one stored signature of a module.
type Signature struct {
	KeyID string
	// PublicKey is the signer's key: the one recorded with the signature, or
	// a trusted key of the policy with that id. Nil when neither is known
	// (signatures stored before keys were recorded, by an untrusted key).
	PublicKey ed25519.PublicKey
	Sig       []byte
}

// Signatures returns the stored signatures of digest (a full
// "sha256:<64 hex>"), ordered by key id. They are returned as stored: check
// them with VerifySignature or let the policy do it. A file that holds no
// signature (not base64, not 64 bytes) is left out.
func (s *Store) Signatures(digest string) ([]Signature, error) {
	h, err := fullHex(digest)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.root, "signatures", h)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	trusted := map[string]ed25519.PublicKey{}
	if p, err := s.Policy(); err == nil {
		for _, k := range p.TrustedKeys {
			if pub, err := ParsePublicKey([]byte(k)); err == nil {
				trusted[KeyID(pub)] = pub
			}
		}
	}
	var out []Signature
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".sig")
		if !ok {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
		if err != nil || len(sig) != ed25519.SignatureSize {
			continue // no signature at all: nothing it could verify, and no reason to refuse the others
		}
		pub := trusted[id]
		if pemData, err := os.ReadFile(filepath.Join(dir, id+".pub")); err == nil {
			if k, err := ParsePublicKey(pemData); err == nil && KeyID(k) == id {
				pub = k
			}
		}
		out = append(out, Signature{KeyID: id, PublicKey: pub, Sig: sig})
	}
	return out, nil
}

// VerifySignature checks the stored signature of ref by the key pub.
func (s *Store) VerifySignature(ref string, pub ed25519.PublicKey) (string, error) {
	digest, err := s.Resolve(ref)
	if err != nil {
		return "", err
	}
	// The blob first: a signature of a digest says nothing of bytes that
	// no longer hash to it.
	wasm, err := ReadFile(s.blobPath(strings.TrimPrefix(digest, Prefix)))
	if err != nil {
		return digest, err
	}
	if got := DigestOf(wasm); got != digest {
		return digest, fmt.Errorf("%s is corrupt: its bytes hash to %s", digest, got)
	}
	return digest, s.verifySignature(digest, pub)
}

func (s *Store) verifySignature(digest string, pub ed25519.PublicKey) error {
	path := filepath.Join(s.root, "signatures", strings.TrimPrefix(digest, Prefix), KeyID(pub)+".sig")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s has no signature by key %s", ErrUnsigned, digest, KeyID(pub))
	}
	if err != nil {
		return err
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || !ed25519.Verify(pub, []byte(digest), sig) {
		return fmt.Errorf("%w: the signature of %s by key %s is invalid (%s)", ErrUnsigned, digest, KeyID(pub), path)
	}
	return nil
}

// Policy is a store's signature policy, kept in policy.json at its root.
type Policy struct {
	// RequireSigned refuses to push or hand out a module without a valid
	// signature by one of TrustedKeys. Default false.
	RequireSigned bool `json:"require_signed"`
	// TrustedKeys are PEM public keys.
	TrustedKeys []string `json:"trusted_keys"`
}

// Policy returns the store's policy; a store without policy.json has the zero Policy.
func (s *Store) Policy() (Policy, error) {
	var p Policy
	data, err := os.ReadFile(filepath.Join(s.root, "policy.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return p, nil
	}
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("%s: %w", filepath.Join(s.root, "policy.json"), err)
	}
	return p, nil
}

// SetPolicy validates and saves p.
func (s *Store) SetPolicy(p Policy) error {
	for i, k := range p.TrustedKeys {
		if _, err := ParsePublicKey([]byte(k)); err != nil {
			return fmt.Errorf("trusted key %d: %w", i, err)
		}
	}
	if p.RequireSigned && len(p.TrustedKeys) == 0 {
		return errors.New("require_signed needs at least one trusted key")
	}
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.root, "tmp"), filepath.Join(s.root, "policy.json"), append(data, '\n'), 0o644)
}

// CheckPolicy checks digest against the store's policy (Policy): with
// require_signed, a signature of it by one of the trusted keys. Get and
// Put check it; a caller holding a module it read before checks it again
// here.
func (s *Store) CheckPolicy(digest string) error { return s.checkPolicy(digest) }

// checkPolicy returns nil when the policy does not require signatures or
// digest has a valid signature by a trusted key.
func (s *Store) checkPolicy(digest string) error {
	p, err := s.Policy()
	if err != nil || !p.RequireSigned {
		return err
	}
	if len(p.TrustedKeys) == 0 { // a policy.json written by hand: nothing can be signed by a key it trusts
		return fmt.Errorf("%w: %s: the store's policy requires signatures and trusts no key (policy.json's trusted_keys is empty): nothing is accepted", ErrUnsigned, Short(digest))
	}
	var errs []error
	for _, k := range p.TrustedKeys {
		pub, err := ParsePublicKey([]byte(k))
		if err != nil {
			return err
		}
		err = s.verifySignature(digest, pub)
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

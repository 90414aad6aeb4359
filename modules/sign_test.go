package modules

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newKey(t *testing.T) (pubPEM []byte, privPEM []byte) {
	t.Helper()
	pub, priv, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// signNew signs digest in s with a new key, and returns the key and the
// signature.
func signNew(t *testing.T, s *Store, digest string) (ed25519.PublicKey, []byte) {
	t.Helper()
	pubPEM, privPEM := newKey(t)
	priv, _ := ParsePrivateKey(privPEM)
	pub, _ := ParsePublicKey(pubPEM)
	sig, _ := Sign(priv, digest)
	if err := s.AddSignature(digest, pub, sig); err != nil {
		t.Fatal(err)
	}
	return pub, sig
}

func TestSignatures(t *testing.T) {
	s := openStore(t)
	d, _ := s.Put(context.Background(), bytes.NewReader(readFile(t, "a.wasm")))
	pubPEM, privPEM := newKey(t)
	otherPEM, _ := newKey(t)
	priv, err := ParsePrivateKey(privPEM)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := ParsePublicKey(pubPEM)
	other, _ := ParsePublicKey(otherPEM)

	sig, err := Sign(priv, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddSignature(d, pub, sig); err != nil {
		t.Fatal(err)
	}
	t.Run("good", func(t *testing.T) {
		if _, err := s.VerifySignature(d[:16], pub); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		if _, err := s.VerifySignature(d, other); !errors.Is(err, ErrUnsigned) {
			t.Fatalf("err = %v, want ErrUnsigned", err)
		}
	})
	t.Run("tampered signature refused on add", func(t *testing.T) {
		bad := bytes.Clone(sig)
		bad[0] ^= 1
		if err := s.AddSignature(d, pub, bad); err == nil || !strings.Contains(err.Error(), "does not verify") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("tampered signature file", func(t *testing.T) {
		d2, _ := s.Put(context.Background(), bytes.NewReader(readFile(t, "b.wasm")))
		sig2, _ := Sign(priv, d2)
		// A valid signature of another digest, planted as d's.
		if err := s.AddSignature(d2, pub, sig2); err != nil {
			t.Fatal(err)
		}
		copyFile(t, s, d2, d, pub)
		if _, err := s.VerifySignature(d, pub); !errors.Is(err, ErrUnsigned) || !strings.Contains(err.Error(), "invalid") {
			t.Fatalf("err = %v, want an invalid signature", err)
		}
	})
	t.Run("abbreviated digest cannot be signed", func(t *testing.T) {
		if _, err := Sign(priv, d[:20]); err == nil {
			t.Fatal("signed an abbreviated digest")
		}
	})
}

func TestRequireSigned(t *testing.T) {
	s := openStore(t)
	pubPEM, privPEM := newKey(t)
	priv, _ := ParsePrivateKey(privPEM)
	pub, _ := ParsePublicKey(pubPEM)
	unsignedDigest, _ := s.Put(context.Background(), bytes.NewReader(readFile(t, "b.wasm")))

	if err := s.SetPolicy(Policy{RequireSigned: true}); err == nil {
		t.Fatal("require_signed without trusted keys was accepted")
	}
	if err := s.SetPolicy(Policy{RequireSigned: true, TrustedKeys: []string{string(pubPEM)}}); err != nil {
		t.Fatal(err)
	}
	wasm := readFile(t, "a.wasm")
	if _, err := s.Put(context.Background(), bytes.NewReader(wasm)); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("unsigned push: err = %v, want ErrUnsigned", err)
	}
	if _, err := s.Resolve(DigestOf(wasm)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused push left the module in the store: %v", err)
	}
	if _, _, err := s.Get(unsignedDigest); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("get of an unsigned module: err = %v, want ErrUnsigned", err)
	}
	// Sign first (the module need not be stored yet), then push.
	sig, _ := Sign(priv, DigestOf(wasm))
	if err := s.AddSignature(DigestOf(wasm), pub, sig); err != nil {
		t.Fatal(err)
	}
	d, err := s.Put(context.Background(), bytes.NewReader(wasm))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(d); err != nil {
		t.Fatal(err)
	}
	problems, _ := s.Verify()
	if len(problems) != 1 || problems[0].Digest != unsignedDigest {
		t.Fatalf("verify: %+v, want the unsigned module reported", problems)
	}
	// A policy written by hand that requires signatures and trusts no key
	// (a key removed in a rotation) accepts nothing, not everything.
	if err := os.WriteFile(filepath.Join(s.root, "policy.json"), []byte(`{"require_signed": true, "trusted_keys": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(d); err == nil || !strings.Contains(err.Error(), "trusts no key") {
		t.Fatalf("get under a policy that trusts no key: %v", err)
	}
	if _, err := s.Put(context.Background(), bytes.NewReader(readFile(t, "b.wasm"))); err == nil {
		t.Fatal("a push under a policy that trusts no key was accepted")
	}
}

// copyFile copies from's signature by pub over to's.
func copyFile(t *testing.T, s *Store, from, to string, pub []byte) {
	t.Helper()
	src := s.root + "/signatures/" + strings.TrimPrefix(from, Prefix) + "/" + KeyID(pub) + ".sig"
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := s.root + "/signatures/" + strings.TrimPrefix(to, Prefix)
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(dir+"/"+KeyID(pub)+".sig", data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSignaturesListed: AddSignature keeps the public key next to the
// signature, so Signatures can hand both out even without a policy.
func TestSignaturesListed(t *testing.T) {
	s := openStore(t)
	d, _ := s.Put(context.Background(), bytes.NewReader(readFile(t, "a.wasm")))
	if sigs, err := s.Signatures(d); err != nil || len(sigs) != 0 {
		t.Fatalf("Signatures of an unsigned module = %v, %v; want none", sigs, err)
	}
	pub, sig := signNew(t, s, d)
	sigs, err := s.Signatures(d)
	if err != nil || len(sigs) != 1 {
		t.Fatalf("Signatures = %v, %v; want one", sigs, err)
	}
	if got := sigs[0]; got.KeyID != KeyID(pub) || !got.PublicKey.Equal(pub) || !bytes.Equal(got.Sig, sig) {
		t.Errorf("Signatures()[0] = %+v, want key %s and the signature", got, KeyID(pub))
	}
	if _, err := s.Signatures("sha256:1234abcd"); err == nil {
		t.Error("Signatures of an abbreviated digest: no error")
	}
	// A file that holds no signature is left out, not an error that hides
	// the good one.
	junk := filepath.Join(s.root, "signatures", strings.TrimPrefix(d, Prefix), "0123456789abcdef.sig")
	if err := os.WriteFile(junk, []byte("not base64!!\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if sigs, err := s.Signatures(d); err != nil || len(sigs) != 1 || sigs[0].KeyID != KeyID(pub) {
		t.Errorf("with a malformed signature file beside it: %v, %v; want the good one alone", sigs, err)
	}
}

package modules

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Prefix is the scheme of every digest: "sha256:<64 lowercase hex>".
const Prefix = "sha256:"

// MinPrefix is the fewest hex digits an abbreviated digest may have.
const MinPrefix = 8

// DigestOf returns the digest of b.
func DigestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return Prefix + hex.EncodeToString(sum[:])
}

// Short returns the first 12 hex digits of a digest, for humans.
func Short(digest string) string {
	h := strings.TrimPrefix(digest, Prefix)
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

// ErrInvalidDigest is wrapped by errors for a reference that is not a digest.
var ErrInvalidDigest = errors.New("invalid digest")

// parseRef turns "sha256:<hex>" or "<hex>" (at least MinPrefix digits) into
// lowercase hex.
func parseRef(ref string) (string, error) {
	h := strings.ToLower(ref)
	h = strings.TrimPrefix(h, Prefix) // "SHA256:" too: digest arguments are case-insensitive
	if len(h) < MinPrefix || len(h) > 64 {
		return "", fmt.Errorf("%w %q: want sha256:<hex> with %d to 64 hex digits", ErrInvalidDigest, ref, MinPrefix)
	}
	if strings.Trim(h, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%w %q: not hexadecimal", ErrInvalidDigest, ref)
	}
	return h, nil
}

// IsDigest reports whether s looks like a (possibly abbreviated) digest rather
// than a file path.
func IsDigest(s string) bool {
	if len(s) >= len(Prefix) && strings.EqualFold(s[:len(Prefix)], Prefix) {
		return true
	}
	_, err := parseRef(s)
	return err == nil && !strings.ContainsAny(s, "./")
}

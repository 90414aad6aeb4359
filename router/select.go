package router

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/wasmesh/wasmesh/config"
)

// VersionHeader is the request header that pins a version; see Select.
const VersionHeader = "X-Wasmesh-Version"

// ErrUnknownVersion is returned (wrapped) by [Select] when the
// X-Wasmesh-Version header pins a version the service does not have, or pins
// it ambiguously.
var ErrUnknownVersion = errors.New("unknown version")

// Select picks the version of s that serves r, in lane (nil: none), in
// this order:
//
//  1. A pin: when s.PinHeader is set and r has an X-Wasmesh-Version header,
//     the version it names. See the package documentation for the forms.
//     A pin that names no version of s, or more than one, is an error
//     wrapping ErrUnknownVersion.
//  2. The lane: its version of s, unless evicted. When it has none (or it
//     is evicted), a strict lane refuses, with an error wrapping
//     ErrLaneRefused, and a permissive one goes on as if r had no lane.
//  3. Sticky: when s.Sticky is set and r carries a non-empty key, weighted
//     rendezvous hashing of the key, the same on every replica and restart.
//  4. Otherwise at random, in proportion to the weights.
//
// Versions of weight 0 are chosen only by a pin or a lane.
func Select(s *config.Service, r *http.Request, lane *Lane) (*config.Version, error) {
	if pin := PinOf(s, r); pin != "" {
		return Pinned(s, pin)
	}
	if lane != nil {
		v := lane.Version(s.Name)
		evicted := v != nil && lane.Evicted(s.Name)
		switch {
		case v != nil && !evicted:
			return v, nil
		case lane.Strict && evicted:
			return nil, fmt.Errorf("%w: lane %q's version of service %q is evicted", ErrLaneRefused, lane.Name, s.Name)
		case lane.Strict:
			return nil, fmt.Errorf("%w: lane %q has no version of service %q", ErrLaneRefused, lane.Name, s.Name)
		}
	}
	if key := KeyOf(s.Sticky, r); key != "" {
		if v := rendezvous(s, key); v != nil {
			return v, nil
		}
	}
	total := 0
	for _, v := range s.Versions {
		total += max(v.Weight, 0)
	}
	if total == 0 {
		return nil, fmt.Errorf("service %q has no version with weight above 0", s.Name)
	}
	n := rand.IntN(total)
	for _, v := range s.Versions {
		if n -= max(v.Weight, 0); n < 0 {
			return v, nil
		}
	}
	panic("unreachable")
}

// PinOf is the version r pins for s (its first X-Wasmesh-Version header's
// value, trimmed) when s honours pins; "" when it pins none.
func PinOf(s *config.Service, r *http.Request) string {
	if pins := r.Header[VersionHeader]; s.PinHeader && len(pins) > 0 {
		return strings.TrimSpace(pins[0])
	}
	return ""
}

// Pinned returns the version of s named by pin (a pin header's value, a
// release's candidate): "sha256:<hex>" or bare hex (8 or
// more digits, case-insensitive) is a digest prefix, anything else a Name;
// a bare value that equals a Name is taken as the name.
func Pinned(s *config.Service, pin string) (*config.Version, error) {
	for _, v := range s.Versions {
		if v.Name != "" && v.Name == pin {
			return v, nil
		}
	}
	hex := pin
	if len(hex) >= len("sha256:") && strings.EqualFold(hex[:len("sha256:")], "sha256:") {
		hex = hex[len("sha256:"):]
	}
	hex = strings.ToLower(hex)
	if len(hex) < 8 || len(hex) > 64 || !isHex(hex) {
		return nil, fmt.Errorf("%w %q for service %q: want a version name, or sha256: and at least 8 hex digits", ErrUnknownVersion, pin, s.Name)
	}
	var found *config.Version
	for _, v := range s.Versions {
		if !strings.HasPrefix(v.Digest, "sha256:"+hex) {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%w %q for service %q: ambiguous, matches %s and %s", ErrUnknownVersion, pin, s.Name, short(found.Digest), short(v.Digest))
		}
		found = v
	}
	if found == nil {
		return nil, fmt.Errorf("%w %q for service %q", ErrUnknownVersion, pin, s.Name)
	}
	return found, nil
}

// KeyOf is the value of the header or cookie k names in r, "" if none.
func KeyOf(k config.Sticky, r *http.Request) string {
	switch k.Kind {
	case "header":
		return r.Header.Get(k.Name)
	case "cookie":
		if c, err := r.Cookie(k.Name); err == nil {
			return c.Value
		}
	}
	return ""
}

// rendezvous picks, among versions with weight above 0, the one with the
// lowest score -ln(u)/weight, where u in (0,1) is a stable hash of key and
// the version's digest. Raising one weight lowers only that version's score,
// so keys move only to it. nil if no version has weight.
func rendezvous(s *config.Service, key string) *config.Version {
	var best *config.Version
	bestScore := math.Inf(1)
	for _, v := range s.Versions {
		if v.Weight <= 0 {
			continue
		}
		h := KeyHash(key, versionID(v))
		u := (float64(h>>11) + 0.5) / (1 << 53)
		if score := -math.Log(u) / float64(v.Weight); score < bestScore {
			best, bestScore = v, score
		}
	}
	return best
}

// KeyHash is the stable hash of a sticky key and the id of what it may
// stick to (a version, an endpoint): the same in every process, and well
// spread for rendezvous hashing, where the highest (or lowest) score of
// the ids takes the key.
func KeyHash(key, id string) uint64 {
	return splitmix64(fnv1a(fnv1a(fnv1a(fnvOffset, key), "\x00"), id))
}

// id identifies v for hashing: its digest, or Module/Path before resolution.
func versionID(v *config.Version) string {
	return cmp.Or(v.Digest, v.Module+v.Path)
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnv1a continues a 64-bit FNV-1a hash h over s.
func fnv1a(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// splitmix64 is the finalizer of SplitMix64: it spreads every input bit over
// the whole output, which FNV alone does poorly for the high bits.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// isHex reports whether s has only lowercase hex digits.
func isHex(s string) bool { return strings.Trim(s, "0123456789abcdef") == "" }

package oci

import (
	"fmt"
	"strings"

	"oras.land/oras-go/v2/registry"
)

// Scheme starts every reference: "oci://registry/repository:tag" or
// "oci://registry/repository@sha256:<64 hex>".
const Scheme = "oci://"

// Reference names an artifact in a registry.
type Reference struct {
	// Registry is the registry's host, with its port if written.
	Registry string
	// Repository is the repository path inside the registry.
	Repository string
	// Tag is "" when the reference has none (or has a digest too, which wins).
	Tag string
	// Digest is the manifest's "sha256:<64 hex>", "" when not pinned.
	Digest string
}

// ParseReference parses "oci://registry/repository" followed by ":tag",
// "@sha256:<64 hex>" or nothing. A tag written before a digest is dropped:
// the digest names the content.
func ParseReference(s string) (Reference, error) {
	rest, ok := strings.CutPrefix(s, Scheme)
	if !ok {
		return Reference{}, fmt.Errorf("invalid OCI reference %q: want %sregistry/repository:tag or @sha256:<64 hex>", s, Scheme)
	}
	r, err := registry.ParseReference(rest)
	if err != nil {
		return Reference{}, fmt.Errorf("invalid OCI reference %q: %w", s, err)
	}
	ref := Reference{Registry: r.Registry, Repository: r.Repository}
	if d, err := r.Digest(); err == nil {
		if d.Algorithm() != "sha256" {
			return Reference{}, fmt.Errorf("invalid OCI reference %q: digest algorithm %s, want sha256", s, d.Algorithm())
		}
		ref.Digest = d.String()
	} else if r.Reference != "" {
		ref.Tag = r.Reference
	}
	return ref, nil
}

// IsReference reports whether s is written as an OCI reference (starts with
// "oci://"), valid or not.
func IsReference(s string) bool { return strings.HasPrefix(s, Scheme) }

// Pinned reports whether the reference names its manifest by digest.
func (r Reference) Pinned() bool { return r.Digest != "" }

// String is the reference as ParseReference reads it.
func (r Reference) String() string {
	s := Scheme + r.Registry + "/" + r.Repository
	switch {
	case r.Digest != "":
		return s + "@" + r.Digest
	case r.Tag != "":
		return s + ":" + r.Tag
	}
	return s
}

// WithDigest returns r pinned to a manifest digest, without its tag.
func (r Reference) WithDigest(digest string) Reference {
	r.Tag, r.Digest = "", digest
	return r
}

// reference is what the registry API is asked for: the digest, else the tag.
func (r Reference) reference() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

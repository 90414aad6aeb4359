// Package ociref parses the oci:// references that name Wasm artifacts in
// OCI registries. It has no dependencies beyond the standard library, so
// that reading a config does not link a registry client; modules/oci
// re-exports it.
//
// The grammar is the OCI distribution one, as oras-go reads it:
// "oci://" registry "/" repository [ ":" tag ] [ "@" digest ], where a tag
// written before a digest is dropped (the digest names the content).
package ociref

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Scheme starts every reference: "oci://registry/repository:tag" or
// "oci://registry/repository@sha256:<64 hex>".
const Scheme = "oci://"

var (
	repositoryRe = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*)*$`)
	tagRe        = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	// digestRe is the OCI image-spec's digest grammar.
	digestRe = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
	sha256Re = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

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

// Parse parses "oci://registry/repository" followed by ":tag",
// "@sha256:<64 hex>" or nothing. A digest of another algorithm is an error
// that names it. An empty tag or digest ("repo:" or "repo@") reads as none,
// as in oras-go.
func Parse(s string) (Reference, error) {
	rest, ok := strings.CutPrefix(s, Scheme)
	if !ok {
		return Reference{}, fmt.Errorf("invalid OCI reference %q: want %sregistry/repository:tag or @sha256:<64 hex>", s, Scheme)
	}
	fail := func(format string, args ...any) (Reference, error) {
		return Reference{}, fmt.Errorf("invalid OCI reference %q: "+format, append([]any{s}, args...)...)
	}
	registry, path, ok := strings.Cut(rest, "/")
	if !ok {
		return fail("missing registry or repository")
	}
	if u, err := url.ParseRequestURI("dummy://" + registry); err != nil || u.Host == "" || u.Host != registry {
		return fail("invalid registry %q", registry)
	}
	ref := Reference{Registry: registry}
	repo, digest, pinned := strings.Cut(path, "@")
	repo, tag, tagged := strings.Cut(repo, ":")
	if !repositoryRe.MatchString(repo) {
		return fail("invalid repository %q", repo)
	}
	ref.Repository = repo
	switch {
	case pinned && digest != "":
		alg, hex, _ := strings.Cut(digest, ":")
		if !digestRe.MatchString(digest) {
			return fail("invalid digest %q", digest)
		}
		if alg != "sha256" {
			return fail("digest algorithm %s, want sha256", alg)
		}
		if !sha256Re.MatchString(hex) {
			return fail("invalid digest %q: want sha256: and 64 lowercase hex digits", digest)
		}
		ref.Digest = digest
	case tagged && tag != "" && !pinned:
		if !tagRe.MatchString(tag) {
			return fail("invalid tag %q", tag)
		}
		ref.Tag = tag
	}
	return ref, nil
}

// IsReference reports whether s is written as an OCI reference (starts with
// "oci://"), valid or not.
func IsReference(s string) bool { return strings.HasPrefix(s, Scheme) }

// Pinned reports whether the reference names its manifest by digest.
func (r Reference) Pinned() bool { return r.Digest != "" }

// String is the reference as Parse reads it.
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

// Target is what the registry API is asked for: the digest, else the tag
// ("" when the reference has neither).
func (r Reference) Target() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

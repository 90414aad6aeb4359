package oci

import (
	"strings"
	"testing"

	"oras.land/oras-go/v2/registry"
)

// orasParse is what ParseReference would return if it used oras-go's
// parser, as it once did: the reference in ParseReference's terms, or ok
// false where oras refuses it or its digest is not sha256.
func orasParse(s string) (Reference, bool) {
	rest, ok := strings.CutPrefix(s, Scheme)
	if !ok {
		return Reference{}, false
	}
	r, err := registry.ParseReference(rest)
	if err != nil {
		return Reference{}, false
	}
	ref := Reference{Registry: r.Registry, Repository: r.Repository}
	if d, err := r.Digest(); err == nil {
		if d.Algorithm() != "sha256" {
			return Reference{}, false
		}
		ref.Digest = d.String()
	} else if r.Reference != "" {
		ref.Tag = r.Reference
	}
	return ref, true
}

var referenceCases = []string{
	"oci://localhost:5000/hello:v1",
	"oci://localhost:5000/hello",
	"oci://ghcr.io/org/team/hello@sha256:" + strings.Repeat("ab", 32),
	"oci://ghcr.io/org/hello:v1@sha256:" + strings.Repeat("ab", 32),
	"oci://ghcr.io/org/hello@sha256:" + strings.Repeat("AB", 32),
	"oci://ghcr.io/org/hello@sha256:" + strings.Repeat("ab", 31),
	"oci://ghcr.io/org/hello@sha256:" + strings.Repeat("gg", 32),
	"oci://ghcr.io/org/hello@sha512:" + strings.Repeat("ab", 64),
	"oci://ghcr.io/org/hello@md5:abcd",
	"oci://ghcr.io/org/hello@",
	"oci://ghcr.io/org/hello:",
	"oci://ghcr.io/org/hello:-bad",
	"oci://ghcr.io/org/hello:" + strings.Repeat("t", 129),
	"oci://ghcr.io/org/hello:" + strings.Repeat("t", 128),
	"oci://ghcr.io/Org/hello:v1",
	"oci://ghcr.io/org//hello:v1",
	"oci://ghcr.io/a__b/c.d-e--f:v1",
	"oci://ghcr.io/a___b:v1",
	"oci://ghcr.io/",
	"oci://ghcr.io",
	"oci:///hello:v1",
	"oci://user@ghcr.io/hello:v1",
	"oci://[::1]:5000/hello:v1",
	"oci://ghcr.io:notaport/hello:v1",
	"oci://ghcr.io/hello:v1:v2",
	"oci://ghcr.io/hello@sha256:" + strings.Repeat("ab", 32) + "@x",
	"docker://ghcr.io/hello:v1",
	"",
}

// TestParseReferenceLikeOras checks that the dependency-free parser accepts
// and reads references exactly as oras-go's parser does.
func TestParseReferenceLikeOras(t *testing.T) {
	for _, s := range referenceCases {
		got, err := ParseReference(s)
		want, ok := orasParse(s)
		if (err == nil) != ok || got != want {
			t.Errorf("ParseReference(%q) = %+v, %v; oras-go reads %+v, ok %v", s, got, err, want, ok)
		}
	}
}

func FuzzParseReferenceLikeOras(f *testing.F) {
	for _, s := range referenceCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseReference(s)
		want, ok := orasParse(s)
		if (err == nil) != ok || got != want {
			t.Errorf("ParseReference(%q) = %+v, %v; oras-go reads %+v, ok %v", s, got, err, want, ok)
		}
		if err == nil {
			if again, err := ParseReference(got.String()); err != nil || again != got {
				t.Errorf("%q: String() %q reads back as %+v, %v", s, got.String(), again, err)
			}
		}
	})
}

package oci_test

import (
	"fmt"

	"github.com/wasmesh/wasmesh/modules/oci"
)

func ExampleParseReference() {
	ref, err := oci.ParseReference("oci://ghcr.io/acme/hello:v2")
	fmt.Println(ref.Registry, ref.Repository, ref.Tag, ref.Pinned(), err)

	// A config pins content: what a tag named once is written with its
	// manifest's digest.
	pinned := ref.WithDigest("sha256:" + fmt.Sprintf("%064x", 1))
	fmt.Println(pinned.Pinned(), pinned.String()[:len("oci://ghcr.io/acme/hello@sha256:")])

	_, err = oci.ParseReference("oci://ghcr.io/Acme/hello:v2")
	fmt.Println(err)
	// Output:
	// ghcr.io acme/hello v2 false <nil>
	// true oci://ghcr.io/acme/hello@sha256:
	// invalid OCI reference "oci://ghcr.io/Acme/hello:v2": invalid repository "Acme/hello"
}

package oci

import "github.com/wasmesh/wasmesh/internal/ociref"

// Scheme starts every reference: "oci://registry/repository:tag" or
// "oci://registry/repository@sha256:<64 hex>".
const Scheme = ociref.Scheme

// Reference names an artifact in a registry.
type Reference = ociref.Reference

// ParseReference parses "oci://registry/repository" followed by ":tag",
// "@sha256:<64 hex>" or nothing. A tag written before a digest is dropped:
// the digest names the content.
func ParseReference(s string) (Reference, error) { return ociref.Parse(s) }

// IsReference reports whether s is written as an OCI reference (starts with
// "oci://"), valid or not.
func IsReference(s string) bool { return ociref.IsReference(s) }

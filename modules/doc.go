// Package modules is wasmesh's content-addressed artifact store.
//
// Every module is stored under the sha256 of its bytes, so a digest names
// exactly one module for ever: the same bytes pushed twice are stored once, and
// a gateway that asks for "sha256:4f9c…" gets those bytes or an error.
//
// Layout under the store's root:
//
//	blobs/sha256/<first 2 hex>/<64 hex>     module bytes (read-only files)
//	signatures/<64 hex>/<key id>.sig        ed25519 signatures of the digest
//	signatures/<64 hex>/<key id>.pub        the signer's public key (PEM)
//	refs/<owner>                            digests an owner (a gateway config) uses
//	oci/sha256/<64 hex>                     module digest a pulled OCI manifest holds (package oci)
//	policy.json                             require_signed and trusted keys
//	tmp/                                    pushes in progress
//
// Writes are atomic (temporary file, fsync, rename, fsync of the directory), so
// several processes may push concurrently and a crash leaves no partial blob.
//
//	s, err := modules.Open(dir, modules.Options{Validate: engine.Validate})
//	digest, err := s.Put(ctx, file)
//	digest, wasm, err := s.Get("sha256:4f9c0a1b") // a digest, or a prefix of 8 or more hex digits
package modules

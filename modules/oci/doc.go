// Package oci moves modules between a store and OCI registries, in the CNCF
// TAG Runtime "Wasm OCI Artifact" layout: an OCI image manifest (v1.1 media
// type) whose config is application/vnd.wasm.config.v0+json and whose one
// layer is the module, application/wasm.
//
// Everything fetched is checked against the digest that names it before it
// is used: the manifest against the reference's digest (or, for a tag, the
// digest the registry announces, which Pull then reports), the config and
// the layer against the manifest's descriptors. The module then goes through
// [modules.Store.Put], so the store's validation and require_signed policy
// apply as for a local push.
//
// Signatures travel in the manifest, one annotation per key
// ([SignatureAnnotation]), so that a pull by digest gets the module and its
// signatures in one verified document.
//
//	c, err := oci.New(oci.Options{PlainHTTP: []string{"127.0.0.1:5000"}})
//	ref, err := oci.ParseReference("oci://127.0.0.1:5000/hello:v1")
//	pinned, err := c.Push(ctx, store, "sha256:9084be8d…", ref)  // oci://127.0.0.1:5000/hello@sha256:…
//	got, err := c.Pull(ctx, store, pinned)                        // got.Module is the wasm's digest
package oci

// Package kubernetes holds no code: its tests check the manifests in base/
// and spiffe/ against the schemas of Kubernetes (kubernetes-validate) and
// against the wasmesh config they carry, parsed by package router.
package kubernetes

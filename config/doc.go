// Package config reads, validates, edits and watches wasmesh's config file:
// the listeners, the module store, the services with their versions,
// limits and outbound allow-lists, and the routes that lead to them (a
// routing table is made from a config by package router).
//
// # Config files
//
// [Parse] and [Load] read a YAML file such as
//
//	listen: ":8080"
//	services:
//	  hello:
//	    versions:
//	      - module: sha256:4f9c0a1b   # a module in the store (digest prefix)
//	        weight: 90
//	      - path: hello.wasm          # development: a file
//	        weight: 10
//	        name: canary
//	    sticky: header:x-user-id
//	    limits: { memory: 32MiB, timeout: 2s }
//	routes:
//	  - match: { host: api.example.com, path_prefix: /hello }
//	    service: hello
//	    strip_prefix: true
//
// Decoding is strict: unknown fields, values of the wrong type and duplicate
// keys are errors. Every problem is reported, not just the first, as an
// [*Error] naming file, line, column and field, e.g.
//
//	wasmesh.yaml:14:17: services.hello.versions[1].weight: must be between 0 and 100, got 140
//
// The defaults are documented on [Config], [Service], [Limits] and [Version].
// Sizes use [ParseSize]; durations use Go's syntax ("2s", "150ms").
//
// # Editing and watching
//
// [SetVersions] rewrites one service's versions in the file's bytes for
// deploy, promote and rollback, keeping the rest of the file as written;
// [Watch] reports changes to the file (its directory is watched, so a
// Kubernetes ConfigMap's symlink swap counts).
package config

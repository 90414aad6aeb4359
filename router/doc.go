// Package router holds wasmesh's configuration and decides, per request,
// which route, service and version serve it.
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
// # Route precedence
//
// [Table.Match] returns the first route, in this order, that matches:
//
//  1. Host: an exact host before a wildcard ("*.example.com", which matches
//     any host ending in ".example.com" but not "example.com"), longer
//     wildcards first, then routes without host.
//  2. Path: an exact path before a path prefix before no path; longer paths
//     and prefixes first. Prefixes match whole segments: "/api" matches
//     "/api", "/api/" and "/api/x", not "/apix"; "/" matches everything; a
//     trailing slash in the prefix is ignored.
//  3. A route with a method before one without.
//  4. More header matches before fewer. Header names are case-insensitive,
//     values exact.
//  5. File order.
//
// Two routes with the same match are rejected, as the second could never be
// chosen.
//
// # Version selection
//
// [Service.Select] picks the version of a service for a request:
//
//  1. Pin. Unless the service sets pin_header: false, an X-Wasmesh-Version
//     header names the version to use: its Name, or a digest prefix of at
//     least 8 hex digits, with or without "sha256:" (a name wins over a
//     prefix). A pin that matches no version, or several, is an error
//     wrapping [ErrUnknownVersion]. Pins reach versions of weight 0.
//  2. Sticky. When the service has sticky: header:<name> or cookie:<name>
//     and the request carries that header or cookie, the version is chosen
//     by weighted rendezvous hashing: for each version of weight w > 0,
//     h = splitmix64(FNV-1a-64(key + "\x00" + digest)),
//     u = ((h >> 11) + 0.5) / 2^53, score = -ln(u) / w; the lowest score
//     wins. Each version wins a share of keys equal to its share of the
//     weight; the choice is a pure function of the key and the versions, so
//     it is the same on every replica and after restarts; and raising one
//     version's weight (the others keeping their ratios, as they always do
//     with two versions) only moves keys to it, never between the others.
//  3. Otherwise at random, in proportion to the weights.
//
// # Editing and watching
//
// [SetVersions] rewrites one service's versions in the file's bytes for
// deploy, promote and rollback; [Watch] reports changes to the file.
package router

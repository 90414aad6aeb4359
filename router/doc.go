// Package router decides, per request, which route, service and version of
// a config (package config) serve it.
//
// [NewTable] builds an immutable [Table] from a parsed config and the digest
// of every version's module; [Table.Match] finds a request's route and
// service, and [Select] the service's version.
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
// [Select] picks the version of a service for a request:
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
package router

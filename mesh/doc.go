// Package mesh is wasmesh's gateway: it serves HTTP requests by routing each
// to a service version (package router) and running that version's module in
// a fresh instance (package host) through the CGI codec (package wasi).
//
// A [Gateway] holds the active routing table behind an atomic pointer.
// [Gateway.Reload] parses a new config, resolves and compiles every module it
// names, and only then swaps the table in: requests in flight finish on the
// table they started with, and a config that fails any step leaves the old
// one serving. [Gateway.Watch] reloads whenever the config file changes.
//
// The admin API ([Gateway.AdminHandler]) serves health, readiness, metrics,
// the active config, and the release operations (deploy, promote, rollback)
// that rewrite the config file and reload it. [Server] runs both listeners
// and drains them on shutdown.
package mesh

// Package mesh is wasmesh's gateway, for embedding: a [Gateway] serves HTTP
// requests by routing each to a version of a service (package router) and
// running that version's guest (package host) through the CGI codec
// (package wasi); it loads configs (package config) and changes a service's
// versions.
//
// Create a gateway with [New], load a config with [Gateway.LoadFile] or
// [Gateway.Reload], then either [Gateway.Serve] it on listeners (the
// gateway's own HTTP/1 server, h2c or h2, mTLS with SPIFFE identities, and
// a graceful drain) or mount it as an http.Handler anywhere.
//
// A load parses and validates the config, resolves and compiles every
// module it names, and only then swaps it in: requests in flight finish on
// the config they started with, and a config that fails any step leaves
// the old one serving. [Gateway.Watch] reloads whenever the config file
// changes. [Gateway.Deploy], [Gateway.Promote] and [Gateway.Rollback]
// rewrite the config file's versions of a service and reload it.
//
// [Gateway.AdminHandler] serves the admin API (docs/admin-api.md):
// health, readiness, metrics, the active config, the services with their
// counts, the colours, artifact uploads and the release operations.
//
// Inside, the gateway is a data plane (internal/dataplane: the request
// path and guests' outbound calls), a control plane (internal/control:
// loads and releases), the admin API (internal/admin) and telemetry
// (internal/telemetry); docs/architecture.md draws them.
package mesh

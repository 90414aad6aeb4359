// Package dataplane is the request path: it serves every request, from a
// client or from a guest's in-process call, by the config snapshot that
// the control plane swapped in, and it makes guests' outbound calls.
//
// One request, top to bottom (path.go):
//
//	ServeHTTP (the HTTP edge)            callService (a guest's wasmesh:// call)
//	  makes a Request: id, connection,     makes a Request: the callee service,
//	  peer SPIFFE ID, trace from headers   caller, hop, trace from the call's span
//	            └──────────────┬─────────────────┘
//	                        serve: server span, then route:
//	   route      Table.Match (a call names its service)
//	   admit      allow_peers (for clients; a call was admitted by its
//	              caller's outbound list)
//	   select     router.Select: pin, sticky key, weights
//	   colour     the client connection, for the version (calls have none)
//	   body       read within max_body and the timeout
//	   limit      a max_concurrency slot, or 503
//	   run        runGuest: CGI environment, the guest's run in the engine,
//	              its response parsed and written
//	   record     span, metrics (per route and version), access log
//
// Host functions (calls.go) find the Request their guest serves in the
// run's context; http_call to wasmesh://SERVICE makes a Request for that
// service and calls serve with it, and to http(s) URLs goes through a
// client whose connections carry the caller's colour and identity checks.
// A new kind of version (a component, an upstream) is a new run step; a
// new per-request property (a lane) is a Request field set at the edge and
// carried into calls by callService.
package dataplane

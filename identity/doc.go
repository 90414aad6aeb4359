// Package identity gives wasmesh SPIFFE X.509 identities for mutual TLS on
// every hop, built on go-spiffe v2.
//
// A Source is the workload's current X.509-SVID and the trust bundles to
// verify peers with. It comes from a SPIFFE Workload API such as a SPIRE agent
// (NewWorkloadSource), from PEM files that something else rotates
// (NewFileSource), or from the development CA (CA.NewSource). ServerConfig
// and ClientConfig turn a Source into a *tls.Config for net/http; every
// handshake reads the Source, so rotations apply to the next connection
// without a restart. AllowList and PeerID let a server authorize each request
// after the handshake.
//
//	src, err := identity.NewWorkloadSource(ctx, identity.WorkloadOptions{}) // $SPIFFE_ENDPOINT_SOCKET
//	if err != nil { ... }
//	defer src.Close()
//	go src.Watch(ctx, func(st identity.Status) {
//		expiry.Set(float64(st.NotAfter.Unix()))
//		if st.Expiring(time.Now()) {
//			log.Warn("SVID not rotated", "svid", st)
//		}
//	})
//
//	srv := &http.Server{TLSConfig: identity.ServerConfig(src, nil)}
//	allow, err := identity.ParseAllowPeers([]string{"spiffe://example.org/ns/dev/*"})
//	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		if id, ok := identity.PeerID(r.TLS); !ok || !allow.Allows(id) {
//			http.Error(w, "forbidden", http.StatusForbidden)
//			return
//		}
//		...
//	})
//	go srv.ServeTLS(ln, "", "")
//
//	client := &http.Client{Transport: &http.Transport{
//		TLSClientConfig:   identity.ClientConfig(src, spiffeid.RequireFromString("spiffe://example.org/ns/dev/sa/db")),
//		ForceAttemptHTTP2: true,
//	}}
//
// The development CA (InitCA, LoadCA, CA.Issue) and the `wasmesh ca` and
// `wasmesh identity` commands are for trying this out without SPIRE.
package identity

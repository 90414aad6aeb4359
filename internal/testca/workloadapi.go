package testca

import (
	"crypto/x509"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/proto/spiffe/workload"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// WorkloadAPI is a SPIFFE Workload API server on a unix socket that streams
// one X.509-SVID to every FetchX509SVID caller, and the new one to all of them
// each time SetX509SVID is called. The other methods are Unimplemented.
type WorkloadAPI struct {
	workload.UnimplementedSpiffeWorkloadAPIServer
	addr string

	mu      sync.Mutex
	resp    *workload.X509SVIDResponse
	changed chan struct{} // closed and replaced by SetX509SVID
}

// StartWorkloadAPI serves svid with bundles (the SVID's own trust domain's
// first, then federated ones) on a socket in tb.TempDir() until the test ends.
func StartWorkloadAPI(tb testing.TB, svid *x509svid.SVID, bundles ...*x509bundle.Bundle) *WorkloadAPI {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		tb.Fatalf("testca: workload API socket: %v", err)
	}
	w := &WorkloadAPI{addr: "unix://" + path, changed: make(chan struct{})}
	w.SetX509SVID(tb, svid, bundles...)
	srv := grpc.NewServer()
	workload.RegisterSpiffeWorkloadAPIServer(srv, w)
	go func() { _ = srv.Serve(ln) }() // returns when Stop closes the listener
	tb.Cleanup(srv.Stop)
	return w
}

// Addr is the address for workloadapi.WithAddr or SPIFFE_ENDPOINT_SOCKET:
// "unix:///path/to/agent.sock".
func (w *WorkloadAPI) Addr() string { return w.addr }

// SetX509SVID replaces the SVID and bundles and pushes them to every open
// stream.
func (w *WorkloadAPI) SetX509SVID(tb testing.TB, svid *x509svid.SVID, bundles ...*x509bundle.Bundle) {
	tb.Helper()
	key, err := x509.MarshalPKCS8PrivateKey(svid.PrivateKey)
	if err != nil {
		tb.Fatalf("testca: marshaling the SVID key: %v", err)
	}
	entry := &workload.X509SVID{SpiffeId: svid.ID.String(), X509Svid: concatDER(svid.Certificates), X509SvidKey: key}
	resp := &workload.X509SVIDResponse{Svids: []*workload.X509SVID{entry}}
	for _, b := range bundles {
		der := concatDER(b.X509Authorities())
		if b.TrustDomain() == svid.ID.TrustDomain() {
			entry.Bundle = der
			continue
		}
		if resp.FederatedBundles == nil {
			resp.FederatedBundles = map[string][]byte{}
		}
		resp.FederatedBundles[b.TrustDomain().IDString()] = der
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.resp = resp
	close(w.changed)
	w.changed = make(chan struct{})
}

// FetchX509SVID implements workload.SpiffeWorkloadAPIServer. Like a real
// agent it refuses callers without the "workload.spiffe.io: true" header.
func (w *WorkloadAPI) FetchX509SVID(_ *workload.X509SVIDRequest, stream grpc.ServerStreamingServer[workload.X509SVIDResponse]) error {
	md, _ := metadata.FromIncomingContext(stream.Context())
	if v := md.Get("workload.spiffe.io"); len(v) != 1 || v[0] != "true" {
		return status.Error(codes.InvalidArgument, "security header missing from request")
	}
	for {
		w.mu.Lock()
		resp, changed := w.resp, w.changed
		w.mu.Unlock()
		if err := stream.Send(resp); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-stream.Context().Done():
			return nil
		}
	}
}

func concatDER(certs []*x509.Certificate) []byte {
	var der []byte
	for _, c := range certs {
		der = append(der, c.Raw...)
	}
	return der
}

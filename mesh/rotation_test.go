package mesh

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/testca"
)

// TestMTLSRotationFromWorkloadAPI: the gateway takes its identity from a
// (test) SPIFFE Workload API; a new SVID pushed while a load loop runs is
// used for new connections at once, and no request fails.
func TestMTLSRotationFromWorkloadAPI(t *testing.T) {
	ca := testca.New(t, "example.org")
	first := ca.SVID("spiffe://example.org/gw/a")
	api := testca.StartWorkloadAPI(t, first, ca.Bundle())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src, err := identity.NewWorkloadSource(ctx, identity.WorkloadOptions{Addr: api.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	f := newFixtureWith(t, "tls: { spiffe_socket: unix:///unused }\ndrain_delay: 0s\n"+oneVersion("rust"), Options{Identity: src})
	url := strings.Replace(serveFixture(t, f), "http://", "https://", 1)

	clientSrc := testca.StartWorkloadAPI(t, ca.SVID("spiffe://example.org/client"), ca.Bundle())
	csrc, err := identity.NewWorkloadSource(ctx, identity.WorkloadOptions{Addr: clientSrc.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer csrc.Close()
	cfg := identity.ClientConfig(csrc, spiffeid.RequireFromString("spiffe://example.org/gw/a"))

	var failures, done atomic.Int64
	var mu sync.Mutex
	serials := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// A new connection per request: each one a new handshake.
				client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
				resp, err := client.Get(url + "/x")
				if err != nil || resp.StatusCode != 200 {
					failures.Add(1)
					if err == nil {
						resp.Body.Close()
					}
					continue
				}
				mu.Lock()
				serials[resp.TLS.PeerCertificates[0].SerialNumber.String()] = true
				mu.Unlock()
				resp.Body.Close()
				done.Add(1)
			}
		}()
	}
	waitFor(t, "some requests on the first SVID", func() bool { return done.Load() > 20 })
	second := ca.SVID("spiffe://example.org/gw/a")
	api.SetX509SVID(t, second, ca.Bundle())
	newSerial := second.Certificates[0].SerialNumber.String()
	waitFor(t, "a connection presenting the new SVID", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return serials[newSerial]
	})
	// Every new connection from now on presents the new certificate.
	for range 5 {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(url, "https://"), cfg)
		if err != nil {
			t.Fatal(err)
		}
		got := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if got.SerialNumber.String() != newSerial {
			t.Fatalf("a new connection presented serial %s, want the rotated %s", got.SerialNumber, newSerial)
		}
	}
	close(stop)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed across the rotation", n, done.Load()+n)
	}
	if !serials[first.Certificates[0].SerialNumber.String()] {
		t.Fatal("no request saw the first SVID")
	}
}

package identity

import (
	"context"
	"crypto/tls"
	"math/big"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/workloadapi"

	"github.com/wasmesh/wasmesh/internal/testca"
)

func newWorkloadSource(t *testing.T, addr string) *Source {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	src, err := NewWorkloadSource(ctx, WorkloadOptions{Addr: addr, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// TestWorkloadSourceRotation pushes a new server SVID through the Workload
// API while a loop of HTTPS requests, each on a new connection, runs: none
// may fail, and once a connection presents the new certificate every later
// one must. A keep-alive connection made before the push stays up.
func TestWorkloadSourceRotation(t *testing.T) {
	ca := testca.New(t, "example.org")
	svid1, svid2 := ca.SVID(serverID), ca.SVID(serverID)
	serial1, serial2 := svid1.Certificates[0].SerialNumber, svid2.Certificates[0].SerialNumber
	serverAPI := testca.StartWorkloadAPI(t, svid1, ca.Bundle())
	clientAPI := testca.StartWorkloadAPI(t, ca.SVID(clientID), ca.Bundle())
	server := newWorkloadSource(t, serverAPI.Addr())
	client := newWorkloadSource(t, clientAPI.Addr())

	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	statuses := make(chan Status, 16)
	go server.Watch(watchCtx, func(st Status) { statuses <- st })
	if st := <-statuses; st.Serial.Cmp(serial1) != 0 || st.ID.String() != serverID {
		t.Fatalf("first status %v; want %s serial %x", st, serverID, serial1)
	}

	allow, _ := ParseAllowPeers([]string{clientID})
	url := serveHTTPS(t, ServerConfig(server, allow.Authorizer()), peerIDHandler)
	clientCfg := ClientConfig(client, mustID(t, serverID))
	fresh := &http.Client{Transport: &http.Transport{TLSClientConfig: clientCfg, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	kept := &http.Client{Transport: &http.Transport{TLSClientConfig: clientCfg}, Timeout: 10 * time.Second}
	if serial, _, err := get(kept, url); err != nil || serial.Cmp(serial1) != 0 {
		t.Fatalf("keep-alive request before the push: serial %x, %v", serial, err)
	}

	var (
		mu        sync.Mutex
		serials   []*big.Int
		failures  []error
		stop      atomic.Bool
		loopEnded = make(chan struct{})
	)
	go func() {
		defer close(loopEnded)
		for !stop.Load() {
			serial, body, err := get(fresh, url)
			if err == nil && body != clientID {
				err = &unexpected{body}
			}
			mu.Lock()
			if err != nil {
				failures = append(failures, err)
			} else {
				serials = append(serials, serial)
			}
			mu.Unlock()
		}
	}()
	count := func(serial *big.Int) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, s := range serials {
			if s.Cmp(serial) == 0 {
				n++
			}
		}
		return n
	}

	waitFor(t, 10*time.Second, "20 requests before the push", func() bool { return count(serial1) >= 20 })
	serverAPI.SetX509SVID(t, svid2, ca.Bundle())
	waitFor(t, 10*time.Second, "a connection with the new certificate", func() bool { return count(serial2) > 0 })
	waitFor(t, 10*time.Second, "20 requests after the push", func() bool { return count(serial2) >= 20 })
	stop.Store(true)
	<-loopEnded

	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed; the first: %v", len(failures), len(failures)+len(serials), failures[0])
	}
	switched := false
	for i, s := range serials {
		switch {
		case s.Cmp(serial2) == 0:
			switched = true
		case switched:
			t.Fatalf("request %d presented serial %x after the new certificate had been served", i, s)
		case s.Cmp(serial1) != 0:
			t.Fatalf("request %d presented unknown serial %x", i, s)
		}
	}
	if st, _ := server.Status(); st.Serial.Cmp(serial2) != 0 {
		t.Errorf("Status serial %x; want %x", st.Serial, serial2)
	}
	select {
	case st := <-statuses:
		if st.Serial.Cmp(serial2) != 0 {
			t.Errorf("Watch saw serial %x after the push; want %x", st.Serial, serial2)
		}
	case <-time.After(10 * time.Second):
		t.Error("Watch was not called after the push")
	}

	// The connection made before the push is still up, with the old certificate.
	var reused bool
	req, _ := http.NewRequest("GET", url, nil)
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
	}))
	resp, err := kept.Do(req)
	if err != nil {
		t.Fatalf("keep-alive request after the push: %v", err)
	}
	resp.Body.Close()
	if !reused || resp.TLS.PeerCertificates[0].SerialNumber.Cmp(serial1) != 0 {
		t.Errorf("keep-alive connection: reused %v, serial %x; want the old connection and serial %x", reused, resp.TLS.PeerCertificates[0].SerialNumber, serial1)
	}
}

type unexpected struct{ body string }

func (u *unexpected) Error() string { return "unexpected answer " + u.body }

// TestWorkloadSourceBundleUpdate: a CA added to the bundle through the
// Workload API is trusted by the next handshake.
func TestWorkloadSourceBundleUpdate(t *testing.T) {
	caA, caB := testca.New(t, "example.org"), testca.New(t, "example.org")
	serverSVID := caA.SVID(serverID)
	api := testca.StartWorkloadAPI(t, serverSVID, caA.Bundle())
	server := newWorkloadSource(t, api.Addr())
	client, _ := memSource(t, caB.SVID(clientID), caA.Bundle())
	serverCfg, clientCfg := ServerConfig(server, nil), ClientConfig(client, mustID(t, serverID))

	if r := handshake(t, serverCfg, clientCfg); !errContains(r.serverErr, "certificate signed by unknown authority") {
		t.Fatalf("before the update: server error %v; want the client's CA unknown", r.serverErr)
	}
	both := caA.Bundle()
	both.AddX509Authority(caB.Cert)
	api.SetX509SVID(t, serverSVID, both)
	waitFor(t, 10*time.Second, "the new bundle", func() bool {
		b, err := server.GetX509BundleForTrustDomain(caA.TrustDomain())
		return err == nil && b.HasX509Authority(caB.Cert)
	})
	if r := handshake(t, serverCfg, clientCfg); r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("after the update: server: %v; client: %v", r.serverErr, r.clientErr)
	}
}

func TestWorkloadSourceFederatedBundle(t *testing.T) {
	ca, partner := testca.New(t, "example.org"), testca.New(t, "partner.example")
	api := testca.StartWorkloadAPI(t, ca.SVID(serverID), ca.Bundle(), partner.Bundle())
	server := newWorkloadSource(t, api.Addr())
	client, _ := memSource(t, partner.SVID("spiffe://partner.example/client"), ca.Bundle())
	r := handshake(t, ServerConfig(server, nil), ClientConfig(client, mustID(t, serverID)))
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("server: %v; client: %v", r.serverErr, r.clientErr)
	}
}

func TestWorkloadSourceAddress(t *testing.T) {
	ca := testca.New(t, "example.org")
	api := testca.StartWorkloadAPI(t, ca.SVID(serverID), ca.Bundle())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	t.Run("from SPIFFE_ENDPOINT_SOCKET", func(t *testing.T) {
		t.Setenv(workloadapi.SocketEnv, api.Addr())
		src, err := NewWorkloadSource(ctx, WorkloadOptions{Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if st, err := src.Status(); err != nil || st.ID.String() != serverID {
			t.Errorf("Status = %v, %v", st, err)
		}
	})
	t.Run("bare socket path", func(t *testing.T) {
		src, err := NewWorkloadSource(ctx, WorkloadOptions{Addr: strings.TrimPrefix(api.Addr(), "unix://"), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		src.Close()
	})
	t.Run("none", func(t *testing.T) {
		t.Setenv(workloadapi.SocketEnv, "")
		_, err := NewWorkloadSource(ctx, WorkloadOptions{})
		if !errContains(err, "no Workload API address: set SPIFFE_ENDPOINT_SOCKET") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		_, err := NewWorkloadSource(ctx, WorkloadOptions{Addr: "http://127.0.0.1:1"})
		if !errContains(err, `Workload API address "http://127.0.0.1:1"`) {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("nobody listening", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := NewWorkloadSource(ctx, WorkloadOptions{Addr: "unix://" + t.TempDir() + "/none.sock", Logger: quiet})
		if !errContains(err, "context deadline exceeded (last error: workload API:") {
			t.Errorf("error = %v; want the deadline and the reason", err)
		}
	})
}

func TestWorkloadSourceClose(t *testing.T) {
	ca := testca.New(t, "example.org")
	api := testca.StartWorkloadAPI(t, ca.SVID(serverID), ca.Bundle())
	src := newWorkloadSource(t, api.Addr())
	watched := make(chan struct{})
	go func() {
		src.Watch(context.Background(), func(Status) {})
		close(watched)
	}()
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := src.GetX509SVID(); err != ErrClosed {
		t.Errorf("GetX509SVID after Close: %v", err)
	}
	if !src.Expiry().IsZero() {
		t.Error("Expiry after Close is not zero")
	}
	select {
	case <-watched:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after Close")
	}
	r := handshake(t, ServerConfig(src, nil), &tls.Config{InsecureSkipVerify: true})
	if !errContains(r.serverErr, "source is closed") {
		t.Errorf("handshake with a closed source: %v", r.serverErr)
	}
}

package identity

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
)

const (
	serverID = "spiffe://example.org/server"
	clientID = "spiffe://example.org/client"
)

// quiet is a logger for sources whose logs the test does not look at.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// memSource returns a Source serving svid and bundles, and the store that
// lets the test replace them.
func memSource(t *testing.T, svid *x509svid.SVID, bundles ...*x509bundle.Bundle) (*Source, *store) {
	t.Helper()
	s := newSource(quiet, nil)
	st := &store{}
	st.cur.Store(&snapshot{svid: svid, bundles: x509bundle.NewSet(bundles...)})
	s.svids, s.bundles = st, st
	t.Cleanup(func() { s.Close() })
	return s, st
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// handshakeResult is what each side of one TLS connection saw.
type handshakeResult struct {
	serverErr, clientErr error
	server, client       tls.ConnectionState
}

// handshake connects a client to a server over loopback TCP. The server
// writes one byte after its handshake, which the client reads: in TLS 1.3 the
// client learns of a rejected certificate (and receives session tickets) only
// when it reads.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var r handshakeResult
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			r.serverErr = err
			return
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Server(c, serverCfg)
		defer tc.Close()
		if r.serverErr = tc.Handshake(); r.serverErr == nil {
			_, r.serverErr = tc.Write([]byte{1})
		}
		r.server = tc.ConnectionState()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(c, clientCfg)
	if r.clientErr = tc.Handshake(); r.clientErr == nil {
		_, r.clientErr = io.ReadFull(tc, make([]byte, 1))
	}
	r.client = tc.ConnectionState()
	tc.Close()
	<-served
	return r
}

// serveHTTPS serves h with cfg on loopback until the test ends and returns
// the base URL. It uses http.Server.ServeTLS, as the gateway does:
// httptest.Server.StartTLS would add its own certificate.
func serveHTTPS(t *testing.T, cfg *tls.Config, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: cfg, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

// peerIDHandler answers with the caller's SPIFFE ID.
var peerIDHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	id, ok := PeerID(r.TLS)
	if !ok {
		http.Error(w, "no peer ID", http.StatusUnauthorized)
		return
	}
	io.WriteString(w, id.String())
})

// get fetches url and returns the server certificate's serial and the body.
func get(client *http.Client, url string) (*big.Int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", errors.New(resp.Status + ": " + string(body))
	}
	return resp.TLS.PeerCertificates[0].SerialNumber, string(body), nil
}

// servedSerial is the serial of the certificate a server with cfg presents
// on a new connection from client.
func servedSerial(t *testing.T, serverCfg, clientCfg *tls.Config) *big.Int {
	t.Helper()
	r := handshake(t, serverCfg, clientCfg)
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("handshake: server: %v; client: %v", r.serverErr, r.clientErr)
	}
	return r.client.PeerCertificates[0].SerialNumber
}

func errContains(err error, want string) bool {
	return err != nil && strings.Contains(err.Error(), want)
}

func mustID(t *testing.T, s string) spiffeid.ID {
	t.Helper()
	id, err := spiffeid.FromString(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

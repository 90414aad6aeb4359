package identity

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/wasmesh/wasmesh/internal/testca"
)

// presenting is a client config that presents svid (when not nil) without
// checking anything: the server under test must do all the checking.
func presenting(svid *x509svid.SVID) *tls.Config {
	cfg := &tls.Config{InsecureSkipVerify: true}
	if svid != nil {
		cfg.Certificates = []tls.Certificate{testca.TLSCertificate(svid)}
	}
	return cfg
}

// TestServerConfigRejects runs one handshake per client certificate against
// a server that requires an SVID of example.org allowed by allow_peers.
func TestServerConfigRejects(t *testing.T) {
	ca := testca.New(t, "example.org")
	inter := ca.Intermediate()
	rogue := testca.New(t, "example.org") // same trust domain, not in the bundle
	other := testca.New(t, "other.org")
	now := time.Now()

	src, _ := memSource(t, ca.SVID(serverID), ca.Bundle())
	allow, err := ParseAllowPeers([]string{clientID, "spiffe://other.org/*"})
	if err != nil {
		t.Fatal(err)
	}
	server := ServerConfig(src, allow.Authorizer())

	withoutIntermediate := inter.SVID(clientID)
	withoutIntermediate.Certificates = withoutIntermediate.Certificates[:1]

	tests := []struct {
		name   string
		client *x509svid.SVID
		want   string // in the server's error; "" for success
	}{
		{"valid SVID", ca.SVID(clientID), ""},
		{"valid SVID through an intermediate", inter.SVID(clientID), ""},
		{"no client certificate", nil, "client didn't provide a certificate"},
		{"another trust domain", other.SVID("spiffe://other.org/client"), `no X.509 bundle for trust domain "other.org"`},
		{"another trust domain's ID signed by our CA", ca.SVID("spiffe://other.org/client"), `no X.509 bundle for trust domain "other.org"`},
		{"expired", ca.SVID(clientID, testca.Validity(now.Add(-2*time.Hour), now.Add(-time.Hour))), "certificate has expired or is not yet valid: current time"},
		{"not yet valid", ca.SVID(clientID, testca.Validity(now.Add(time.Hour), now.Add(2*time.Hour))), "certificate has expired or is not yet valid: current time"},
		{"SPIFFE ID not allowed", ca.SVID("spiffe://example.org/intruder"), `peer "spiffe://example.org/intruder" is not allowed`},
		{"CA certificate as the leaf", ca.SVID(clientID, testca.AsCA()), "leaf certificate with CA flag set to true"},
		{"leaf with the KeyCertSign usage", ca.SVID(clientID, func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageCertSign }), "leaf certificate with KeyCertSign key usage"},
		{"no URI SAN", ca.SVID(clientID, testca.URIs()), "certificate contains no URI SAN"},
		{"two URI SANs", ca.SVID(clientID, testca.URIs(clientID, "spiffe://example.org/other")), "certificate contains more than one URI SAN"},
		{"URI SAN that is not a SPIFFE ID", ca.SVID(clientID, testca.URIs("https://example.org/client")), "scheme is missing or invalid"},
		{"chain that does not lead to the bundle", rogue.SVID(clientID), "certificate signed by unknown authority"},
		{"intermediate missing from the chain", withoutIntermediate, "certificate signed by unknown authority"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := handshake(t, server, presenting(tc.client))
			if tc.want == "" {
				if r.serverErr != nil || r.clientErr != nil {
					t.Fatalf("handshake failed: server: %v; client: %v", r.serverErr, r.clientErr)
				}
				if id, ok := PeerID(&r.server); !ok || id.String() != clientID {
					t.Errorf("PeerID = %v, %v; want %s", id, ok, clientID)
				}
				return
			}
			if !errContains(r.serverErr, tc.want) {
				t.Errorf("server error = %v; want one containing %q", r.serverErr, tc.want)
			}
			if r.clientErr == nil {
				t.Errorf("the client saw no error")
			}
		})
	}
}

func TestServerConfigClientAuthModes(t *testing.T) {
	ca := testca.New(t, "example.org")
	rogue := testca.New(t, "example.org")
	src, _ := memSource(t, ca.SVID(serverID), ca.Bundle())
	allow, _ := ParseAllowPeers([]string{clientID})

	tests := []struct {
		name   string
		mode   ClientAuth
		client *x509svid.SVID
		want   string // server error; "" for success
		peer   string // PeerID on success; "" for none
	}{
		{"require/allowed", RequireClientCert, ca.SVID(clientID), "", clientID},
		{"require/no certificate", RequireClientCert, nil, "client didn't provide a certificate", ""},
		{"request/no certificate", RequestClientCert, nil, "", ""},
		{"request/allowed", RequestClientCert, ca.SVID(clientID), "", clientID},
		{"request/untrusted CA", RequestClientCert, rogue.SVID(clientID), "certificate signed by unknown authority", ""},
		{"request/not allowed", RequestClientCert, ca.SVID("spiffe://example.org/intruder"), "is not allowed", ""},
		{"none/no certificate", NoClientCert, nil, "", ""},
		{"none/untrusted CA", NoClientCert, rogue.SVID(clientID), "", ""}, // not asked for, not sent
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := handshake(t, ServerConfig(src, allow.Authorizer(), WithClientAuth(tc.mode)), presenting(tc.client))
			if tc.want != "" {
				if !errContains(r.serverErr, tc.want) {
					t.Fatalf("server error = %v; want one containing %q", r.serverErr, tc.want)
				}
				return
			}
			if r.serverErr != nil || r.clientErr != nil {
				t.Fatalf("handshake failed: server: %v; client: %v", r.serverErr, r.clientErr)
			}
			id, ok := PeerID(&r.server)
			if got := map[bool]string{true: id.String(), false: ""}[ok]; got != tc.peer {
				t.Errorf("PeerID = %q; want %q", got, tc.peer)
			}
		})
	}
}

func TestParseClientAuth(t *testing.T) {
	for in, want := range map[string]ClientAuth{"": RequireClientCert, "require": RequireClientCert, "request": RequestClientCert, "none": NoClientCert} {
		if got, err := ParseClientAuth(in); err != nil || got != want {
			t.Errorf("ParseClientAuth(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseClientAuth("optional"); !errContains(err, "want require, request or none") {
		t.Errorf("ParseClientAuth(optional) error = %v", err)
	}
}

// TestClientConfigRejects: the outbound side refuses a server that is not
// the one it expects.
func TestClientConfigRejects(t *testing.T) {
	ca := testca.New(t, "example.org")
	rogue := testca.New(t, "example.org")
	now := time.Now()
	client, _ := memSource(t, ca.SVID(clientID), ca.Bundle())

	tests := []struct {
		name   string
		server *x509svid.SVID
		expect string
		want   string // in the client's error; "" for success
	}{
		{"expected server", ca.SVID(serverID), serverID, ""},
		{"unexpected SPIFFE ID", ca.SVID("spiffe://example.org/impostor"), serverID, `unexpected ID "spiffe://example.org/impostor"`},
		{"chain that does not lead to the bundle", rogue.SVID(serverID), serverID, "certificate signed by unknown authority"},
		{"expired server SVID", ca.SVID(serverID, testca.Validity(now.Add(-2*time.Hour), now.Add(-time.Hour))), serverID, "certificate has expired"},
		{"no URI SAN", ca.SVID(serverID, testca.URIs()), serverID, "certificate contains no URI SAN"},
		{"no expected ID configured", ca.SVID(serverID), "", "no expected server SPIFFE ID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server := &tls.Config{Certificates: []tls.Certificate{testca.TLSCertificate(tc.server)}, ClientAuth: tls.RequireAnyClientCert}
			var expect spiffeid.ID
			if tc.expect != "" {
				expect = mustID(t, tc.expect)
			}
			r := handshake(t, server, ClientConfig(client, expect))
			if tc.want == "" {
				if r.serverErr != nil || r.clientErr != nil {
					t.Fatalf("handshake failed: server: %v; client: %v", r.serverErr, r.clientErr)
				}
				if id, ok := PeerID(&r.client); !ok || id.String() != serverID {
					t.Errorf("PeerID = %v, %v; want %s", id, ok, serverID)
				}
				if id, ok := PeerID(&r.server); !ok || id.String() != clientID {
					t.Errorf("the server saw client %v, %v; want %s", id, ok, clientID)
				}
				return
			}
			if !errContains(r.clientErr, tc.want) {
				t.Errorf("client error = %v; want one containing %q", r.clientErr, tc.want)
			}
		})
	}
}

// TestResumedSessionsAreVerifiedAgain: crypto/tls skips VerifyPeerCertificate
// when a session resumes, so a peer whose CA has left the bundle could
// resume its way in; ServerConfig and ClientConfig check again.
func TestResumedSessionsAreVerifiedAgain(t *testing.T) {
	ca := testca.New(t, "example.org")
	unrelated := testca.New(t, "example.org")

	t.Run("server", func(t *testing.T) {
		server, store := memSource(t, ca.SVID(serverID), ca.Bundle())
		client, _ := memSource(t, ca.SVID(clientID), ca.Bundle())
		serverCfg := ServerConfig(server, nil)
		clientCfg := ClientConfig(client, mustID(t, serverID))
		clientCfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		clientCfg.ServerName = "server.test" // the session cache key

		if r := handshake(t, serverCfg, clientCfg); r.serverErr != nil || r.clientErr != nil || r.server.DidResume {
			t.Fatalf("first handshake: server: %v; client: %v; resumed %v", r.serverErr, r.clientErr, r.server.DidResume)
		}
		if r := handshake(t, serverCfg, clientCfg); r.serverErr != nil || !r.server.DidResume {
			t.Fatalf("second handshake: server: %v; resumed %v (want a resumption, or this test shows nothing)", r.serverErr, r.server.DidResume)
		}
		// The client's CA leaves the server's bundle.
		store.cur.Store(&snapshot{svid: store.cur.Load().svid, bundles: x509bundle.NewSet(unrelated.Bundle())})
		r := handshake(t, serverCfg, clientCfg)
		if !errContains(r.serverErr, "resumed session") || !errContains(r.serverErr, "certificate signed by unknown authority") {
			t.Errorf("server error = %v; want a resumed session refused", r.serverErr)
		}
	})

	t.Run("client", func(t *testing.T) {
		server, _ := memSource(t, ca.SVID(serverID), ca.Bundle())
		client, store := memSource(t, ca.SVID(clientID), ca.Bundle())
		serverCfg := ServerConfig(server, nil)
		clientCfg := ClientConfig(client, mustID(t, serverID))
		clientCfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		clientCfg.ServerName = "server.test"

		if r := handshake(t, serverCfg, clientCfg); r.serverErr != nil || r.clientErr != nil {
			t.Fatalf("first handshake: server: %v; client: %v", r.serverErr, r.clientErr)
		}
		if r := handshake(t, serverCfg, clientCfg); r.clientErr != nil || !r.client.DidResume {
			t.Fatalf("second handshake: client: %v; resumed %v", r.clientErr, r.client.DidResume)
		}
		store.cur.Store(&snapshot{svid: store.cur.Load().svid, bundles: x509bundle.NewSet(unrelated.Bundle())})
		r := handshake(t, serverCfg, clientCfg)
		if !errContains(r.clientErr, "resumed session") {
			t.Errorf("client error = %v; want a resumed session refused", r.clientErr)
		}
	})
}

// TestAllowPeersOverHTTP is the gateway's pattern: the listener accepts any
// SVID of a trusted domain, each service checks PeerID against its own
// allow_peers and answers 403.
func TestAllowPeersOverHTTP(t *testing.T) {
	ca := testca.New(t, "example.org")
	server, _ := memSource(t, ca.SVID(serverID), ca.Bundle())
	allow, err := ParseAllowPeers([]string{"spiffe://example.org/ns/dev/*"})
	if err != nil {
		t.Fatal(err)
	}
	url := serveHTTPS(t, ServerConfig(server, nil), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := PeerID(r.TLS); !ok || !allow.Allows(id) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Write([]byte("hello"))
	}))
	for id, want := range map[string]int{
		"spiffe://example.org/ns/dev/sa/web":  http.StatusOK,
		"spiffe://example.org/ns/prod/sa/web": http.StatusForbidden,
	} {
		client, _ := memSource(t, ca.SVID(id), ca.Bundle())
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: ClientConfig(client, mustID(t, serverID)), ForceAttemptHTTP2: true}}
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: status %d; want %d", id, resp.StatusCode, want)
		}
		if resp.ProtoMajor != 2 {
			t.Errorf("%s: %s; want HTTP/2", id, resp.Proto)
		}
	}
}

func TestPeerIDWithoutCertificate(t *testing.T) {
	if _, ok := PeerID(nil); ok {
		t.Error("PeerID(nil) reported a peer")
	}
	if _, ok := PeerID(&tls.ConnectionState{}); ok {
		t.Error("PeerID of a connection without certificates reported a peer")
	}
}

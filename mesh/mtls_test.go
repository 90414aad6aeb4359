package mesh

import (
	"crypto/tls"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/wasmesh/wasmesh/identity"
)

// testCA is an in-memory development CA for example.org.
func testCA(t *testing.T) *identity.CA {
	t.Helper()
	ca, err := identity.NewCA(spiffeid.RequireTrustDomainFromString("example.org"))
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func source(t *testing.T, ca *identity.CA, id string) *identity.Source {
	t.Helper()
	src, err := ca.NewSource(spiffeid.RequireFromString(id), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// mtlsGateway serves config with an SVID for id, through Serve (TLS).
func mtlsGateway(t *testing.T, ca *identity.CA, id, config string) (*fixture, string) {
	t.Helper()
	return mtlsGatewayWith(t, ca, id, config, Options{})
}

// mtlsGatewayWith is mtlsGateway with gateway options.
func mtlsGatewayWith(t *testing.T, ca *identity.CA, id, config string, opts Options) (*fixture, string) {
	t.Helper()
	opts.Identity = source(t, ca, id)
	f := newFixtureWith(t, "tls: { spiffe_socket: unix:///unused }\n"+config, opts)
	return f, strings.Replace(serveFixture(t, f), "http://", "https://", 1)
}

// mtlsClient is an HTTP client presenting id's SVID and expecting serverID.
func mtlsClient(t *testing.T, ca *identity.CA, id, serverID string) *http.Client {
	t.Helper()
	tr := mtlsTransport(t, ca, id, serverID)
	tr.ForceAttemptHTTP2 = true
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

// mtlsTransport presents id's SVID and expects serverID.
func mtlsTransport(t *testing.T, ca *identity.CA, id, serverID string) *http.Transport {
	t.Helper()
	return &http.Transport{TLSClientConfig: identity.ClientConfig(source(t, ca, id), spiffeid.RequireFromString(serverID))}
}

func fetch(t *testing.T, c *http.Client, url string) (int, string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func TestMTLSAllowPeers(t *testing.T) {
	ca := testCA(t)
	_, url := mtlsGateway(t, ca, "spiffe://example.org/gw/a", `
drain_delay: 0s
services:
  env:
    versions: [ { path: $EX/misbehave/rust/misbehave.wasm } ]
    allow_peers: [ "spiffe://example.org/ns/web/*" ]
  open: { versions: [ { path: $EX/hello/rust/hello.wasm } ] }
routes:
  - { match: { path_prefix: /env }, service: env, strip_prefix: true }
  - { match: { path_prefix: /open }, service: open, strip_prefix: true }
`)
	allowed := mtlsClient(t, ca, "spiffe://example.org/ns/web/frontend", "spiffe://example.org/gw/a")
	code, body, err := fetch(t, allowed, url+"/env/?do=env")
	if err != nil || code != 200 || !strings.Contains(body, "X_SPIFFE_PEER_ID=spiffe://example.org/ns/web/frontend\n") {
		t.Fatalf("allowed peer: %d %v\n%s", code, err, body)
	}
	other := mtlsClient(t, ca, "spiffe://example.org/ns/batch/job", "spiffe://example.org/gw/a")
	code, body, err = fetch(t, other, url+"/env/?do=env")
	if err != nil || code != 403 || !strings.Contains(body, `peer spiffe://example.org/ns/batch/job may not call service "env"`) {
		t.Fatalf("other peer: %d %v %q, want 403 naming the peer and the service", code, err, body)
	}
	// A service without allow_peers takes any authenticated peer.
	if code, body, err := fetch(t, other, url+"/open/x"); err != nil || code != 200 || body != "hello from rust: GET /x 0 bytes\n" {
		t.Fatalf("open service: %d %v %q", code, err, body)
	}
	// No client certificate: the handshake fails (client_auth: require).
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if _, _, err := fetch(t, noCert, url+"/open/x"); err == nil {
		t.Fatal("a client without an SVID got through")
	}
	// A client that expects another server identity refuses the gateway.
	wrong := mtlsClient(t, ca, "spiffe://example.org/ns/web/frontend", "spiffe://example.org/gw/b")
	if _, _, err := fetch(t, wrong, url+"/open/x"); err == nil {
		t.Fatal("a client expecting gw/b accepted gw/a")
	}
}

// TestMTLSBetweenGateways: a request into A reaches a guest whose http_call
// goes to B over mTLS; B's guest sees A's SPIFFE ID and the same trace.
func TestMTLSBetweenGateways(t *testing.T) {
	ca := testCA(t)
	_, b := mtlsGateway(t, ca, "spiffe://example.org/gw/b", envFor("spiffe://example.org/gw/a"))
	bHost := strings.TrimPrefix(b, "https://")
	config := func(expect string) string {
		return `
drain_delay: 0s
services:
  frontend:
    versions: [ { path: $EX/frontend/rust/frontend.wasm } ]
    env: { USERS_URL: "` + b + `/" }
    outbound: [ { url: "https://` + bHost + `", expect_id: "` + expect + `" } ]
routes:
  - { match: { path_prefix: / }, service: frontend }
`
	}
	_, a := mtlsGateway(t, ca, "spiffe://example.org/gw/a", config("spiffe://example.org/gw/b"))
	client := mtlsClient(t, ca, "spiffe://example.org/ns/web/user", "spiffe://example.org/gw/a")
	req, _ := http.NewRequest("GET", a+"/?do=env", nil)
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	req.Header.Set("Traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"-> 200 ", "X_SPIFFE_PEER_ID=spiffe://example.org/gw/a\n", "HTTP_TRACEPARENT=00-" + traceID + "-"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("response lacks %q:\n%s", want, body)
		}
	}

	// An outbound entry expecting another identity refuses B.
	_, a2 := mtlsGateway(t, ca, "spiffe://example.org/gw/a", config("spiffe://example.org/gw/c"))
	code, body2, err := fetch(t, client, a2+"/?do=env")
	if err != nil || code != 502 || !strings.Contains(body2, "UNAVAILABLE (4)") {
		t.Fatalf("wrong expect_id: %d %v %q, want the guest to get UNAVAILABLE", code, err, body2)
	}
}

// TestMTLSProtocols: over mTLS, HTTP/1.1 (served by http1, or by net/http
// with NetHTTP) and h2 (by ALPN, net/http's) both reach the guest with the
// caller's SPIFFE ID.
func TestMTLSProtocols(t *testing.T) {
	ca := testCA(t)
	config := envFor("spiffe://example.org/ns/web/*")
	for _, netHTTP := range []bool{false, true} {
		_, url := mtlsGatewayWith(t, ca, "spiffe://example.org/gw/a", config, Options{NetHTTP: netHTTP})
		for _, h2 := range []bool{false, true} {
			tr := mtlsTransport(t, ca, "spiffe://example.org/ns/web/frontend", "spiffe://example.org/gw/a")
			tr.Protocols = new(http.Protocols)
			tr.Protocols.SetHTTP1(!h2)
			tr.Protocols.SetHTTP2(h2)
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: tr}).Get(url + "/?do=env")
			if err != nil {
				t.Fatalf("net/http %v, h2 %v: %v", netHTTP, h2, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || (resp.ProtoMajor == 2) != h2 || !strings.Contains(string(body), "X_SPIFFE_PEER_ID=spiffe://example.org/ns/web/frontend\n") {
				t.Errorf("net/http %v, h2 %v: %s %d\n%s", netHTTP, h2, resp.Proto, resp.StatusCode, body)
			}
		}
	}
}

// envFor is a config serving only misbehave's env dump, at /, to the peers
// that match allow.
func envFor(allow string) string {
	return `
drain_delay: 0s
services:
  env:
    versions: [ { path: $EX/misbehave/rust/misbehave.wasm } ]
    allow_peers: [ "` + allow + `" ]
routes:
  - { match: { path_prefix: / }, service: env }
`
}

// TestMTLSAllowPeersAndInProcessCalls: allow_peers governs the gateway's
// clients; a guest's wasmesh:// call to such a service is admitted by the
// caller's outbound list, not refused for want of a client certificate.
func TestMTLSAllowPeersAndInProcessCalls(t *testing.T) {
	ca := testCA(t)
	_, url := mtlsGateway(t, ca, "spiffe://example.org/gw/a", `
drain_delay: 0s
services:
  users:
    versions: [ { path: $EX/hello/zig/hello.wasm } ]
    allow_peers: [ "spiffe://example.org/ns/ops/*" ]
  frontend:
    versions: [ { path: $EX/frontend/rust/frontend.wasm } ]
    outbound: [ "wasmesh://users" ]
routes:
  - { match: { path_prefix: /users }, service: users }
  - { match: { path_prefix: /frontend }, service: frontend }
`)
	web := mtlsClient(t, ca, "spiffe://example.org/ns/web/frontend", "spiffe://example.org/gw/a")
	if code, body, err := fetch(t, web, url+"/users"); err != nil || code != 403 {
		t.Fatalf("web peer to users directly: %d %v %q, want 403", code, err, body)
	}
	code, body, err := fetch(t, web, url+"/frontend")
	if err != nil || code != 200 || !regexp.MustCompile(`-> 200 sha256:[0-9a-f]{64} hello from zig`).MatchString(body) {
		t.Fatalf("web peer through frontend: %d %v %q, want the frontend's call to users answered 200", code, err, body)
	}
}

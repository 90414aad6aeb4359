package tests

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"

	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/testutil"
)

// The SPIFFE IDs of the mTLS tests.
const (
	idA       = "spiffe://example.org/gateway/a"
	idB       = "spiffe://example.org/gateway/b"
	idAlice   = "spiffe://example.org/client/alice"
	idMallory = "spiffe://example.org/client/mallory"
)

// pki is a development CA made with `wasmesh ca init` in a directory of its
// own, under which `wasmesh ca issue` writes SVIDs.
type pki struct{ dir string }

func newPKI(t *testing.T, trustDomain string) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	ok(t, opts{}, "ca", "init", "--trust-domain", trustDomain, "--dir", p.path("ca"))
	return p
}

func (p *pki) path(elem ...string) string { return filepath.Join(append([]string{p.dir}, elem...)...) }

// issue writes an SVID for id into the directory name under the PKI's and
// returns that directory.
func (p *pki) issue(t *testing.T, id, name string) string {
	t.Helper()
	out := p.path(name)
	ok(t, opts{}, "ca", "issue", id, "--out", out, "--dir", p.path("ca"))
	return out
}

// tlsBlock is a config's tls block for the SVID files in dir.
func tlsBlock(dir string) string {
	f := identity.FilesIn(dir)
	return fmt.Sprintf("tls: { svid: %q, key: %q, bundle: %q }\n", f.CertFile, f.KeyFile, f.BundleFile)
}

// mtlsGateway is a `wasmesh serve` process with a tls block.
type mtlsGateway struct {
	p      *proc
	url    string // https://127.0.0.1:PORT
	admin  string // http://127.0.0.1:PORT
	stderr *testutil.LockedBuffer
}

// serveMTLS is serve for configs with a tls block: the gateway prints an
// http:// address but speaks https there, and its log can be read while it
// runs. At cleanup the gateway is stopped with SIGTERM and must exit 0.
func serveMTLS(t *testing.T, config string) *mtlsGateway {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wasmesh.yaml")
	if !strings.Contains(config, "\nadmin:") && !strings.HasPrefix(config, "admin:") {
		config = "admin: 127.0.0.1:0\n" + config
	}
	config = "listen: 127.0.0.1:0\ndrain_delay: 0s\n" + strings.ReplaceAll(config, "$EX", repoPath("examples"))
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	// As start does, but with a stderr the test may read meanwhile.
	args := []string{"serve", "--config", path}
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	p := &proc{args: args, cancel: cancel}
	g := &mtlsGateway{p: p, stderr: &p.stderr}
	pr, pw := io.Pipe()
	p.cmd = exec.CommandContext(ctx, bin, args...)
	p.cmd.Env = append(os.Environ(), "WASMESH_HOME="+home(t), "XDG_CACHE_HOME="+cacheDir)
	p.cmd.Stdout, p.cmd.Stderr = pw, g.stderr
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start wasmesh serve: %v", err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState != nil {
			return
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		if r := p.wait(t); r.code != 0 {
			t.Errorf("gateway exited with status %d after SIGTERM\n%s", r.code, r.stderr)
		}
	})
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m
				break
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case m := <-found:
		g.url, g.admin = strings.Replace(m[1], "http://", "https://", 1), m[2]
	case <-time.After(30 * time.Second):
		t.Fatalf("gateway did not start; stderr:\n%s", g.stderr)
	}
	return g
}

// logged waits until the gateway's log has a line containing every one of
// parts, and returns it.
func (g *mtlsGateway) logged(t *testing.T, parts ...string) string {
	t.Helper()
	var line string
	poll(t, fmt.Sprintf("a log line with %q", parts), func() bool {
		for _, l := range strings.Split(g.stderr.String(), "\n") {
			found := true
			for _, p := range parts {
				found = found && strings.Contains(l, p)
			}
			if found {
				line = l
				return true
			}
		}
		return false
	})
	return line
}

// svidClient is an HTTP client presenting the SVID in dir and accepting only
// a server whose SVID verifies against dir's bundle and has ID serverID. With
// fresh it makes a new connection (a full handshake) for every request.
func svidClient(t *testing.T, dir, serverID string, fresh bool) *http.Client {
	t.Helper()
	files := identity.FilesIn(dir)
	files.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	src, err := identity.NewFileSource(files)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	tr := &http.Transport{
		TLSClientConfig:   identity.ClientConfig(src, spiffeid.RequireFromString(serverID)),
		ForceAttemptHTTP2: true,
		DisableKeepAlives: fresh,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: 20 * time.Second, Transport: tr}
}

// foreignClient presents the SVID in dir, whatever CA issued it, and
// verifies the server against bundleFile, expecting serverID: a client the
// server may refuse while the client itself accepts the server.
func foreignClient(t *testing.T, dir, bundleFile, serverID string) *http.Client {
	t.Helper()
	files := identity.FilesIn(dir)
	cert, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	id := spiffeid.RequireFromString(serverID)
	bundle, err := x509bundle.Load(id.TrustDomain(), bundleFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := tlsconfig.TLSClientConfig(bundle, tlsconfig.AuthorizeID(id))
	cfg.Certificates = []tls.Certificate{cert}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
}

// getTLS sends GET url with c and returns the status, body and TLS state.
func getTLS(c *http.Client, url string) (int, string, *tls.ConnectionState, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.TLS, err
}

// refused reports whether err is how a TLS 1.3 client learns that the
// server refused its certificate. The client's handshake completes before the
// server checks the certificate, so the refusal comes on the first read: the
// alert, or a reset when the server closed with the request unread.
func refused(err error, alert string) bool {
	if err == nil {
		return false
	}
	for _, s := range []string{"remote error: tls: " + alert, "connection reset by peer", "broken pipe"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// serialOf reads the serial number of the first certificate of a PEM file.
func serialOf(t *testing.T, file string) *big.Int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", file)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert.SerialNumber
}

// frontendCalling is a config's services block with service frontend, the
// Rust frontend, calling gateway B at url over mTLS (B must present idB).
func frontendCalling(url string) string {
	return `
services:
  frontend:
    versions: [ { path: $EX/frontend/rust/frontend.wasm } ]
    env: { USERS_URL: "` + url + `" }
    outbound: [ { url: "` + url + `", expect_id: "` + idB + `" } ]`
}

// TestMTLSTwoGateways: a client with an SVID calls gateway A, whose frontend
// guest calls gateway B over mTLS (outbound expect_id); B's guest sees A's
// SPIFFE ID. Every identity is made with the wasmesh CLI.
func TestMTLSTwoGateways(t *testing.T) {
	ca := newPKI(t, "example.org")
	a, b, alice := ca.issue(t, idA, "a"), ca.issue(t, idB, "b"), ca.issue(t, idAlice, "alice")

	gb := serveMTLS(t, tlsBlock(b)+`
services:
  env:
    versions: [ { path: $EX/misbehave/rust/misbehave.wasm } ]
    allow_peers: [ "`+idA+`" ]
routes:
  - { match: { path_prefix: / }, service: env }
`)
	ga := serveMTLS(t, tlsBlock(a)+frontendCalling(gb.url)+`
    allow_peers: [ "`+idAlice+`" ]
routes:
  - { match: { path_prefix: / }, service: frontend }
`)

	client := svidClient(t, alice, idA, false)
	code, body, cs, err := getTLS(client, ga.url+"/?do=env")
	if err != nil {
		t.Fatal(err)
	}
	if code != 200 {
		t.Fatalf("GET A: %d\n%s\nA's log:\n%s\nB's log:\n%s", code, body, ga.stderr, gb.stderr)
	}
	if id, _ := identity.PeerID(cs); id.String() != idA {
		t.Errorf("the client reached %v, want %s", id, idA)
	}
	for _, want := range []string{"frontend rust (traceparent ", "-> 200 ", "\nX_SPIFFE_PEER_ID=" + idA + "\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("the response lacks %q:\n%s", want, body)
		}
	}
	// The call to B went out over mTLS: B logs the request with A as the peer.
	gb.logged(t, "service=env", "status=200", "peer_id="+idA)
	if v, err := strconv.ParseFloat(metric(t, &gateway{admin: ga.admin}, "wasmesh_svid_expiry_timestamp_seconds"), 64); err != nil || v < float64(time.Now().Unix()) {
		t.Errorf("wasmesh_svid_expiry_timestamp_seconds = %v (%v), want the SVID's expiry", v, err)
	}

	// alice may call A, not B: B only allows A.
	if code, body, _, err := getTLS(svidClient(t, alice, idB, true), gb.url+"/?do=env"); err != nil || code != 403 {
		t.Errorf("alice calling B directly: %d %v %q, want 403", code, err, body)
	}
}

// TestMTLSRejectedClients: clients with SVIDs of another CA, of the same
// trust domain or of another one, and clients without one, do not get
// through A's handshake; a client of the trust domain that the service's
// allow_peers leaves out gets a 403, and A's log names it and the service.
func TestMTLSRejectedClients(t *testing.T) {
	ca := newPKI(t, "example.org")
	a, alice, mallory := ca.issue(t, idA, "a"), ca.issue(t, idAlice, "alice"), ca.issue(t, idMallory, "mallory")
	rogue := newPKI(t, "example.org") // another CA claiming the same trust domain
	rogueAlice := rogue.issue(t, idAlice, "alice")
	other := newPKI(t, "other.example")
	eve := other.issue(t, "spiffe://other.example/client/eve", "eve")

	g := serveMTLS(t, tlsBlock(a)+`
services:
  greeter:
    versions: [ { path: $EX/hello/rust/hello.wasm } ]
    allow_peers: [ "`+idAlice+`" ]
routes:
  - { match: { path_prefix: / }, service: greeter }
`)
	bundle := identity.FilesIn(a).BundleFile

	// The way foreign clients are made works for alice: what fails below
	// fails because of the client's SVID.
	if code, body, _, err := getTLS(foreignClient(t, alice, bundle, idA), g.url+"/x"); err != nil || code != 200 || body != "hello from rust: GET /x 0 bytes\n" {
		t.Fatalf("alice: %d %v %q", code, err, body)
	}

	for _, tc := range []struct {
		name, dir string
		log       []string // in the gateway's log line (quotes in values are escaped there)
	}{
		{"SVID of another CA of example.org", rogueAlice, []string{"x509: certificate signed by unknown authority"}},
		{"SVID of trust domain other.example", eve, []string{"no X.509 bundle for trust domain", "other.example"}},
	} {
		code, body, _, err := getTLS(foreignClient(t, tc.dir, bundle, idA), g.url+"/x")
		if err == nil {
			t.Errorf("%s: got through: %d %q", tc.name, code, body)
			continue
		}
		if !refused(err, "bad certificate") {
			t.Errorf("%s: %v, want the server's bad certificate alert", tc.name, err)
		}
		g.logged(t, append([]string{"TLS handshake error"}, tc.log...)...)
	}

	noCert := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if _, _, _, err := getTLS(noCert, g.url+"/x"); !refused(err, "certificate required") {
		t.Errorf("a client without an SVID: %v, want the certificate required alert", err)
	}
	g.logged(t, "TLS handshake error", "client didn't provide a certificate")

	code, body, _, err := getTLS(svidClient(t, mallory, idA, true), g.url+"/x")
	if err != nil || code != 403 || !strings.Contains(body, `peer `+idMallory+` may not call service "greeter"`) {
		t.Fatalf("mallory: %d %v %q, want 403 naming the peer and the service", code, err, body)
	}
	line := g.logged(t, `msg="peer not allowed"`, "peer_id="+idMallory)
	if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "service=greeter") {
		t.Errorf("A's log line for mallory: %s\nwant a warning naming service=greeter", line)
	}
	for _, l := range strings.Split(g.stderr.String(), "\n") {
		if strings.Contains(l, "peer not allowed") && !strings.Contains(l, "peer_id="+idMallory+" ") {
			t.Errorf("another peer was refused: %s", l)
		}
	}
}

// TestMTLSFileRotation: while clients keep opening new connections to A, A's
// SVID files are replaced by rename with a new SVID from `wasmesh ca issue`.
// No request fails, new connections get the new certificate, and A is the
// same process throughout.
func TestMTLSFileRotation(t *testing.T) {
	ca := newPKI(t, "example.org")
	a, alice := ca.issue(t, idA, "a"), ca.issue(t, idAlice, "alice")
	g := serveMTLS(t, tlsBlock(a)+`
services:
  hello: { versions: [ { path: $EX/hello/rust/hello.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: hello }
`)
	pid := g.p.cmd.Process.Pid
	oldSerial := serialOf(t, identity.FilesIn(a).CertFile)
	client := svidClient(t, alice, idA, true) // a full handshake per request

	type result struct {
		start, end time.Time
		serial     *big.Int
		err        error
	}
	const (
		workers     = 2
		maxRequests = 3000             // in all
		maxTime     = 25 * time.Second // runLimit kills the gateway at 60s
		before      = 20               // requests before the swap
		after       = 40               // requests that see the new SVID before the loop ends
	)
	var (
		mu        sync.Mutex
		results   []result
		newSerial *big.Int // set once the files are swapped
		seenNew   int
		swap      = make(chan struct{})
		stop      = make(chan struct{})
		stopOnce  sync.Once
	)
	deadline := time.Now().Add(maxTime)
	wait := testutil.Load(workers, stop, func() {
		r := result{start: time.Now()}
		code, body, cs, err := getTLS(client, g.url+"/x")
		r.end = time.Now()
		switch {
		case err != nil:
			r.err = err
		case code != 200 || body != "hello from rust: GET /x 0 bytes\n":
			r.err = fmt.Errorf("%d %q", code, body)
		default:
			r.serial = cs.PeerCertificates[0].SerialNumber
		}
		mu.Lock()
		results = append(results, r)
		n := len(results)
		if newSerial != nil && r.serial != nil && r.serial.Cmp(newSerial) == 0 {
			seenNew++
		}
		done := seenNew >= after || n >= maxRequests || time.Now().After(deadline)
		mu.Unlock()
		if n == before {
			close(swap)
		}
		if done {
			stopOnce.Do(func() { close(stop) })
		}
	})

	select {
	case <-swap:
	case <-stop:
		wait()
		t.Fatalf("the loop stopped before the swap: %d requests", len(results))
	}
	// Issue the next SVID beside A's files (same file system), then move the
	// files over A's one by one, the key first, as cert-manager does.
	staging := ca.issue(t, idA, "a.next")
	serial := serialOf(t, identity.FilesIn(staging).CertFile)
	mu.Lock()
	newSerial = serial
	mu.Unlock()
	for _, name := range []string{identity.KeyFile, identity.SVIDFile, identity.BundleFile} {
		if err := os.Rename(filepath.Join(staging, name), filepath.Join(a, name)); err != nil {
			t.Fatal(err)
		}
	}
	swapped := time.Now()
	wait()

	var failed, sawOld, sawNew int
	var firstNew time.Time // when the first request that saw the new SVID ended
	for _, r := range results {
		switch {
		case r.err != nil:
			failed++
			if failed <= 5 {
				t.Errorf("request at %s: %v", r.start.Format("15:04:05.000"), r.err)
			}
		case r.serial.Cmp(serial) == 0:
			sawNew++
			if firstNew.IsZero() || r.end.Before(firstNew) {
				firstNew = r.end
			}
		case r.serial.Cmp(oldSerial) == 0:
			sawOld++
		default:
			t.Errorf("a connection presented serial %x, neither the old %x nor the new %x", r.serial, oldSerial, serial)
		}
	}
	t.Logf("%d requests, each on a new connection: %d failed, %d saw serial %x, %d saw the new %x (first %s after the swap)",
		len(results), failed, sawOld, oldSerial, sawNew, serial, firstNew.Sub(swapped).Round(time.Millisecond))
	if failed > 0 {
		t.Errorf("%d of %d requests failed during the rotation\nA's log:\n%s", failed, len(results), g.stderr)
	}
	if sawNew < after {
		t.Fatalf("only %d connections saw the new SVID in %s\nA's log:\n%s", sawNew, maxTime, g.stderr)
	}
	// Once one new connection got the new SVID, every later one does.
	for _, r := range results {
		if r.err == nil && r.start.After(firstNew) && r.serial.Cmp(serial) != 0 {
			t.Errorf("a connection started %s after the first new one got serial %x", r.start.Sub(firstNew), r.serial)
		}
	}
	g.logged(t, `msg="identity loaded"`, fmt.Sprintf("serial %x,", serial))

	// No restart: the same process still serves, and started only once.
	if g.p.cmd.ProcessState != nil || g.p.cmd.Process.Signal(syscall.Signal(0)) != nil {
		t.Fatalf("gateway pid %d is gone", pid)
	}
	if g.p.cmd.Process.Pid != pid {
		t.Fatalf("gateway pid %d, was %d", g.p.cmd.Process.Pid, pid)
	}
	if n := strings.Count(g.stderr.String(), `msg=serving `); n != 1 {
		t.Errorf("the gateway started serving %d times, want once", n)
	}
	if code, _, cs, err := getTLS(client, g.url+"/x"); err != nil || code != 200 || cs.PeerCertificates[0].SerialNumber.Cmp(serial) != 0 {
		t.Errorf("after the rotation: %d %v", code, err)
	}
}

// TestAdminCAWithToken: an admin API served over TLS (admin allow_ids) is
// called from the CLI with a token and the trust bundle (--admin-ca), by a
// caller without an SVID; one that names the wrong SPIFFE ID is refused, and
// a plain http call is told that the listener serves TLS.
func TestAdminCAWithToken(t *testing.T) {
	p := newPKI(t, "example.org")
	gw := p.issue(t, "spiffe://example.org/gw", "gw")
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cret-token-of-some-length\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := serveMTLS(t, tlsBlock(gw)+"admin: { listen: 127.0.0.1:0, allow_ids: [ spiffe://example.org/ops ], token_file: "+token+" }\n"+`
services:
  hello: { versions: [ { path: $EX/hello/zig/hello.wasm } ] }
routes:
  - { match: { path_prefix: / }, service: hello }
`)
	if !strings.HasPrefix(g.admin, "https://") {
		t.Fatalf("the admin API over TLS announced as %s", g.admin)
	}
	bundle := identity.FilesIn(gw).BundleFile
	env := []string{"WASMESH_ADMIN_TOKEN=s3cret-token-of-some-length"}
	r := ok(t, opts{env: env}, "status", "--admin", g.admin, "--admin-ca", bundle, "--admin-id", "spiffe://example.org/gw")
	if !strings.Contains(r.stdout, "hello") {
		t.Errorf("status with --admin-ca and a token:\n%s", r.stdout)
	}
	if r := wasmesh(t, opts{env: env}, "status", "--admin", g.admin, "--admin-ca", bundle, "--admin-id", "spiffe://example.org/other"); r.code == 0 || !strings.Contains(r.stderr, "spiffe://example.org/other") {
		t.Errorf("status expecting another gateway ID: exit %d, stderr %q", r.code, r.stderr)
	}
	// An operator with an SVID of allow_ids: no token, and no log lines of
	// the SVID's loading in the command's output.
	ops := p.issue(t, "spiffe://example.org/ops", "ops")
	r = ok(t, opts{}, "status", "--admin", g.admin, "--admin-svid", ops)
	if !strings.Contains(r.stdout, "hello") || strings.Contains(r.stderr, "identity") {
		t.Errorf("status with --admin-svid: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	plain := strings.Replace(g.admin, "https://", "", 1)
	if r := wasmesh(t, opts{env: env}, "status", "--admin", plain); r.code == 0 || !strings.Contains(r.stderr, "serves TLS") {
		t.Errorf("status over plain http to the TLS admin listener: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestMTLSExampleScript runs examples/mtls/run.sh, the mTLS walkthrough
// of examples/mtls/README.md, which checks each of its steps itself (two
// gateways, SVIDs issued, allow_peers, the refusals and their log lines):
// the example works as its README says.
func TestMTLSExampleScript(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	ports, err := freePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", repoPath("examples", "mtls", "run.sh"))
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir(),
		fmt.Sprintf("A_PORT=%d", ports[0]), fmt.Sprintf("B_PORT=%d", ports[1]),
		fmt.Sprintf("A_ADMIN=%d", ports[2]), fmt.Sprintf("B_ADMIN=%d", ports[3]))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "all checks passed") {
		t.Fatalf("examples/mtls/run.sh: %v\n%s", err, out)
	}
}

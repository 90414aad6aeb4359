package admin

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/testca"
)

// ok answers 200, or 201 for a POST: what the audit log must show.
var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		w.WriteHeader(http.StatusCreated)
	}
})

func newAuth(t *testing.T, cfg config.AdminAuth) (*Auth, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	a, err := NewAuth(cfg, slog.New(slog.NewTextHandler(&log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return a, &log
}

// call sends method path through a's Wrap with the header and the TLS
// peer (nil for none) and returns the status.
func call(a *Auth, method, path, authorization string, peer *x509.Certificate) int {
	r := httptest.NewRequest(method, path, nil)
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	if peer != nil {
		r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{peer}}
	}
	w := httptest.NewRecorder()
	a.Wrap(ok).ServeHTTP(w, r)
	return w.Code
}

// TestAuthToken: a token file's token lets a call in, any other (or none)
// is 401; rewriting the file rotates the token; a file that becomes
// unreadable keeps the last token; probes need nothing.
func TestAuthToken(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	first, second := "first-token-0123456789", "second-token-0123456789"
	if err := os.WriteFile(file, []byte(first+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a, log := newAuth(t, config.AdminAuth{TokenFile: file})
	for _, tc := range []struct {
		method, path, auth string
		want               int
	}{
		{"GET", "/v1/config", "Bearer " + first, 200},
		{"POST", "/v1/services/x/deploy", "Bearer " + first, 201},
		{"GET", "/v1/config", "Bearer wrong-token-0123456789", 401},
		{"GET", "/v1/config", "Basic Zm9vOmJhcg==", 401},
		{"GET", "/v1/config", "", 401},
		{"GET", "/debug/pprof/", "", 401},
		{"GET", "/healthz", "", 200},
		{"GET", "/readyz", "", 200},
		{"GET", "/metrics", "", 200},
		{"POST", "/metrics", "", 401},
	} {
		if got := call(a, tc.method, tc.path, tc.auth, nil); got != tc.want {
			t.Errorf("%s %s with %q: %d, want %d", tc.method, tc.path, tc.auth, got, tc.want)
		}
	}
	if !regexp.MustCompile(`msg="admin call" method=POST path=/v1/services/x/deploy caller=token:[0-9a-f]{8} remote=\S+ status=201`).Match(log.Bytes()) {
		t.Errorf("no audit line for the deploy:\n%s", log)
	}
	if !strings.Contains(log.String(), `msg="admin call refused" method=GET path=/v1/config`) {
		t.Errorf("no line for a refused call:\n%s", log)
	}

	// Rotation: the new token in, the old one out.
	time.Sleep(10 * time.Millisecond) // a later mtime
	if err := os.WriteFile(file, []byte(second), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := call(a, "GET", "/v1/config", "Bearer "+second, nil); got != 200 {
		t.Errorf("the rotated token: %d", got)
	}
	if got := call(a, "GET", "/v1/config", "Bearer "+first, nil); got != 401 {
		t.Errorf("the token rotated out: %d", got)
	}
	// Unreadable, or too short: the last token stays.
	if err := os.WriteFile(file, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := call(a, "GET", "/v1/config", "Bearer "+second, nil); got != 200 {
		t.Errorf("after a bad rewrite, the last good token: %d", got)
	}
	if got := call(a, "GET", "/v1/config", "Bearer short", nil); got != 401 {
		t.Errorf("a too short token was taken: %d", got)
	}
	if got := call(a, "GET", "/v1/config", "bearer "+second, nil); got != 200 {
		t.Errorf("the scheme in lower case: %d", got)
	}
	// Removed: revoked.
	os.Remove(file)
	if got := call(a, "GET", "/v1/config", "Bearer "+second, nil); got != 401 {
		t.Errorf("the token of a removed file: %d, want 401", got)
	}
}

// TestAuthSetup: a made token is written 0600, 64 hex digits; a missing or
// short token file and a bad allow_ids entry are errors; insecure lets
// everything in.
func TestAuthSetup(t *testing.T) {
	dir := t.TempDir()
	made := filepath.Join(dir, "home", "admin-token")
	a, _ := newAuth(t, config.AdminAuth{Generated: true, TokenFile: made})
	b, err := os.ReadFile(made)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(made)
	if token := strings.TrimSpace(string(b)); !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(token) || fi.Mode().Perm() != 0o600 {
		t.Errorf("made token %q, mode %v; want 64 hex digits, 0600", token, fi.Mode().Perm())
	} else if got := call(a, "GET", "/v1/config", "Bearer "+token, nil); got != 200 {
		t.Errorf("the made token: %d", got)
	}
	// A second gateway on the same store (or this one restarted) keeps the
	// token: the first's callers are not shut out. One that is not private
	// is made anew.
	second, _ := newAuth(t, config.AdminAuth{Generated: true, TokenFile: made})
	if again, _ := os.ReadFile(made); string(again) != string(b) || call(a, "GET", "/v1/config", "Bearer "+strings.TrimSpace(string(b)), nil) != 200 ||
		call(second, "GET", "/v1/config", "Bearer "+strings.TrimSpace(string(b)), nil) != 200 {
		t.Errorf("a second start made another token: %q, was %q", again, b)
	}
	os.Chmod(made, 0o644)
	newAuth(t, config.AdminAuth{Generated: true, TokenFile: made})
	if again, _ := os.ReadFile(made); string(again) == string(b) {
		t.Error("a token file others could read was kept")
	}
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc"), 0o600)
	for name, cfg := range map[string]config.AdminAuth{
		"missing file":  {TokenFile: filepath.Join(dir, "none")},
		"short token":   {TokenFile: short},
		"bad allow_ids": {AllowIDs: []string{"not-an-id"}},
	} {
		if _, err := NewAuth(cfg, slog.Default()); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	insecure, _ := newAuth(t, config.AdminAuth{Insecure: true})
	if got := call(insecure, "POST", "/v1/config/reload", "", nil); got != 201 {
		t.Errorf("insecure: %d", got)
	}
}

// TestAuthPeers: an mTLS caller whose SPIFFE ID is in allow_ids is let in
// and named in the audit log; another is 403, unless it has the token.
func TestAuthPeers(t *testing.T) {
	ca := testca.New(t, "example.org")
	ops, other := ca.SVID("spiffe://example.org/ops/cli"), ca.SVID("spiffe://example.org/web")
	file := filepath.Join(t.TempDir(), "token")
	const token = "token-for-the-dashboard-0123"
	os.WriteFile(file, []byte(token), 0o600)
	a, log := newAuth(t, config.AdminAuth{AllowIDs: []string{"spiffe://example.org/ops/*"}, TokenFile: file})
	if got := call(a, "POST", "/v1/services/x/promote", "", ops.Certificates[0]); got != 201 {
		t.Errorf("allowed peer: %d", got)
	}
	if !strings.Contains(log.String(), "caller=spiffe://example.org/ops/cli") {
		t.Errorf("the audit line does not name the peer:\n%s", log)
	}
	if got := call(a, "GET", "/v1/config", "", other.Certificates[0]); got != 403 {
		t.Errorf("peer not allowed: %d, want 403", got)
	}
	if got := call(a, "GET", "/v1/config", "Bearer "+token, other.Certificates[0]); got != 200 {
		t.Errorf("peer not allowed, with the token: %d, want 200", got)
	}
	// With allow_ids alone, a caller with neither is told what it lacks:
	// a certificate, no token being accepted.
	a, log = newAuth(t, config.AdminAuth{AllowIDs: []string{"spiffe://example.org/ops/*"}})
	if got := call(a, "GET", "/v1/config", "", nil); got != 401 || !strings.Contains(log.String(), "no token is configured") {
		t.Errorf("no credentials, allow_ids alone: %d, log:\n%s", got, log)
	}
}

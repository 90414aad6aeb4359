package admin

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/atomicfile"
)

// Auth authenticates the admin API's callers (config.AdminAuth): by a
// bearer token read from a file, re-read when the file changes; by the
// SPIFFE ID of an mTLS client certificate in an allow-list; or not at all
// when the config says insecure. Probes and scrapers (GET /healthz,
// /readyz, /metrics) and the dashboard's page (GET /ui) need nothing. Every call that changes something (not
// GET or HEAD) is logged with its caller, as are refused calls.
type Auth struct {
	cfg   config.AdminAuth
	allow *identity.AllowList // nil without allow_ids
	log   *slog.Logger

	mu  sync.Mutex
	sum []byte // sha256 of the token; nil: none (no file, or it was removed)
}

// minToken is the shortest token accepted from a file: 16 bytes of text.
const minToken = 16

// NewAuth returns the authentication cfg asks for. A Generated token is
// made now (32 random bytes, in hex) and written to cfg.TokenFile with mode
// 0600, unless that file holds one such already (generatedToken); a token
// file must exist and hold at least 16 bytes.
func NewAuth(cfg config.AdminAuth, log *slog.Logger) (*Auth, error) {
	a := &Auth{cfg: cfg, log: log}
	if len(cfg.AllowIDs) > 0 {
		allow, err := identity.ParseAllowPeers(cfg.AllowIDs)
		if err != nil {
			return nil, fmt.Errorf("admin allow_ids: %w", err)
		}
		a.allow = allow
	}
	if cfg.Generated && !generatedToken(cfg.TokenFile) {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		token := []byte(hex.EncodeToString(b) + "\n")
		if err := os.MkdirAll(filepath.Dir(cfg.TokenFile), 0o700); err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
		if err := atomicfile.WriteFile(cfg.TokenFile, token, 0o600, ""); err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
	}
	if cfg.TokenFile != "" {
		if err := a.reload(true); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// generatedToken reports whether the file at path holds a token made at
// start already, private (mode 0600): a gateway restarted, or another
// sharing the store, keeps it rather than make one that shuts out the
// callers of the first. Removing the file makes the next start make a
// new one.
func generatedToken(path string) bool {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return false
	}
	b, err := os.ReadFile(path)
	t := strings.TrimSpace(string(b))
	return err == nil && len(t) == 64 && strings.Trim(t, "0123456789abcdef") == ""
}

// TokenFile is the file the token is read from, "" for none.
func (a *Auth) TokenFile() string { return a.cfg.TokenFile }

// reload reads the token file, at start (where any failure is an error)
// and at each call that brings a token (the admin API is not a hot path,
// and a stamp of the file could miss a rewrite of the same size within
// one tick of its clock). A file removed revokes the token; one that
// cannot be read, or holds too short a token, keeps the last (and is an
// error).
func (a *Auth) reload(start bool) error {
	b, err := os.ReadFile(a.cfg.TokenFile)
	if errors.Is(err, os.ErrNotExist) && !start {
		a.mu.Lock()
		a.sum = nil
		a.mu.Unlock()
		return fmt.Errorf("admin token_file %s is gone: no token is accepted until it is back", a.cfg.TokenFile)
	}
	if err != nil {
		return fmt.Errorf("admin token_file: %w", err)
	}
	token := bytes.TrimSpace(b)
	if len(token) < minToken {
		return fmt.Errorf("admin token_file %s: %d bytes of token, want at least %d", a.cfg.TokenFile, len(token), minToken)
	}
	sum := sha256.Sum256(token)
	a.mu.Lock()
	a.sum = sum[:]
	a.mu.Unlock()
	return nil
}

// caller authenticates r: who it is, or the status and reason it is
// refused with.
func (a *Auth) caller(r *http.Request) (who string, status int, why string) {
	if a.cfg.Insecure {
		return "insecure", 0, ""
	}
	id, hasID := identity.PeerID(r.TLS)
	if hasID && a.allow != nil && a.allow.Allows(id) {
		return id.String(), 0, ""
	}
	scheme, bearer, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if strings.EqualFold(scheme, "Bearer") && a.cfg.TokenFile != "" {
		if err := a.reload(false); err != nil {
			a.log.Warn("admin token file", "error", err)
		}
		a.mu.Lock()
		want := a.sum
		a.mu.Unlock()
		// Hashes compared, so that the comparison takes the same time
		// whatever the length of the token sent.
		got := sha256.Sum256([]byte(strings.TrimSpace(bearer)))
		if want != nil && subtle.ConstantTimeCompare(got[:], want) == 1 {
			return "token:" + hex.EncodeToString(want[:4]), 0, ""
		}
		return "", http.StatusUnauthorized, "wrong token"
	}
	if hasID {
		return "", http.StatusForbidden, fmt.Sprintf("peer %s is not in admin.allow_ids", id)
	}
	switch {
	case a.cfg.TokenFile == "" && a.allow != nil:
		return "", http.StatusUnauthorized, "no credentials: present a client certificate whose SPIFFE ID admin.allow_ids names (no token is configured)"
	case a.allow != nil:
		return "", http.StatusUnauthorized, "no credentials: send Authorization: Bearer <token>, or present a client certificate whose SPIFFE ID admin.allow_ids names"
	}
	return "", http.StatusUnauthorized, "no credentials: send Authorization: Bearer <token>"
}

// open says whether a request needs no authentication: the probes' and
// the scraper's, and the dashboard's page (which holds no data: its calls
// to the API carry the token).
func open(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	switch r.URL.Path {
	case "/healthz", "/readyz", "/metrics", "/ui", "/ui/":
		return true
	}
	return false
}

// Wrap authenticates the calls to h.
func (a *Auth) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if open(r) {
			h.ServeHTTP(w, r)
			return
		}
		who, status, why := a.caller(r)
		if status != 0 {
			a.log.Warn("admin call refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", status, "reason", why)
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="wasmesh admin"`)
			}
			writeError(w, status, errors.New(why))
			return
		}
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		a.log.Info("admin call", "method", r.Method, "path", r.URL.Path, "caller", who, "remote", r.RemoteAddr, "status", sw.status)
	})
}

// statusWriter records the status a handler answers with, for the audit
// log.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(status int) {
	if !w.wrote {
		w.status, w.wrote = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

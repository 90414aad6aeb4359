package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/wasmesh/wasmesh/identity"
	"github.com/wasmesh/wasmesh/internal/testca"
)

const webID = "spiffe://example.org/ns/dev/sa/web"

// TestCACommands runs `ca init`, `ca issue` and `identity --svid/--key/--bundle`
// end to end through the command functions.
func TestCACommands(t *testing.T) {
	ctx := context.Background()
	caDir, out := filepath.Join(t.TempDir(), "ca"), filepath.Join(t.TempDir(), "web")
	var stdout bytes.Buffer

	if err := caCmd(ctx, []string{"init", "--trust-domain", "example.org", "--dir", caDir}, &stdout); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "CA of trust domain example.org") {
		t.Errorf("ca init printed %q", stdout.String())
	}
	if info, err := os.Stat(filepath.Join(caDir, "ca.key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key: %v, %v; want mode 0600", info, err)
	}
	caPEM, err := os.ReadFile(filepath.Join(caDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(caPEM)
	sum := sha256.Sum256(block.Bytes)
	fingerprint := "sha256:" + hex.EncodeToString(sum[:])

	err = caCmd(ctx, []string{"init", "--trust-domain", "example.org", "--dir", caDir}, &stdout)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Errorf("second ca init: %v", err)
	}

	stdout.Reset()
	if err := caCmd(ctx, []string{"issue", webID, "--out", out, "--ttl", "30m", "--dir", caDir}, &stdout); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), webID) {
		t.Errorf("ca issue printed %q", stdout.String())
	}
	for _, name := range []string{"svid.pem", "svid.key", "bundle.pem"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Error(err)
		}
	}

	files := []string{"--svid", filepath.Join(out, "svid.pem"), "--key", filepath.Join(out, "svid.key"), "--bundle", filepath.Join(out, "bundle.pem")}
	stdout.Reset()
	if err := identityCmd(ctx, files, &stdout); err != nil {
		t.Fatal(err)
	}
	text := stdout.String()
	for _, want := range []string{"SPIFFE ID   " + webID, "Bundle      example.org, 1 CA(s)", fingerprint} {
		if !strings.Contains(text, want) {
			t.Errorf("identity output lacks %q:\n%s", want, text)
		}
	}
	if !regexp.MustCompile(`\(in (29m\d+s|30m0s)\)`).MatchString(text) { // X.509 times are whole seconds
		t.Errorf("identity output lacks the time left, 30m:\n%s", text)
	}

	stdout.Reset()
	if err := identityCmd(ctx, append(files, "-o", "json"), &stdout); err != nil {
		t.Fatal(err)
	}
	var rep identityReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.SPIFFEID != webID || rep.Expiring || rep.Expired || len(rep.Bundle.CAs) != 1 || rep.Bundle.CAs[0].Fingerprint != fingerprint ||
		rep.NotAfter.Sub(rep.NotBefore) < 30*time.Minute {
		t.Errorf("identity -o json: %+v", rep)
	}
}

func TestIdentityCommandWorkloadAPI(t *testing.T) {
	ca := testca.New(t, "example.org")
	api := testca.StartWorkloadAPI(t, ca.SVID(webID), ca.Bundle())
	var stdout bytes.Buffer
	if err := identityCmd(context.Background(), []string{"--spiffe-socket", api.Addr()}, &stdout); err != nil {
		t.Fatal(err)
	}
	if want := identity.Fingerprint(ca.Cert); !strings.Contains(stdout.String(), webID) || !strings.Contains(stdout.String(), want) {
		t.Errorf("output lacks %s or %s:\n%s", webID, want, stdout.String())
	}

	t.Setenv("SPIFFE_ENDPOINT_SOCKET", api.Addr())
	stdout.Reset()
	if err := identityCmd(context.Background(), nil, &stdout); err != nil || !strings.Contains(stdout.String(), webID) {
		t.Errorf("with SPIFFE_ENDPOINT_SOCKET: %v\n%s", err, stdout.String())
	}

	err := identityCmd(context.Background(), []string{"--spiffe-socket", "unix://" + t.TempDir() + "/none.sock", "--timeout", "200ms"}, &stdout)
	if exitCode(err) != 1 || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Errorf("no agent: %v", err)
	}
}

func TestIdentityCommandsUsage(t *testing.T) {
	t.Setenv("SPIFFE_ENDPOINT_SOCKET", "")
	caDir := t.TempDir()
	if _, err := identity.InitCA(caDir, spiffeid.RequireTrustDomainFromString("example.org")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cmd  func(context.Context, []string, *bytes.Buffer) error
		args []string
		code int
		want string
	}{
		{caRun, nil, 2, "want a subcommand: init or issue"},
		{caRun, []string{"sign"}, 2, "want a subcommand"},
		{caRun, []string{"init"}, 2, "no --trust-domain given"},
		{caRun, []string{"init", "--trust-domain", "Example.org"}, 2, "trust domain characters are limited"},
		{caRun, []string{"issue", "--out", "x", "--dir", caDir}, 2, "want one SPIFFE ID"},
		{caRun, []string{"issue", webID, "--dir", caDir}, 2, "no --out directory given"},
		{caRun, []string{"issue", webID, "--out", "x", "--ttl", "0s", "--dir", caDir}, 2, "--ttl 0s: want more than 0"},
		{caRun, []string{"issue", "web", "--out", "x", "--dir", caDir}, 2, `SPIFFE ID "web"`},
		{caRun, []string{"issue", "spiffe://other.org/web", "--out", t.TempDir(), "--dir", caDir}, 1, `the CA is for trust domain "example.org"`},
		{caRun, []string{"issue", webID, "--out", t.TempDir(), "--dir", t.TempDir()}, 1, "create a CA with: wasmesh ca init"},
		{identityRun, nil, 2, "no identity source"},
		{identityRun, []string{"--svid", "a.pem"}, 2, "--svid, --key and --bundle go together"},
		{identityRun, []string{"--svid", "a", "--key", "b", "--bundle", "c", "--spiffe-socket", "unix:///x"}, 2, "not both"},
		{identityRun, []string{"--svid", "a", "--key", "b", "--bundle", "c"}, 1, "no such file or directory"},
	} {
		err := tc.cmd(context.Background(), tc.args, &bytes.Buffer{})
		if exitCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: exit %d, %v; want exit %d and %q", tc.args, exitCode(err), err, tc.code, tc.want)
		}
	}
}

func caRun(ctx context.Context, args []string, out *bytes.Buffer) error { return caCmd(ctx, args, out) }
func identityRun(ctx context.Context, args []string, out *bytes.Buffer) error {
	return identityCmd(ctx, args, out)
}

// exitCode is the status run would exit with for err (0 for nil).
func exitCode(err error) int {
	var exit *exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.code
	}
	return 1
}

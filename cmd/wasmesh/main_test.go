package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wasmesh/wasmesh/config"
	"github.com/wasmesh/wasmesh/internal/testutil"
)

// TestUsageDocumented checks that docs/cli.md opens with the usage the
// program prints, so that a command added or renamed is documented.
func TestUsageDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/cli.md")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	usage(&got)
	_, block, ok := strings.Cut(string(doc), "```\n")
	if ok {
		block, _, ok = strings.Cut(block, "```\n")
	}
	if !ok {
		t.Fatal("docs/cli.md: no fenced block with the usage")
	}
	if block != got.String() {
		t.Errorf("docs/cli.md's usage block differs from the program's; the program prints:\n%s\ndocs/cli.md has:\n%s", got.String(), block)
	}
}

// TestSubcommands: a command made of subcommands lists them on stdout for
// -h (exit status 0, as every command's -h), and refuses none or an
// unknown one as a usage error (2), naming it.
func TestSubcommands(t *testing.T) {
	for _, c := range commands() {
		if !slices.Contains([]string{"artifact", "lane", "release", "ca", "key"}, c.name) {
			continue
		}
		for _, tc := range []struct {
			args       []string
			code       int
			out, inErr string
		}{
			{[]string{"-h"}, 0, "usage: wasmesh " + c.name + " ", ""},
			{[]string{"help"}, 0, "usage: wasmesh " + c.name + " ", ""},
			{nil, 2, "", "want a subcommand: "},
			{[]string{"bogus"}, 2, "", `unknown subcommand "bogus": want a subcommand: `},
		} {
			var out bytes.Buffer
			err := c.run(context.Background(), tc.args, &out)
			code := 0
			if err != nil {
				code = 1
				var exit *exitError
				if errors.As(err, &exit) {
					code = exit.code
				}
			}
			if code != tc.code || !strings.Contains(out.String(), tc.out) || (tc.inErr != "" && !strings.Contains(err.Error(), tc.inErr)) {
				t.Errorf("wasmesh %s %q: exit %d (%v), stdout %q; want exit %d, stdout with %q, error with %q", c.name, tc.args, code, err, out.String(), tc.code, tc.out, tc.inErr)
			}
		}
	}
}

// TestDeployWeightRefusedFirst: a weight out of range is a usage error,
// found before anything is uploaded (no admin API is asked here).
func TestDeployWeightRefusedFirst(t *testing.T) {
	err := deployCmd(context.Background(), []string{"svc", "nosuch.wasm", "--weight", "150", "--admin", "127.0.0.1:1"}, io.Discard)
	var exit *exitError
	if !errors.As(err, &exit) || exit.code != 2 || !strings.Contains(err.Error(), "--weight 150") {
		t.Fatalf("deploy --weight 150: %v, want a usage error (2) naming it", err)
	}
}

// TestFlagErrors: a mistyped flag is named with the nearest one, and a
// value of the wrong kind with what the flag wants; both usage errors.
func TestFlagErrors(t *testing.T) {
	run := map[string]func(context.Context, []string, io.Writer) error{}
	for _, c := range commands() {
		run[c.name] = c.run
	}
	for _, tc := range []struct {
		cmd  string
		args []string
		want string
	}{
		{"run", []string{"--evn", "A=B", "x.wasm"}, "flag provided but not defined: -evn (did you mean --env?)"},
		{"run", []string{"--timeout", "5", "x.wasm"}, `invalid value "5" for flag -timeout: parse error: want a duration such as`},
		{"run", []string{"--timeout", "-1s", "x.wasm"}, `--timeout -1s: must not be negative`},
		{"run", []string{"--memory", "10", "x.wasm"}, `--memory 10: must be between 64KiB and 4GiB`},
		{"run", []string{"--memory", "5GiB", "x.wasm"}, `--memory 5GiB: must be between 64KiB and 4GiB`},
		{"deploy", []string{"s", "x", "--weight", "10%"}, `invalid value "10%" for flag -weight: parse error: want a whole number`},
		{"serve", []string{"--nothing-like-it"}, "flag provided but not defined: -nothing-like-it (see 'wasmesh serve -h')"},
		{"serve", []string{"--trace-sample-ratio", "all"}, `invalid value "all" for flag -trace-sample-ratio: want a number`},
		{"serve", []string{"--trace-sample-ratio", "-0.5"}, `invalid value "-0.5" for flag -trace-sample-ratio: want a fraction from 0 to 1`},
		{"serve", []string{"--trace-sample-ratio", "2"}, `invalid value "2" for flag -trace-sample-ratio: want a fraction from 0 to 1`},
		{"serve", []string{"--log-level", "verbose"}, "--log-level verbose: want debug, info, warn or error"},
		{"serve", []string{"--kubernetes", "ns", "--resume", "last.yaml"}, "--resume: not with --kubernetes"},
		{"serve", []string{"--replica", "r1"}, "--kubeconfig, --replica and --lease-duration: only with --kubernetes"},
		{"serve", []string{"--kubernetes", "ns", "--lease-duration", "100ms"}, "--lease-duration 100ms: at least 1s"},
		{"deploy", []string{"s", "main_test.go", "--admin", "127.0.0.1:1"}, "main_test.go: not a WebAssembly binary (no \\0asm magic); nothing uploaded"},
		{"deploy", []string{"s", "oci://nohost", "--admin", "127.0.0.1:1"}, `invalid OCI reference "oci://nohost"`},
		{"serve", []string{"--listen", "8080x"}, "--listen 8080x: want HOST:PORT or :PORT"},
		{"serve", []string{"--admin", "localhost"}, "--admin localhost: want HOST:PORT or :PORT"},
	} {
		err := run[tc.cmd](context.Background(), tc.args, io.Discard)
		var exit *exitError
		if !errors.As(err, &exit) || exit.code != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("wasmesh %s %q: %v, want a usage error with %q", tc.cmd, tc.args, err, tc.want)
		}
	}
}

// TestAdminUnreachable: an admin command that finds no gateway, or finds
// something else at the address, says what to check.
func TestAdminUnreachable(t *testing.T) {
	err := statusCmd(context.Background(), []string{"--admin", testutil.RefusedAddr(t)}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "is the gateway running? --admin or $WASMESH_ADMIN names its admin listener") {
		t.Errorf("status, nothing listening: %v", err)
	}
	notAdmin := httptest.NewServer(http.NotFoundHandler()) // a traffic listener with no route for /v1/config
	defer notAdmin.Close()
	err = statusCmd(context.Background(), []string{"--admin", notAdmin.URL}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "404 Not Found (is "+notAdmin.URL+" a gateway's admin listener, not its traffic listener?)") {
		t.Errorf("status, a server that is no admin API: %v", err)
	}
}

// TestAdminTokenFileUnreadable: a token file named and unreadable is the
// error, before any request (the default one may be absent: a gateway
// without authentication).
func TestAdminTokenFileUnreadable(t *testing.T) {
	t.Setenv("WASMESH_ADMIN_TOKEN", "")
	missing := filepath.Join(t.TempDir(), "nope")
	err := statusCmd(context.Background(), []string{"--admin", testutil.RefusedAddr(t), "--admin-token-file", missing}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--admin-token-file: open "+missing) {
		t.Errorf("status with an unreadable --admin-token-file: %v", err)
	}
}

// TestExtraArguments: a command that takes no arguments refuses them
// rather than ignore them (key gen would have written wasmesh.key).
func TestExtraArguments(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		run  func(context.Context, []string, io.Writer) error
		args []string
	}{
		{statusCmd, []string{"extra", "--admin", testutil.RefusedAddr(t)}},
		{versionCmd, []string{"extra"}},
		{keyCmd, []string{"gen", "extra", "--out", filepath.Join(dir, "k")}},
	} {
		err := tc.run(context.Background(), tc.args, io.Discard)
		var exit *exitError
		if !errors.As(err, &exit) || exit.code != 2 || !strings.Contains(err.Error(), `no arguments wanted`) {
			t.Errorf("%q: %v, want a usage error", tc.args, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("key gen with an extra argument wrote %v", entries)
	}
}

// TestHelpExitsZero: every command's -h is exit status 0 (its flags go to
// stdout).
func TestHelpExitsZero(t *testing.T) {
	for _, c := range commands() {
		if err := c.run(context.Background(), []string{"-h"}, io.Discard); err != nil {
			var exit *exitError
			if !errors.As(err, &exit) || exit.code != 0 {
				t.Errorf("wasmesh %s -h: %v, want exit status 0", c.name, err)
			}
		}
	}
}

// TestPrintURLs: serve's "try:" lines reach their routes: the host, the
// method and the headers each route matches on are in its curl.
func TestPrintURLs(t *testing.T) {
	cfg, err := config.Parse("wasmesh.yaml", []byte(`
services:
  s: { versions: [ { path: s.wasm } ] }
routes:
  - { match: { host: "*.example.com", path_prefix: /w }, service: s }
  - { match: { path: /h, headers: { x-user: ann, x-lane: v2 } }, service: s }
  - { match: { path: /p, method: POST }, service: s }
`))
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	printURLs(&out, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}, nil, cfg)
	for _, want := range []string{
		"curl -H 'Host: www.example.com' http://127.0.0.1:8080/w ",
		"curl -H 'x-lane: v2' -H 'x-user: ann' http://127.0.0.1:8080/h ",
		"curl -X POST http://127.0.0.1:8080/p ",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
}

package tests

import (
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wasmesh/wasmesh/internal/testutil"
)

var pinnedRef = regexp.MustCompile(`^oci://127\.0\.0\.1:\d+/[a-z/]+@sha256:[0-9a-f]{64}\n$`)

// TestArtifactRegistry pushes modules to a real registry and pulls them back
// with the binary, signed and unsigned, and serves one from a config.
func TestArtifactRegistry(t *testing.T) {
	t.Parallel()
	reg := testutil.StartRegistry(t)
	o := opts{env: []string{"DOCKER_CONFIG=" + t.TempDir()}}
	repo := "oci://" + reg.Addr + "/wasmesh/hello"

	// A file, put into the local store on the way; then a digest prefix.
	r := ok(t, o, "artifact", "push", hello("rust"), repo+":rust", "--plain-http")
	if !pinnedRef.MatchString(r.stdout) || !strings.HasPrefix(r.stdout, repo+"@sha256:") {
		t.Fatalf("artifact push printed %q, want %s@sha256:<64 hex>", r.stdout, repo)
	}
	rustRef := strings.TrimSpace(r.stdout)
	zig := push(t, hello("zig"))
	r = ok(t, o, "artifact", "push", "--plain-http", hexOf(zig)[:12], repo+":zig")
	zigRef := strings.TrimSpace(r.stdout)
	if !pinnedRef.MatchString(r.stdout) || zigRef == rustRef {
		t.Fatalf("artifact push of a digest printed %q, want another pinned reference", r.stdout)
	}

	other := filepath.Join(t.TempDir(), "store")
	for _, ref := range []string{rustRef, repo + ":rust"} {
		r = ok(t, o, "artifact", "pull", ref, "--plain-http", "--store", other)
		if want := fileDigest(t, hello("rust")) + "\n"; r.stdout != want {
			t.Errorf("artifact pull %s printed %q, want %q", ref, r.stdout, want)
		}
	}
	r = ok(t, o, "artifact", "ls", "-o", "json", "--store", other)
	if strings.Count(r.stdout, `"digest"`) != 1 || !strings.Contains(r.stdout, fileDigest(t, hello("rust"))) {
		t.Errorf("the pulling store lists %s, want only the rust guest", r.stdout)
	}

	failing(t, o, []string{"artifact: pull: pull " + repo + ":nope: fetch manifest: not found"}, "artifact", "pull", repo+":nope", "--plain-http", "--store", other)
	failing(t, o, []string{"pull " + zigRef, "https://" + reg.Addr}, "artifact", "pull", zigRef, "--store", other) // HTTPS by default
	if r := failing(t, o, []string{"name a tag, not a digest"}, "artifact", "push", hello("rust"), rustRef, "--plain-http"); r.code != 2 {
		t.Errorf("push to a digest: exit status %d, want 2 (the reference is the caller's mistake)", r.code)
	}
	if r := failing(t, o, []string{"want one module and one registry reference"}, "artifact", "push", hello("rust"), hello("zig"), repo+":x"); r.code != 2 {
		t.Errorf("push of two files to a registry: exit status %d, want 2", r.code)
	}
	failing(t, o, []string{"invalid OCI reference"}, "artifact", "pull", "oci://"+reg.Addr+"/Bad:x")
	// A registry that accepts and never answers: given up at --timeout.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	failing(t, o, []string{"within --timeout 1s"}, "artifact", "pull", "oci://"+silent.Addr().String()+"/wasmesh/hello:v1", "--plain-http", "--timeout", "1s", "--store", other)

	t.Run("require_signed", func(t *testing.T) {
		k := filepath.Join(t.TempDir(), "k")
		ok(t, o, "key", "gen", "--out", k)
		signer := filepath.Join(t.TempDir(), "signer")
		ok(t, o, "artifact", "sign", hello("typescript"), "--key", k+".key", "--store", signer)
		r := ok(t, o, "artifact", "push", hello("typescript"), repo+":signed", "--plain-http", "--store", signer)
		signedRef := strings.TrimSpace(r.stdout)

		strict := filepath.Join(t.TempDir(), "strict")
		ok(t, o, "artifact", "policy", "--trust", k+".pub", "--require-signed", "--store", strict)
		r = ok(t, o, "artifact", "pull", signedRef, "--plain-http", "--store", strict)
		if want := fileDigest(t, hello("typescript")) + "\n"; r.stdout != want {
			t.Errorf("pull of the signed module printed %q, want %q", r.stdout, want)
		}
		ok(t, o, "artifact", "verify", "--store", strict)
		failing(t, o, []string{"pull " + zigRef, "not signed by a trusted key"}, "artifact", "pull", zigRef, "--plain-http", "--store", strict)
		r = ok(t, o, "artifact", "ls", "-o", "json", "--store", strict)
		if strings.Count(r.stdout, `"digest"`) != 1 || !strings.Contains(r.stdout, `"signed": true`) {
			t.Errorf("the require_signed store lists %s, want only the signed module", r.stdout)
		}
	})

	t.Run("serve", func(t *testing.T) {
		g := serve(t, `
registries:
  `+reg.Addr+`: { plain_http: true }
services:
  hello: { versions: [ { module: "`+zigRef+`" } ] }
routes:
  - { match: { path_prefix: / }, service: hello }
`, o.env...)
		status, body, header := get(t, g.url+"/hi")
		if status != 200 || body != "hello from zig: GET /hi 0 bytes\n" || header.Get("X-Wasmesh-Version") != zig {
			t.Errorf("GET /hi = %d %q (version %s), want the zig guest %s", status, body, header.Get("X-Wasmesh-Version"), zig)
		}
		r := ok(t, o, "routes", "--config", g.config)
		if !strings.Contains(r.stdout, "100% sha256:"+hexOf(zig)[:12]) {
			t.Errorf("routes printed\n%s\nwant the zig guest's digest", r.stdout)
		}
	})
}

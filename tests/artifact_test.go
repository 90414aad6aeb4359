package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// entry is one element of `artifact ls -o json`.
type entry struct {
	Digest  string   `json:"digest"`
	Size    int64    `json:"size"`
	WASI    string   `json:"wasi"`
	Imports []string `json:"imports"`
	Signed  bool     `json:"signed"`
}

// list returns the entries of t's store.
func list(t *testing.T) []entry {
	t.Helper()
	r := ok(t, opts{}, "artifact", "ls", "-o", "json")
	var entries []entry
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("artifact ls -o json: %v\n%s", err, r.stdout)
	}
	return entries
}

// fileDigest returns "sha256:<hex>" of a file.
func fileDigest(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func hexOf(digest string) string { return strings.TrimPrefix(digest, "sha256:") }

// failing runs wasmesh, wanting a non-zero exit status and stderr that
// contains each of want.
func failing(t *testing.T, o opts, want []string, args ...string) result {
	t.Helper()
	r := wasmesh(t, o, args...)
	if r.code == 0 {
		t.Errorf("wasmesh %s: exit status 0, want a failure\nstdout: %s", strings.Join(args, " "), r.stdout)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("wasmesh %s: stderr = %q, want it to contain %q", strings.Join(args, " "), r.stderr, w)
		}
	}
	return r
}

// TestArtifactPush stores a module under its sha256, once.
func TestArtifactPush(t *testing.T) {
	t.Parallel()
	file := hello("rust")
	want := fileDigest(t, file)
	for i := 0; i < 2; i++ {
		r := ok(t, opts{}, "artifact", "push", file)
		if r.stdout != want+"\n" {
			t.Errorf("push #%d printed %q, want %q", i+1, r.stdout, want+"\n")
		}
	}

	r := ok(t, opts{}, "artifact", "ls")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "DIGEST") ||
		!strings.HasPrefix(lines[1], "sha256:"+hexOf(want)[:12]) {
		t.Errorf("artifact ls printed\n%s\nwant a header and one line for %s", r.stdout, want)
	}

	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	entries := list(t)
	if len(entries) != 1 {
		t.Fatalf("artifact ls -o json lists %d entries, want 1: %+v", len(entries), entries)
	}
	e := entries[0]
	if e.Digest != want || e.Size != fi.Size() || e.WASI != "preview1" || e.Signed ||
		!contains(e.Imports, "wasi_snapshot_preview1") {
		t.Errorf("entry = %+v, want digest %s, size %d, wasi preview1, imports wasi_snapshot_preview1, unsigned",
			e, want, fi.Size())
	}
}

// TestArtifactPushRefused: a module that cannot run is not stored.
func TestArtifactPushRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notWasm := filepath.Join(dir, "notwasm.wasm")
	if err := os.WriteFile(notWasm, []byte("plain text\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		file string
		want string
	}{
		{"not wasm", notWasm, "not a WebAssembly binary"},
		{"missing", filepath.Join(dir, "nope.wasm"), "no such file"},
		{"unknown imports", hostTestdata("badimport.wasm"), "env.launch_missiles"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := failing(t, opts{}, []string{tc.want}, "artifact", "push", tc.file)
			if r.code != 2 {
				t.Errorf("exit status %d, want 2", r.code)
			}
			oneLine(t, "stderr", r.stderr)
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			if entries := list(t); len(entries) != 0 {
				t.Errorf("the store holds %+v after a refused push, want nothing", entries)
			}
		})
	}
}

// TestArtifactPushStoreFails: a store that cannot be written (here a
// file where the blob's directory goes; a full or read-only store alike)
// fails the push with status 1, the store's failure, not 2, which says
// the module is wrong.
func TestArtifactPushStoreFails(t *testing.T) {
	t.Parallel()
	store := t.TempDir()
	file := hello("rust")
	h := strings.TrimPrefix(fileDigest(t, file), "sha256:")
	if err := os.MkdirAll(filepath.Join(store, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(store, "blobs", "sha256", h[:2]), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := failing(t, opts{}, []string{"not a directory"}, "artifact", "push", "--store", store, file)
	if r.code != 1 {
		t.Errorf("exit status %d, want 1", r.code)
	}
}

// TestArtifactConcurrentPush pushes the hellos from two processes at once.
func TestArtifactConcurrentPush(t *testing.T) {
	t.Parallel()
	var files, want []string
	for _, lang := range langs {
		files = append(files, hello(lang))
		want = append(want, fileDigest(t, hello(lang)))
	}
	args := append([]string{"artifact", "push"}, files...)
	p1, p2 := start(t, opts{}, args...), start(t, opts{}, args...)
	for i, r := range []result{p1.wait(t), p2.wait(t)} {
		if r.code != 0 {
			t.Errorf("push #%d: exit status %d; stderr: %s", i+1, r.code, r.stderr)
		}
		if got := strings.Fields(r.stdout); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("push #%d printed %q, want %q", i+1, got, want)
		}
	}

	r := ok(t, opts{}, "artifact", "verify")
	if want := fmt.Sprintf("%d artifacts OK\n", len(langs)); r.stdout != want {
		t.Errorf("artifact verify printed %q, want %q", r.stdout, want)
	}
	if entries := list(t); len(entries) != len(langs) {
		t.Errorf("artifact ls lists %d entries, want %d", len(entries), len(langs))
	}
	leftovers, err := os.ReadDir(filepath.Join(home(t), "store", "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range leftovers {
		t.Errorf("store/tmp holds %s after the pushes", f.Name())
	}
}

// TestArtifactInspect resolves digest prefixes and describes the module.
func TestArtifactInspect(t *testing.T) {
	t.Parallel()
	digest := push(t, hello("rust"))
	prefix := hexOf(digest)[:10]

	for _, ref := range []string{prefix, "sha256:" + prefix, digest, strings.ToUpper(prefix)} {
		r := ok(t, opts{}, "artifact", "inspect", ref)
		for _, w := range []string{"digest:    " + digest, "wasi:      preview1", "reusable:  yes", "imports (",
			"wasi_snapshot_preview1.fd_write", "exports (", "_start"} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("artifact inspect %s: output lacks %q:\n%s", ref, w, r.stdout)
			}
		}
	}

	r := ok(t, opts{}, "artifact", "inspect", prefix, "-o", "json")
	var in struct {
		Digest string `json:"digest"`
		Size   int64  `json:"size"`
		Module struct {
			Imports []struct{ Module, Name, Kind string } `json:"imports"`
			Exports []struct{ Name, Kind string }         `json:"exports"`
		} `json:"module"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &in); err != nil {
		t.Fatalf("artifact inspect -o json: %v\n%s", err, r.stdout)
	}
	if in.Digest != digest || in.Size == 0 {
		t.Errorf("inspect -o json: digest %q size %d, want %s and a size", in.Digest, in.Size, digest)
	}
	var fdWrite, start bool
	for _, imp := range in.Module.Imports {
		fdWrite = fdWrite || imp.Module == "wasi_snapshot_preview1" && imp.Name == "fd_write" && imp.Kind == "func"
	}
	for _, exp := range in.Module.Exports {
		start = start || exp.Name == "_start" && exp.Kind == "func"
	}
	if !fdWrite || !start {
		t.Errorf("inspect -o json: imports %+v, exports %+v; want func imports fd_write and func export _start",
			in.Module.Imports, in.Module.Exports)
	}

	unknown := "0123456789"
	if strings.HasPrefix(hexOf(digest), unknown) {
		unknown = "fedcba9876"
	}
	tests := []struct {
		name, ref, want string
	}{
		{"unknown prefix", unknown, "not found"},
		{"too short", hexOf(digest)[:7], "invalid digest"},
		{"not hex", "sha256:xyzxyzxyzx", "not hexadecimal"},
	}
	store := opts{env: []string{"WASMESH_HOME=" + home(t)}} // the subtests' own homes are empty
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := failing(t, store, []string{tc.want, tc.ref}, "artifact", "inspect", tc.ref)
			oneLine(t, "stderr", r.stderr)
		})
	}
}

// TestArtifactRemove deletes an artifact by prefix.
func TestArtifactRemove(t *testing.T) {
	t.Parallel()
	digest := push(t, hello("zig"))
	kept := push(t, hello("rust"))
	prefix := hexOf(digest)[:10]
	r := ok(t, opts{}, "artifact", "rm", prefix)
	if r.stdout != "removed "+digest+"\n" {
		t.Errorf("artifact rm printed %q, want %q", r.stdout, "removed "+digest+"\n")
	}
	failing(t, opts{}, []string{"not found"}, "artifact", "inspect", prefix)
	failing(t, opts{}, []string{"not found"}, "artifact", "rm", prefix)
	if r := failing(t, opts{}, []string{"not found"}, "run", prefix); r.code != 2 {
		t.Errorf("run of a removed digest: exit status %d, want 2", r.code)
	}
	if entries := list(t); len(entries) != 1 || entries[0].Digest != kept {
		t.Errorf("artifact ls lists %+v, want only %s", entries, kept)
	}
}

// TestArtifactCorruption: verify and run detect a blob whose bytes changed.
func TestArtifactCorruption(t *testing.T) {
	t.Parallel()
	bad := push(t, hello("zig"))
	good := push(t, hello("rust"))
	blob := filepath.Join(home(t), "store", "blobs", "sha256", hexOf(bad)[:2], hexOf(bad))
	if err := os.Chmod(blob, 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}

	r := failing(t, opts{}, []string{"1 of 2 artifacts failed verification"}, "artifact", "verify")
	if !strings.Contains(r.stdout, bad) || !strings.Contains(r.stdout, "corrupt") {
		t.Errorf("artifact verify printed %q, want it to name %s as corrupt", r.stdout, bad)
	}
	if strings.Contains(r.stdout, good) {
		t.Errorf("artifact verify printed %q, naming the intact %s", r.stdout, good)
	}
	failing(t, opts{}, []string{"corrupt"}, "run", bad)
	ok(t, opts{}, "run", good)
}

// TestArtifactSignatures signs an artifact and checks the signature by key.
func TestArtifactSignatures(t *testing.T) {
	t.Parallel()
	keys := t.TempDir()
	k, other := filepath.Join(keys, "k"), filepath.Join(keys, "other")
	ok(t, opts{}, "key", "gen", "--out", k)
	ok(t, opts{}, "key", "gen", "--out", other)
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(k + ".key")
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("k.key has mode %v, want 0600", fi.Mode().Perm())
		}
	}
	failing(t, opts{}, nil, "key", "gen", "--out", k) // never overwrites a key
	// Nor a public key whose private one is elsewhere.
	moved := filepath.Join(t.TempDir(), "k.key")
	if err := os.Rename(k+".key", moved); err != nil {
		t.Fatal(err)
	}
	pubBefore, _ := os.ReadFile(k + ".pub")
	failing(t, opts{}, nil, "key", "gen", "--out", k)
	if after, _ := os.ReadFile(k + ".pub"); string(after) != string(pubBefore) {
		t.Fatal("key gen overwrote a public key whose private key was moved away")
	}
	if err := os.Rename(moved, k+".key"); err != nil {
		t.Fatal(err)
	}

	digest := push(t, hello("rust"))
	prefix := hexOf(digest)[:10]
	if r := ok(t, opts{}, "artifact", "sign", prefix, "--key", k+".key"); !strings.HasPrefix(r.stdout, "signed "+digest) {
		t.Errorf("artifact sign printed %q, want \"signed %s ...\"", r.stdout, digest)
	}
	if r := ok(t, opts{}, "artifact", "verify", prefix, "--pub", k+".pub"); !strings.Contains(r.stdout, "OK") {
		t.Errorf("artifact verify --pub printed %q, want OK", r.stdout)
	}
	failing(t, opts{}, []string{"not signed"}, "artifact", "verify", prefix, "--pub", other+".pub")
	failing(t, opts{}, nil, "artifact", "sign", prefix, "--key", k+".pub") // a public key cannot sign
	if entries := list(t); len(entries) != 1 || !entries[0].Signed {
		t.Errorf("artifact ls lists %+v, want one signed entry", entries)
	}
}

// TestArtifactPolicy: a store that requires signatures refuses unsigned
// modules at push and at run, and accepts a module signed before its push.
func TestArtifactPolicy(t *testing.T) {
	t.Parallel()
	keys := t.TempDir()
	k := filepath.Join(keys, "k")
	ok(t, opts{}, "key", "gen", "--out", k)
	unsigned := push(t, hello("zig")) // pushed before the policy

	r := ok(t, opts{}, "artifact", "policy", "--require-signed", "--trust", k+".pub")
	if !strings.Contains(r.stdout, "require_signed: true") || !strings.Contains(r.stdout, "trusted key:") {
		t.Errorf("artifact policy printed %q, want require_signed true and a trusted key", r.stdout)
	}

	file := hello("rust")
	failing(t, opts{}, []string{"not signed"}, "artifact", "push", file)
	failing(t, opts{}, []string{"not signed"}, "run", unsigned)
	if entries := list(t); len(entries) != 1 || entries[0].Digest != unsigned {
		t.Errorf("artifact ls lists %+v, want only %s", entries, unsigned)
	}

	ok(t, opts{}, "artifact", "sign", file, "--key", k+".key")
	digest := push(t, file)
	if want := fileDigest(t, file); digest != want {
		t.Errorf("push printed %s, want %s", digest, want)
	}
	r = ok(t, opts{}, "run", "--env", "REQUEST_METHOD=GET", "--env", "PATH_INFO=/signed", hexOf(digest)[:12])
	if want := helloOutput("rust", "GET", "/signed", 0); r.stdout != want {
		t.Errorf("run of the signed artifact printed %q, want %q", r.stdout, want)
	}
	failing(t, opts{}, []string{"1 of 2 artifacts failed verification"}, "artifact", "verify")
}

// TestVersion prints the versions of wasmesh and wazero.
func TestVersion(t *testing.T) {
	t.Parallel()
	r := ok(t, opts{}, "version")
	if !strings.HasPrefix(r.stdout, "wasmesh ") || !strings.Contains(r.stdout, "wazero v1.12.0") {
		t.Errorf("version printed %q, want \"wasmesh <version> (wazero v1.12.0)\"", r.stdout)
	}
	oneLine(t, "stdout", r.stdout)
}

// TestArtifactNoStore: reading a store that is not there (a mistyped
// --store) says so, and makes none.
func TestArtifactNoStore(t *testing.T) {
	typo := filepath.Join(t.TempDir(), "stroe")
	for _, args := range [][]string{{"ls"}, {"inspect", "0123456789"}, {"verify"}, {"rm", "0123456789"}} {
		failing(t, opts{}, []string{"no store at " + typo}, append(append([]string{"artifact"}, args...), "--store", typo)...)
	}
	if _, err := os.Stat(typo); !os.IsNotExist(err) {
		t.Errorf("a store was made at %s (%v)", typo, err)
	}
}

// TestArtifactPushToDigestRefused: a push names a tag; a reference with a
// digest is the caller's mistake, said before anything is stored or sent
// (exit 2).
func TestArtifactPushToDigestRefused(t *testing.T) {
	r := wasmesh(t, opts{}, "artifact", "push", repoPath("examples", "hello", "zig", "hello.wasm"), "oci://127.0.0.1:1/x/y@sha256:"+strings.Repeat("0", 64))
	if r.code != 2 || !strings.Contains(r.stderr, "name a tag, not a digest") {
		t.Fatalf("push to a digest reference: exit %d, %q", r.code, r.stderr)
	}
}

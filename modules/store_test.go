package modules

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func openStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// blobs lists every file under the store's blobs and tmp directories.
func blobs(t *testing.T, s *Store) []string {
	t.Helper()
	var files []string
	for _, sub := range []string{"blobs", "tmp"} {
		filepath.WalkDir(filepath.Join(s.Dir(), sub), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, p)
			}
			return nil
		})
	}
	return files
}

func TestPutDigestIsSha256(t *testing.T) {
	s := openStore(t)
	wasm := readFile(t, "a.wasm")
	digest, err := s.Put(context.Background(), bytes.NewReader(wasm))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(wasm)
	if want := "sha256:" + hex.EncodeToString(sum[:]); digest != want {
		t.Fatalf("digest = %s, want %s", digest, want)
	}
	again, err := s.Put(context.Background(), bytes.NewReader(wasm))
	if err != nil || again != digest {
		t.Fatalf("second put = %s, %v", again, err)
	}
	if n := len(blobs(t, s)); n != 1 {
		t.Fatalf("%d files after pushing the same bytes twice, want 1", n)
	}
	_, got, err := s.Get(digest)
	if err != nil || !bytes.Equal(got, wasm) {
		t.Fatalf("get: %v", err)
	}
}

func TestPutRefusesInvalidAndLeavesNothing(t *testing.T) {
	validateErr := errors.New("compile failed: boom")
	s, err := Open(t.TempDir(), Options{Validate: func(_ context.Context, wasm []byte) error {
		if bytes.Equal(wasm, readFile(t, "c.wasm")) {
			return validateErr
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"text", []byte("#!/bin/sh\necho hi\n"), "not a WebAssembly binary"},
		{"bad version", []byte("\x00asm\x02\x00\x00\x00"), "unsupported WebAssembly version"},
		{"truncated section", []byte("\x00asm\x01\x00\x00\x00\x01\x7f"), "truncated"},
		{"validator refuses", readFile(t, "c.wasm"), "compile failed: boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Put(context.Background(), bytes.NewReader(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if files := blobs(t, s); len(files) != 0 {
				t.Fatalf("store holds %v after a refused push", files)
			}
		})
	}
}

func TestConcurrentPutsGoroutines(t *testing.T) {
	s := openStore(t)
	mods := [][]byte{readFile(t, "a.wasm"), readFile(t, "b.wasm"), readFile(t, "c.wasm")}
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wasm := mods[i%len(mods)]
			d, err := s.Put(context.Background(), bytes.NewReader(wasm))
			if err == nil && d != DigestOf(wasm) {
				err = fmt.Errorf("digest %s for module %d", d, i%len(mods))
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	assertIntact(t, s, 3)
}

func assertIntact(t *testing.T, s *Store, want int) {
	t.Helper()
	entries, err := s.List()
	if err != nil || len(entries) != want {
		t.Fatalf("list: %d entries, %v; want %d", len(entries), err, want)
	}
	problems, err := s.Verify()
	if err != nil || len(problems) != 0 {
		t.Fatalf("verify: %v %v", problems, err)
	}
	if tmp, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

// TestConcurrentPutsProcesses pushes from two processes into one store: this
// test binary re-run with WASMESH_TEST_PUSH_STORE set.
func TestConcurrentPutsProcesses(t *testing.T) {
	if dir := os.Getenv("WASMESH_TEST_PUSH_STORE"); dir != "" {
		s, err := Open(dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for range 20 {
			for _, name := range []string{"a.wasm", "b.wasm", "c.wasm"} {
				if _, err := s.Put(context.Background(), bytes.NewReader(readFile(t, name))); err != nil {
					t.Fatal(err)
				}
			}
		}
		return
	}
	s := openStore(t)
	var cmds []*exec.Cmd
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentPutsProcesses$")
		cmd.Env = append(os.Environ(), "WASMESH_TEST_PUSH_STORE="+s.Dir())
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Log(out.String())
			}
		})
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("pushing process: %v", err)
		}
	}
	assertIntact(t, s, 3)
}

func TestResolvePrefix(t *testing.T) {
	s := openStore(t)
	d, _ := s.Put(context.Background(), bytes.NewReader(readFile(t, "a.wasm")))
	h := strings.TrimPrefix(d, Prefix)
	// Plant a second blob sharing the first 9 hex digits, to make a prefix ambiguous.
	twin := h[:9] + strings.Repeat("0", 55)
	if twin == h {
		twin = h[:9] + strings.Repeat("1", 55)
	}
	os.WriteFile(s.blobPath(twin), []byte("x"), 0o444)

	tests := []struct {
		ref, want, wantErr string
	}{
		{ref: d, want: d},
		{ref: h, want: d},
		{ref: "sha256:" + h[:12], want: d},
		{ref: strings.ToUpper(h[:12]), want: d},
		{ref: "SHA256:" + strings.ToUpper(h), want: d}, // the scheme too
		{ref: h[:9], wantErr: "ambiguous digest " + h[:9] + ": matches "},
		{ref: h[:7], wantErr: "want sha256:<hex> with 8 to 64 hex digits"},
		{ref: "sha256:zzzzzzzzzz", wantErr: "not hexadecimal"},
		{ref: "ffffffffff", wantErr: "no artifact matches ffffffffff"},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			got, err := s.Resolve(tc.ref)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.HasPrefix(tc.wantErr, "ambiguous") && (!strings.Contains(err.Error(), h) || !strings.Contains(err.Error(), twin)) {
					t.Fatalf("ambiguity error does not list both candidates: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestVerifyFindsCorruption(t *testing.T) {
	s := openStore(t)
	d, _ := s.Put(context.Background(), bytes.NewReader(readFile(t, "a.wasm")))
	s.Put(context.Background(), bytes.NewReader(readFile(t, "b.wasm")))
	path := s.blobPath(strings.TrimPrefix(d, Prefix))
	os.Chmod(path, 0o644)
	data, _ := os.ReadFile(path)
	data[len(data)-1] ^= 0xff
	os.WriteFile(path, data, 0o644)

	problems, err := s.Verify()
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || problems[0].Digest != d || !strings.Contains(problems[0].Err, "corrupt") {
		t.Fatalf("problems = %+v, want one for %s", problems, d)
	}
	if _, _, err := s.Get(d); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("get of a corrupt blob: %v", err)
	}
	pub, _ := signNew(t, s, d)
	if _, err := s.VerifySignature(d, pub); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("a signature of a corrupt blob verified: %v", err)
	}
	// Files in blobs/ that are no artifact (a copy out of its place, a
	// name that is no digest) are not listed, and stop neither ls nor
	// verify.
	h := strings.TrimPrefix(d, Prefix)
	os.MkdirAll(filepath.Join(s.root, "blobs", "sha256", "00"), 0o755)
	os.WriteFile(filepath.Join(s.root, "blobs", "sha256", "00", h), data, 0o444)
	os.WriteFile(filepath.Join(s.root, "blobs", "sha256", "00", strings.Repeat("z", 64)), data, 0o444)
	if list, err := s.List(); err != nil || len(list) != 2 {
		t.Fatalf("list with stray files: %d entries, %v; want the 2 artifacts", len(list), err)
	}
	// Put again, the same bytes repair it.
	if again, err := s.Put(context.Background(), bytes.NewReader(readFile(t, "a.wasm"))); err != nil || again != d {
		t.Fatalf("put again: %s, %v", again, err)
	}
	if _, _, err := s.Get(d); err != nil {
		t.Fatalf("get after the put again: %v", err)
	}
	if problems, err := s.Verify(); err != nil || len(problems) != 0 {
		t.Fatalf("verify after the put again: %+v, %v", problems, err)
	}
}

func TestRemoveRefusedWhileReferenced(t *testing.T) {
	s := openStore(t)
	d, _ := s.Put(context.Background(), bytes.NewReader(readFile(t, "a.wasm")))
	if err := s.SetRefs("/etc/wasmesh/wasmesh.yaml", []string{d}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(d, false); err == nil || !strings.Contains(err.Error(), "in use by /etc/wasmesh/wasmesh.yaml") {
		t.Fatalf("remove of a referenced artifact: %v", err)
	}
	s.SetRefs("/etc/wasmesh/wasmesh.yaml", nil)
	if _, err := s.Remove(d[:15], false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve(d); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after remove: %v", err)
	}
}

// TestSetRefsUnchangedNotWritten: a reload records its config's digests
// every time; the same list again leaves the file as it is (a write with
// its sync was most of a reload of ten versions).
func TestSetRefsUnchangedNotWritten(t *testing.T) {
	s := openStore(t)
	const owner = "/etc/wasmesh/wasmesh.yaml"
	path := filepath.Join(s.root, "refs", refName(owner))
	stat := func() os.FileInfo {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	a, b := DigestOf([]byte("a")), DigestOf([]byte("b"))
	if err := s.SetRefs(owner, []string{a, b}); err != nil {
		t.Fatal(err)
	}
	first := stat()
	if err := s.SetRefs(owner, []string{a, b}); err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(first, stat()) {
		t.Error("the same digests again replaced the file")
	}
	if err := s.SetRefs(owner, []string{a}); err != nil {
		t.Fatal(err)
	}
	if got := s.referrers(b); len(got) != 0 {
		t.Errorf("after b was dropped, its referrers are %v", got)
	}
	if got := s.referrers(a); len(got) != 1 || got[0] != owner {
		t.Errorf("a's referrers are %v, want [%s]", got, owner)
	}
}

func TestInspectAndList(t *testing.T) {
	s := openStore(t)
	d, _ := s.Put(context.Background(), bytes.NewReader(readFile(t, "a.wasm")))
	in, err := s.Inspect(d)
	if err != nil {
		t.Fatal(err)
	}
	if in.WASI != "preview1" || len(in.Module.Imports) != 1 || in.Module.Imports[0].Name != "proc_exit" {
		t.Fatalf("inspect: %+v", in)
	}
	if m := in.Module.Memories; len(m) != 1 || m[0].Min != 1 || m[0].Max != -1 {
		t.Fatalf("memories: %+v", m)
	}
	if len(in.Module.Exports) != 2 {
		t.Fatalf("exports: %+v", in.Module.Exports)
	}
}

// TestInspectComponent: a component's inspection says whether its
// instances are reset and reused, as the engine decides, with its world.
func TestInspectComponent(t *testing.T) {
	s := openStore(t)
	wasm, err := os.ReadFile("../examples/components/zig/hello.wasm")
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.PutBytes(context.Background(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.Inspect(d)
	if err != nil {
		t.Fatal(err)
	}
	if in.Component == nil || !in.Reusable || in.NotReusable != "" {
		t.Fatalf("inspection of the Zig hello component: component %v, reusable %v (%q); want a reusable component", in.Component != nil, in.Reusable, in.NotReusable)
	}
	// Listed with its WASI version and the packages it imports, as a
	// module is with its own.
	if !strings.HasPrefix(in.WASI, "0.2.") || !slices.Contains(in.Imports, "wasi:http@0.2.10") || !slices.Contains(in.Imports, "wasi:io@0.2.12") {
		t.Errorf("the Zig hello component's entry: WASI %q, imports %v", in.WASI, in.Imports)
	}
	if got := in.Component.Role(); got != "wasi:http handler (exports wasi:http/incoming-handler@0.2.10)" {
		t.Errorf("Role() = %q", got)
	}
}

// TestReadFile: a module file is read into as much memory as it has (a
// module kept by the engine keeps the array), and one larger than a module
// may be is refused by its size, unread (a sparse file of 3 GiB here).
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(small, make([]byte, 1<<20+7), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := ReadFile(small)
	if err != nil || len(b) != 1<<20+7 || cap(b) != len(b) {
		t.Fatalf("ReadFile: %d bytes (cap %d), %v; want %d in as many", len(b), cap(b), err, 1<<20+7)
	}
	huge := filepath.Join(dir, "huge.wasm")
	if err := os.WriteFile(huge, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, 3<<30); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(huge); err == nil || !strings.Contains(err.Error(), "more than the 268435456 bytes a module may have") {
		t.Fatalf("ReadFile of 3 GiB: %v", err)
	}
}

package host

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// FuzzMountFS runs sequences of changes and reads a guest could make
// (links with relative targets, directories, renames, hard links, opens,
// removals) on names that include "..", "." and slashes, and checks that
// nothing outside the mount is ever read, made or changed: BASE/outside
// holds a secret that no read may return and nothing else.
func FuzzMountFS(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7})
	f.Add([]byte{0, 9, 5, 6, 9, 1, 6, 9})
	f.Add([]byte{3, 7, 2, 2, 6, 7, 1, 0, 4, 7})
	f.Add([]byte{4, 5, 0})          // open ../outside/secret
	f.Add([]byte{0, 5, 0, 4, 0, 0}) // a -> ../outside/secret, open a
	f.Add([]byte{0, 3, 0, 4, 9, 0}) // a -> .., open /x through the root
	names := []string{"a", "b", "a/b", "..", "../outside", "../outside/secret", "a/../..", ".", "a/../b", "/x", "b/c", "../inside/a"}
	f.Fuzz(func(t *testing.T, ops []byte) {
		m, check := secretBeside(t)
		defer m.close()
		name := func(i int) string { return names[int(ops[i%len(ops)])%len(names)] }
		buf := make([]byte, 64)
		for i := 0; i+2 < len(ops) && i < 60; i += 3 {
			a, b := name(i+1), name(i+2)
			switch ops[i] % 8 {
			case 0:
				m.Symlink(a, b)
			case 1:
				m.Mkdir(a, 0o755)
			case 2:
				m.Rename(a, b)
			case 3:
				m.Link(a, b)
			case 4:
				if file, e := m.OpenFile(a, experimentalsys.O_RDWR|experimentalsys.O_CREAT, 0o644); e == 0 {
					n, _ := file.Read(buf)
					if bytes.Contains(buf[:n], []byte("TOPSECRET")) {
						t.Fatalf("read the secret outside the mount through %q", a)
					}
					file.Write([]byte("x"))
					file.Close()
				}
			case 5:
				m.Unlink(a)
			case 6:
				m.Rmdir(a)
			case 7:
				m.Utimens(a, 0, 0)
			}
		}
		check()
	})
}

// secretBeside mounts BASE/inside beside BASE/outside, which holds a
// secret; check fails t if anything outside the mount was made or changed.
func secretBeside(t *testing.T) (m *mountFS, check func()) {
	t.Helper()
	base := t.TempDir()
	inside, outside := filepath.Join(base, "inside"), filepath.Join(base, "outside")
	for _, d := range []string{inside, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, []byte("TOPSECRET"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := newMountFS(inside, false)
	if err != nil {
		t.Fatal(err)
	}
	return m, func() {
		t.Helper()
		entries, _ := os.ReadDir(outside)
		data, err := os.ReadFile(secret)
		fi, _ := os.Stat(secret)
		if len(entries) != 1 || err != nil || string(data) != "TOPSECRET" || fi.ModTime().Unix() == 0 {
			t.Fatalf("outside the mount changed: %d entries, secret %q (%v)", len(entries), data, err)
		}
		if entries, _ := os.ReadDir(base); len(entries) != 2 {
			t.Fatalf("%d entries beside the mount, want inside and outside", len(entries))
		}
	}
}

package host

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// fsFixture makes BASE/inside (f = "content\n", empty dir e, dir d holding
// x) and BASE/outside/secret, and returns a mount of BASE/inside.
func fsFixture(t *testing.T, readOnly bool) (*mountFS, string) {
	t.Helper()
	base := t.TempDir()
	for p, data := range map[string]string{
		"inside/f":       "content\n",
		"inside/d/x":     "x",
		"outside/secret": "TOPSECRET\n",
	} {
		p = filepath.Join(base, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(base, "inside", "e"), 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := newMountFS(filepath.Join(base, "inside"), readOnly)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.close)
	return m, base
}

// read opens p in m and returns its content, or the error.
func read(m *mountFS, p string, flag experimentalsys.Oflag) (string, experimentalsys.Errno) {
	f, e := m.OpenFile(p, flag, 0)
	if e != 0 {
		return "", e
	}
	defer f.Close()
	buf := make([]byte, 64)
	n, e := f.Read(buf)
	return string(buf[:n]), e
}

// TestMountFSBeneath: links a guest makes are followed only while they
// stay beneath the mount; paths with ".." above it, links out of it
// (relative, to a file or a directory), and absolute link targets fail
// with EPERM; a link inside works, and O_NOFOLLOW refuses any link.
func TestMountFSBeneath(t *testing.T) {
	m, _ := fsFixture(t, false)
	for _, l := range [][2]string{{"../outside/secret", "esc"}, {"..", "up"}, {"f", "in"}, {"d", "indir"}} {
		if e := m.Symlink(l[0], l[1]); e != 0 {
			t.Fatalf("Symlink(%q, %q): %v", l[0], l[1], e)
		}
	}
	if e := m.Symlink("/etc/passwd", "abs"); e != experimentalsys.EPERM {
		t.Errorf("Symlink to an absolute target: %v, want EPERM", e)
	}
	for _, tc := range []struct {
		path  string
		flag  experimentalsys.Oflag
		want  string
		errno experimentalsys.Errno
	}{
		{path: "f", want: "content\n"},
		{path: "/f", want: "content\n"},
		{path: "in", want: "content\n"},
		{path: "indir/x", want: "x"},
		{path: "d/../f", want: "content\n"},
		{path: "../outside/secret", errno: experimentalsys.EPERM},
		{path: "d/../../outside/secret", errno: experimentalsys.EPERM},
		{path: "esc", errno: experimentalsys.EPERM},
		{path: "up/outside/secret", errno: experimentalsys.EPERM},
		{path: "in", flag: experimentalsys.O_NOFOLLOW, errno: experimentalsys.ELOOP},
		{path: "missing", errno: experimentalsys.ENOENT},
	} {
		got, e := read(m, tc.path, tc.flag)
		if e != tc.errno || got != tc.want {
			t.Errorf("read %q (flag %#x) = %q, %v; want %q, %v", tc.path, tc.flag, got, e, tc.want, tc.errno)
		}
	}
	if _, e := m.Stat("esc"); e != experimentalsys.EPERM {
		t.Errorf("Stat through a link out: %v, want EPERM", e)
	}
	if st, e := m.Lstat("esc"); e != 0 || st.Mode&os.ModeSymlink == 0 {
		t.Errorf("Lstat of the link itself: mode %v, %v; want a symlink", st.Mode, e)
	}
	if dst, e := m.Readlink("esc"); e != 0 || dst != "../outside/secret" {
		t.Errorf("Readlink = %q, %v", dst, e)
	}
	if e := m.Link("up/outside/secret", "hard"); e != experimentalsys.EPERM {
		t.Errorf("Link from outside: %v, want EPERM", e)
	}
	if e := m.Rename("f", "../outside/moved"); e != experimentalsys.EPERM {
		t.Errorf("Rename out: %v, want EPERM", e)
	}
}

// TestMountFSChanges: renames, removals and writes as POSIX has them, and
// a read-only mount refusing each.
func TestMountFSChanges(t *testing.T) {
	m, base := fsFixture(t, false)
	inside := filepath.Join(base, "inside")
	steps := []struct {
		name  string
		do    func() experimentalsys.Errno
		errno experimentalsys.Errno
	}{
		{"rmdir a file", func() experimentalsys.Errno { return m.Rmdir("f") }, experimentalsys.ENOTDIR},
		{"unlink a directory", func() experimentalsys.Errno { return m.Unlink("e") }, experimentalsys.EISDIR},
		{"rename a file onto a directory", func() experimentalsys.Errno { return m.Rename("f", "e") }, experimentalsys.EISDIR},
		{"rename a directory onto a full one", func() experimentalsys.Errno { return m.Rename("e", "d") }, experimentalsys.ENOTEMPTY},
		{"rename a directory into itself", func() experimentalsys.Errno {
			return m.Mkdir("d/sub", 0o755) | m.Rename("d", "d/sub")
		}, experimentalsys.EINVAL},
		{"rename a directory onto an empty one", func() experimentalsys.Errno { return m.Rmdir("d/sub") | m.Rename("d", "e") }, 0},
		{"mkdir beneath a file", func() experimentalsys.Errno { return m.Mkdir("f/sub", 0o755) }, experimentalsys.ENOENT},
		{"rmdir an empty directory", func() experimentalsys.Errno { return m.Mkdir("n", 0o755) | m.Rmdir("n") }, 0},
	}
	for _, s := range steps {
		if e := s.do(); e != s.errno {
			t.Errorf("%s: %v, want %v", s.name, e, s.errno)
		}
	}
	if data, err := os.ReadFile(filepath.Join(inside, "e", "x")); err != nil || string(data) != "x" {
		t.Errorf("after renaming d onto e, e/x = %q, %v", data, err)
	}

	// pwrite writes at its offset in a file opened to append.
	f, e := m.OpenFile("f", experimentalsys.O_WRONLY|experimentalsys.O_APPEND, 0)
	if e != 0 {
		t.Fatal(e)
	}
	if _, e := f.Pwrite([]byte("C"), 0); e != 0 {
		t.Errorf("Pwrite on an O_APPEND file: %v", e)
	}
	if _, e := f.Write([]byte("more\n")); e != 0 {
		t.Errorf("Write: %v", e)
	}
	f.Close()
	if data, _ := os.ReadFile(filepath.Join(inside, "f")); len(data) < len("content\nmore\n") {
		t.Errorf("f = %q after pwrite and an appending write", data)
	}

	ro, _ := fsFixture(t, true)
	for name, do := range map[string]func() experimentalsys.Errno{
		"mkdir":   func() experimentalsys.Errno { return ro.Mkdir("n", 0o755) },
		"rename":  func() experimentalsys.Errno { return ro.Rename("f", "g") },
		"unlink":  func() experimentalsys.Errno { return ro.Unlink("f") },
		"rmdir":   func() experimentalsys.Errno { return ro.Rmdir("e") },
		"symlink": func() experimentalsys.Errno { return ro.Symlink("f", "l") },
		"link":    func() experimentalsys.Errno { return ro.Link("f", "l") },
		"chmod":   func() experimentalsys.Errno { return ro.Chmod("f", 0o600) },
		"utimens": func() experimentalsys.Errno { return ro.Utimens("f", 0, 0) },
		"open to write": func() experimentalsys.Errno {
			_, e := ro.OpenFile("f", experimentalsys.O_WRONLY, 0)
			return e
		},
		"utimens by a descriptor opened to read": func() experimentalsys.Errno {
			f, e := ro.OpenFile("f", experimentalsys.O_RDONLY, 0)
			if e != 0 {
				return e
			}
			defer f.Close()
			return f.Utimens(0, 0)
		},
	} {
		if e := do(); e != experimentalsys.EROFS {
			t.Errorf("read-only %s: %v, want EROFS", name, e)
		}
	}
	if got, e := read(ro, "f", 0); e != 0 || got != "content\n" {
		t.Errorf("read-only read = %q, %v", got, e)
	}
}

// TestMountFileDir: a directory lists its entries, again after a seek to
// 0, and refuses reads as a file.
func TestMountFileDir(t *testing.T) {
	m, _ := fsFixture(t, false)
	d, e := m.OpenFile("d", experimentalsys.O_DIRECTORY, 0)
	if e != 0 {
		t.Fatal(e)
	}
	defer d.Close()
	for round := range 2 {
		ents, e := d.Readdir(-1)
		if e != 0 || len(ents) != 1 || ents[0].Name != "x" || ents[0].Ino == 0 {
			t.Fatalf("round %d: Readdir = %+v, %v; want x with its inode", round, ents, e)
		}
		if _, e := d.Seek(0, io.SeekStart); e != 0 {
			t.Fatalf("Seek(0): %v", e)
		}
	}
	if _, e := d.Read(make([]byte, 8)); e != experimentalsys.EISDIR {
		t.Errorf("Read of a directory: %v, want EISDIR", e)
	}
}

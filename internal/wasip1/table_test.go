package wasip1

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
)

// The functions themselves are tested by running WebAssembly/wasi-testsuite
// through wasmesh run (tests/wasitestsuite_test.go); these test the table
// they share.

func newTestTable(t *testing.T, maxFiles int) (*Table, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	tb := NewTable(strings.NewReader("in"), &out, nil, maxFiles)
	if err := tb.Preopen(sysfs.DirFS(dir), "/"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tb.Close)
	return tb, &out
}

func TestTableRenumber(t *testing.T) {
	tb, out := newTestTable(t, 0)
	preopen, en := tb.get(3)
	if en != 0 || preopen.guest != "/" {
		t.Fatalf("fd 3 = %+v, %v; want the preopen", preopen, en)
	}
	steps := []struct {
		name     string
		from, to uint32
		want     errno
	}{
		{"onto itself", 3, 3, 0},
		{"from a free descriptor", 9, 1, errnoBadf},
		{"onto a free descriptor", 3, 9, errnoBadf},
		{"the preopen onto stdout", 3, 1, 0},
		{"from where it was", 3, 1, errnoBadf},
	}
	for _, st := range steps {
		if got := tb.renumber(st.from, st.to); got != st.want {
			t.Errorf("%s: renumber(%d, %d) = %v, want %v", st.name, st.from, st.to, got, st.want)
		}
	}
	if e, _ := tb.get(1); e != preopen {
		t.Errorf("fd 1 is %+v, want the preopen", e)
	}
	// A new descriptor takes the lowest free number: 3 again.
	fd, en := tb.add(&entry{file: &stdin{}, ftype: filetypeCharacterDevice})
	if en != 0 || fd != 3 {
		t.Errorf("add = %d, %v; want 3", fd, en)
	}

	// Reset gives the next run its streams back, and nothing else.
	tb.Reset(nil, out, nil)
	for fd := uint32(0); fd < 3; fd++ {
		if e, en := tb.get(fd); en != 0 || !e.stdio {
			t.Errorf("after Reset, fd %d = %+v, %v; want a standard stream", fd, e, en)
		}
	}
	if _, en := tb.get(3); en != errnoBadf {
		t.Errorf("after Reset, fd 3: %v, want EBADF", en)
	}
	e, _ := tb.get(1)
	if n, _ := e.file.Write([]byte("hi")); n != 2 || out.String() != "hi" {
		t.Errorf("stdout after Reset wrote %d, out = %q", n, out)
	}
}

func TestTableLimit(t *testing.T) {
	tb, _ := newTestTable(t, 4) // three streams and the preopen
	if _, en := tb.add(&entry{file: &stdin{}}); en != errnoMfile {
		t.Fatalf("a fifth descriptor: %v, want EMFILE", en)
	}
	if en := tb.close(0); en != 0 {
		t.Fatal(en)
	}
	if fd, en := tb.add(&entry{file: &stdin{}}); en != 0 || fd != 0 {
		t.Errorf("after closing stdin: add = %d, %v; want 0", fd, en)
	}
}

func TestTableAt(t *testing.T) {
	tb, _ := newTestTable(t, 0)
	sub, en := tb.add(&entry{file: &stdin{}, ftype: filetypeDirectory, fs: tb.entries[3].fs, name: "sub", base: rightsDirBase})
	if en != 0 {
		t.Fatal(en)
	}
	noOpen, _ := tb.add(&entry{file: &stdin{}, ftype: filetypeDirectory, fs: tb.entries[3].fs, name: ".", base: rightsDirBase &^ rightPathOpen})
	tests := []struct {
		fd   uint32
		path string
		want string
		err  errno
	}{
		{3, "file", "file", 0},
		{3, "a/./b/../c", "a/c", 0},
		{3, "sub/", "sub/", 0},
		{3, ".", ".", 0},
		{sub, "x", "sub/x", 0},
		{sub, "x/", "sub/x/", 0},
		{3, "../outside", "", errnoPerm},
		{3, "/etc/passwd", "", errnoPerm},
		{sub, "..", "", errnoPerm},
		{3, "", "", errnoNoent},
		{1, "file", "", errnoNotcapable}, // stdout has no PATH_OPEN
		{noOpen, "file", "", errnoNotcapable},
		{42, "file", "", errnoBadf},
	}
	for _, tt := range tests {
		_, got, en := tb.at(tt.fd, rightPathOpen, tt.path)
		if got != tt.want || en != tt.err {
			t.Errorf("at(%d, %q) = %q, %v; want %q, %v", tt.fd, tt.path, got, en, tt.want, tt.err)
		}
	}
}

func TestOpenFlags(t *testing.T) {
	const rw = experimentalsys.O_RDONLY | experimentalsys.O_RDWR | experimentalsys.O_WRONLY
	tests := []struct {
		name     string
		dirflags uint32
		oflags   uint16
		fdflags  uint16
		rights   uint64
		mode     experimentalsys.Oflag
		set      experimentalsys.Oflag
	}{
		{"read", lookupSymlinkFollow, 0, 0, rightFdRead, experimentalsys.O_RDONLY, 0},
		{"write", lookupSymlinkFollow, 0, 0, rightFdWrite, experimentalsys.O_WRONLY, 0},
		{"both", lookupSymlinkFollow, 0, 0, rightFdRead | rightFdWrite, experimentalsys.O_RDWR, 0},
		{"no rights", lookupSymlinkFollow, 0, 0, 0, experimentalsys.O_RDONLY, 0},
		// Go's os.Open asks for every file right but FD_WRITE: read-only,
		// or a read-only mount refuses it.
		{"Go's os.Open", lookupSymlinkFollow, 0, 0, rightsFileBase &^ rightFdWrite, experimentalsys.O_RDONLY, 0},
		{"truncated without rights is written", lookupSymlinkFollow, oflagTrunc, 0, 0, experimentalsys.O_WRONLY, experimentalsys.O_TRUNC},
		{"no follow", 0, 0, 0, rightFdRead, experimentalsys.O_RDONLY, experimentalsys.O_NOFOLLOW},
		{"create exclusively", lookupSymlinkFollow, oflagCreat | oflagExcl, 0, rightFdWrite, experimentalsys.O_WRONLY, experimentalsys.O_CREAT | experimentalsys.O_EXCL},
		{"directory for writing", lookupSymlinkFollow, oflagDirectory, 0, rightFdRead | rightFdWrite, experimentalsys.O_RDWR, experimentalsys.O_DIRECTORY},
		{"append and sync", lookupSymlinkFollow, 0, fdflagAppend | fdflagSync, rightFdWrite, experimentalsys.O_WRONLY, experimentalsys.O_APPEND | experimentalsys.O_SYNC},
	}
	for _, tt := range tests {
		got := openFlags(tt.dirflags, tt.oflags, tt.fdflags, tt.rights)
		if got&rw != tt.mode || got&^rw != tt.set {
			t.Errorf("%s: openFlags = %#x, want mode %#x and %#x", tt.name, got, tt.mode, tt.set)
		}
	}
}

func TestTimes(t *testing.T) {
	c := &call{host: &Host{Walltime: func() int64 { return 42 }}}
	const omit = experimentalsys.UTIME_OMIT
	tests := []struct {
		flags      uint16
		atim, mtim int64
		err        errno
	}{
		{0, omit, omit, 0},
		{fstAtim, 1, omit, 0},
		{fstMtim, omit, 2, 0},
		{fstAtimNow | fstMtimNow, 42, 42, 0},
		{fstAtim | fstAtimNow, 0, 0, errnoInval},
		{fstMtim | fstMtimNow, 0, 0, errnoInval},
		{1 << 4, 0, 0, errnoInval},
	}
	for _, tt := range tests {
		a, m, en := c.times(1, 2, uint64(tt.flags))
		if en != tt.err || en == 0 && (a != tt.atim || m != tt.mtim) {
			t.Errorf("times(flags %#x) = %d, %d, %v; want %d, %d, %v", tt.flags, a, m, en, tt.atim, tt.mtim, tt.err)
		}
	}
}

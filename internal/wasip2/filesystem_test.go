package wasip2

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmesh/wasmesh/internal/cabi"
)

// TestFilesystemPolicy: open-at on a preopen cannot reach outside it, by
// ".." or by a symbolic link the host put there, and a read-only preopen
// refuses to create, truncate, make or remove directories.
func TestFilesystemPolicy(t *testing.T) {
	inst, h := newInstance(t)
	base := t.TempDir()
	dir := filepath.Join(base, "dir")
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"secret": "s", "dir/file": "f"} {
		if err := os.WriteFile(filepath.Join(base, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../secret", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	call := func(fn string, args ...any) cabi.VariantValue {
		t.Helper()
		out, err := h.Funcs["wasi:filesystem/types@0.2#[method]descriptor."+fn](context.Background(), inst, args)
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		return out.(cabi.VariantValue)
	}
	code := func(v cabi.VariantValue) int {
		if v.Case == 0 {
			return -1
		}
		return int(v.Value.(cabi.VariantValue).Case)
	}
	type check struct {
		name string
		got  cabi.VariantValue
		want int // -1: ok
	}
	for _, ro := range []bool{false, true} {
		d := inst.NewObject(&descriptor{dir: &Dir{Path: "/d", Root: root, ReadOnly: ro}, path: ".", isDir: true})
		const symlinkFollow, create, truncate, read, write = 1, 1, 8, 1, 2
		cases := []check{
			{"open file", call("open-at", d, uint32(symlinkFollow), "file", uint32(0), uint32(read)), -1},
			{"open sub/../file", call("open-at", d, uint32(0), "sub/../file", uint32(0), uint32(read)), -1},
			{"open ../secret", call("open-at", d, uint32(0), "../secret", uint32(0), uint32(read)), fsNotPermitted},
			{"open /etc/passwd", call("open-at", d, uint32(0), "/etc/passwd", uint32(0), uint32(read)), fsNotPermitted},
			{"open link to ../secret", call("open-at", d, uint32(symlinkFollow), "link", uint32(0), uint32(read)), fsNotPermitted},
			{"stat missing", call("stat-at", d, uint32(0), "missing"), fsNoEntry},
			{"symlink", call("symlink-at", d, "file", "y"), map[bool]int{false: -1, true: fsReadOnly}[ro]},
			{"symlink to /etc", call("symlink-at", d, "/etc", "abs"), map[bool]int{false: fsNotPermitted, true: fsReadOnly}[ro]},
			{"symlink out", call("symlink-at", d, "../secret", "esc"), map[bool]int{false: -1, true: fsReadOnly}[ro]},
			{"open the link out", call("open-at", d, uint32(symlinkFollow), "esc", uint32(0), uint32(read)), fsNotPermitted},
			{"open the link in", call("open-at", d, uint32(symlinkFollow), "y", uint32(0), uint32(read)), -1},
		}
		if ro {
			cases = append(cases,
				check{"create", call("open-at", d, uint32(0), "new", uint32(create), uint32(read|write)), fsReadOnly},
				check{"truncate", call("open-at", d, uint32(0), "file", uint32(truncate), uint32(read|write)), fsReadOnly},
				check{"mkdir", call("create-directory-at", d, "new"), fsReadOnly},
				check{"rmdir", call("remove-directory-at", d, "sub"), fsReadOnly})
		}
		for _, c := range cases {
			if got := code(c.got); got != c.want {
				t.Errorf("read-only %v: %s: error-code %d, want %d (-1: ok)", ro, c.name, got, c.want)
			}
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "file")); string(b) != "f" {
		t.Errorf("the read-only preopen's file was changed: %q", b)
	}
	// stat-at gives the file's own access and modification times.
	atime, mtime := time.Unix(1000, 5), time.Unix(2000, 7)
	if err := os.Chtimes(filepath.Join(dir, "file"), atime, mtime); err != nil {
		t.Fatal(err)
	}
	d := inst.NewObject(&descriptor{dir: &Dir{Path: "/d", Root: root}, path: ".", isDir: true})
	st := call("stat-at", d, uint32(0), "file")
	if st.Case != 0 {
		t.Fatalf("stat-at: error-code %d", code(st))
	}
	at := func(i int) time.Time {
		ts := st.Value.([]any)[i].(cabi.VariantValue).Value.([]any)
		return time.Unix(int64(ts[0].(uint64)), int64(ts[1].(uint32)))
	}
	if fields := st.Value.([]any); fields[2].(uint64) != 1 || !at(3).Equal(atime) || !at(4).Equal(mtime) {
		t.Errorf("stat-at: size %v, access %v, modification %v; want 1, %v, %v", fields[2], at(3), at(4), atime, mtime)
	}
}

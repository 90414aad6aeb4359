//go:build linux

package netlab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Cgroup creates an empty cgroup v2 (mounting cgroup2 if nothing has) and
// removes it when the test ends, once the processes in it have exited.
func Cgroup(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	root := Cgroup2Mount(t)
	dir := filepath.Join(root, "wasmesh-test-"+uniqueID())
	if err := os.Mkdir(dir, 0o755); err != nil {
		if Refused(err) {
			SkipRefusal(t, "creating a cgroup: "+err.Error())
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var err error
		for range 100 {
			if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("removing the test cgroup: %v", err)
	})
	return dir
}

// Cgroup2Mount returns the mount point of the root of a cgroup2 file
// system, mounting one (until the test ends) if there is none.
func Cgroup2Mount(t testing.TB) string {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(mi)) {
		before, after, _ := strings.Cut(line, " - ")
		if f := strings.Fields(before); len(f) >= 5 && f[3] == "/" && strings.HasPrefix(after, "cgroup2 ") {
			// mountinfo escapes with three octal digits, as Go does.
			if dir, err := strconv.Unquote(`"` + f[4] + `"`); err == nil {
				return dir
			}
			return f[4]
		}
	}
	dir := t.TempDir()
	if err := unix.Mount("none", dir, "cgroup2", 0, ""); err != nil {
		SkipRefusal(t, "no cgroup2 mounted and mounting one failed: "+err.Error())
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// attachTypes are the hooks wasmesh's programs attach to, by the direction
// that names them (colour_egress, colour_ingress).
var attachTypes = map[string]ebpf.AttachType{
	"egress":  ebpf.AttachCGroupInetEgress,
	"ingress": ebpf.AttachCGroupInetIngress,
}

// Attached returns the programs attached to the cgroup (BPF_PROG_QUERY), by
// "egress" and "ingress"; it is empty when there are none.
func Attached(t testing.TB, cgroup string) map[string][]ebpf.ProgramID {
	t.Helper()
	dir, err := os.Open(cgroup)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	m := make(map[string][]ebpf.ProgramID)
	for name, at := range attachTypes {
		res, err := link.QueryPrograms(link.QueryOptions{Target: int(dir.Fd()), Attach: at})
		if err != nil {
			if Refused(err) {
				SkipRefusal(t, "BPF_PROG_QUERY refused: "+err.Error())
			}
			t.Fatalf("query %s programs of %s: %v", name, cgroup, err)
		}
		for _, p := range res.Programs {
			m[name] = append(m[name], p.ID)
		}
	}
	return m
}

// CheckAttached checks that exactly wasmesh's two programs, colour_egress
// and colour_ingress, are attached to the cgroup, by BPF_PROG_QUERY and by
// `bpftool cgroup show` (a second opinion, from outside), and returns their
// IDs.
func CheckAttached(t testing.TB, cgroup string) []ebpf.ProgramID {
	t.Helper()
	got := Attached(t, cgroup)
	out := bpftool(t, cgroup)
	t.Logf("bpftool cgroup show %s:\n%s", cgroup, out)
	var ids []ebpf.ProgramID
	for dir := range attachTypes {
		if len(got[dir]) != 1 {
			t.Fatalf("%s programs on %s: %v, want one", dir, cgroup, got[dir])
		}
		if name, err := programName(got[dir][0]); err != nil || name != "colour_"+dir {
			t.Errorf("%s program %d is %q (%v), want colour_%s", dir, got[dir][0], name, err, dir)
		}
		if !strings.Contains(out, "colour_"+dir) {
			t.Errorf("bpftool cgroup show %s does not list colour_%s:\n%s", cgroup, dir, out)
		}
		ids = append(ids, got[dir][0])
	}
	return ids
}

// CheckNothingLeft waits until no program is attached to the cgroup, checks
// that bpftool lists none of wasmesh's, and waits for the programs progs and
// the maps maps to be freed.
func CheckNothingLeft(t testing.TB, cgroup string, progs []ebpf.ProgramID, maps []ebpf.MapID) {
	t.Helper()
	Eventually(t, "programs attached to "+cgroup, func() error {
		if got := Attached(t, cgroup); len(got) > 0 {
			return fmt.Errorf("%v", got)
		}
		return nil
	})
	if out := bpftool(t, cgroup); strings.Contains(out, "colour_") {
		t.Errorf("bpftool cgroup show %s still lists:\n%s", cgroup, out)
	}
	for _, id := range progs {
		Eventually(t, fmt.Sprintf("program %d to be freed", id), func() error {
			if _, err := programName(id); !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("exists (%v)", err)
			}
			return nil
		})
	}
	for _, id := range maps {
		Eventually(t, fmt.Sprintf("map %d to be freed", id), func() error {
			m, err := ebpf.NewMapFromID(id)
			if err == nil {
				m.Close()
				return errors.New("exists")
			}
			if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return nil
		})
	}
}

// bpftool is `bpftool cgroup show cgroup`.
func bpftool(t testing.TB, cgroup string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "bpftool", "cgroup", "show", cgroup))
}

// programName returns the kernel's name for a program, or an error wrapping
// os.ErrNotExist once it is gone.
func programName(id ebpf.ProgramID) (string, error) {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return "", err
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return "", err
	}
	return info.Name, nil
}

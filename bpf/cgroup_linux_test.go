package bpf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCgroupDir(t *testing.T) {
	const (
		unified = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
		hybrid  = "25 24 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n" +
			"26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw\n" +
			"27 25 0:24 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory\n"
		subtree = "40 30 0:26 /kubepods/pod1 /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n"
		spaced  = "41 30 0:26 / /mnt/my\\040cgroups rw,relatime - cgroup2 none rw\n"
		v1only  = "27 25 0:24 / /sys/fs/cgroup/memory rw,relatime shared:11 - cgroup cgroup rw,memory\n"
	)
	for _, tc := range []struct {
		name, procCgroup, mountinfo, want string
	}{
		{"unified", "0::/system.slice/wasmesh.service\n", unified, "/sys/fs/cgroup/system.slice/wasmesh.service"},
		{"hybrid root", "4:memory:/x\n0::/\n", hybrid, "/sys/fs/cgroup/unified"},
		{"subtree mount", "0::/kubepods/pod1/ctr\n", unified + subtree, "/sys/fs/cgroup/ctr"},
		{"subtree root itself", "0::/kubepods/pod1\n", subtree, "/sys/fs/cgroup"},
		{"escaped mount point", "0::/gw\n", spaced, "/mnt/my cgroups/gw"},
		{"no cgroup2 mount", "0::/gw\n", v1only, ""},
		{"outside the mounted subtree", "0::/kubepods/pod2\n", subtree, ""},
		{"sibling with a common prefix", "0::/kubepods/pod10\n", subtree, ""},
		{"v1 only", "4:memory:/x\n", unified, ""},
		{"outside the cgroup namespace", "0::/../../gw\n", unified, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cgroupDir(tc.procCgroup, tc.mountinfo)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("got %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestHostRoot: the host's root cgroup is told from the root of a cgroup
// namespace (which a container's process reads as "/" too) by its lack of
// cgroup.events; a cgroup below the root has one.
func TestHostRoot(t *testing.T) {
	dir := t.TempDir()
	if !hostRoot(dir) {
		t.Errorf("a directory without cgroup.events taken for a cgroup below the root")
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.events"), []byte("populated 1\nfrozen 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if hostRoot(dir) {
		t.Errorf("a directory with cgroup.events (a namespace's root) taken for the host's root")
	}
	// This process's own cgroup, when it has one below the root.
	own, err := ownCgroup()
	if err != nil {
		t.Skipf("no cgroup v2 here: %v", err)
	}
	if cg, _ := os.ReadFile("/proc/self/cgroup"); !strings.Contains(string(cg), "0::/\n") && hostRoot(own) {
		t.Errorf("the process's cgroup %s taken for the host's root", own)
	}
}

// TestUnderCgroup: a cgroup is under itself and its ancestors, by whole
// path components, not under a sibling or a child.
func TestUnderCgroup(t *testing.T) {
	for _, tc := range []struct {
		dir, cgroup string
		want        bool
	}{
		{"/sys/fs/cgroup/a/b", "/sys/fs/cgroup/a", true},
		{"/sys/fs/cgroup/a", "/sys/fs/cgroup/a/", true},
		{"/sys/fs/cgroup/a", "/sys/fs/cgroup", true},
		{"/sys/fs/cgroup/ab", "/sys/fs/cgroup/a", false},
		{"/sys/fs/cgroup/a", "/sys/fs/cgroup/a/b", false},
		{"/sys/fs/cgroup/gateway", "/sys/fs/cgroup/empty", false},
	} {
		if got := underCgroup(tc.dir, tc.cgroup); got != tc.want {
			t.Errorf("underCgroup(%q, %q) = %v, want %v", tc.dir, tc.cgroup, got, tc.want)
		}
	}
}

package bpf

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// ownCgroup returns the directory of the process's cgroup v2.
func ownCgroup() (string, error) {
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	return cgroupDir(string(cg), string(mi))
}

// inRootCgroup reports whether the process is in the host's root cgroup
// v2. In a cgroup namespace (a container's, by default on cgroup v2) the
// process's cgroup reads "/" too: that root is a cgroup of its own.
func inRootCgroup() bool {
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(cg)) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
			if p != "/" {
				return false
			}
			dir, err := ownCgroup()
			return err != nil || hostRoot(dir)
		}
	}
	return false
}

// underCgroup reports whether the cgroup directory dir is cgroup or one of
// its descendants, the cgroups whose sockets programs attached to cgroup
// see (both paths resolved through symbolic links where they can be).
func underCgroup(dir, cgroup string) bool {
	resolve := func(p string) string {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		return path.Clean(p)
	}
	dir, cgroup = resolve(dir), resolve(cgroup)
	return dir == cgroup || strings.HasPrefix(dir, strings.TrimSuffix(cgroup, "/")+"/")
}

// hostRoot reports whether the cgroup v2 directory dir is the host's root
// cgroup: the one without cgroup.events (every other cgroup has it, the
// root of a cgroup namespace included).
func hostRoot(dir string) bool {
	_, err := os.Stat(path.Join(dir, "cgroup.events"))
	return err != nil
}

// cgroupDir finds the cgroup v2 named by procCgroup (/proc/PID/cgroup) under
// the cgroup2 mounts listed in mountinfo (/proc/PID/mountinfo), whether the
// mount is /sys/fs/cgroup (unified), /sys/fs/cgroup/unified (hybrid) or a
// mount of a subtree.
func cgroupDir(procCgroup, mountinfo string) (string, error) {
	var cg string
	for line := range strings.Lines(procCgroup) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
			cg = p
		}
	}
	if !strings.HasPrefix(cg, "/") || strings.Contains(cg, "/..") {
		return "", fmt.Errorf("no usable cgroup v2 in /proc/self/cgroup (%q)", cg)
	}

	best, bestRoot := "", ""
	sc := bufio.NewScanner(strings.NewReader(mountinfo))
	for sc.Scan() {
		// ID parent major:minor root mountpoint options [optional...] - fstype source super
		before, after, ok := strings.Cut(sc.Text(), " - ")
		f := strings.Fields(before)
		if !ok || len(f) < 5 || !strings.HasPrefix(after, "cgroup2 ") {
			continue
		}
		root, mnt := unescapeMount(f[3]), unescapeMount(f[4])
		rel, ok := within(cg, root)
		if ok && (best == "" || len(root) > len(bestRoot)) {
			best, bestRoot = path.Join(mnt, rel), root
		}
	}
	if best == "" {
		return "", fmt.Errorf("cgroup %s: no cgroup2 mount holds it (mount one: mount -t cgroup2 none /sys/fs/cgroup)", cg)
	}
	return best, nil
}

// within returns p relative to root, if p is root or below it.
func within(p, root string) (string, bool) {
	if root == "/" {
		return p, true
	}
	if p == root {
		return "/", true
	}
	rel, ok := strings.CutPrefix(p, root+"/")
	return "/" + rel, ok
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

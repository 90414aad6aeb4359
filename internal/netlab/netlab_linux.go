//go:build linux

package netlab

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// requireEnv makes refusals fatal instead of skipped (CI sets it).
const requireEnv = "WASMESH_REQUIRE_BPF"

// Refused reports whether err is the kernel saying no (missing privilege or
// feature, read-only file system) rather than a bug.
func Refused(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EROFS) ||
		errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, errors.ErrUnsupported)
}

// SkipRefusal skips the test with why, or fails it when
// WASMESH_REQUIRE_BPF=1.
func SkipRefusal(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s (and %s=1, so this is a failure, not a skip)", why, requireEnv)
	}
	t.Skip(why)
}

// RequireRoot skips (or fails, see SkipRefusal) without the privileges that
// network namespaces, nftables, cgroups and eBPF need.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipRefusal(t, "needs root for network namespaces, nftables, cgroups and eBPF")
	}
}

// run runs a command and returns its output; a refusal skips, any other
// failure is fatal.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("%s is not installed (bash examples/toolchains.sh)", name)
	}
	if err != nil && bytes.Contains(out, []byte("Operation not permitted")) {
		SkipRefusal(t, fmt.Sprintf("%s %s: %s", name, strings.Join(args, " "), bytes.TrimSpace(out)))
	}
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var seq atomic.Int32

// uniqueID names what a test creates: unique across the processes of
// concurrent test binaries, and short enough for an interface name.
func uniqueID() string { return fmt.Sprintf("%d-%d", os.Getpid(), seq.Add(1)) }

// Pair is two network namespaces joined by a veth pair: the server's (the
// gateway side, "srv") and the client's ("cli"), each with one address on
// its end of the pair.
type Pair struct {
	SrvNS, CliNS     string // namespace names, for /run/netns and ip -n
	SrvIf, CliIf     string // the veth ends, one in each namespace
	SrvAddr, CliAddr netip.Addr
}

// NewPair creates the namespaces, with IPv6 addresses (fd57::1, fd57::2)
// when ipv6 is set, IPv4 ones (10.57.0.1, 10.57.0.2) otherwise. They are
// deleted when the test ends.
func NewPair(t testing.TB, ipv6 bool) *Pair {
	t.Helper()
	RequireRoot(t)
	id := uniqueID()
	p := &Pair{
		SrvNS: "wmlab-srv-" + id, CliNS: "wmlab-cli-" + id,
		SrvIf: "wls" + id, CliIf: "wlc" + id,
		SrvAddr: netip.MustParseAddr("10.57.0.1"), CliAddr: netip.MustParseAddr("10.57.0.2"),
	}
	if len(p.SrvIf) > 15 {
		p.SrvIf, p.CliIf = p.SrvIf[:15], p.CliIf[:15]
	}
	bits := 24
	if ipv6 {
		p.SrvAddr, p.CliAddr = netip.MustParseAddr("fd57::1"), netip.MustParseAddr("fd57::2")
		bits = 64
	}
	for _, ns := range []string{p.SrvNS, p.CliNS} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v %s", ns, err, out)
			}
		})
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", p.SrvIf, "netns", p.SrvNS, "type", "veth", "peer", "name", p.CliIf, "netns", p.CliNS)
	for _, side := range []struct {
		ns, dev string
		addr    netip.Addr
	}{{p.SrvNS, p.SrvIf, p.SrvAddr}, {p.CliNS, p.CliIf, p.CliAddr}} {
		args := []string{"-n", side.ns, "addr", "add", netip.PrefixFrom(side.addr, bits).String(), "dev", side.dev}
		if ipv6 {
			args = append(args, "nodad") // usable at once
		}
		run(t, "ip", args...)
		run(t, "ip", "-n", side.ns, "link", "set", side.dev, "up")
	}
	return p
}

// InNS runs fn on an OS thread inside the named network namespace and
// returns its error; sockets fn creates stay in that namespace. It takes no
// testing.TB so that it can serve a dialer's goroutine.
func InNS(ns string, fn func() error) error {
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return err
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	defer func() {
		// On failure the thread stays locked, and dies with the goroutine.
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return fn()
}

// Eventually polls cond until it returns nil, failing the test with cond's
// last error after 10s.
func Eventually(t testing.TB, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %v after 10s", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

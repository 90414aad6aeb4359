package bpf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// requireEnv makes refusals fatal instead of skipped (CI sets it).
const requireEnv = "WASMESH_REQUIRE_BPF"

// refused reports whether err is the kernel saying no (missing privilege or
// feature) rather than a bug.
func refused(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) ||
		errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, errors.ErrUnsupported)
}

// skipRefusal skips the test with why, or fails it when requireEnv=1.
func skipRefusal(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s (and %s=1, so this is a failure, not a skip)", why, requireEnv)
	}
	t.Skip(why)
}

// requireBPF fails on err, unless it is the kernel refusing eBPF: then it
// skips, or fails when requireEnv=1.
func requireBPF(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if refused(err) {
		skipRefusal(t, "the kernel refuses eBPF here: "+err.Error())
	}
	t.Fatal(err)
}

// requireRoot skips (or fails when requireEnv=1) without the privileges that
// network namespaces, nftables, SO_MARK and cgroups need.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipRefusal(t, "needs root for network namespaces, nftables and cgroups")
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if errors.Is(err, exec.ErrNotFound) {
		t.Fatalf("%s is not installed (bash examples/toolchains.sh)", name)
	}
	if err != nil && bytes.Contains(out, []byte("Operation not permitted")) {
		skipRefusal(t, fmt.Sprintf("%s %s: %s", name, strings.Join(args, " "), bytes.TrimSpace(out)))
	}
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var netnsSeq atomic.Int32

// netPair is two network namespaces joined by a veth pair: the gateway side
// ("srv") and the peer ("cli"), each with one address.
type netPair struct {
	srvNS, cliNS     string
	srvIf, cliIf     string
	srvAddr, cliAddr netip.Addr
}

// newNetPair creates the namespaces; they are deleted when the test ends.
func newNetPair(t *testing.T, ipv6 bool) *netPair {
	t.Helper()
	requireRoot(t)
	id := fmt.Sprintf("%d-%d", os.Getpid(), netnsSeq.Add(1))
	p := &netPair{
		srvNS: "wmsrv-" + id, cliNS: "wmcli-" + id,
		srvIf: "wms" + id, cliIf: "wmc" + id,
		srvAddr: netip.MustParseAddr("10.57.0.1"), cliAddr: netip.MustParseAddr("10.57.0.2"),
	}
	if len(p.srvIf) > 15 {
		p.srvIf, p.cliIf = p.srvIf[:15], p.cliIf[:15]
	}
	if ipv6 {
		p.srvAddr, p.cliAddr = netip.MustParseAddr("fd57::1"), netip.MustParseAddr("fd57::2")
	}
	for _, ns := range []string{p.srvNS, p.cliNS} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", p.srvIf, "netns", p.srvNS, "type", "veth", "peer", "name", p.cliIf, "netns", p.cliNS)
	for _, side := range []struct {
		ns, dev string
		addr    netip.Addr
	}{{p.srvNS, p.srvIf, p.srvAddr}, {p.cliNS, p.cliIf, p.cliAddr}} {
		bits := 24
		if ipv6 {
			bits = 64
		}
		args := []string{"-n", side.ns, "addr", "add", netip.PrefixFrom(side.addr, bits).String(), "dev", side.dev}
		if ipv6 {
			args = append(args, "nodad") // usable at once
		}
		run(t, "ip", args...)
		run(t, "ip", "-n", side.ns, "link", "set", side.dev, "up")
	}
	return p
}

// inNS runs fn on an OS thread inside the named network namespace; sockets
// created there stay in it.
func inNS(t testing.TB, ns string, fn func()) {
	t.Helper()
	target, err := os.Open("/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("setns %s: %v", ns, err)
	}
	defer func() {
		// On failure the thread stays locked, and dies with the goroutine.
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	fn()
}

// nftCounters installs, in ns, named nftables counters on the egress hook of
// dev (after every cgroup_skb program, as a real mark consumer sees packets)
// for TCP packets from port: one per exact mark in marks, and "unmarked" for
// packets with none of mask's bits set.
func nftCounters(t testing.TB, ns, dev string, port int, mask uint32, marks map[string]uint32) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "table netdev wasmesh_test {\n")
	for name := range marks {
		fmt.Fprintf(&b, "counter %s {}\n", name)
	}
	fmt.Fprintf(&b, "counter unmarked {}\n")
	fmt.Fprintf(&b, "chain out { type filter hook egress device %q priority 0; policy accept;\n", dev)
	for name, mark := range marks {
		fmt.Fprintf(&b, "tcp sport %d meta mark %#08x counter name %q\n", port, mark, name)
	}
	fmt.Fprintf(&b, "tcp sport %d meta mark & %#08x == 0 counter name \"unmarked\"\n}\n}\n", port, mask)
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil && bytes.Contains(out, []byte("Operation not permitted")) {
		skipRefusal(t, "nft: "+string(bytes.TrimSpace(out)))
	} else if err != nil {
		t.Fatalf("nft: %v\n%s\n%s", err, out, b.String())
	}
}

type nftCount struct{ Packets, Bytes uint64 }

func readNFT(t testing.TB, ns string) map[string]nftCount {
	t.Helper()
	out := run(t, "ip", "netns", "exec", ns, "nft", "-j", "list", "counters", "table", "netdev", "wasmesh_test")
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string
				Packets uint64
				Bytes   uint64
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("nft json: %v\n%s", err, out)
	}
	m := make(map[string]nftCount)
	for _, o := range doc.Nftables {
		if o.Counter != nil {
			m[o.Counter.Name] = nftCount{o.Counter.Packets, o.Counter.Bytes}
		}
	}
	return m
}

// seen is one TCP packet as the capture saw it on the wire.
type seen struct {
	dscp    uint8
	payload int
}

// capture records the TCP packets from a port that arrive on an interface,
// with an AF_PACKET socket: what the peer really received.
type capture struct {
	fd   int
	port uint16
	stop atomic.Bool
	done chan struct{}

	mu    sync.Mutex
	pkts  []seen
	bytes int
}

func startCapture(t testing.TB, ns, dev string, port int) *capture {
	t.Helper()
	c := &capture{port: uint16(port), done: make(chan struct{})}
	inNS(t, ns, func() {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			t.Fatal(err)
		}
		proto := int(htons(unix.ETH_P_ALL))
		c.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			t.Fatalf("AF_PACKET socket: %v", err)
		}
		if err := unix.Bind(c.fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index}); err != nil {
			t.Fatalf("bind AF_PACKET to %s: %v", dev, err)
		}
		// Each queued packet costs its whole skb (64 KiB with TSO), however
		// little is read: without room, the capture would drop some.
		if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
			t.Fatalf("SO_RCVBUFFORCE: %v", err)
		}
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			t.Fatal(err)
		}
	})
	go c.loop()
	t.Cleanup(func() {
		c.stop.Store(true)
		<-c.done
		unix.Close(c.fd)
	})
	return c
}

// dropped returns how many packets the capture lost since the last call.
func (c *capture) dropped(t testing.TB) uint32 {
	t.Helper()
	st, err := unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		t.Fatal(err)
	}
	return st.Drops
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *capture) loop() {
	defer close(c.done)
	buf := make([]byte, 256) // headers only
	for !c.stop.Load() {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			continue // timeout or EINTR: look at stop again
		}
		if s, ok := parseFrame(buf[:n], c.port); ok {
			c.mu.Lock()
			c.pkts = append(c.pkts, s)
			c.bytes += s.payload
			c.mu.Unlock()
		}
	}
}

// parseFrame reads an Ethernet frame carrying IPv4 or IPv6 and TCP from port,
// other than a SYN.
func parseFrame(b []byte, port uint16) (seen, bool) {
	if len(b) < 14 {
		return seen{}, false
	}
	etype, ip := binary.BigEndian.Uint16(b[12:]), b[14:]
	var s seen
	var tcp []byte
	var ipLen, hdrLen int
	switch {
	case etype == unix.ETH_P_IP && len(ip) >= 20 && ip[9] == unix.IPPROTO_TCP:
		s.dscp = ip[1] >> 2
		hdrLen = int(ip[0]&0x0f) * 4
		ipLen = int(binary.BigEndian.Uint16(ip[2:]))
	case etype == unix.ETH_P_IPV6 && len(ip) >= 40 && ip[6] == unix.IPPROTO_TCP:
		s.dscp = (ip[0]&0x0f)<<2 | ip[1]>>6
		hdrLen = 40
		ipLen = 40 + int(binary.BigEndian.Uint16(ip[4:]))
	default:
		return seen{}, false
	}
	if len(ip) < hdrLen+20 {
		return seen{}, false
	}
	tcp = ip[hdrLen:]
	// The SYN-ACK goes before any colour can be set: leave it out.
	if binary.BigEndian.Uint16(tcp) != port || tcp[13]&0x02 != 0 {
		return seen{}, false
	}
	s.payload = ipLen - hdrLen - int(tcp[12]>>4)*4
	return s, true
}

// take waits until at least payload bytes were captured since the last take,
// then returns the packets and forgets them.
func (c *capture) take(t testing.TB, payload int) []seen {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		if c.bytes >= payload {
			if d := c.dropped(t); d > 0 {
				c.mu.Unlock()
				t.Fatalf("capture: dropped %d packets", d)
			}
			pkts := c.pkts
			c.pkts, c.bytes = nil, 0
			c.mu.Unlock()
			return pkts
		}
		got := c.bytes
		c.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("capture: %d payload bytes from port %d after 10s, want %d", got, c.port, payload)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var cgroupSeq atomic.Int32

// testCgroup creates an empty cgroup v2 (mounting cgroup2 if nothing has) and
// removes it when the test ends.
func testCgroup(t testing.TB) string {
	t.Helper()
	requireRoot(t)
	root := cgroup2Mount(t)
	dir := filepath.Join(root, fmt.Sprintf("wasmesh-bpf-test-%d-%d", os.Getpid(), cgroupSeq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("removing test cgroup: %v", err)
		}
	})
	return dir
}

// cgroup2Mount returns a cgroup2 mount point, mounting one if there is none.
func cgroup2Mount(t testing.TB) string {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(mi)) {
		before, after, _ := strings.Cut(line, " - ")
		if f := strings.Fields(before); len(f) >= 5 && f[3] == "/" && strings.HasPrefix(after, "cgroup2 ") {
			return unescapeMount(f[4])
		}
	}
	dir := t.TempDir()
	if err := unix.Mount("none", dir, "cgroup2", 0, ""); err != nil {
		skipRefusal(t, "no cgroup2 mounted and mounting one failed: "+err.Error())
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// attached returns the programs attached to the cgroup, by "egress" and
// "ingress".
func attached(t testing.TB, cgroup string) map[string][]ebpf.ProgramID {
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
			t.Fatalf("query %s programs of %s: %v", name, cgroup, err)
		}
		for _, p := range res.Programs {
			m[name] = append(m[name], p.ID)
		}
	}
	return m
}

var attachTypes = map[string]ebpf.AttachType{
	"egress":  ebpf.AttachCGroupInetEgress,
	"ingress": ebpf.AttachCGroupInetIngress,
}

// bpftoolCgroup is `bpftool cgroup show`: a second opinion, from outside.
func bpftoolCgroup(t testing.TB, cgroup string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "bpftool", "cgroup", "show", cgroup))
}

// programName returns the kernel's name for a program ID, or an error
// wrapping os.ErrNotExist once it is gone.
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

// eventually polls cond until it returns nil or 10s pass.
func eventually(t testing.TB, what string, cond func() error) {
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

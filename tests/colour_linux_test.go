//go:build linux

package tests

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/wasmesh/wasmesh/bpf"
	"github.com/wasmesh/wasmesh/internal/admin"
	"github.com/wasmesh/wasmesh/internal/dataplane"
	"github.com/wasmesh/wasmesh/internal/netlab"
	"github.com/wasmesh/wasmesh/internal/testutil"
	"github.com/wasmesh/wasmesh/modules"
)

// TestColourOnTheWire runs the real `wasmesh serve` in a network namespace
// and a cgroup v2 of its own, and a client in a second namespace joined to it
// by a veth pair. A service has a stable version (Rust hello, no dscp) and a
// canary (Zig hello, dscp 10); requests pin either by name. Checked, in eBPF
// mode (bpf: require) and in the fallback (bpf: off):
//
//   - on the wire, as the client's AF_PACKET capture sees it: every response
//     packet of the canary carries DSCP 10 and every one of stable DSCP 0,
//     on separate connections and on one keep-alive connection whose
//     requests alternate between the versions;
//   - the marks, with nftables counters on the egress hook of the gateway's
//     veth, one per colour (the colours read from /v1/colours, the values
//     from bpf.Options{}.Mark), growing for the right colour at each request
//     of the keep-alive connection;
//   - /v1/colours' counters: in eBPF mode equal to nftables' bytes less the
//     Ethernet headers; in the fallback, the response bytes the client read;
//   - after SIGTERM and after SIGKILL, nothing attached to the gateway's
//     cgroup and the programs gone.
//
// The gateway is started with nsenter --net, not `ip netns exec`: the latter
// also unshares the mount namespace and mounts a fresh /sys over the old one,
// which hides the cgroup2 mount, so the gateway cannot find its cgroup and
// eBPF is impossible ("bpf: require" refuses to start, "auto" falls back).
func TestColourOnTheWire(t *testing.T) {
	for _, mode := range []string{bpf.ModeRequire, bpf.ModeOff} {
		t.Run(map[string]string{bpf.ModeRequire: "ebpf", bpf.ModeOff: "fallback"}[mode], func(t *testing.T) {
			testColourOnTheWire(t, mode)
		})
	}
}

const (
	cwPort      = 8080
	cwAdminPort = 9901
	cwCanary    = "canary"
	cwStable    = "stable"
	cwDSCP      = 10
	cwEthHeader = 14
)

func testColourOnTheWire(t *testing.T, mode string) {
	netlab.RequireRoot(t)
	for _, tool := range []string{"ip", "nft", "nsenter", "bpftool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed (bash examples/toolchains.sh)", tool)
		}
	}
	ebpfMode := mode == bpf.ModeRequire
	n := netlab.NewPair(t, false)
	cg := netlab.Cgroup(t)
	config := cwConfig(t, n, mode)

	g := cwStartGateway(t, n, cg, config)
	tab := g.colours(t)
	t.Logf("gateway pid %d in %s: mode %s (%s)", g.pid(), cg, tab.Mode, tab.Reason)
	wantMode := map[bool]string{true: bpf.ModeEBPF, false: bpf.ModeFallback}[ebpfMode]
	if tab.Mode != wantMode {
		t.Fatalf("/v1/colours mode %q (%s), want %q", tab.Mode, tab.Reason, wantMode)
	}
	if !ebpfMode && strings.Contains(tab.Reason, "marks off") {
		netlab.SkipRefusal(t, "the fallback may not set SO_MARK here: "+tab.Reason)
	}
	if ebpfMode && !strings.Contains(tab.Reason, cg) {
		t.Errorf("reason %q does not name the gateway's cgroup %s", tab.Reason, cg)
	}
	canary, stable := tab.find(t, hello("zig")), tab.find(t, hello("rust"))
	if canary.Colour == 0 || stable.Colour == 0 || canary.Colour == stable.Colour {
		t.Fatalf("colours: canary %d, stable %d; want two distinct non-zero ones", canary.Colour, stable.Colour)
	}
	if canary.DSCP != cwDSCP || stable.DSCP != 0 {
		t.Fatalf("dscp in /v1/colours: canary %d, stable %d; want %d and 0", canary.DSCP, stable.DSCP, cwDSCP)
	}
	canaryMark, mask := bpf.Options{}.Mark(canary.Colour)
	stableMark, _ := bpf.Options{}.Mark(stable.Colour)
	t.Logf("canary: colour %d, mark %#08x; stable: colour %d, mark %#08x (mask %#08x)", canary.Colour, canaryMark, stable.Colour, stableMark, mask)

	progs := g.checkAttached(t, ebpfMode)

	netlab.NFTCounters(t, n.SrvNS, n.SrvIf, cwPort, mask, map[string]netlab.Mark{
		cwCanary: {Value: canaryMark, Mask: mask}, cwStable: {Value: stableMark, Mask: mask},
	})
	capt := netlab.StartCapture(t, n.CliNS, n.CliIf, cwPort)

	// Phase 1: a keep-alive connection per version; the canary gets more
	// traffic, so its counters must come out larger.
	var bodies [2]int // response body bytes read: canary, stable
	sep := map[string]*cwClient{cwCanary: newCWClient(n.CliNS), cwStable: newCWClient(n.CliNS)}
	for i, pin := range []string{cwCanary, cwStable, cwCanary, cwCanary, cwStable, cwCanary, cwCanary, cwStable, cwCanary} {
		bodies[cwIndex(pin)] += sep[pin].get(t, g.url, pin, i)
	}
	for pin, c := range sep {
		c.close()
		if len(c.ports()) != 1 {
			t.Errorf("%s client: %d connections, want 1", pin, len(c.ports()))
		}
	}
	nft1 := netlab.ReadNFT(t, n.SrvNS)
	t.Logf("phase 1 (one connection per version): nftables %+v", nft1)
	for _, v := range []string{cwCanary, cwStable} {
		if nft1[v].Packets == 0 {
			t.Errorf("phase 1: nftables saw no %s packet", v)
		}
	}
	pkts := cwTag(capt.Take(t, bodies[0]+bodies[1], 200*time.Millisecond))
	checkConnDSCP(t, "phase 1 canary", pkts, sep[cwCanary].ports()[0], cwDSCP, "zig")
	checkConnDSCP(t, "phase 1 stable", pkts, sep[cwStable].ports()[0], 0, "rust")

	// Phase 2: one keep-alive connection alternates between the versions;
	// its colour, mark and DSCP follow each request.
	ka := newCWClient(n.CliNS)
	before, phase1 := nft1, bodies
	for i, pin := range []string{cwCanary, cwStable, cwCanary, cwStable} {
		body := ka.get(t, g.url, pin, 20+i)
		bodies[cwIndex(pin)] += body
		after := netlab.ReadNFT(t, n.SrvNS)
		other := map[string]string{cwCanary: cwStable, cwStable: cwCanary}[pin]
		grew, otherGrew := after[pin].Sub(before[pin]), after[other].Sub(before[other])
		t.Logf("phase 2 request %d (%s, %d body bytes): nftables %s +%+v, %s +%+v", i, pin, body, pin, grew, other, otherGrew)
		if grew.Bytes < uint64(body) {
			t.Errorf("phase 2 request %d (%s): nftables counted %d bytes with its mark, less than the %d-byte body", i, pin, grew.Bytes, body)
		}
		// The gateway may ACK the request with the connection's previous
		// colour before it routes it: allow two pure ACKs (Ethernet, IP,
		// TCP with options), nothing carrying data.
		if otherGrew.Packets > 2 || otherGrew.Bytes > 2*(cwEthHeader+20+60) {
			t.Errorf("phase 2 request %d (%s): the previous colour's counter also grew by %+v", i, pin, otherGrew)
		}
		before = after
	}
	ka.close()
	if len(ka.ports()) != 1 {
		t.Fatalf("phase 2: %d connections, want one keep-alive connection", len(ka.ports()))
	}
	pkts = cwTag(capt.Take(t, bodies[0]+bodies[1]-phase1[0]-phase1[1], 200*time.Millisecond))
	checkSwitching(t, pkts, ka.ports()[0], []string{cwCanary, cwStable, cwCanary, cwStable})

	// Counters, once the connections are closed and the traffic settled.
	var nftEnd map[string]netlab.Count
	var canaryC, stableC dataplane.ColourStatus
	netlab.Eventually(t, "counters to settle", func() error {
		a := netlab.ReadNFT(t, n.SrvNS)
		tab := g.colours(t)
		time.Sleep(200 * time.Millisecond)
		b := netlab.ReadNFT(t, n.SrvNS)
		tab2 := g.colours(t)
		if fmt.Sprint(a) != fmt.Sprint(b) || fmt.Sprint(tab.Colours) != fmt.Sprint(tab2.Colours) {
			return errors.New("still moving")
		}
		nftEnd, canaryC, stableC = b, tab2.find(t, hello("zig")), tab2.find(t, hello("rust"))
		return nil
	})
	t.Logf("nftables at the end: %+v", nftEnd)
	t.Logf("/v1/colours canary: %+v", canaryC.Counter)
	t.Logf("/v1/colours stable: %+v", stableC.Counter)
	t.Logf("response bodies read: canary %d bytes, stable %d bytes", bodies[0], bodies[1])
	for _, c := range []struct {
		name string
		cs   dataplane.ColourStatus
		body int
	}{{cwCanary, canaryC, bodies[0]}, {cwStable, stableC, bodies[1]}} {
		wire := nftEnd[c.name]
		if ebpfMode {
			// nftables counts the same skbs, with their Ethernet header.
			ip := wire.Bytes - cwEthHeader*wire.Packets
			diff := int64(c.cs.EgressBytes) - int64(ip)
			t.Logf("%s: eBPF %d egress bytes in %d packets; nftables %d bytes in %d skbs = %d IP bytes; difference %d",
				c.name, c.cs.EgressBytes, c.cs.EgressPackets, wire.Bytes, wire.Packets, ip, diff)
			if diff < -2*100 || diff > 2*100 {
				t.Errorf("%s: eBPF counted %d egress bytes, nftables %d IP bytes: off by %d", c.name, c.cs.EgressBytes, ip, diff)
			}
			if c.cs.EgressPackets+2 < wire.Packets {
				t.Errorf("%s: eBPF counted %d egress packets, fewer than nftables' %d skbs", c.name, c.cs.EgressPackets, wire.Packets)
			}
			if c.cs.EgressBytes < uint64(c.body) || c.cs.IngressPackets == 0 || c.cs.IngressBytes == 0 {
				t.Errorf("%s: eBPF counters %+v, want at least the %d body bytes out and some in", c.name, c.cs.Counter, c.body)
			}
		} else {
			// The fallback counts what the gateway wrote: the bodies.
			if c.cs.EgressBytes == 0 || c.cs.EgressPackets == 0 || c.cs.IngressPackets == 0 {
				t.Errorf("%s: fallback counters %+v, want non-zero", c.name, c.cs.Counter)
			}
			if c.cs.EgressBytes >= wire.Bytes {
				t.Errorf("%s: fallback counted %d egress bytes, not less than the %d on the wire", c.name, c.cs.EgressBytes, wire.Bytes)
			}
			if c.cs.EgressBytes != uint64(c.body) {
				t.Logf("%s: fallback counted %d egress bytes, the client read %d bytes of bodies", c.name, c.cs.EgressBytes, c.body)
			}
		}
	}
	if canaryC.EgressBytes <= stableC.EgressBytes || nftEnd[cwCanary].Bytes <= nftEnd[cwStable].Bytes {
		t.Errorf("the canary moved more bytes: counters canary %d, stable %d; nftables canary %d, stable %d",
			canaryC.EgressBytes, stableC.EgressBytes, nftEnd[cwCanary].Bytes, nftEnd[cwStable].Bytes)
	}
	t.Logf("uncoloured packets from port %d (SYN-ACKs, ACKs before routing): %+v", cwPort, nftEnd["unmarked"])
	g.checkMetrics(t, tab.Mode, canaryC, stableC)
	maps := cwProgramMaps(t, progs)

	// Clean exit: SIGTERM detaches everything.
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := g.wait(t); code != 0 {
		t.Fatalf("exit status %d after SIGTERM, want 0\nstderr:\n%s", code, g.stderr.String())
	}
	netlab.CheckNothingLeft(t, cg, progs, maps)

	// Crash: SIGKILL, with a coloured connection open, leaves nothing
	// attached either.
	g2 := cwStartGateway(t, n, cg, config)
	progs2 := g2.checkAttached(t, ebpfMode)
	maps2 := cwProgramMaps(t, progs2)
	open := newCWClient(n.CliNS)
	defer open.close()
	open.get(t, g2.url, cwCanary, 0)
	if tab := g2.colours(t); tab.find(t, hello("zig")).EgressBytes == 0 {
		t.Errorf("second gateway: no canary traffic counted before the kill")
	}
	if err := g2.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	g2.wait(t)
	netlab.CheckNothingLeft(t, cg, progs2, maps2)
}

// checkMetrics checks that the gateway's wasmesh_colour_* metrics say what
// /v1/colours said.
func (g *cwGateway) checkMetrics(t *testing.T, mode string, colours ...dataplane.ColourStatus) {
	t.Helper()
	resp, err := g.adminClient.c.Get(g.admin + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := []string{fmt.Sprintf(`wasmesh_colour_mode{mode=%q} 1`, mode)}
	for _, c := range colours {
		labels := func(dir string) string {
			return fmt.Sprintf(`{direction=%q,service=%q,version=%q}`, dir, c.Service, modules.Short(c.Version))
		}
		want = append(want,
			fmt.Sprintf("wasmesh_colour_bytes_total%s %d", labels("egress"), c.EgressBytes),
			fmt.Sprintf("wasmesh_colour_bytes_total%s %d", labels("ingress"), c.IngressBytes),
			fmt.Sprintf("wasmesh_colour_packets_total%s %d", labels("egress"), c.EgressPackets),
			fmt.Sprintf("wasmesh_colour_packets_total%s %d", labels("ingress"), c.IngressPackets))
	}
	lines := strings.Split(string(body), "\n")
	for _, w := range want {
		if !slices.Contains(lines, w) {
			t.Errorf("/metrics lacks %q; it has:\n%s", w, cwGrep(string(body), "wasmesh_colour_"))
		}
	}
}

// cwProgramMaps returns the maps the programs use.
func cwProgramMaps(t *testing.T, progs []ebpf.ProgramID) []ebpf.MapID {
	t.Helper()
	var maps []ebpf.MapID
	for _, id := range progs {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			t.Fatal(err)
		}
		info, err := p.Info()
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := info.MapIDs()
		for _, m := range ids {
			if !slices.Contains(maps, m) {
				maps = append(maps, m)
			}
		}
	}
	return maps
}

// cwIndex is the index of a version in [canary, stable] arrays.
func cwIndex(pin string) int {
	if pin == cwCanary {
		return 0
	}
	return 1
}

func cwConfig(t *testing.T, n *netlab.Pair, mode string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wasmesh.yaml")
	config := fmt.Sprintf(`listen: %s:%d
admin: %s:%d
drain_delay: 0s
drain_timeout: 5s
bpf: %s
services:
  hello:
    pin_header: true
    versions:
      - { path: %s, name: %s, weight: 100 }
      - { path: %s, name: %s, weight: 0, dscp: %d }
routes:
  - { match: { path_prefix: / }, service: hello }
`, n.SrvAddr, cwPort, n.SrvAddr, cwAdminPort, mode, hello("rust"), cwStable, hello("zig"), cwCanary, cwDSCP)
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkConnDSCP checks the packets the gateway sent on the connection to
// client port: every one with data has dscp, so does every one after the
// first data (ACKs, FIN), and at least one carries the response of lang.
func checkConnDSCP(t *testing.T, what string, pkts []cwPacket, port uint16, dscp uint8, lang string) {
	t.Helper()
	var data, after, bad, early, tagged int
	seenData := false
	for _, p := range pkts {
		if p.DstPort != port {
			continue
		}
		if p.Payload > 0 {
			seenData = true
			data++
		}
		if !seenData {
			early++ // ACKs of the first request, sent before it is routed
			continue
		}
		after++
		if p.DSCP != dscp {
			bad++
		}
		if p.tag == lang {
			tagged++
		} else if p.tag != "" {
			t.Errorf("%s: a response of %s on the connection of %s", what, p.tag, lang)
		}
	}
	t.Logf("%s (client port %d): %d packets after the first response (%d with data, %d \"hello from %s\"), DSCP %d expected, %d other; %d ACKs before it",
		what, port, after, data, tagged, lang, dscp, bad, early)
	if data == 0 || tagged == 0 || bad > 0 {
		t.Errorf("%s: %d of %d packets with DSCP other than %d (%d with data, %d responses of %s)", what, bad, after, dscp, data, tagged, lang)
	}
}

// checkSwitching checks the keep-alive connection's responses, in order:
// each version's carry its DSCP.
func checkSwitching(t *testing.T, pkts []cwPacket, port uint16, pins []string) {
	t.Helper()
	var seq []string
	want := map[string]uint8{"zig": cwDSCP, "rust": 0}
	var last *cwPacket
	for _, p := range pkts {
		if p.DstPort != port || p.Payload == 0 {
			continue
		}
		switch {
		case p.tag != "":
			seq = append(seq, fmt.Sprintf("%s/dscp%d", p.tag, p.DSCP))
			if p.DSCP != want[p.tag] {
				t.Errorf("keep-alive connection: a response of %s with DSCP %d, want %d", p.tag, p.DSCP, want[p.tag])
			}
			last = &p
		case last == nil:
			t.Errorf("keep-alive connection: data with DSCP %d before the first response", p.DSCP)
		case p.DSCP != last.DSCP:
			t.Errorf("keep-alive connection: the rest of a response of %s with DSCP %d", last.tag, p.DSCP)
		}
	}
	t.Logf("keep-alive connection (client port %d): responses on the wire %v", port, seq)
	var wantSeq []string
	for _, pin := range pins {
		wantSeq = append(wantSeq, map[string]string{cwCanary: "zig/dscp10", cwStable: "rust/dscp0"}[pin])
	}
	if fmt.Sprint(seq) != fmt.Sprint(wantSeq) {
		t.Errorf("keep-alive connection: responses on the wire %v, want %v", seq, wantSeq)
	}
}

// --- the gateway process ---

type cwGateway struct {
	cmd           *exec.Cmd
	cancel        context.CancelFunc
	stderr        testutil.LockedBuffer
	url, admin    string
	cgroup        string
	adminClient   *cwClient
	exited        chan struct{}
	waitErr       error
	exitCode      int
	checkedStderr sync.Once
}

// cwStartGateway starts `wasmesh serve` in the server namespace (nsenter
// --net) and, from its first instruction, in cgroup cg (clone3 with
// CLONE_INTO_CGROUP): its own cgroup is exactly cg.
func cwStartGateway(t *testing.T, n *netlab.Pair, cg, config string) *cwGateway {
	t.Helper()
	dir, err := os.Open(cg)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	g := &cwGateway{cancel: cancel, cgroup: cg, exited: make(chan struct{}), adminClient: newCWClient(n.CliNS)}
	g.cmd = exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+n.SrvNS, "--", bin, "serve", "--config", config, "--log-level", "debug")
	g.cmd.Env = append(os.Environ(), "WASMESH_HOME="+home(t), "XDG_CACHE_HOME="+cacheDir)
	g.cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	g.cmd.Stderr = &g.stderr
	g.cmd.WaitDelay = 5 * time.Second
	stdout, pw := io.Pipe()
	g.cmd.Stdout = pw
	if err := g.cmd.Start(); err != nil {
		cancel()
		if netlab.Refused(err) {
			netlab.SkipRefusal(t, "starting a process in a cgroup (CLONE_INTO_CGROUP): "+err.Error())
		}
		t.Fatalf("start wasmesh serve: %v", err)
	}
	t.Cleanup(func() {
		g.cmd.Process.Kill()
		g.wait(t)
		g.adminClient.close()
	})
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				found <- m
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() {
		err := g.cmd.Wait()
		pw.Close()
		g.waitErr, g.exitCode = err, g.cmd.ProcessState.ExitCode()
		close(g.exited)
	}()
	select {
	case m := <-found:
		g.url, g.admin = m[1], m[2]
	case <-g.exited:
		msg := g.stderr.String()
		if strings.Contains(msg, "eBPF required") && (strings.Contains(msg, "operation not permitted") || strings.Contains(msg, "not supported")) {
			netlab.SkipRefusal(t, "the kernel refuses eBPF here: "+strings.TrimSpace(msg))
		}
		t.Fatalf("wasmesh serve exited (%v) before serving; stderr:\n%s", g.waitErr, msg)
	case <-time.After(60 * time.Second):
		t.Fatalf("gateway did not start in 60s; stderr:\n%s", g.stderr.String())
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", g.pid())); err == nil {
		rel := "0::/" + filepath.Base(cg) + "\n"
		if !strings.Contains(string(b), rel) {
			t.Fatalf("the gateway's /proc/PID/cgroup is %q, want it in %s", b, cg)
		}
	}
	return g
}

func (g *cwGateway) pid() int { return g.cmd.Process.Pid }

// wait waits for the gateway to exit and returns its exit status (-1 when
// killed by a signal); a Go panic on stderr fails the test.
func (g *cwGateway) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-g.exited:
	case <-time.After(90 * time.Second):
		t.Fatalf("gateway still running 90s after being told to stop")
	}
	g.cancel()
	g.checkedStderr.Do(func() {
		s := g.stderr.String()
		if strings.Contains(s, "panic:") || strings.Contains(s, "goroutine ") {
			t.Errorf("Go panic on the gateway's stderr:\n%s", s)
		}
		if strings.Contains(s, "colouring a connection") {
			t.Errorf("the gateway failed to colour connections:\n%s", cwGrep(s, "colouring a connection"))
		}
	})
	return g.exitCode
}

func cwGrep(s, what string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, what) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "")
}

type cwTable struct {
	admin.ColoursStatus
}

// colours reads /v1/colours, from the client namespace.
func (g *cwGateway) colours(t *testing.T) cwTable {
	t.Helper()
	req, _ := http.NewRequest("GET", g.admin+"/v1/colours", nil)
	req.Header.Set(adminAuth(t))
	resp, err := g.adminClient.c.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/colours: %v", err)
	}
	defer resp.Body.Close()
	var tab cwTable
	if err := json.NewDecoder(resp.Body).Decode(&tab.ColoursStatus); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/colours: %d %v", resp.StatusCode, err)
	}
	return tab
}

// find returns the colour of the version whose module is file.
func (tab cwTable) find(t *testing.T, file string) dataplane.ColourStatus {
	t.Helper()
	wasm, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	digest := modules.DigestOf(wasm)
	for _, c := range tab.Colours {
		if c.Version == digest {
			return c
		}
	}
	t.Fatalf("/v1/colours has no colour for %s (%s): %+v", file, digest, tab.Colours)
	return dataplane.ColourStatus{}
}

// checkAttached checks what is attached to the gateway's cgroup: in eBPF
// mode exactly colour_egress and colour_ingress (by BPF_PROG_QUERY and by
// bpftool), in the fallback nothing. It returns the programs' IDs.
func (g *cwGateway) checkAttached(t *testing.T, ebpfMode bool) []ebpf.ProgramID {
	t.Helper()
	if !ebpfMode {
		if got := netlab.Attached(t, g.cgroup); len(got) > 0 {
			t.Errorf("fallback mode, yet programs are attached to %s: %v", g.cgroup, got)
		}
		return nil
	}
	return netlab.CheckAttached(t, g.cgroup)
}

// --- the client ---

// cwClient is an HTTP/1.1 client whose connections are made in a network
// namespace; it records the local port of each.
type cwClient struct {
	c  *http.Client
	tr *http.Transport
	mu sync.Mutex
	lp []uint16
}

func newCWClient(ns string) *cwClient {
	cl := &cwClient{}
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	cl.tr = &http.Transport{
		MaxConnsPerHost: 1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var conn net.Conn
			err := netlab.InNS(ns, func() (err error) {
				conn, err = dialer.DialContext(ctx, network, addr)
				return err
			})
			if err == nil {
				cl.mu.Lock()
				cl.lp = append(cl.lp, uint16(conn.LocalAddr().(*net.TCPAddr).Port))
				cl.mu.Unlock()
			}
			return conn, err
		},
	}
	cl.c = &http.Client{Transport: cl.tr, Timeout: 20 * time.Second}
	return cl
}

func (cl *cwClient) ports() []uint16 {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return append([]uint16(nil), cl.lp...)
}

func (cl *cwClient) close() { cl.tr.CloseIdleConnections() }

// get sends request i pinned to a version, with a long path so that the
// response spans several segments, checks the answer and returns the body
// length.
func (cl *cwClient) get(t *testing.T, base, pin string, i int) int {
	t.Helper()
	path := fmt.Sprintf("/r%d/%s", i, strings.Repeat("x", 3000+100*i))
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("X-Wasmesh-Version", pin)
	resp, err := cl.c.Do(req)
	if err != nil {
		t.Fatalf("request %d (%s): %v", i, pin, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	lang := map[string]string{cwCanary: "zig", cwStable: "rust"}[pin]
	if want := fmt.Sprintf("hello from %s: GET %s 0 bytes\n", lang, path); err != nil || resp.StatusCode != 200 || string(b) != want {
		t.Fatalf("request %d (%s): %d %.100q %v, want 200 %.100q", i, pin, resp.StatusCode, b, err, want)
	}
	return len(b)
}

// --- the capture ---

// cwPacket is one TCP packet from the gateway's port, as the client's
// interface received it.
type cwPacket struct {
	netlab.Packet
	tag string // "zig" or "rust" when it carries "hello from …"
}

// cwTag tags the packets that carry the start of a response.
func cwTag(pkts []netlab.Packet) []cwPacket {
	out := make([]cwPacket, len(pkts))
	for i, p := range pkts {
		out[i].Packet = p
		for _, lang := range []string{"zig", "rust"} {
			if bytes.Contains(p.Data, []byte("hello from "+lang)) {
				out[i].tag = lang
			}
		}
	}
	return out
}

package bpf

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/wasmesh/wasmesh/internal/netlab"
)

// otherMark is another user's bit in the mark, which colouring must keep.
const otherMark = 0x1

// TestColourOnTheWire colours the gateway side of a TCP connection across a
// veth pair and checks, phase by phase, what a real consumer of the mark
// (nftables on the egress hook) and the peer's capture of the DSCP saw, and
// what Counters says.
func TestColourOnTheWire(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode string
		ipv6 bool
		mask uint32
	}{
		{"ebpf/ipv4", ModeRequire, false, 0},
		{"ebpf/ipv6", ModeRequire, true, 0},
		{"ebpf/ipv4/mask-0xfff0", ModeRequire, false, 0x0000fff0},
		{"fallback/ipv4", ModeOff, false, 0},
		{"fallback/ipv6", ModeOff, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			netlab.RequireRoot(t)
			netlab.Cgroup2Mount(t) // the default CgroupPath needs one
			opts := Options{Mode: tc.mode, MarkMask: tc.mask}
			col, err := New(opts)
			requireBPF(t, err)
			defer col.Close()
			t.Log(col.Reason())
			ebpfMode := tc.mode == ModeRequire
			if want := map[bool]string{true: ModeEBPF, false: ModeFallback}[ebpfMode]; col.Mode() != want {
				t.Fatalf("Mode() = %q, want %q", col.Mode(), want)
			}
			if warned := strings.Contains(col.Reason(), RootCgroupWarning); ebpfMode && warned != inRootCgroup() {
				t.Fatalf("in the root cgroup %v, the reason %q", inRootCgroup(), col.Reason())
			}
			if strings.Contains(col.Reason(), "marks off") {
				netlab.SkipRefusal(t, "the fallback may not set SO_MARK here: "+col.Reason())
			}
			testColourOnTheWire(t, col, opts, tc.ipv6, ebpfMode)
		})
	}
}

func testColourOnTheWire(t *testing.T, col Colourer, opts Options, ipv6, ebpfMode bool) {
	p := netlab.NewPair(t, ipv6)
	var ln net.Listener
	err := netlab.InNS(p.SrvNS, func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(p.SrvAddr, 0).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	mark5, mask := opts.Mark(5)
	mark7, _ := opts.Mark(7)
	netlab.NFTCounters(t, p.SrvNS, p.SrvIf, port, mask, map[string]netlab.Mark{
		"c5": {Value: mark5 | otherMark}, "c7": {Value: mark7 | otherMark}, "plain": {Value: otherMark},
	})
	capt := netlab.StartCapture(t, p.CliNS, p.CliIf, port)

	cli, srv := connectAcross(t, p, ln, &net.Dialer{})
	deadline := time.Now().Add(30 * time.Second)
	srv.SetDeadline(deadline)
	cli.SetDeadline(deadline)
	tcp := srv.(*net.TCPConn)
	if err := control(tcp, func(fd uintptr) error {
		return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, otherMark)
	}); err != nil {
		t.Fatal(err)
	}
	x := &exchange{t: t, col: col, srv: srv, cli: cli}

	const upA, downA, downB, downC = 256 << 10, 1 << 20, 512 << 10, 128 << 10

	// Phase A: colour 5, DSCP 10 (AF11); traffic both ways.
	if err := col.SetColour(tcp, 5, 10); err != nil {
		t.Fatal(err)
	}
	nft0 := netlab.ReadNFT(t, p.SrvNS)
	x.upload(5, upA)
	x.download(5, downA)
	checkDSCP(t, "phase A", capt.Take(t, downA, 0), 10)
	nftA := netlab.ReadNFT(t, p.SrvNS)
	cntA := counters(t, col)
	t.Logf("phase A: nft %+v, counters %+v", nftA, cntA)
	if d := nftA["c5"].Packets - nft0["c5"].Packets; d == 0 {
		t.Errorf("phase A: nftables saw no packet with mark %#08x", mark5|otherMark)
	}
	for _, name := range []string{"c7", "unmarked", "plain"} {
		if nftA[name] != nft0[name] {
			t.Errorf("phase A: nftables counter %s went from %+v to %+v; all packets should carry colour 5", name, nft0[name], nftA[name])
		}
	}
	c5 := cntA[5]
	if ebpfMode {
		checkKernelCount(t, "phase A egress", c5.EgressPackets, c5.EgressBytes, downA)
		checkKernelCount(t, "phase A ingress", c5.IngressPackets, c5.IngressBytes, upA)
		// nftables counts the same skbs, with their 14-byte Ethernet header.
		nb, np := nftA["c5"].Bytes-nft0["c5"].Bytes, nftA["c5"].Packets-nft0["c5"].Packets
		if nb-14*np != c5.EgressBytes {
			t.Errorf("phase A: eBPF counted %d egress bytes, nftables %d in %d packets (%d without Ethernet headers)", c5.EgressBytes, nb, np, nb-14*np)
		}
	} else if want := (Counter{x.writes, downA, x.reads, upA}); c5 != want {
		t.Errorf("phase A: counters of colour 5 = %+v, want %+v", c5, want)
	}

	// Phase B: the same connection changes to colour 7, DSCP 46 (EF).
	if err := col.SetColour(tcp, 7, 46); err != nil {
		t.Fatal(err)
	}
	x.writes, x.reads = 0, 0
	x.download(7, downB)
	checkDSCP(t, "phase B", capt.Take(t, downB, 0), 46)
	nftB := netlab.ReadNFT(t, p.SrvNS)
	cntB := counters(t, col)
	t.Logf("phase B: nft %+v, counters %+v", nftB, cntB)
	if nftB["c7"].Packets == nftA["c7"].Packets {
		t.Errorf("phase B: nftables saw no packet with mark %#08x", mark7|otherMark)
	}
	for _, name := range []string{"c5", "unmarked", "plain"} {
		if nftB[name] != nftA[name] {
			t.Errorf("phase B: nftables counter %s went from %+v to %+v; all packets should carry colour 7", name, nftA[name], nftB[name])
		}
	}
	if cntB[5].EgressPackets != c5.EgressPackets || cntB[5].EgressBytes != c5.EgressBytes {
		t.Errorf("phase B: colour 5 egress went from %+v to %+v", c5, cntB[5])
	}
	if ebpfMode {
		// The peer's last ACKs of phase A may arrive after the change.
		if d := cntB[5].IngressPackets - c5.IngressPackets; d > 3 {
			t.Errorf("phase B: colour 5 received %d more packets", d)
		}
		checkKernelCount(t, "phase B egress", cntB[7].EgressPackets, cntB[7].EgressBytes, downB)
	} else if want := (Counter{EgressPackets: x.writes, EgressBytes: downB}); cntB[7] != want {
		t.Errorf("phase B: counters of colour 7 = %+v, want %+v", cntB[7], want)
	}

	// Phase C: colour 0 removes the colour, keeps the other user's mark bit;
	// DSCP -1 leaves 46 in place.
	if err := col.SetColour(tcp, 0, -1); err != nil {
		t.Fatal(err)
	}
	x.download(0, downC)
	checkDSCP(t, "phase C", capt.Take(t, downC, 0), 46)
	nftC := netlab.ReadNFT(t, p.SrvNS)
	cntC := counters(t, col)
	if nftC["plain"].Packets == nftB["plain"].Packets {
		t.Errorf("phase C: nftables saw no packet with mark %#x alone", otherMark)
	}
	if nftC["c5"] != nftB["c5"] || nftC["c7"] != nftB["c7"] {
		t.Errorf("phase C: coloured packets after colour 0: nftables %+v then %+v", nftB, nftC)
	}
	for _, c := range []Colour{5, 7} {
		if cntC[c].EgressBytes != cntB[c].EgressBytes {
			t.Errorf("phase C: colour %d egress bytes went from %d to %d", c, cntB[c].EgressBytes, cntC[c].EgressBytes)
		}
	}
}

// checkKernelCount checks eBPF counters against the payload the test moved:
// the bytes are IP-layer, so payload plus at most 100 bytes of headers per
// packet; packets count wire segments, so at least one per 1500 bytes.
func checkKernelCount(t *testing.T, what string, packets, bytes uint64, payload int) {
	t.Helper()
	if bytes < uint64(payload) || bytes > uint64(payload)+100*packets {
		t.Errorf("%s: %d bytes in %d packets for %d bytes of payload", what, bytes, packets, payload)
	}
	if minPkts, maxPkts := uint64(payload/1500), uint64(payload/700+64); packets < minPkts || packets > maxPkts {
		t.Errorf("%s: %d packets for %d bytes of payload, want %d..%d", what, packets, payload, minPkts, maxPkts)
	}
}

// connectAcross dials ln, in p's server namespace, with d from p's client
// namespace, and returns both ends, closed when the test ends.
func connectAcross(t *testing.T, p *netlab.Pair, ln net.Listener, d *net.Dialer) (cli, srv net.Conn) {
	t.Helper()
	err := netlab.InNS(p.CliNS, func() (err error) {
		cli, err = d.Dial("tcp", ln.Addr().String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	if srv, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return cli, srv
}

func checkDSCP(t *testing.T, what string, pkts []netlab.Packet, want uint8) {
	t.Helper()
	bad := 0
	for _, p := range pkts {
		if p.DSCP != want {
			bad++
		}
	}
	if bad > 0 || len(pkts) == 0 {
		t.Errorf("%s: %d of %d packets on the wire have a DSCP other than %d", what, bad, len(pkts), want)
	}
}

func counters(t *testing.T, col Colourer) map[Colour]Counter {
	t.Helper()
	m, err := col.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// exchange moves bytes over a connection as the gateway would, telling the
// Colourer about each read and write.
type exchange struct {
	t             *testing.T
	col           Colourer
	srv, cli      net.Conn
	reads, writes uint64 // Count calls
}

func (x *exchange) upload(c Colour, n int) {
	x.t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := x.cli.Write(make([]byte, n))
		errc <- err
	}()
	buf := make([]byte, 32<<10)
	for got := 0; got < n; {
		k, err := x.srv.Read(buf[:min(len(buf), n-got)])
		x.col.Count(c, Ingress, k)
		x.reads++
		got += k
		if err != nil {
			x.t.Fatalf("upload: read %d of %d bytes: %v", got, n, err)
		}
	}
	if err := <-errc; err != nil {
		x.t.Fatal(err)
	}
}

func (x *exchange) download(c Colour, n int) {
	x.t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(x.cli, make([]byte, n))
		errc <- err
	}()
	buf := make([]byte, 32<<10)
	for sent := 0; sent < n; {
		k, err := x.srv.Write(buf[:min(len(buf), n-sent)])
		x.col.Count(c, Egress, k)
		x.writes++
		sent += k
		if err != nil {
			x.t.Fatalf("download: wrote %d of %d bytes: %v", sent, n, err)
		}
	}
	if err := <-errc; err != nil {
		x.t.Fatal(err)
	}
}

// TestColourBeforeConnect colours a socket from a net.Dialer's Control,
// through RawConn, before it connects: its SYN and every packet after it
// carry the colour's mark (nftables on the client's egress hook) and DSCP
// (the server's capture), and in eBPF mode the colour's counters count the
// handshake too.
func TestColourBeforeConnect(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode string
		ipv6 bool
	}{
		{"ebpf/ipv4", ModeRequire, false},
		{"ebpf/ipv6", ModeRequire, true},
		{"fallback/ipv4", ModeOff, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			netlab.RequireRoot(t)
			netlab.Cgroup2Mount(t)
			opts := Options{Mode: tc.mode}
			col, err := New(opts)
			requireBPF(t, err)
			defer col.Close()
			if strings.Contains(col.Reason(), "marks off") {
				netlab.SkipRefusal(t, "the fallback may not set SO_MARK here: "+col.Reason())
			}
			p := netlab.NewPair(t, tc.ipv6)
			var ln net.Listener
			err = netlab.InNS(p.SrvNS, func() (err error) {
				ln, err = net.Listen("tcp", netip.AddrPortFrom(p.SrvAddr, 0).String())
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()

			const cliPort, dscp, colour = 47321, 10, Colour(5)
			mark, mask := opts.Mark(colour)
			netlab.NFTCounters(t, p.CliNS, p.CliIf, cliPort, mask, map[string]netlab.Mark{"c5": {Value: mark}})
			capt := netlab.StartCapture(t, p.SrvNS, p.SrvIf, cliPort)
			d := net.Dialer{
				LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(p.CliAddr, cliPort)),
				Control: func(_, _ string, rc syscall.RawConn) error {
					return col.SetColour(RawConn{rc}, colour, dscp)
				},
			}
			cli, srv := connectAcross(t, p, ln, &d)
			const up = 4096
			if _, err := cli.Write(make([]byte, up)); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(srv, make([]byte, up)); err != nil {
				t.Fatal(err)
			}

			pkts := capt.Take(t, up, 100*time.Millisecond)
			if !pkts[0].SYN {
				t.Fatalf("the first packet captured is not the SYN: %+v", pkts[0])
			}
			checkDSCP(t, "from the SYN on", pkts, dscp)
			nft := netlab.ReadNFT(t, p.CliNS)
			t.Logf("%d packets captured; nft %+v", len(pkts), nft)
			if nft["unmarked"].Packets != 0 || nft["c5"].Packets < uint64(len(pkts)) {
				t.Errorf("nftables: %d packets with colour %d's mark, %d without any, for the %d packets captured", nft["c5"].Packets, colour, nft["unmarked"].Packets, len(pkts))
			}
			if tc.mode == ModeRequire {
				if c := counters(t, col)[colour]; c.EgressPackets < uint64(len(pkts)) {
					t.Errorf("counters of colour %d: %d egress packets, want the %d captured, the SYN among them", colour, c.EgressPackets, len(pkts))
				}
			}
		})
	}
}

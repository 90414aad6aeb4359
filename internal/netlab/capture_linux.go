//go:build linux

package netlab

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// snapLen is how much of each frame a Capture reads: the headers and the
// start of the data.
const snapLen = 2048

// Packet is one TCP packet as a Capture saw it on the wire.
type Packet struct {
	DstPort uint16 // the receiver's port: which connection
	DSCP    uint8
	SYN     bool   // a connection's first packet
	Payload int    // TCP payload length, from the IP header
	Data    []byte // the start of the payload, as much as was captured
}

// Capture records, with an AF_PACKET socket, the TCP packets from one port
// that arrive on an interface: what the peer really received. SYN-ACKs are
// left out, since they go before any colour can be set on the socket
// answering; a connecting socket's SYN is kept.
type Capture struct {
	fd   int
	port uint16
	stop atomic.Bool
	done chan struct{}

	mu      sync.Mutex
	pkts    []Packet
	payload int
}

// StartCapture starts capturing, in namespace ns, the TCP packets from port
// that arrive on dev, IPv4 or IPv6; it stops when the test ends.
func StartCapture(t testing.TB, ns, dev string, port int) *Capture {
	t.Helper()
	c := &Capture{port: uint16(port), done: make(chan struct{})}
	err := InNS(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		proto := int(htons(unix.ETH_P_ALL))
		if c.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto); err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		if err := unix.Bind(c.fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index}); err != nil {
			return fmt.Errorf("bind AF_PACKET to %s: %w", dev, err)
		}
		// Each queued packet costs its whole skb (64 KiB with TSO), however
		// little is read: without room, the capture would drop some.
		if err := unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 64<<20); err != nil {
			return fmt.Errorf("SO_RCVBUFFORCE: %w", err)
		}
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		t.Fatal(err)
	}
	go c.loop()
	t.Cleanup(func() {
		c.stop.Store(true)
		<-c.done
		unix.Close(c.fd)
	})
	return c
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *Capture) loop() {
	defer close(c.done)
	buf := make([]byte, snapLen)
	for !c.stop.Load() {
		n, _, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			continue // timeout or EINTR: look at stop again
		}
		if p, ok := parseFrame(buf[:n], c.port); ok {
			c.mu.Lock()
			c.pkts = append(c.pkts, p)
			c.payload += p.Payload
			c.mu.Unlock()
		}
	}
}

// parseFrame reads an Ethernet frame carrying IPv4 or IPv6 and TCP from
// port, other than a SYN-ACK.
func parseFrame(b []byte, port uint16) (Packet, bool) {
	if len(b) < 14 {
		return Packet{}, false
	}
	etype, ip := binary.BigEndian.Uint16(b[12:]), b[14:]
	var p Packet
	var ipLen, hdrLen int
	switch {
	case etype == unix.ETH_P_IP && len(ip) >= 20 && ip[9] == unix.IPPROTO_TCP:
		p.DSCP = ip[1] >> 2
		hdrLen = int(ip[0]&0x0f) * 4
		ipLen = int(binary.BigEndian.Uint16(ip[2:]))
	case etype == unix.ETH_P_IPV6 && len(ip) >= 40 && ip[6] == unix.IPPROTO_TCP:
		p.DSCP = (ip[0]&0x0f)<<2 | ip[1]>>6
		hdrLen = 40
		ipLen = 40 + int(binary.BigEndian.Uint16(ip[4:]))
	default:
		return Packet{}, false
	}
	if len(ip) < hdrLen+20 {
		return Packet{}, false
	}
	tcp := ip[hdrLen:]
	const syn, ack = 0x02, 0x10
	if binary.BigEndian.Uint16(tcp) != port || tcp[13]&(syn|ack) == syn|ack {
		return Packet{}, false
	}
	p.SYN = tcp[13]&syn != 0
	tcpLen := int(tcp[12]>>4) * 4
	p.DstPort = binary.BigEndian.Uint16(tcp[2:])
	p.Payload = ipLen - hdrLen - tcpLen
	if len(tcp) > tcpLen {
		p.Data = append([]byte(nil), tcp[tcpLen:]...)
	}
	return p, true
}

// Take waits until at least payload bytes of TCP payload were captured since
// the last Take, then for settle more (to let the connections' last packets
// arrive), and returns the packets, forgetting them. It fails the test after
// 10s without them, or if the capture dropped any packet.
func (c *Capture) Take(t testing.TB, payload int, settle time.Duration) []Packet {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := c.payload
		c.mu.Unlock()
		if got >= payload {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("capture: %d payload bytes from port %d after 10s, want %d", got, c.port, payload)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(settle)
	st, err := unix.GetsockoptTpacketStats(c.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		t.Fatal(err)
	}
	if st.Drops > 0 {
		t.Fatalf("capture: dropped %d packets", st.Drops)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	pkts := c.pkts
	c.pkts, c.payload = nil, 0
	return pkts
}

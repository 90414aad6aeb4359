package bpf

import (
	"errors"
	"fmt"
	"math/bits"
	"syscall"
)

// Colour is a small integer naming one (service, version); 0 means
// uncoloured. The gateway allocates colours; the largest usable one is
// [Options.MaxColour] (255 with the default mark mask).
type Colour uint16

// Direction is the way traffic flows through a gateway socket.
type Direction uint8

const (
	Egress  Direction = iota // sent by the gateway
	Ingress                  // received by the gateway
)

// Values of [Options.Mode].
const (
	ModeAuto    = "auto"    // eBPF if the kernel allows it, else the fallback
	ModeRequire = "require" // eBPF or an error from New
	ModeOff     = "off"     // the fallback only
)

// Values of [Colourer.Mode].
const (
	ModeEBPF     = "ebpf"
	ModeFallback = "fallback"
)

// DefaultMarkMask is the mark bits used when [Options.MarkMask] is 0: the top
// byte, so 255 colours. Other users of the mark on a typical host keep clear
// of it: kube-proxy uses 0x4000 and 0x8000, Istio 0x539, wg-quick 0xca6c,
// Tailscale masks with 0xff0000. Calico and Cilium claim upper bits too, but
// in a pod the mark does not cross the veth into the host; if the gateway
// shares a namespace with them, pick a free MarkMask.
const DefaultMarkMask uint32 = 0xff000000

// Options for [New]. The zero value is ready to use.
type Options struct {
	// Mode is ModeAuto (the default when empty), ModeRequire or ModeOff.
	Mode string

	// MarkMask is the contiguous run of skb->mark bits that carry the colour;
	// every other bit of the mark is left as it was. A colour c is written as
	// c<<shift, shift being the index of the mask's lowest set bit, so a
	// consumer matches `meta mark & MarkMask == c<<shift` (see Mark).
	// Default DefaultMarkMask.
	MarkMask uint32

	// CgroupPath is the cgroup v2 directory the eBPF programs attach to. It
	// must contain the cgroup the gateway's sockets were created in.
	// Default: the process's own cgroup, as /proc/self/cgroup names it,
	// under the cgroup2 mount found in /proc/self/mountinfo.
	CgroupPath string
}

func (o Options) mask() uint32 {
	if o.MarkMask == 0 {
		return DefaultMarkMask
	}
	return o.MarkMask
}

func (o Options) shift() int { return bits.TrailingZeros32(o.mask()) }

// Mark returns the value and the mask a mark consumer matches for colour c:
// packets of c carry skb->mark&mask == value.
//
// # Notes
//
// With the defaults, colour 5 is value 0x05000000 under mask 0xff000000, as
// in the nftables rule `meta mark & 0xff000000 == 0x05000000 counter`.
func (o Options) Mark(c Colour) (value, mask uint32) {
	mask = o.mask()
	return (uint32(c) << o.shift()) & mask, mask
}

// MaxColour returns the largest colour that fits in the mark mask.
func (o Options) MaxColour() Colour {
	return Colour(min(o.mask()>>o.shift(), 0xffff))
}

func (o Options) validate() error {
	switch o.Mode {
	case "", ModeAuto, ModeRequire, ModeOff:
	default:
		return fmt.Errorf("bpf: mode %q: want %q, %q or %q", o.Mode, ModeAuto, ModeRequire, ModeOff)
	}
	if m := o.mask() >> o.shift(); m&(m+1) != 0 {
		return fmt.Errorf("bpf: mark mask %#08x: bits are not contiguous", o.MarkMask)
	}
	return nil
}

// Counter is what the kernel (or, in fallback mode, Count) saw of one colour.
//
// In ebpf mode packets are IP packets (a GSO/GRO batch counts as its segments)
// and bytes are IP-layer bytes, headers included (a GSO batch counts one set
// of headers). In fallback mode packets are Count calls and bytes are the
// payload bytes passed to Count.
type Counter struct {
	EgressPackets, EgressBytes   uint64
	IngressPackets, IngressBytes uint64
}

// Colourer marks and counts the traffic of coloured sockets. It is safe for
// concurrent use.
type Colourer interface {
	// SetColour colours the socket behind conn (a *net.TCPConn, *net.UDPConn
	// or anything with SyscallConn; for a *tls.Conn, its NetConn()) with c,
	// and sets its DSCP to dscp (0..63; -1 leaves it alone). Packets sent after the call carry c in their mark
	// and dscp in their IP header. Colour 0 removes the colour. Calling it
	// again re-colours the socket; the colour lives as long as the socket.
	SetColour(conn syscall.Conn, c Colour, dscp int) error

	// Count adds n bytes that the caller read (Ingress) or wrote (Egress) on
	// a socket of colour c. Call it for every read and write: in ebpf mode
	// it does nothing, since the kernel counts.
	Count(c Colour, d Direction, n int)

	// Counters returns the traffic per colour since New, with an entry for
	// every colour given to SetColour or Count.
	Counters() (map[Colour]Counter, error)

	// Mode returns ModeEBPF or ModeFallback.
	Mode() string

	// Reason says why the mode was chosen, for the log, e.g.
	// "ebpf: cgroup_skb ingress+egress attached to /sys/fs/cgroup/gw by bpf_link"
	// (with RootCgroupWarning after it when that is the root cgroup) or
	// "fallback: eBPF refused: load colour_egress: operation not permitted".
	Reason() string

	// Close detaches the programs and frees the maps (ebpf mode) so nothing
	// of ours stays in the kernel. Colours already set by the fallback stay
	// on their sockets. Calling Close twice is harmless.
	Close() error
}

// RootCgroupWarning ends the Reason of eBPF colouring attached to the root
// cgroup (mode require, no cgroup named, the process in the root cgroup):
// every socket of the host is coloured, not the gateway's alone.
const RootCgroupWarning = "the root cgroup: every socket of the host is coloured, not the gateway's alone"

// OutsideCgroupWarning is in the Reason of eBPF colouring attached to a
// cgroup (Options.CgroupPath) that the process itself is not in, nor under:
// the programs see no socket of the gateway's.
const OutsideCgroupWarning = "the gateway's own cgroup is not under it: its sockets are neither coloured nor counted"

// ErrClosed is returned by SetColour and Counters after Close.
var ErrClosed = errors.New("bpf: colourer closed")

// New returns a Colourer in the mode opts ask for. In ModeAuto, a kernel that
// refuses eBPF gives the fallback, with the refusal in Reason; in
// ModeRequire, it gives an error that wraps the refusal. ModeAuto also falls
// back when the process is in the root cgroup and no CgroupPath is given:
// attaching there would colour every socket of the host.
func New(opts Options) (Colourer, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Mode == ModeOff {
		return newFallback(opts, "mode off"), nil
	}
	c, err := newEBPF(opts)
	if err == nil {
		return c, nil
	}
	if opts.Mode == ModeRequire {
		return nil, fmt.Errorf("bpf: eBPF required: %w", err)
	}
	return newFallback(opts, "eBPF refused: "+err.Error()), nil
}

func (o Options) checkColour(c Colour, dscp int) error {
	if c > o.MaxColour() {
		return fmt.Errorf("bpf: colour %d: above %d, the largest that fits mark mask %#08x", c, o.MaxColour(), o.mask())
	}
	if dscp < -1 || dscp > 63 {
		return fmt.Errorf("bpf: dscp %d: want 0..63, or -1 to leave it alone", dscp)
	}
	return nil
}

// RawConn is the syscall.RawConn a net.Dialer's Control (or ControlContext)
// gets, as the syscall.Conn SetColour takes: a socket coloured there is
// coloured before it connects, so its whole connection, from the SYN,
// carries the colour and DSCP.
type RawConn struct{ syscall.RawConn }

// SyscallConn returns r's RawConn.
func (r RawConn) SyscallConn() (syscall.RawConn, error) { return r.RawConn, nil }

// control runs fn on the file descriptor behind conn.
func control(conn syscall.Conn, fn func(fd uintptr) error) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("bpf: socket of %T: %w", conn, err)
	}
	var fnErr error
	if err := raw.Control(func(fd uintptr) { fnErr = fn(fd) }); err != nil {
		return fmt.Errorf("bpf: socket of %T: %w", conn, err)
	}
	return fnErr
}

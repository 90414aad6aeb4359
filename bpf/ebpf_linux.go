package bpf

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// The committed colour_bpf{el,eb}.{go,o} come from this; run it after editing
// colour.c (needs clang, llvm-strip and linux-libc-dev).
//go:generate go tool bpf2go -tags linux -type sock_colour -type colour_counter colour colour.c -- -I/usr/include/x86_64-linux-gnu -Wall -Werror

// ebpfColourer keeps colours in an sk_storage map that cgroup_skb programs
// read to mark and count each packet of a coloured socket.
type ebpfColourer struct {
	opts    Options
	reason  string
	objs    colourObjects
	links   []link.Link // egress, ingress
	colours sync.Map    // Colour → struct{}: those Counters reports

	mu     sync.RWMutex // held for writing by Close only
	closed bool
}

func newEBPF(opts Options) (Colourer, error) {
	cgroup, root := opts.CgroupPath, false
	if cgroup == "" {
		root = inRootCgroup()
		if opts.Mode != ModeRequire && root {
			return nil, errors.New("the process is in the root cgroup, where the programs would colour every socket of the host; " +
				"run it in a cgroup of its own (a systemd unit, a container) or name one (bpf.cgroup in wasmesh.yaml)")
		}
		var err error
		if cgroup, err = ownCgroup(); err != nil {
			return nil, fmt.Errorf("finding the process's cgroup: %w", err)
		}
	}
	if err := haveKernelSupport(); err != nil {
		return nil, err
	}
	e := &ebpfColourer{opts: opts}
	if err := e.load(); err != nil {
		return nil, err
	}
	if err := e.attach(cgroup); err != nil {
		e.objs.Close()
		return nil, err
	}
	value, mask := opts.Mark(1)
	e.reason = fmt.Sprintf("ebpf: cgroup_skb ingress+egress attached to %s by bpf_link; colour 1 marks %#08x/%#08x", cgroup, value, mask)
	if root {
		e.reason += "; " + RootCgroupWarning
	}
	if opts.CgroupPath != "" {
		if own, err := ownCgroup(); err == nil && !underCgroup(own, opts.CgroupPath) {
			e.reason += fmt.Sprintf("; %s (%s)", OutsideCgroupWarning, own)
		}
	}
	return e, nil
}

// haveKernelSupport names the missing feature (with the kernel release that
// brought it), or the refusal, rather than leaving it to the verifier log.
func haveKernelSupport() error {
	// Only kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK. If raising
	// it fails there, loading fails too, with cilium/ebpf's hint about it.
	_ = rlimit.RemoveMemlock()
	if err := features.HaveProgramType(ebpf.CGroupSKB); err != nil {
		return fmt.Errorf("cgroup_skb programs: %w", err)
	}
	if err := features.HaveMapType(ebpf.SkStorage); err != nil {
		return fmt.Errorf("sk_storage maps: %w", err)
	}
	if err := features.HaveProgramHelper(ebpf.CGroupSKB, asm.FnSkStorageGet); err != nil {
		return fmt.Errorf("bpf_sk_storage_get in cgroup_skb: %w", err)
	}
	return nil
}

func (e *ebpfColourer) load() error {
	spec, err := loadColour()
	if err != nil {
		return err
	}
	if err := spec.Variables[colourVarMarkMask].Set(e.opts.mask()); err != nil {
		return fmt.Errorf("setting mark_mask: %w", err)
	}
	if err := spec.Variables[colourVarMarkShift].Set(uint32(e.opts.shift())); err != nil {
		return fmt.Errorf("setting mark_shift: %w", err)
	}
	spec.Maps[colourMapCounters].MaxEntries = uint32(e.opts.MaxColour()) + 1
	if err := spec.LoadAndAssign(&e.objs, nil); err != nil {
		return fmt.Errorf("loading the programs: %w", err)
	}
	return nil
}

// attach links both programs to the cgroup with bpf_link (BPF_LINK_CREATE),
// never with the legacy BPF_PROG_ATTACH that link.AttachCgroup falls back to
// on old kernels: a link dies with the last fd, so a crashed gateway leaves
// nothing attached. Links are multi-attach, so other programs on the cgroup
// keep running.
func (e *ebpfColourer) attach(cgroup string) error {
	var fs unix.Statfs_t
	if err := unix.Statfs(cgroup, &fs); err != nil {
		return fmt.Errorf("cgroup %s: %w", cgroup, err)
	}
	if fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return fmt.Errorf("cgroup %s: not in a cgroup v2 file system", cgroup)
	}
	dir, err := os.Open(cgroup)
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", cgroup, err)
	}
	defer dir.Close()
	for _, a := range []struct {
		prog   *ebpf.Program
		attach ebpf.AttachType
	}{
		{e.objs.ColourEgress, ebpf.AttachCGroupInetEgress},
		{e.objs.ColourIngress, ebpf.AttachCGroupInetIngress},
	} {
		l, err := link.AttachRawLink(link.RawLinkOptions{Target: int(dir.Fd()), Program: a.prog, Attach: a.attach})
		if err != nil {
			e.closeLinks()
			return fmt.Errorf("attaching %s to cgroup %s: %w", a.attach, cgroup, err)
		}
		e.links = append(e.links, l)
	}
	return nil
}

func (e *ebpfColourer) closeLinks() error {
	var errs []error
	for _, l := range e.links {
		errs = append(errs, l.Close())
	}
	e.links = nil
	return errors.Join(errs...)
}

func (e *ebpfColourer) SetColour(conn syscall.Conn, c Colour, dscp int) error {
	if err := e.opts.checkColour(c, dscp); err != nil {
		return err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return ErrClosed
	}
	err := control(conn, func(fd uintptr) error {
		if dscp >= 0 {
			if err := setDSCP(fd, dscp); err != nil {
				return err
			}
		}
		// sk_storage maps take a socket fd as key from userspace.
		key := int32(fd)
		if c == 0 {
			if err := e.objs.SockColours.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("bpf: uncolouring socket %d: %w", fd, err)
			}
			return nil
		}
		if err := e.objs.SockColours.Update(key, colourSockColour{Colour: uint32(c)}, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("bpf: colouring socket %d with %d: %w", fd, c, err)
		}
		return nil
	})
	if err == nil && c != 0 {
		e.colours.Store(c, struct{}{})
	}
	return err
}

// Count only notes the colour: the programs count.
func (e *ebpfColourer) Count(c Colour, _ Direction, _ int) {
	if c == 0 {
		return
	}
	if _, ok := e.colours.Load(c); !ok {
		e.colours.Store(c, struct{}{})
	}
}

func (e *ebpfColourer) Counters() (map[Colour]Counter, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return nil, ErrClosed
	}
	out := make(map[Colour]Counter)
	var perCPU []colourColourCounter
	var err error
	e.colours.Range(func(k, _ any) bool {
		c := k.(Colour)
		if c > e.opts.MaxColour() {
			out[c] = Counter{}
			return true
		}
		if err = e.objs.Counters.Lookup(uint32(c), &perCPU); err != nil {
			err = fmt.Errorf("bpf: counters of colour %d: %w", c, err)
			return false
		}
		var sum Counter
		for _, v := range perCPU {
			sum.EgressPackets += v.Packets[Egress]
			sum.EgressBytes += v.Bytes[Egress]
			sum.IngressPackets += v.Packets[Ingress]
			sum.IngressBytes += v.Bytes[Ingress]
		}
		out[c] = sum
		return true
	})
	return out, err
}

func (e *ebpfColourer) Mode() string   { return ModeEBPF }
func (e *ebpfColourer) Reason() string { return e.reason }

func (e *ebpfColourer) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	return errors.Join(e.closeLinks(), e.objs.Close())
}

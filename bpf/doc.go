// Package bpf colours the gateway's sockets: the packets of each (service,
// version) carry a [Colour] in their mark and a DSCP in their IP header, and
// are counted per colour and direction.
//
//	col, err := bpf.New(bpf.Options{}) // eBPF if the kernel allows it, else the fallback
//	if err != nil {
//		return err
//	}
//	defer col.Close()
//	log.Print(col.Reason()) // which mode, and why
//
//	// Once a request is routed to the version coloured c:
//	err = col.SetColour(conn.(*net.TCPConn), c, 10) // DSCP AF11
//	col.Count(c, bpf.Egress, n)                     // after each write (Ingress: each read)
//	counters, err := col.Counters()                 // per colour and direction
//
// # Modes
//
// In ebpf mode, two cgroup_skb programs (egress and ingress), linked with
// bpf_link to the gateway's cgroup v2, look up each packet's socket in a
// BPF_MAP_TYPE_SK_STORAGE map that SetColour fills from Go (the key is the
// socket's fd), count the packet under its colour in a per-CPU array and, on
// egress, write the colour into skb->mark. Every other socket passes through
// untouched. Count does nothing: the kernel counts.
//
// In fallback mode, SetColour sets SO_MARK (keeping the bits outside the mask)
// and Count keeps the counters in userspace.
//
// In both modes DSCP is set with IP_TOS (and IPV6_TCLASS on IPv6 sockets),
// keeping the ECN bits: a cgroup_skb program may write skb->mark but not the
// packet, and a setsockopt covers every packet of the socket, retransmits and
// ACKs included, with no second program to attach.
//
// # Why cgroup_skb and not tc
//
// cgroup_skb sees exactly the gateway's sockets, in every network namespace and
// on every interface, with the socket at hand (skb->sk), so the colour lookup
// is one sk_storage read. tc clsact would need a program per interface,
// re-attached as interfaces come and go; it would see every packet of the
// interface, not just the gateway's, and would have to find the socket again
// (bpf_skc_lookup_tcp) or keep a socket-cookie map in step with the sockets. sk_storage dies with its socket, so
// nothing leaks. And a bpf_link to a cgroup lives only as long as its fd: when
// the gateway exits or crashes, the kernel detaches the programs (no pins).
//
// # The mark
//
// The colour occupies [Options.MarkMask] (default [DefaultMarkMask],
// 0xff000000): skb->mark = mark&^mask | c<<shift&mask, where shift is the
// mask's lowest set bit; [Options.Mark] gives the value to match. Bits outside
// the mask belong to others and are kept. In ebpf mode the mark is written at
// the cgroup egress hook, which runs after routing and after netfilter's
// OUTPUT and POSTROUTING hooks: it is seen by the nftables netdev egress hook,
// tc (clsact, qdisc filters) and the driver, not by `ip rule fwmark` or nft
// output/postrouting chains. The fallback's SO_MARK is seen from the routing
// decision on. Write consumers on the egress device to work in both modes.
// Incoming packets are counted, never marked.
//
// docs/ebpf.md explains the choices at more length.
package bpf

// Package netlab is a small network lab for wasmesh's Linux tests: two
// network namespaces joined by a veth pair, nftables counters per packet
// mark, an AF_PACKET capture of what the peer received (DSCP included), an
// empty cgroup v2, and checks of the eBPF programs attached to a cgroup.
//
// It needs root and takes a testing.TB: only tests import it. Where the
// kernel or the sandbox refuses (no privilege, no feature), a helper skips
// the test, or fails it when WASMESH_REQUIRE_BPF=1 (CI sets it), so that a
// refusal is never mistaken for a pass there. Everything it creates is
// removed when the test ends.
//
// The helpers exist on Linux only; elsewhere the package is empty.
package netlab

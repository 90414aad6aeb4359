// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//
// colour.c: cgroup_skb programs that mark and count the packets of coloured
// sockets. A socket is coloured from Go by writing its fd into the
// sock_colours sk_storage map (see ebpf_linux.go); every other socket passes
// untouched. Rebuild with `go generate ./bpf/` (bpf2go; see ebpf_linux.go).
//
// Only <linux/bpf.h> (linux-libc-dev) is needed: the few helpers used are
// declared below, as libbpf's bpf_helper_defs.h would.

//go:build ignore

#include <linux/bpf.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#undef __always_inline
#define __always_inline inline __attribute__((always_inline))

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;
static struct bpf_sock *(*bpf_sk_fullsock)(struct bpf_sock *sk) = (void *)BPF_FUNC_sk_fullsock;
static void *(*bpf_sk_storage_get)(void *map, void *sk, void *value, __u64 flags) = (void *)BPF_FUNC_sk_storage_get;

char __license[] SEC("license") = "Dual MIT/GPL";

// Set from Go before loading (CollectionSpec.Variables): the mark bits this
// program owns, and the shift that places a colour inside them.
volatile const __u32 mark_mask = 0;
volatile const __u32 mark_shift = 0;

enum direction {
	EGRESS = 0,
	INGRESS = 1,
};

// Per-socket value, written from Go with the socket's fd as key.
struct sock_colour {
	__u32 colour;
};

// Per-colour counters, indexed by direction.
struct colour_counter {
	__u64 packets[2];
	__u64 bytes[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct sock_colour);
} sock_colours SEC(".maps");

// Indexed by colour; Go sets max_entries to the largest colour + 1.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct colour_counter);
	__uint(max_entries, 1);
} counters SEC(".maps");

static __always_inline int account(struct __sk_buff *skb, enum direction dir)
{
	struct bpf_sock *sk = skb->sk;
	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;

	struct sock_colour *sc = bpf_sk_storage_get(&sock_colours, sk, 0, 0);
	if (!sc)
		return 1;
	__u32 colour = sc->colour;
	if (colour == 0)
		return 1;

	struct colour_counter *cnt = bpf_map_lookup_elem(&counters, &colour);
	if (!cnt)
		return 1;

	// A GSO/GRO skb stands for gso_segs packets on the wire; skb->len is
	// its IP-layer length (one set of headers, whatever gso_segs says).
	__u32 segs = skb->gso_segs;
	if (segs == 0)
		segs = 1;
	// Atomic: egress runs both in process context and in softirq (ACKs,
	// retransmits) on the same CPU.
	__sync_fetch_and_add(&cnt->packets[dir], segs);
	__sync_fetch_and_add(&cnt->bytes[dir], skb->len);

	// Marks matter only on the way out; on ingress the packet has already
	// passed every hook that could read one.
	if (dir == EGRESS)
		skb->mark = (skb->mark & ~mark_mask) | ((colour << mark_shift) & mark_mask);
	return 1;
}

SEC("cgroup_skb/egress")
int colour_egress(struct __sk_buff *skb)
{
	return account(skb, EGRESS);
}

SEC("cgroup_skb/ingress")
int colour_ingress(struct __sk_buff *skb)
{
	return account(skb, INGRESS);
}

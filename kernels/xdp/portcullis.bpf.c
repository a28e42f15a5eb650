// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Portcullis's XDP program: drops frames from blocked source addresses before they reach
 * any socket, and hands everything else to the AF_XDP socket of its RX queue (or to the
 * kernel stack). Loaded and attached by dataplane/src/live/xdp.rs; the map layouts below
 * are common/src/xdp.rs's #[repr(C)] types: change both together.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Stat indices: portcullis_common::xdp::xdp_stat. */
#define STAT_BLOCKED 0
#define STAT_REDIRECTED 1
#define STAT_PASSED 2
#define STAT_MALFORMED 3
#define STAT_COUNT 4

/* One program serves every interface of the topology; each gets a block of XSKMAP slots. */
#define MAX_IFACES 16
#define MAX_QUEUES 64

struct block_key {
	__u8 addr[16]; /* IPv6, or IPv4 mapped as ::ffff:a.b.c.d */
};

struct block_entry {
	__u64 expires_ns; /* bpf_ktime_get_ns() deadline; 0: never */
	__u64 hits;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct block_key);
	__type(value, struct block_entry);
} BLOCKLIST SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_IFACES * MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} XSKS SEC(".maps");

/* ifindex -> slot, filled by userspace when it attaches. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_IFACES);
	__type(key, __u32);
	__type(value, __u32);
} IFACE_SLOTS SEC(".maps");

/* [0]: redirect to AF_XDP sockets (1) or pass everything not blocked (0). A map rather than
 * a load-time constant so one loaded object can be switched without reloading. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} CONFIG SEC(".maps");

/* Per-CPU so the hot path never contends on a shared cache line; userspace sums. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} XDP_STATS SEC(".maps");

struct vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

static __always_inline void count(__u32 stat)
{
	__u64 *c = bpf_map_lookup_elem(&XDP_STATS, &stat);

	if (c)
		*c += 1; /* per-CPU slot: no other writer */
}

/* Everything that is not dropped goes the same way, IP or not: inline, ARP and neighbour
 * discovery must reach userspace to be bridged like the rest. */
static __always_inline int deliver(struct xdp_md *ctx, int counted)
{
	__u32 zero = 0;
	__u32 *redirect = bpf_map_lookup_elem(&CONFIG, &zero);

	if (redirect && *redirect) {
		__u32 ifindex = ctx->ingress_ifindex;
		__u32 queue = ctx->rx_queue_index;
		__u32 *slot = bpf_map_lookup_elem(&IFACE_SLOTS, &ifindex);

		if (slot && *slot < MAX_IFACES && queue < MAX_QUEUES) {
			/* XDP_PASS in the flags: an empty slot (no socket on this queue yet)
			 * hands the frame to the kernel stack instead of dropping it. */
			long act = bpf_redirect_map(&XSKS, *slot * MAX_QUEUES + queue, XDP_PASS);

			if (act == XDP_REDIRECT) {
				if (!counted)
					count(STAT_REDIRECTED);
				return act;
			}
		}
	}
	if (!counted)
		count(STAT_PASSED);
	return XDP_PASS;
}

SEC("xdp")
int portcullis_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct block_key key = {};
	void *cur;
	__u16 proto;

	if ((void *)(eth + 1) > end)
		goto malformed;
	proto = eth->h_proto;
	cur = eth + 1;

	/* At most two tags (802.1ad outer, 802.1Q inner); unrolled so the verifier sees a
	 * bounded path and every access has its own bounds check. */
#pragma unroll
	for (int i = 0; i < 2; i++) {
		struct vlan_hdr *vh = cur;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > end)
			goto malformed;
		proto = vh->encapsulated_proto;
		cur = vh + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = cur;

		if ((void *)(ip + 1) > end)
			goto malformed;
		key.addr[10] = 0xff;
		key.addr[11] = 0xff;
		__builtin_memcpy(&key.addr[12], &ip->saddr, 4);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cur;

		if ((void *)(ip6 + 1) > end)
			goto malformed;
		__builtin_memcpy(key.addr, &ip6->saddr, 16);
	} else {
		return deliver(ctx, 0);
	}

	struct block_entry *e = bpf_map_lookup_elem(&BLOCKLIST, &key);

	if (e) {
		/* Read once: userspace may rewrite the entry while we look at it. */
		__u64 expires = *(volatile __u64 *)&e->expires_ns;

		/* An expired entry stays until userspace sweeps it, so its final counters can
		 * be reported; it just stops dropping. */
		if (expires == 0 || bpf_ktime_get_ns() < expires) {
			/* Several CPUs hit the same entry under a flood. */
			__sync_fetch_and_add(&e->hits, 1);
			__sync_fetch_and_add(&e->bytes, (__u64)(end - data));
			count(STAT_BLOCKED);
			return XDP_DROP;
		}
	}
	return deliver(ctx, 0);

malformed:
	/* Too short for the headers it announces: counted once, here, and still delivered so
	 * userspace can see (and log) the anomaly. */
	count(STAT_MALFORMED);
	return deliver(ctx, 1);
}

/* GPL-compatible: bpf_redirect_map and bpf_ktime_get_ns are GPL-only helpers. */
char LICENSE[] SEC("license") = "Dual BSD/GPL";

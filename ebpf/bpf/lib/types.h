/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map key and value. This is the only ABI file: ebpf/src/abi.rs mirrors each struct
 * field for field, and the _Static_asserts at the bottom pin the sizes both sides test.
 *
 * Conventions:
 *  - Addresses are 16 bytes; an IPv4 address sits in the first 4 bytes, the other 12 are zero.
 *    `family` (BEACON_AF_INET / BEACON_AF_INET6) says which.
 *  - Addresses and ports are in network byte order, as they appear on the wire.
 *  - Padding is explicit (`pad` fields) and must be zero: hash keys compare all bytes.
 */
#ifndef BEACON_TYPES_H
#define BEACON_TYPES_H

#include "common.h"

union beacon_addr {
	__be32 v4;
	__be32 v6[4];
	__u8 bytes[16];
};

/* beacon_vips key: one VIP is one (address, port, protocol). */
struct vip_key {
	union beacon_addr addr;
	__be16 port;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;
};

/* beacon_vips value. */
struct vip_info {
	__u32 index; /* < BEACON_MAX_VIPS: ring row and beacon_vip_stats slot */
	__u32 flags; /* BEACON_VIP_F_* */
};

/*
 * beacon_vip_slots value: one slot of XDP's VIP index. key.family == 0 marks an empty slot;
 * an IPv4 key's address bytes 4..15 are zero, as in beacon_vips.
 */
struct vip_slot {
	struct vip_key key;
	struct vip_info info; /* equal to the VIP's beacon_vips value */
	/* Nonzero: some VIP whose first candidate slot is this one found all its candidates
	 * taken and is only in beacon_vips; a lookup that misses must look there. */
	__u32 overflow;
};

/* beacon_backends value, indexed by backend id (1..BEACON_MAX_BACKENDS-1). */
struct backend {
	union beacon_addr addr;
	__be16 port;
	__u8 family;
	__u8 flags; /* BEACON_BACKEND_F_* */
	__u32 generation; /* bumped by userspace when it reuses an id for another address */
};

/* A pinned backend: beacon_flows and beacon_sock_conn values. Valid while the backend's generation
 * still matches and it is not removed. */
struct backend_ref {
	__u32 id;
	__u32 generation;
};

/* beacon_flows key (client -> VIP, as the packet arrives) and beacon_revnat key
 * (backend -> client, as the reply leaves). */
struct flow_key {
	union beacon_addr src;
	union beacon_addr dst;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;
	__u8 pad[2];
};

/* What a reply's source, or a socket's peer, is translated back to. beacon_revnat and
 * beacon_sock_rev values. */
struct vip_endpoint {
	union beacon_addr addr;
	__be16 port;
	__u8 family;
	__u8 pad;
};

/* beacon_sock_rev key: the socket and the backend it talks to. For a connected socket there is
 * one entry; an unconnected UDP socket has one per backend it has sent to. */
struct sock_rev_key {
	__u64 cookie; /* bpf_get_socket_cookie() */
	union beacon_addr addr; /* backend address */
	__be16 port; /* backend port */
	__u8 family;
	__u8 pad[5];
};

/* beacon_vip_stats (indexed by VIP index) and beacon_backend_stats (indexed by backend id)
 * values; per CPU, userspace sums them. */
struct lb_counters {
	__u64 packets; /* XDP packets sent to this VIP / backend */
	__u64 bytes; /* their bytes, Ethernet header included */
	__u64 new_flows; /* XDP flows and socket connects/sendmsgs that picked this VIP / backend */
	/* VIP: packets or connects that found no usable backend.
	 * Backend: flows moved away from it because it was removed. */
	__u64 misses;
};

/* beacon_flow_rate value: the rate guard's window on one CPU. */
struct flow_rate {
	__u64 window_start; /* bpf_ktime_get_ns() when the window began */
	__u64 new_flows; /* new flows seen in it */
};

_Static_assert(sizeof(union beacon_addr) == 16, "beacon_addr");
_Static_assert(sizeof(struct vip_key) == 20, "vip_key");
_Static_assert(sizeof(struct vip_info) == 8, "vip_info");
_Static_assert(sizeof(struct vip_slot) == 32, "vip_slot");
_Static_assert(offsetof(struct vip_slot, info) == 20, "vip_slot.info");
_Static_assert(sizeof(struct backend) == 24, "backend");
_Static_assert(sizeof(struct backend_ref) == 8, "backend_ref");
_Static_assert(sizeof(struct flow_key) == 40, "flow_key");
_Static_assert(sizeof(struct vip_endpoint) == 20, "vip_endpoint");
_Static_assert(sizeof(struct sock_rev_key) == 32, "sock_rev_key");
_Static_assert(sizeof(struct lb_counters) == 32, "lb_counters");
_Static_assert(sizeof(struct flow_rate) == 16, "flow_rate");

#endif /* BEACON_TYPES_H */

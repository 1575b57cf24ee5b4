/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Sizes, flags and counter indices shared by every program and mirrored in ebpf/src/abi.rs.
 * Sizes may be overridden at build time (-DBEACON_MAX_VIPS=...), but then the Rust constants
 * must follow: the Rust side reads none of this from the object.
 */
#ifndef BEACON_CONSTS_H
#define BEACON_CONSTS_H

/* Number of VIP slots: VIP indices run 0..BEACON_MAX_VIPS-1. */
#ifndef BEACON_MAX_VIPS
#define BEACON_MAX_VIPS 512
#endif

/*
 * Maglev lookup-table size per VIP. It must be prime (Maglev's permutation needs it) and should
 * be > 100 * backends for at most ~1% of flows to move when one backend changes. 4093 serves up
 * to ~40 backends per VIP at that bound. Memory: MAX_VIPS * RING_SIZE * 4 bytes =
 * 512 * 4093 * 4 = 8.0 MiB (16381 would be 32 MiB, 65537 128 MiB).
 */
#ifndef BEACON_RING_SIZE
#define BEACON_RING_SIZE 4093
#endif

/*
 * The XDP VIP index (beacon_vip_slots): an open-addressed ARRAY copy of beacon_vips that XDP
 * searches inline, without a hash-map helper call. A VIP sits in one of the
 * BEACON_VIP_SLOT_PROBES consecutive slots (wrapping) from vip_slot_hash(key) & (SLOTS - 1).
 * 32 slots per VIP keep the table sparse (load <= 1/32), so a free candidate slot is almost
 * always there; when none is, the first candidate's overflow mark sends XDP to beacon_vips.
 * Must be a power of two. Memory: 16384 * 32 bytes = 512 KiB.
 */
#ifndef BEACON_VIP_SLOTS
#define BEACON_VIP_SLOTS (BEACON_MAX_VIPS * 32)
#endif
#define BEACON_VIP_SLOT_PROBES 4

/* Backend ids index the backends array; id 0 is never a backend and marks an empty ring slot. */
#ifndef BEACON_MAX_BACKENDS
#define BEACON_MAX_BACKENDS 4096
#endif

/* Entries in each LRU table (flows, reverse NAT, socket reverse map, connected UDP). */
#ifndef BEACON_FLOW_TABLE_SIZE
#define BEACON_FLOW_TABLE_SIZE 65536
#endif
/*
 * Entries of the overflow reverse table (beacon_revnat_overflow): reverse entries of the new
 * flows the rate guard left out of the flow table (see lib/flow.h new_flow_may_save()). A flood
 * churns this table, not beacon_revnat.
 */
#ifndef BEACON_REVNAT_OVERFLOW_SIZE
#define BEACON_REVNAT_OVERFLOW_SIZE 8192
#endif
#ifndef BEACON_SOCK_TABLE_SIZE
#define BEACON_SOCK_TABLE_SIZE 65536
#endif

/*
 * The reply filter (beacon_revnat_filter): a bitmap of REVNAT_FILTER_BITS bits, one per hash of
 * a backend endpoint (address, port, protocol) that XDP has sent a flow to. tc looks a packet
 * up in beacon_revnat only if its source's bit is set. Power of two; 8 KiB.
 */
#define BEACON_REVNAT_FILTER_BITS 65536

/*
 * How many consecutive ring slots a new flow may try when the slot it hashes to names a backend
 * that takes no new flows (drained or removed, while userspace has not yet rebuilt the ring).
 */
#define BEACON_PICK_PROBES 4

/*
 * The named-VIP ranges (beacon_catalog NAMED_V4_POOL and NAMED_V6_POOL): 11.0.0.0/8 and
 * fd01:c::/64, host order. Both paths fail closed there: a connect()/sendmsg() to an address
 * in them that is no VIP is refused on the node, and XDP drops such a packet, instead of either
 * being routed off the node.
 */
#define BEACON_NAMED_V4_NET 0x0b000000U
#define BEACON_NAMED_V4_MASK 0xff000000U
#define BEACON_NAMED_V6_NET_HI 0xfd01000cU /* first 32 bits of fd01:c:: */
#define BEACON_NAMED_V6_NET_LO 0x00000000U /* next 32 bits: the rest of the /64 */

/* struct vip_info.flags */
#define BEACON_VIP_F_NO_SOCK_LB (1U << 0) /* socket LB ignores this VIP */
#define BEACON_VIP_F_NO_PACKET_LB (1U << 1) /* XDP ignores this VIP */

/* struct backend.flags */
#define BEACON_BACKEND_F_DRAIN (1U << 0) /* weight 0: keeps its flows, takes no new ones */
#define BEACON_BACKEND_F_REMOVED (1U << 1) /* gone: its flows move to another backend */

/*
 * Global counters (beacon_stats, a per-CPU array indexed by these). Named reasons instead of
 * magic indices, in the style of Cilium's drop_reasons.h.
 */
enum beacon_stat {
	BEACON_STAT_XDP_PACKETS = 0, /* every packet XDP saw */
	BEACON_STAT_XDP_NOT_IP, /* not IPv4/IPv6 (or VLAN-tagged): passed */
	BEACON_STAT_XDP_UNSUPPORTED, /* fragments, IPv4 options, IPv6 extension headers: passed */
	BEACON_STAT_XDP_NOT_L4, /* not TCP/UDP: passed */
	BEACON_STAT_XDP_NOT_VIP, /* no VIP for dst addr:port/proto: passed */
	BEACON_STAT_XDP_NO_BACKEND, /* VIP without a usable backend: passed untouched */
	BEACON_STAT_XDP_FLOW_HIT, /* flow table hit, backend still valid */
	BEACON_STAT_XDP_FLOW_NEW, /* flow table miss: backend picked from the ring */
	BEACON_STAT_XDP_FLOW_RESELECT, /* pinned backend removed: picked again */
	BEACON_STAT_TC_PACKETS, /* every packet the reverse program saw */
	BEACON_STAT_TC_REVNAT, /* replies whose source went back to VIP:port */
	BEACON_STAT_SOCK_XLATE, /* connect/sendmsg rewritten to a backend */
	BEACON_STAT_SOCK_NO_BACKEND, /* connect/sendmsg to a VIP without backends: refused */
	BEACON_STAT_SOCK_REVNAT, /* recvmsg/getpeername rewritten back to the VIP */
	BEACON_STAT_SOCK_DESTROYED, /* connected UDP sockets destroyed by the iterator */
	BEACON_STAT_SOCK_RANGE_REFUSED, /* connect/sendmsg to a named-VIP address that is no VIP */
	BEACON_STAT_XDP_FLOW_UNSAVED, /* new flows over the rate guard: balanced, not saved */
	BEACON_STAT_XDP_REVNAT_RESTORED, /* flow hits whose evicted reverse entry was written again */
	BEACON_STAT_XDP_RANGE_DROPPED, /* packets to a named-VIP address:port that is no VIP: dropped */
	BEACON_STAT_MAX,
};

/*
 * A helper-call immediate that no kernel helper uses. sock_destroy.c calls the bpf_sock_destroy
 * kfunc through it; userspace patches each such call into a real kfunc call before loading
 * (aya 0.14 cannot resolve __ksym externs). See ebpf/src/kfunc.rs.
 */
#define BEACON_KFUNC_SOCK_DESTROY_MAGIC 0x7eac0de5

#endif /* BEACON_CONSTS_H */

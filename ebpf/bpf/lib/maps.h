/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every map, defined once (BTF-style). Userspace fills the first three by diffing desired
 * state against what is there; the LRU tables belong to the data plane; the counters are read.
 *
 *   beacon_vips          HASH    vip_key -> vip_info                 userspace writes
 *   beacon_vip_slots     ARRAY   u32 [VIP_SLOTS] -> vip_slot         userspace writes (XDP's
 *                                                                    copy of beacon_vips)
 *   beacon_rings         ARRAY   u32 [MAX_VIPS * RING_SIZE] -> u32   userspace writes (Maglev)
 *   beacon_backends      ARRAY   u32 backend id -> backend           userspace writes
 *   beacon_flows         LRU     flow_key (client->VIP) -> backend_ref      XDP
 *   beacon_revnat        LRU     flow_key (backend->client) -> vip_endpoint XDP writes, tc reads
 *   beacon_revnat_overflow LRU   the same, for flows the rate guard did not save
 *   beacon_flow_rate     PERCPU_ARRAY [1] -> flow_rate               XDP: the rate guard's window
 *   beacon_revnat_filter ARRAY   u32 [FILTER_BITS / 64] -> u64       XDP sets bits, tc reads
 *   beacon_sock_rev      LRU     sock_rev_key -> vip_endpoint        connect/sendmsg write,
 *                                                                    recvmsg/getpeername read
 *   beacon_sock_conn     LRU     u64 cookie -> backend_ref           connect (UDP) writes,
 *                                                                    the UDP iterator reads
 *   beacon_vip_stats     PERCPU_ARRAY [MAX_VIPS] -> lb_counters
 *   beacon_backend_stats PERCPU_ARRAY [MAX_BACKENDS] -> lb_counters
 *   beacon_stats         PERCPU_ARRAY [BEACON_STAT_MAX] -> u64
 *   beacon_abi           ARRAY   u32 [1] -> u32                      userspace only: the layout
 *                                                                    version of the pinned maps
 *
 * Ring row i (VIP index i) is entries [i * RING_SIZE, (i + 1) * RING_SIZE): one array for all
 * VIPs keeps the lookup a single array access (Katran does the same) at the cost of memory for
 * unused rows. A slot holds a backend id; 0 means "no backend" and a row of zeros is a VIP
 * without backends.
 */
#ifndef BEACON_MAPS_H
#define BEACON_MAPS_H

#include "common.h"
#include "consts.h"
#include "types.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct vip_key);
	__type(value, struct vip_info);
	__uint(max_entries, BEACON_MAX_VIPS);
} beacon_vips SEC(".maps");

/*
 * XDP's VIP index: the same VIPs as beacon_vips, open-addressed in an ARRAY so the per-packet
 * lookup is a few inline loads and compares instead of a hash-map helper call (~18 ns here).
 * See lib/lb.h vip_slot_lookup() for the search and the update order userspace must follow.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct vip_slot);
	__uint(max_entries, BEACON_VIP_SLOTS);
} beacon_vip_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, BEACON_MAX_VIPS * BEACON_RING_SIZE);
} beacon_rings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct backend);
	__uint(max_entries, BEACON_MAX_BACKENDS);
} beacon_backends SEC(".maps");

/*
 * The flow table. One LRU hash with per-CPU LRU lists (BPF_F_NO_COMMON_LRU): eviction and the
 * free list are per CPU, so CPUs do not contend on one LRU lock (what Katran gets from one map
 * per CPU), while lookups see every CPU's entries, so a flow keeps its backend even when RSS,
 * generic XDP or a veth's NAPI moves it to another CPU. Each CPU can hold about
 * max_entries / nr_cpus flows before it evicts.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct flow_key);
	__type(value, struct backend_ref);
	__uint(max_entries, BEACON_FLOW_TABLE_SIZE);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
} beacon_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct flow_key);
	__type(value, struct vip_endpoint);
	__uint(max_entries, BEACON_FLOW_TABLE_SIZE);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
} beacon_revnat SEC(".maps");

/*
 * Reverse entries of new flows the rate guard did not save (lib/flow.h flow_backend()), so that
 * their replies are still translated while a flood churns this table instead of beacon_revnat.
 * tc looks here when beacon_revnat has no entry.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct flow_key);
	__type(value, struct vip_endpoint);
	__uint(max_entries, BEACON_REVNAT_OVERFLOW_SIZE);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
} beacon_revnat_overflow SEC(".maps");

/* The rate guard's state: this CPU's current one-second window and the new flows seen in it. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct flow_rate);
	__uint(max_entries, 1);
} beacon_flow_rate SEC(".maps");

/*
 * Which backend endpoints have translated flows, as bits of a hash (lib/flow.h
 * revnat_filter_bit()): lets tc pass most packets that are no reply without a hash-map lookup.
 * XDP sets a bit (atomically, before the flow's beacon_revnat entry) and nothing clears one:
 * a stale bit costs a lookup, never a translation.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, BEACON_REVNAT_FILTER_BITS / 64);
} beacon_revnat_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct sock_rev_key);
	__type(value, struct vip_endpoint);
	__uint(max_entries, BEACON_SOCK_TABLE_SIZE);
} beacon_sock_rev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u64);
	__type(value, struct backend_ref);
	__uint(max_entries, BEACON_SOCK_TABLE_SIZE);
} beacon_sock_conn SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct lb_counters);
	__uint(max_entries, BEACON_MAX_VIPS);
} beacon_vip_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct lb_counters);
	__uint(max_entries, BEACON_MAX_BACKENDS);
} beacon_backend_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, BEACON_STAT_MAX);
} beacon_stats SEC(".maps");

/*
 * Read by no program: userspace stores the layout version of these maps here
 * (ebpf/src/abi.rs MAPS_ABI_VERSION) when it pins them, and a starting agent reads it before it
 * adopts maps a previous agent left pinned. Its own layout never changes.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} beacon_abi SEC(".maps");

#endif /* BEACON_MAPS_H */

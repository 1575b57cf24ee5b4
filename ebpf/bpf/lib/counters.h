/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Counter updates. All counters are per-CPU arrays, so plain (non-atomic) adds are safe:
 * a program runs to completion on one CPU without preemption by another BPF program of the
 * same kind.
 */
#ifndef BEACON_COUNTERS_H
#define BEACON_COUNTERS_H

#include "maps.h"

static __always_inline void stat_inc(__u32 reason)
{
	__u64 *value = bpf_map_lookup_elem(&beacon_stats, &reason);

	if (value)
		*value += 1;
}

static __always_inline struct lb_counters *vip_counters(__u32 vip_index)
{
	return bpf_map_lookup_elem(&beacon_vip_stats, &vip_index);
}

static __always_inline struct lb_counters *backend_counters(__u32 backend_id)
{
	return bpf_map_lookup_elem(&beacon_backend_stats, &backend_id);
}

/* One packet (or one connect/sendmsg when bytes is 0) sent towards a VIP and a backend. */
static __always_inline void count_forward(__u32 vip_index, __u32 backend_id, __u64 bytes,
					  int new_flow)
{
	struct lb_counters *c = vip_counters(vip_index);

	if (c) {
		c->packets += bytes ? 1 : 0;
		c->bytes += bytes;
		c->new_flows += new_flow ? 1 : 0;
	}
	c = backend_counters(backend_id);
	if (c) {
		c->packets += bytes ? 1 : 0;
		c->bytes += bytes;
		c->new_flows += new_flow ? 1 : 0;
	}
}

static __always_inline void count_vip_miss(__u32 vip_index)
{
	struct lb_counters *c = vip_counters(vip_index);

	if (c)
		c->misses += 1;
}

static __always_inline void count_backend_moved_away(__u32 backend_id)
{
	struct lb_counters *c = backend_counters(backend_id);

	if (c)
		c->misses += 1;
}

#endif /* BEACON_COUNTERS_H */

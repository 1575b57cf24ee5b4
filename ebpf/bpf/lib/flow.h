/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The XDP flow table: which backend a client's flow to a VIP is pinned to, and the reverse
 * entry the tc program uses to give the reply the VIP's address back.
 */
#ifndef BEACON_FLOW_H
#define BEACON_FLOW_H

#include "counters.h"
#include "hash.h"
#include "lb.h"

enum flow_result {
	FLOW_HIT = 0, /* pinned backend still valid */
	FLOW_NEW = 1, /* no entry: picked from the ring */
	FLOW_RESELECT = 2, /* entry's backend removed: picked again */
	FLOW_UNSAVED = 3, /* no entry, over the rate guard: picked, not saved */
};

#define NSEC_PER_SEC 1000000000ULL

/*
 * The reply-filter bit of a backend endpoint (replies come from it): a multiplicative hash of
 * its address words, port and protocol. Not the flow hash: it must not depend on the client.
 */
static __always_inline __u32 revnat_filter_bit(const union beacon_addr *addr, __be16 port,
					       __u8 proto)
{
	__u32 h = addr->v6[0] ^ addr->v6[1] ^ addr->v6[2] ^ addr->v6[3];

	h = (h ^ ((__u32)port << 8) ^ proto) * 0x9e3779b1;
	h ^= h >> 15;
	h *= 0x85ebca6b;
	return (h >> 16) & (BEACON_REVNAT_FILTER_BITS - 1);
}

/* Whether a packet from this endpoint may be a reply of a translated flow (tc's first check). */
static __always_inline int revnat_filter_test(const union beacon_addr *addr, __be16 port,
					      __u8 proto)
{
	__u32 bit = revnat_filter_bit(addr, port, proto);
	__u32 word = bit / 64;
	__u64 *w = bpf_map_lookup_elem(&beacon_revnat_filter, &word);

	return w && (*w & (1ULL << (bit & 63)));
}

static __always_inline void revnat_filter_set(const union beacon_addr *addr, __be16 port,
					      __u8 proto)
{
	__u32 bit = revnat_filter_bit(addr, port, proto);
	__u32 word = bit / 64;
	__u64 mask = 1ULL << (bit & 63);
	__u64 *w = bpf_map_lookup_elem(&beacon_revnat_filter, &word);

	if (w && !(*w & mask))
		__sync_fetch_and_or(w, mask);
}

/* The reverse key of flow `fwd` to backend `be`: the reply as it will be on the wire
 * (backend -> client). */
static __always_inline void revnat_key(struct flow_key *rkey, const struct flow_key *fwd,
				       const struct backend *be)
{
	__builtin_memset(rkey, 0, sizeof(*rkey));
	rkey->src = be->addr;
	rkey->dst = fwd->src;
	rkey->sport = be->port;
	rkey->dport = fwd->sport;
	rkey->proto = fwd->proto;
	rkey->family = fwd->family;
}

/* Remembers in `table` (beacon_revnat or beacon_revnat_overflow) how to translate the
 * backend's replies: key is the reply as it will be on the wire, value the VIP endpoint the
 * client sent to. */
static __always_inline void revnat_store(void *table, const struct flow_key *fwd,
					 const struct backend *be)
{
	struct flow_key rkey;
	struct vip_endpoint vip = {};

	revnat_key(&rkey, fwd, be);
	vip.addr = fwd->dst;
	vip.port = fwd->dport;
	vip.family = fwd->family;
	revnat_filter_set(&be->addr, be->port, fwd->proto);
	bpf_map_update_elem(table, &rkey, &vip, BPF_ANY);
}

/*
 * A hit on an established flow: its reverse entry is looked up, which marks it referenced in
 * the LRU just as the hit marked the forward entry, so the LRU does not evict the reverse entry
 * of a flow whose forward entry stays hot (replies may be rarer than requests, or all in one
 * burst). One that was evicted anyway is written again: the flow's replies are translated from
 * its next forward packet on. Costs one hash lookup per hit.
 */
static __always_inline void revnat_refresh(const struct flow_key *fwd, const struct backend *be)
{
	struct flow_key rkey;

	revnat_key(&rkey, fwd, be);
	if (likely(bpf_map_lookup_elem(&beacon_revnat, &rkey)))
		return;
	stat_inc(BEACON_STAT_XDP_REVNAT_RESTORED);
	revnat_store(&beacon_revnat, fwd, be);
}

/*
 * The new-flow rate guard (Katran's flood mode): whether this CPU may save one more new flow in
 * the current one-second window, at most beacon_new_flow_rate_limit (lib/config.h) per window.
 * The window is per CPU, like the flow table's LRU lists, and restarts with the first new flow
 * a second or more after it began. Plain adds: a per-CPU value, and XDP runs to completion.
 */
static __always_inline int new_flow_may_save(void)
{
	struct flow_rate *rate;
	__u32 zero = 0;
	__u64 now;

	if (!beacon_new_flow_rate_limit)
		return 1;
	rate = bpf_map_lookup_elem(&beacon_flow_rate, &zero);
	if (!rate)
		return 1;
	now = bpf_ktime_get_ns();
	if (now - rate->window_start >= NSEC_PER_SEC) {
		rate->window_start = now;
		rate->new_flows = 0;
	}
	rate->new_flows += 1;
	return rate->new_flows <= beacon_new_flow_rate_limit;
}

/*
 * Finds or picks the backend for a packet of flow `flow` to VIP `vip`. Returns a FLOW_* result
 * and fills *be and *ref, or a negative errno when the VIP has no usable backend.
 *
 * A new flow over the rate guard (FLOW_UNSAVED) is balanced like any other (the ring picks, so
 * its next packet picks the same backend while the ring is unchanged) but stays out of the flow
 * table; its reverse entry goes to beacon_revnat_overflow. A reselected flow is saved whatever
 * the rate: it replaces its own entry and evicts nothing.
 */
static __always_inline int flow_backend(const struct flow_key *flow, const struct vip_info *vip,
					struct backend **be, struct backend_ref *ref)
{
	struct backend_ref *pinned = bpf_map_lookup_elem(&beacon_flows, flow);
	int result = FLOW_NEW;

	if (pinned) {
		*be = backend_ref_get(pinned);
		if (likely(*be)) {
			*ref = *pinned;
			revnat_refresh(flow, *be);
			return FLOW_HIT;
		}
		count_backend_moved_away(pinned->id);
		result = FLOW_RESELECT;
	}
	*be = pick_backend(vip->index, flow_hash(flow), flow->family, ref);
	if (!*be)
		return -ENOENT;
	if (result == FLOW_NEW && !new_flow_may_save()) {
		revnat_store(&beacon_revnat_overflow, flow, *be);
		return FLOW_UNSAVED;
	}
	bpf_map_update_elem(&beacon_flows, flow, ref, BPF_ANY);
	revnat_store(&beacon_revnat, flow, *be);
	return result;
}

#endif /* BEACON_FLOW_H */

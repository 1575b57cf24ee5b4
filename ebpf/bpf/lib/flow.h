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
};

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

/* Remembers how to translate the backend's replies: key is the reply as it will be on the
 * wire (backend -> client), value the VIP endpoint the client sent to. */
static __always_inline void revnat_store(const struct flow_key *fwd, const struct backend *be)
{
	struct flow_key rkey = {};
	struct vip_endpoint vip = {};

	rkey.src = be->addr;
	rkey.dst = fwd->src;
	rkey.sport = be->port;
	rkey.dport = fwd->sport;
	rkey.proto = fwd->proto;
	rkey.family = fwd->family;
	vip.addr = fwd->dst;
	vip.port = fwd->dport;
	vip.family = fwd->family;
	revnat_filter_set(&be->addr, be->port, fwd->proto);
	bpf_map_update_elem(&beacon_revnat, &rkey, &vip, BPF_ANY);
}

/*
 * Finds or picks the backend for a packet of flow `flow` to VIP `vip`. Returns a FLOW_* result
 * and fills *be and *ref, or a negative errno when the VIP has no usable backend.
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
			return FLOW_HIT;
		}
		count_backend_moved_away(pinned->id);
		result = FLOW_RESELECT;
	}
	*be = pick_backend(vip->index, flow_hash(flow), flow->family, ref);
	if (!*be)
		return -ENOENT;
	bpf_map_update_elem(&beacon_flows, flow, ref, BPF_ANY);
	revnat_store(flow, *be);
	return result;
}

#endif /* BEACON_FLOW_H */

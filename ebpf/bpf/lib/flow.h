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

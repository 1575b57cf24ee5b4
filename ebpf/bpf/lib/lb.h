/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Backend selection, shared by the XDP and socket paths: VIP lookup, Maglev ring lookup and
 * the rules for which backend may take a flow.
 *
 * Rules (the DC/OS Minuteman semantics, research/dcos-net.md §2.3):
 *  - a new flow takes the backend in its ring slot; if that backend is drained or removed
 *    (userspace marked it but has not rebuilt the ring yet), the next slots are tried, up to
 *    BEACON_PICK_PROBES;
 *  - a drained backend (weight 0) keeps the flows it has;
 *  - a removed backend, or an id reused for another address (generation changed), loses its flows:
 *    they are picked again.
 * Helpers take keys, not the program context, and return 0 or a negative errno.
 */
#ifndef BEACON_LB_H
#define BEACON_LB_H

#include "maps.h"

static __always_inline struct vip_info *vip_lookup(const union beacon_addr *addr, __be16 port,
						   __u8 proto, __u8 family)
{
	struct vip_key key = {};

	key.addr = *addr;
	key.port = port;
	key.proto = proto;
	key.family = family;
	return bpf_map_lookup_elem(&beacon_vips, &key);
}

static __always_inline int backend_takes_new_flows(const struct backend *be)
{
	return !(be->flags & (BEACON_BACKEND_F_DRAIN | BEACON_BACKEND_F_REMOVED));
}

/* The backend a pinned reference points at, or NULL if it was removed or its id reused. */
static __always_inline struct backend *backend_ref_get(const struct backend_ref *ref)
{
	__u32 id = ref->id;
	struct backend *be = bpf_map_lookup_elem(&beacon_backends, &id);

	if (!be || be->generation != ref->generation || (be->flags & BEACON_BACKEND_F_REMOVED))
		return NULL;
	return be;
}

/*
 * Picks a backend of VIP `vip_index` for a new flow whose hash is `hash`. On success fills
 * *ref and returns the backend; returns NULL if the VIP has no backend that takes new flows.
 */
static __always_inline struct backend *pick_backend(__u32 vip_index, __u32 hash, __u8 family,
						    struct backend_ref *ref)
{
	/* Multiply-shift maps the hash onto [0, RING_SIZE) without a division (Lemire). */
	__u32 slot = ((__u64)hash * BEACON_RING_SIZE) >> 32;
	__u32 row = vip_index * BEACON_RING_SIZE;

	if (vip_index >= BEACON_MAX_VIPS)
		return NULL;
	for (int i = 0; i < BEACON_PICK_PROBES; i++) {
		__u32 key = row + slot;
		__u32 *id = bpf_map_lookup_elem(&beacon_rings, &key);
		struct backend *be;

		/* An empty slot means an empty ring: userspace fills every slot or none. */
		if (!id || *id == 0)
			return NULL;
		key = *id;
		be = bpf_map_lookup_elem(&beacon_backends, &key);
		if (be && be->family == family && backend_takes_new_flows(be)) {
			ref->id = key;
			ref->generation = be->generation;
			return be;
		}
		slot = slot + 1 == BEACON_RING_SIZE ? 0 : slot + 1;
	}
	return NULL;
}

#endif /* BEACON_LB_H */

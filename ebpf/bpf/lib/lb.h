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

#include "hash.h"
#include "maps.h"

/* Whether an address lies in the named-VIP ranges (11.0.0.0/8, fd01:c::/64): Beacon's alone. */
static __always_inline int in_named_range(const union beacon_addr *addr, __u8 family)
{
	if (family == BEACON_AF_INET)
		return (bpf_ntohl(addr->v4) & BEACON_NAMED_V4_MASK) == BEACON_NAMED_V4_NET;
	return addr->v6[0] == bpf_htonl(BEACON_NAMED_V6_NET_HI) &&
	       addr->v6[1] == bpf_htonl(BEACON_NAMED_V6_NET_LO);
}

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

/* The 4 bytes after a vip_key's address (port, proto, family) as one word, for one compare. */
static __always_inline __u32 vip_key_tail(const struct vip_key *key)
{
	__u32 tail;

	__builtin_memcpy(&tail, &key->port, sizeof(tail));
	return tail;
}

/*
 * XDP's VIP lookup: the same answer as vip_lookup(), from beacon_vip_slots, with inline array
 * loads instead of a hash-map helper call. The VIP is in one of BEACON_VIP_SLOT_PROBES slots
 * from vip_slot_hash(); all are checked (userspace empties a slot without moving others, so an
 * empty slot does not end the search). If none matches and the first candidate carries the
 * overflow mark, beacon_vips decides.
 *
 * Userspace writes a slot so that a lookup running at the same time never matches a slot that
 * is half written (an ARRAY update is a plain copy, not atomic), relying on rewrites of equal
 * bytes being harmless:
 *  - add: beacon_vips first; then the whole slot with key.family = 0 (never matches); then the
 *    same slot again with the real family;
 *  - remove: the slot with key.family = 0 and everything else unchanged; then beacon_vips;
 *  - change flags: rewrite the slot with only info.flags changed (a 4-byte word: old or new);
 *    a new index is a remove and an add.
 */
static __always_inline struct vip_info *vip_slot_lookup(const union beacon_addr *addr,
							__be16 port, __u8 proto, __u8 family)
{
	struct vip_key want = {};
	struct vip_slot *first = NULL;
	__u32 h;
	__u32 tail;

	want.port = port;
	want.proto = proto;
	want.family = family;
	tail = vip_key_tail(&want);
	h = vip_slot_hash(addr, port, proto, family);
	for (int i = 0; i < BEACON_VIP_SLOT_PROBES; i++) {
		__u32 key = (h + i) & (BEACON_VIP_SLOTS - 1);
		struct vip_slot *slot = bpf_map_lookup_elem(&beacon_vip_slots, &key);

		if (!slot)
			return NULL;
		if (i == 0)
			first = slot;
		/* The tail holds the family, so an IPv4 VIP never matches an IPv6 slot; the other
		 * 12 address bytes of an IPv4 key are zero on both sides. */
		if (slot->key.addr.v6[0] != addr->v6[0] || vip_key_tail(&slot->key) != tail)
			continue;
		if (family == BEACON_AF_INET6 &&
		    (slot->key.addr.v6[1] != addr->v6[1] || slot->key.addr.v6[2] != addr->v6[2] ||
		     slot->key.addr.v6[3] != addr->v6[3]))
			continue;
		return &slot->info;
	}
	if (first && unlikely(first->overflow))
		return vip_lookup(addr, port, proto, family);
	return NULL;
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

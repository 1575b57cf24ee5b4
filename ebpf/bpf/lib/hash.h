/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The hashes that pick a Maglev ring slot: a flow's 5-tuple (XDP) or a socket's cookie
 * (socket LB). MurmurHash3's 32-bit block and finaliser steps (public domain, Austin Appleby),
 * fed 32-bit words. ebpf/src/abi.rs has the same functions so userspace and tests can predict
 * which slot a flow lands on.
 */
#ifndef BEACON_HASH_H
#define BEACON_HASH_H

#include "config.h"
#include "types.h"

static __always_inline __u32 rotl32(__u32 x, __u32 r)
{
	return (x << r) | (x >> (32 - r));
}

static __always_inline __u32 hash_word(__u32 h, __u32 k)
{
	k *= 0xcc9e2d51;
	k = rotl32(k, 15);
	k *= 0x1b873593;
	h ^= k;
	h = rotl32(h, 13);
	return h * 5 + 0xe6546b64;
}

static __always_inline __u32 hash_final(__u32 h, __u32 len)
{
	h ^= len;
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* Hash of (src, dst, sport, dport, proto). IPv4 hashes only the first address word. */
static __always_inline __u32 flow_hash(const struct flow_key *k)
{
	__u32 h = beacon_hash_seed;

	h = hash_word(h, k->src.v6[0]);
	if (k->family == BEACON_AF_INET6) {
		h = hash_word(h, k->src.v6[1]);
		h = hash_word(h, k->src.v6[2]);
		h = hash_word(h, k->src.v6[3]);
	}
	h = hash_word(h, k->dst.v6[0]);
	if (k->family == BEACON_AF_INET6) {
		h = hash_word(h, k->dst.v6[1]);
		h = hash_word(h, k->dst.v6[2]);
		h = hash_word(h, k->dst.v6[3]);
	}
	h = hash_word(h, ((__u32)k->sport << 16) | k->dport);
	h = hash_word(h, k->proto);
	return hash_final(h, k->family);
}

/*
 * Hash of a VIP key for its place in beacon_vip_slots (vip_slot_hash() in abi.rs). Node-local:
 * no seed, since only this node's userspace and programs use it.
 */
static __always_inline __u32 vip_slot_hash(const union beacon_addr *addr, __be16 port, __u8 proto,
					   __u8 family)
{
	__u32 h = 0;

	h = hash_word(h, addr->v6[0]);
	if (family == BEACON_AF_INET6) {
		h = hash_word(h, addr->v6[1]);
		h = hash_word(h, addr->v6[2]);
		h = hash_word(h, addr->v6[3]);
	}
	h = hash_word(h, ((__u32)port << 16) | ((__u32)proto << 8) | family);
	return hash_final(h, family);
}

/* Hash of a socket cookie: a connected socket keeps one backend, and an unconnected UDP
 * socket sends every datagram to the same backend while the ring does not change. */
static __always_inline __u32 cookie_hash(__u64 cookie)
{
	__u32 h = beacon_hash_seed;

	h = hash_word(h, (__u32)cookie);
	h = hash_word(h, (__u32)(cookie >> 32));
	return hash_final(h, 8);
}

#endif /* BEACON_HASH_H */

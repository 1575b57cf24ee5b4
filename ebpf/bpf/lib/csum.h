/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Incremental Internet checksum updates (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')).
 *
 * XDP has no skb and no checksum helpers that know about it, so the XDP path updates checksums
 * inline: accumulate the one's-complement difference of every changed 32- or 16-bit word
 * (addresses and ports, including the L4 pseudo-header's address), fold once, apply once.
 * The arithmetic works on raw network-order words: one's-complement sums do not care about
 * byte order as long as every word is taken the same way.
 *
 * The tc path uses the kernel's bpf_l3/l4_csum_replace instead, because only they handle
 * CHECKSUM_PARTIAL skbs (locally generated replies with checksum offload) correctly.
 */
#ifndef BEACON_CSUM_H
#define BEACON_CSUM_H

#include "common.h"

/* Add with end-around carry. */
static __always_inline __u32 csum_add(__u32 acc, __u32 v)
{
	acc += v;
	return acc + (acc < v);
}

/* Accumulate the change of one 32-bit word from `from` to `to`. */
static __always_inline __u32 csum_diff32(__u32 acc, __be32 from, __be32 to)
{
	return csum_add(csum_add(acc, ~from), to);
}

/* Accumulate the change of one 16-bit word. ~from is kept to 16 bits so it stays one word. */
static __always_inline __u32 csum_diff16(__u32 acc, __be16 from, __be16 to)
{
	return csum_add(csum_add(acc, (__u16)~from), to);
}

/* Accumulate the change of a 16-byte address. */
static __always_inline __u32 csum_diff128(__u32 acc, const __be32 *from, const __be32 *to)
{
	acc = csum_diff32(acc, from[0], to[0]);
	acc = csum_diff32(acc, from[1], to[1]);
	acc = csum_diff32(acc, from[2], to[2]);
	return csum_diff32(acc, from[3], to[3]);
}

static __always_inline __u16 csum_fold(__u32 acc)
{
	acc = (acc & 0xffff) + (acc >> 16);
	acc = (acc & 0xffff) + (acc >> 16);
	return (__u16)acc;
}

/* Apply an accumulated difference to a stored checksum: ~(~check + diff). */
static __always_inline __sum16 csum_apply(__sum16 check, __u32 diff)
{
	return (__sum16)~csum_fold(csum_add((__u16)~check, diff));
}

#endif /* BEACON_CSUM_H */

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

/* Accumulate a 16-byte address. */
static __always_inline __u32 csum_add128(__u32 acc, const __be32 *w)
{
	return csum_add(csum_add(csum_add(csum_add(acc, w[0]), w[1]), w[2]), w[3]);
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

/*
 * Apply a pseudo-header difference to the seed a CHECKSUM_PARTIAL packet carries in its L4
 * checksum field: the folded pseudo-header sum, not complemented (the kernel writes
 * ~csum_tcpudp_magic(...)), which the NIC or skb_checksum_help() later completes over the
 * segment. So the seed takes the address change as a plain addition, and port changes not at
 * all (the final sum covers the ports as they are then).
 */
static __always_inline __sum16 csum_seed_apply(__sum16 seed, __u32 diff)
{
	return (__sum16)csum_fold(csum_add((__u16)seed, diff));
}

/* Upper bound of bytes csum_xdp_segment_ok() adds up: a 9000-byte MTU's L4 segment and some. */
#define CSUM_VERIFY_MAX 9216
#define CSUM_CHUNK 256

/*
 * Whether the `len` bytes at offset `off` of an XDP frame, plus the unfolded sum `acc`, add up
 * to a valid Internet checksum (fold 0xffff): 1 if so, 0 if not, -1 if the bytes are not all in
 * the frame's linear data or len > CSUM_VERIFY_MAX. 256-byte chunks through bpf_csum_diff, then
 * 4-byte words, then the last 0-3 bytes (an odd last byte is its 16-bit word with a zero
 * low-order byte, RFC 1071), with raw loads as everywhere here.
 *
 * A global function: the verifier checks it once on its own instead of once per caller path
 * (inlined, its loops multiplied the program's states until loading took seconds).
 */
__noinline int csum_xdp_segment_ok(struct xdp_md *ctx, __u32 off, __u32 len, __u32 acc)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 left = len;
	__u8 *p;

	if (!ctx || off > 128 || len > CSUM_VERIFY_MAX)
		return -1;
	p = data + off;
	if ((void *)p + len > data_end)
		return -1;
	for (int i = 0; i < CSUM_VERIFY_MAX / CSUM_CHUNK; i++) {
		__s64 sum;

		if (left < CSUM_CHUNK)
			break;
		barrier_var(p); /* keep the bound check on p, not on data_end - CSUM_CHUNK */
		if ((void *)(p + CSUM_CHUNK) > data_end)
			return -1;
		sum = bpf_csum_diff(NULL, 0, (__be32 *)p, CSUM_CHUNK, acc);
		if (sum < 0)
			return -1;
		acc = (__u32)sum;
		p += CSUM_CHUNK;
		left -= CSUM_CHUNK;
	}
	for (int i = 0; i < CSUM_CHUNK / 4; i++) {
		if (left < 4)
			break;
		barrier_var(p);
		if ((void *)(p + 4) > data_end)
			return -1;
		acc = csum_add(acc, *(__u32 *)p);
		p += 4;
		left -= 4;
	}
	barrier_var(p);
	if (left >= 2) {
		if ((void *)(p + 2) > data_end)
			return -1;
		acc = csum_add(acc, *(__u16 *)p);
		p += 2;
		left -= 2;
	}
	barrier_var(p);
	if (left == 1) {
		if ((void *)(p + 1) > data_end)
			return -1;
		acc = csum_add(acc, *p);
	}
	return csum_fold(acc) == 0xffff;
}

#endif /* BEACON_CSUM_H */

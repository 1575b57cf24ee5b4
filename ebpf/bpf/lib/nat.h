/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet rewrites: destination NAT in XDP (client -> VIP becomes client -> backend) and source
 * NAT of replies in tc (backend -> client becomes VIP -> client), with checksum updates.
 *
 * TCP and UDP both carry source port at offset 0 and destination port at offset 2; their
 * checksums sit at offset 16 (TCP) and 6 (UDP). Both checksums cover a pseudo-header with the
 * addresses, so an address change updates the L4 checksum too. A UDP/IPv4 checksum of 0 means
 * "none" and stays 0; a computed UDP checksum of 0 is sent as 0xffff (RFC 768).
 */
#ifndef BEACON_NAT_H
#define BEACON_NAT_H

#include "csum.h"
#include "parse.h"

#define L4_SPORT_OFF 0
#define L4_DPORT_OFF 2
#define TCP_CSUM_OFF 16
#define UDP_CSUM_OFF 6

static __always_inline __u32 l4_csum_off(__u8 proto)
{
	return proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF;
}

/* The L4 segment's length from the IP header (IPv4 without options, IPv6 without extension
 * headers: the only packets parse_packet() accepts). */
static __always_inline __u32 l4_len(const struct packet *pkt, void *data_end)
{
	if (pkt->flow.family == BEACON_AF_INET) {
		struct iphdr *iph = pkt->l3;

		if ((void *)(iph + 1) > data_end)
			return 0;
		return (__u32)bpf_ntohs(iph->tot_len) - sizeof(*iph);
	} else {
		struct ipv6hdr *ip6h = pkt->l3;

		if ((void *)(ip6h + 1) > data_end)
			return 0;
		return bpf_ntohs(ip6h->payload_len);
	}
}

/* The pseudo-header's one's-complement sum (unfolded) for the packet as it arrived. */
static __always_inline __u32 pseudo_header_sum(const struct packet *pkt, __u32 len)
{
	const struct flow_key *f = &pkt->flow;

	if (f->family == BEACON_AF_INET)
		return csum_add(csum_add(csum_add(f->src.v4, f->dst.v4), bpf_htons(f->proto)),
				bpf_htons((__u16)len));
	return csum_add(csum_add(csum_add128(0, f->src.v6), csum_add128(0, f->dst.v6)),
			csum_add(bpf_htonl(len), bpf_htonl(f->proto)));
}

/*
 * Whether the L4 checksum field holds a CHECKSUM_PARTIAL seed rather than a checksum.
 *
 * XDP sees no skb, so it cannot ask: a frame from a local sender with checksum offload (a veth
 * peer, generic XDP on any device) carries in the field only the folded pseudo-header sum,
 * to be completed over the segment later by the NIC or skb_checksum_help(). A complete
 * checksum equals that value only by chance (1 in 65536), so: a field that differs from the
 * seed is a checksum; one that equals it is a seed unless the segment actually checks out
 * (summed here, so only partial frames, and that rare chance, pay for the sum). A segment too
 * long to sum (> CSUM_VERIFY_MAX, or beyond the linear data) counts as a seed: that is a GSO
 * frame, always partial.
 */
static __always_inline int l4_csum_is_seed(struct xdp_md *ctx, const struct packet *pkt,
					   void *data_end, __sum16 check)
{
	__u32 len = l4_len(pkt, data_end);
	__u32 pseudo = pseudo_header_sum(pkt, len);

	if (likely(check != (__sum16)csum_fold(pseudo)))
		return 0;
	return csum_xdp_segment_ok(ctx, pkt->l4 - (void *)(long)ctx->data, len, pseudo) != 1;
}

/*
 * XDP: rewrite the destination to the backend.
 *
 * The L4 checksum gets the address and port change as a checksum, or only the address change
 * if it is a CHECKSUM_PARTIAL seed (l4_csum_is_seed()); the IPv4 header checksum is always
 * complete. A UDP checksum of 0 (none) is left alone.
 *
 * The parser checked every bound, but the verifier merges its IPv4/IPv6 and TCP/UDP paths and
 * keeps only the shortest bound for pkt->l3 and pkt->l4, so each header is checked again right
 * where it is written. These checks cannot fail at run time (parse_packet() made the same
 * ones); they are there for the verifier.
 */
static __always_inline void xdp_dnat(struct xdp_md *ctx, struct packet *pkt, void *data_end,
				     const struct backend *be)
{
	struct tcphdr *th = pkt->l4;
	struct udphdr *uh = pkt->l4; /* dest sits at the same offset in TCP and UDP */
	int is_tcp = pkt->flow.proto == IPPROTO_TCP;
	__u32 addr_diff;
	__u32 port_diff;
	__sum16 check;
	int seed;

	if ((void *)(uh + 1) > data_end)
		return;
	if (is_tcp) {
		if ((void *)(th + 1) > data_end)
			return;
		check = th->check;
	} else {
		check = uh->check;
	}
	if (!is_tcp && !check)
		seed = -1; /* no UDP checksum: nothing to update */
	else
		seed = l4_csum_is_seed(ctx, pkt, data_end, check);
	port_diff = csum_diff16(0, uh->dest, be->port);
	uh->dest = be->port;
	if (pkt->flow.family == BEACON_AF_INET) {
		struct iphdr *iph = pkt->l3;

		if ((void *)(iph + 1) > data_end)
			return;
		addr_diff = csum_diff32(0, iph->daddr, be->addr.v4);
		iph->daddr = be->addr.v4;
		iph->check = csum_apply(iph->check, addr_diff);
	} else {
		struct ipv6hdr *ip6h = pkt->l3;

		if ((void *)(ip6h + 1) > data_end)
			return;
		addr_diff = csum_diff128(0, pkt->flow.dst.v6, be->addr.v6);
		__builtin_memcpy(&ip6h->daddr, be->addr.bytes, 16);
	}
	if (seed < 0)
		return;
	if (seed)
		check = csum_seed_apply(check, addr_diff);
	else
		check = csum_apply(check, csum_add(addr_diff, port_diff));
	if (is_tcp) {
		if ((void *)(th + 1) > data_end)
			return;
		th->check = check;
	} else {
		/* Only a computed checksum can come out 0, which UDP sends as 0xffff (RFC 768). */
		uh->check = check ? check : (__sum16)0xffff;
	}
}

/*
 * tc: rewrite the source of a reply to the VIP endpoint, at the given header offsets, in three
 * helper calls. The L4 checksum goes through bpf_l4_csum_replace(), which also keeps
 * CHECKSUM_PARTIAL skbs right (a seed takes the address change and not the port's): one call
 * for the address (pseudo-header), one for the port. The IP header checksum (always complete,
 * computed inline), the source address and the L4 source port are contiguous with only the
 * unchanged destination address between them, so one bpf_skb_store_bytes() writes them all:
 * IPv4 bytes 10..21 (check, saddr, daddr, sport), IPv6 bytes 8..41 (saddr, daddr, sport).
 * Returns 0 or a negative errno from a helper.
 */
struct snat4_bytes {
	__sum16 check;
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
} __attribute__((packed));

struct snat6_bytes {
	__be32 saddr[4];
	__be32 daddr[4];
	__be16 sport;
} __attribute__((packed));

_Static_assert(sizeof(struct snat4_bytes) == 12, "IPv4 check..sport");
_Static_assert(sizeof(struct snat6_bytes) == 34, "IPv6 saddr..sport");

static __always_inline int skb_snat(struct __sk_buff *skb, const struct packet *pkt,
				    void *data_end, __u32 l3_off, __u32 l4_off,
				    const struct vip_endpoint *vip)
{
	__u32 csum_off = l4_off + l4_csum_off(pkt->flow.proto);
	__u64 udp_flag = pkt->flow.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	int ret;

	if (pkt->flow.family == BEACON_AF_INET) {
		struct iphdr *iph = pkt->l3;
		struct snat4_bytes w;

		if ((void *)(iph + 1) > data_end)
			return -EFAULT;
		w.check = csum_apply(iph->check, csum_diff32(0, iph->saddr, vip->addr.v4));
		w.saddr = vip->addr.v4;
		w.daddr = iph->daddr;
		w.sport = vip->port;
		ret = bpf_l4_csum_replace(skb, csum_off, pkt->flow.src.v4, vip->addr.v4,
					  BPF_F_PSEUDO_HDR | udp_flag | sizeof(__be32));
		if (ret < 0)
			return ret;
		ret = bpf_l4_csum_replace(skb, csum_off, pkt->flow.sport, vip->port,
					  udp_flag | sizeof(__be16));
		if (ret < 0)
			return ret;
		return bpf_skb_store_bytes(skb, l3_off + offsetof(struct iphdr, check), &w,
					   sizeof(w), 0);
	} else {
		struct snat6_bytes w;

		__builtin_memcpy(w.saddr, vip->addr.v6, 16);
		__builtin_memcpy(w.daddr, pkt->flow.dst.v6, 16);
		w.sport = vip->port;
		ret = bpf_l4_csum_replace(skb, csum_off, 0,
					  csum_diff128(0, pkt->flow.src.v6, vip->addr.v6),
					  BPF_F_PSEUDO_HDR | udp_flag);
		if (ret < 0)
			return ret;
		ret = bpf_l4_csum_replace(skb, csum_off, pkt->flow.sport, vip->port,
					  udp_flag | sizeof(__be16));
		if (ret < 0)
			return ret;
		return bpf_skb_store_bytes(skb, l3_off + offsetof(struct ipv6hdr, saddr), &w,
					   sizeof(w), 0);
	}
}

#endif /* BEACON_NAT_H */

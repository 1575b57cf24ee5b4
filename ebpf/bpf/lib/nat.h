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

/*
 * XDP: rewrite the destination to the backend.
 *
 * The parser checked every bound, but the verifier merges its IPv4/IPv6 and TCP/UDP paths and
 * keeps only the shortest bound for pkt->l3 and pkt->l4, so each header is checked again right
 * where it is written. These checks cannot fail at run time (parse_packet() made the same
 * ones); they are there for the verifier.
 */
static __always_inline void xdp_dnat(struct packet *pkt, void *data_end, const struct backend *be)
{
	struct udphdr *uh = pkt->l4; /* dest sits at the same offset in TCP and UDP */
	__u32 diff;

	if ((void *)(uh + 1) > data_end)
		return;
	diff = csum_diff16(0, uh->dest, be->port);
	uh->dest = be->port;
	if (pkt->flow.family == BEACON_AF_INET) {
		struct iphdr *iph = pkt->l3;
		__u32 addr_diff;

		if ((void *)(iph + 1) > data_end)
			return;
		addr_diff = csum_diff32(0, iph->daddr, be->addr.v4);
		iph->daddr = be->addr.v4;
		iph->check = csum_apply(iph->check, addr_diff);
		diff = csum_add(diff, addr_diff);
	} else {
		struct ipv6hdr *ip6h = pkt->l3;

		if ((void *)(ip6h + 1) > data_end)
			return;
		diff = csum_diff128(diff, pkt->flow.dst.v6, be->addr.v6);
		__builtin_memcpy(&ip6h->daddr, be->addr.bytes, 16);
	}
	if (pkt->flow.proto == IPPROTO_TCP) {
		struct tcphdr *th = pkt->l4;

		if ((void *)(th + 1) > data_end)
			return;
		th->check = csum_apply(th->check, diff);
	} else if (uh->check) {
		uh->check = csum_apply(uh->check, diff);
		if (!uh->check)
			uh->check = (__sum16)0xffff;
	}
}

/*
 * tc: rewrite the source of a reply to the VIP endpoint, at the given header offsets. Uses
 * the skb checksum helpers, which also keep CHECKSUM_PARTIAL skbs right. Returns 0 or a
 * negative errno from a helper.
 */
static __always_inline int skb_snat(struct __sk_buff *skb, const struct packet *pkt,
				    __u32 l3_off, __u32 l4_off, const struct vip_endpoint *vip)
{
	__u32 csum_off = l4_off + l4_csum_off(pkt->flow.proto);
	__u64 udp_flag = pkt->flow.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
	__be16 old_port = pkt->flow.sport;
	__be16 new_port = vip->port;
	int ret;

	if (pkt->flow.family == BEACON_AF_INET) {
		__be32 old_addr = pkt->flow.src.v4;
		__be32 new_addr = vip->addr.v4;

		ret = bpf_l4_csum_replace(skb, csum_off, old_addr, new_addr,
					  BPF_F_PSEUDO_HDR | udp_flag | sizeof(new_addr));
		if (ret < 0)
			return ret;
		ret = bpf_l3_csum_replace(skb, l3_off + offsetof(struct iphdr, check), old_addr,
					  new_addr, sizeof(new_addr));
		if (ret < 0)
			return ret;
		ret = bpf_skb_store_bytes(skb, l3_off + offsetof(struct iphdr, saddr), &new_addr,
					  sizeof(new_addr), 0);
	} else {
		__s64 diff = bpf_csum_diff((__be32 *)pkt->flow.src.v6, 16, (__be32 *)vip->addr.v6,
					   16, 0);

		if (diff < 0)
			return (int)diff;
		ret = bpf_l4_csum_replace(skb, csum_off, 0, (__u32)diff,
					  BPF_F_PSEUDO_HDR | udp_flag);
		if (ret < 0)
			return ret;
		ret = bpf_skb_store_bytes(skb, l3_off + offsetof(struct ipv6hdr, saddr),
					  vip->addr.bytes, 16, 0);
	}
	if (ret < 0)
		return ret;
	ret = bpf_l4_csum_replace(skb, csum_off, old_port, new_port, udp_flag | sizeof(new_port));
	if (ret < 0)
		return ret;
	return bpf_skb_store_bytes(skb, l4_off + L4_SPORT_OFF, &new_port, sizeof(new_port), 0);
}

#endif /* BEACON_NAT_H */

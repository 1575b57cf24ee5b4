/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Packet parsing for XDP and tc: Ethernet, IPv4 or IPv6, then TCP or UDP, into a flow_key plus
 * pointers to the L3 and L4 headers.
 *
 * Out of scope, passed untouched and counted (BEACON_STAT_XDP_UNSUPPORTED or _NOT_*):
 *  - VLAN tags and other ethertypes;
 *  - IP fragments (no ports after the first; a fragment's flow cannot be looked up);
 *  - IPv4 options (ihl != 5) and IPv6 extension headers (next header not TCP/UDP directly);
 *  - ICMP, including ICMP errors about a translated flow (their embedded header keeps the
 *    backend address; a client sees e.g. "port unreachable" from the backend, not the VIP).
 */
#ifndef BEACON_PARSE_H
#define BEACON_PARSE_H

#include "common.h"
#include "consts.h"
#include "types.h"

struct packet {
	struct flow_key flow; /* as on the wire */
	void *l3; /* struct iphdr or struct ipv6hdr */
	void *l4; /* struct tcphdr or struct udphdr; both start with source and dest ports */
};

static __always_inline int is_ipv6_ext_header(__u8 nexthdr)
{
	switch (nexthdr) {
	case 0: /* hop-by-hop options */
	case 43: /* routing */
	case 44: /* fragment */
	case 50: /* ESP */
	case 51: /* AH */
	case 60: /* destination options */
	case 135: /* mobility */
	case 139: /* HIP */
	case 140: /* shim6 */
		return 1;
	}
	return 0;
}

/* The L4 header must hold the ports and the checksum: all 20 bytes of a TCP header. */
static __always_inline int parse_l4(void *l4, void *data_end, struct packet *pkt)
{
	if (pkt->flow.proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return BEACON_STAT_XDP_NOT_L4;
		pkt->flow.sport = th->source;
		pkt->flow.dport = th->dest;
	} else {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return BEACON_STAT_XDP_NOT_L4;
		pkt->flow.sport = uh->source;
		pkt->flow.dport = uh->dest;
	}
	pkt->l4 = l4;
	return 0;
}

static __always_inline int parse_ipv4(void *l3, void *data_end, struct packet *pkt)
{
	struct iphdr *iph = l3;

	if ((void *)(iph + 1) > data_end)
		return BEACON_STAT_XDP_NOT_IP;
	if (iph->ihl != 5 || (iph->frag_off & bpf_htons(BEACON_IP_MF | BEACON_IP_OFFSET)))
		return BEACON_STAT_XDP_UNSUPPORTED;
	if (iph->protocol != IPPROTO_TCP && iph->protocol != IPPROTO_UDP)
		return BEACON_STAT_XDP_NOT_L4;
	pkt->flow.family = BEACON_AF_INET;
	pkt->flow.proto = iph->protocol;
	pkt->flow.src.v4 = iph->saddr;
	pkt->flow.dst.v4 = iph->daddr;
	pkt->l3 = iph;
	return parse_l4(iph + 1, data_end, pkt);
}

static __always_inline int parse_ipv6(void *l3, void *data_end, struct packet *pkt)
{
	struct ipv6hdr *ip6h = l3;

	if ((void *)(ip6h + 1) > data_end)
		return BEACON_STAT_XDP_NOT_IP;
	if (ip6h->nexthdr != IPPROTO_TCP && ip6h->nexthdr != IPPROTO_UDP)
		return is_ipv6_ext_header(ip6h->nexthdr) ? BEACON_STAT_XDP_UNSUPPORTED
							 : BEACON_STAT_XDP_NOT_L4;
	pkt->flow.family = BEACON_AF_INET6;
	pkt->flow.proto = ip6h->nexthdr;
	__builtin_memcpy(pkt->flow.src.bytes, &ip6h->saddr, 16);
	__builtin_memcpy(pkt->flow.dst.bytes, &ip6h->daddr, 16);
	pkt->l3 = ip6h;
	return parse_l4(ip6h + 1, data_end, pkt);
}

/*
 * Fills *pkt from the frame at [data, data_end). Returns 0 when it is a TCP or UDP packet we
 * can translate, else the BEACON_STAT_* reason it is not (never 0).
 */
static __always_inline int parse_packet(void *data, void *data_end, struct packet *pkt)
{
	struct ethhdr *eth = data;

	__builtin_memset(&pkt->flow, 0, sizeof(pkt->flow));
	if ((void *)(eth + 1) > data_end)
		return BEACON_STAT_XDP_NOT_IP;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return parse_ipv4(eth + 1, data_end, pkt);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return parse_ipv6(eth + 1, data_end, pkt);
	return BEACON_STAT_XDP_NOT_IP;
}

#endif /* BEACON_PARSE_H */

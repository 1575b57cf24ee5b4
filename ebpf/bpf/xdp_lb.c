/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * beacon_xdp_lb: destination NAT of packets to a VIP, at XDP on the interface clients' packets
 * arrive on (e.g. the host side of a client namespace's veth).
 *
 * Client -> VIP:port becomes client -> backend:port in place, with checksums updated, and is
 * passed to the kernel (XDP_PASS), which routes it to the backend, local or remote. The flow
 * table pins each 5-tuple to its backend; beacon_revnat remembers how to undo the translation
 * for replies, which beacon_tc_revnat (tc_revnat.c) does on the way back out. New flows over
 * the rate guard are translated but not saved (lib/flow.h flow_backend()).
 *
 * Anything this program does not translate passes untouched, except TCP and UDP to an address
 * in the named-VIP ranges that is no VIP, which is dropped (fail closed); see lib/parse.h for
 * what is out of scope (fragments, IP options, IPv6 extension headers, ICMP, VLANs).
 */
#include "lib/flow.h"
#include "lib/nat.h"
#include "lib/parse.h"

static __always_inline void count_flow_result(int result)
{
	if (result == FLOW_HIT) {
		stat_inc(BEACON_STAT_XDP_FLOW_HIT);
		return;
	}
	if (result == FLOW_RESELECT) {
		stat_inc(BEACON_STAT_XDP_FLOW_RESELECT);
		return;
	}
	/* Every new flow counts as new; those the rate guard left out of the table, also unsaved. */
	stat_inc(BEACON_STAT_XDP_FLOW_NEW);
	if (result == FLOW_UNSAVED)
		stat_inc(BEACON_STAT_XDP_FLOW_UNSAVED);
}

SEC("xdp")
int beacon_xdp_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct backend_ref ref;
	struct vip_info *vip;
	struct backend *be;
	struct packet pkt;
	int reason;
	int result;

	stat_inc(BEACON_STAT_XDP_PACKETS);
	reason = parse_packet(data, data_end, &pkt);
	if (reason) {
		stat_inc(reason);
		return XDP_PASS;
	}
	vip = vip_slot_lookup(&pkt.flow.dst, pkt.flow.dport, pkt.flow.proto, pkt.flow.family);
	if (!vip && in_named_range(&pkt.flow.dst, pkt.flow.family)) {
		/* Fail closed: 11.0.0.0/8 is public address space, never to be routed off the node. */
		stat_inc(BEACON_STAT_XDP_RANGE_DROPPED);
		return XDP_DROP;
	}
	if (!vip || (vip->flags & BEACON_VIP_F_NO_PACKET_LB)) {
		stat_inc(BEACON_STAT_XDP_NOT_VIP);
		return XDP_PASS;
	}
	result = flow_backend(&pkt.flow, vip, &be, &ref);
	if (result < 0) {
		count_vip_miss(vip->index);
		stat_inc(BEACON_STAT_XDP_NO_BACKEND);
		return XDP_PASS;
	}
	count_flow_result(result);
	xdp_dnat(ctx, &pkt, data_end, be);
	count_forward(vip->index, ref.id, data_end - data, result != FLOW_HIT);
	return XDP_PASS;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * beacon_tc_revnat: source NAT of replies (backend -> client becomes VIP -> client), as a tc
 * (sched_cls) program on the egress of the same interface beacon_xdp_lb runs on.
 *
 * Why tc egress and not XDP on the backend side: a reply from a backend on this host is
 * generated locally and never passes any XDP hook; egress towards the client sees local and
 * forwarded replies alike. And a locally generated reply is usually CHECKSUM_PARTIAL (checksum
 * offload), which only the skb checksum helpers update correctly; XDP has no skb.
 */
#include "lib/counters.h"
#include "lib/flow.h"
#include "lib/nat.h"
#include "lib/parse.h"

SEC("classifier")
int beacon_tc_revnat(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct vip_endpoint *vip;
	struct packet pkt;
	__u32 l3_off;
	__u32 l4_off;

	stat_inc(BEACON_STAT_TC_PACKETS);
	if (parse_packet(data, data_end, &pkt))
		return TC_ACT_OK;
	/* Most packets that are no reply stop here, before the hash-map lookup. */
	if (!revnat_filter_test(&pkt.flow.src, pkt.flow.sport, pkt.flow.proto))
		return TC_ACT_OK;
	vip = bpf_map_lookup_elem(&beacon_revnat, &pkt.flow);
	if (!vip) /* a flow the rate guard did not save? */
		vip = bpf_map_lookup_elem(&beacon_revnat_overflow, &pkt.flow);
	if (!vip)
		return TC_ACT_OK;
	l3_off = pkt.l3 - data;
	l4_off = pkt.l4 - data;
	/* A failed rewrite leaves a half-translated packet; drop it rather than send it. */
	if (skb_snat(skb, &pkt, data_end, l3_off, l4_off, vip) < 0)
		return TC_ACT_SHOT;
	stat_inc(BEACON_STAT_TC_REVNAT);
	return TC_ACT_OK;
}

/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Benchmark baseline only (ebpf/examples/xdp_bench.rs): the least an XDP DNAT can do. IPv4
 * without options, TCP/UDP, one hash lookup of (daddr, dport, proto), rewrite, incremental
 * checksums, XDP_PASS. No flow table, no counters, no IPv6. The bench reports Beacon's program
 * as a ratio to this one, which factors out the machine.
 */
#include "../lib/common.h"
#include "../lib/csum.h"

struct baseline_key {
	__be32 addr;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

struct baseline_target {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct baseline_key);
	__type(value, struct baseline_target);
	__uint(max_entries, 64);
} baseline_dnat SEC(".maps");

SEC("xdp")
int baseline_xdp_dnat(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct baseline_key key = {};
	struct baseline_target *to;
	__be16 *dport;
	__sum16 *check;
	__u32 diff;

	/* 20 bytes of L4 header: enough for a TCP checksum. */
	if ((void *)(iph + 1) + 20 > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || iph->ihl != 5)
		return XDP_PASS;
	if (iph->protocol == IPPROTO_TCP)
		check = (void *)(iph + 1) + 16;
	else if (iph->protocol == IPPROTO_UDP)
		check = (void *)(iph + 1) + 6;
	else
		return XDP_PASS;
	dport = (void *)(iph + 1) + 2;
	key.addr = iph->daddr;
	key.port = *dport;
	key.proto = iph->protocol;
	to = bpf_map_lookup_elem(&baseline_dnat, &key);
	if (!to)
		return XDP_PASS;
	diff = csum_diff32(0, iph->daddr, to->addr);
	iph->check = csum_apply(iph->check, diff);
	iph->daddr = to->addr;
	diff = csum_diff16(diff, *dport, to->port);
	*dport = to->port;
	if (*check || iph->protocol == IPPROTO_TCP)
		*check = csum_apply(*check, diff);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

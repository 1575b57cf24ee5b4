/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Includes and small definitions every Beacon BPF file needs: UAPI headers, libbpf's helper
 * declarations, branch hints and address families. No maps and no logic live here.
 *
 * Only UAPI headers are used (no vmlinux.h, no CO-RE): the XDP, tc and sock_addr contexts are
 * stable UAPI structs. The one kernel-internal type (the UDP iterator context) is declared by
 * hand in sock_destroy.c with the fixed layout the iterator ABI guarantees.
 */
#ifndef BEACON_COMMON_H
#define BEACON_COMMON_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <linux/errno.h>

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#endif
#ifndef unlikely
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

#ifndef offsetof
#define offsetof(type, member) __builtin_offsetof(type, member)
#endif

/* Address families, as in <sys/socket.h> (not a UAPI header we can include here). */
#define BEACON_AF_INET 2
#define BEACON_AF_INET6 10

/* IPv4 "more fragments" flag and fragment offset mask, host order (RFC 791 §3.1). */
#define BEACON_IP_MF 0x2000
#define BEACON_IP_OFFSET 0x1fff

#endif /* BEACON_COMMON_H */

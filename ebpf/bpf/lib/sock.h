/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket load balancing, keyed helpers for sock_lb.c: translate a destination VIP to a backend
 * at connect()/sendmsg() and a backend source back to the VIP at recvmsg()/getpeername().
 *
 * The socket talks to the backend directly, so there is no per-packet NAT and no flow table
 * (Cilium's socket-LB, research/ebpf-lb.md §2). The reverse map is keyed by socket cookie and
 * backend address: one entry for a connected socket, one per backend for an unconnected UDP
 * socket. A connected UDP socket is also recorded by cookie alone (beacon_sock_conn) so the
 * UDP iterator in sock_destroy.c can find and destroy it when its backend is removed.
 */
#ifndef BEACON_SOCK_H
#define BEACON_SOCK_H

#include "counters.h"
#include "flow.h"
#include "hash.h"
#include "lb.h"

/* Socket hooks: 1 lets the call proceed, 0 fails it (with the errno set by bpf_set_retval). */
#define SYS_PROCEED 1
#define SYS_REJECT 0

/* The destination of a socket call, in the family the VIP table uses. */
struct sock_dest {
	union beacon_addr addr;
	__be16 port;
	__u8 proto;
	__u8 family;
};

static __always_inline void sock_rev_key_fill(struct sock_rev_key *key, __u64 cookie,
					      const union beacon_addr *addr, __be16 port,
					      __u8 family)
{
	__builtin_memset(key, 0, sizeof(*key));
	key->cookie = cookie;
	key->addr = *addr;
	key->port = port;
	key->family = family;
}

/*
 * The VIP a destination names, if the socket LB serves it (NULL: leave the call alone). The
 * first step of a forward translation, before anything else is asked of the socket: most
 * connect()/sendmsg() calls are to no VIP and stop here.
 */
static __always_inline struct vip_info *sock_vip(const struct sock_dest *dest)
{
	struct vip_info *vip = vip_lookup(&dest->addr, dest->port, dest->proto, dest->family);

	if (!vip || (vip->flags & BEACON_VIP_F_NO_SOCK_LB))
		return NULL;
	return vip;
}


/*
 * Whether a destination sock_vip() found no VIP for must be refused (fail closed): it lies in
 * the named-VIP ranges and is no VIP at all (one that socket LB leaves to XDP is not refused).
 * Every address there belongs to Beacon, and a name whose VIP is not programmed (yet, or any
 * more) must not send its traffic off the node to whatever routes 11.0.0.0/8.
 */
static __always_inline int sock_refuse_unknown(const struct sock_dest *dest)
{
	if (!in_named_range(&dest->addr, dest->family))
		return 0;
	if (vip_lookup(&dest->addr, dest->port, dest->proto, dest->family))
		return 0;
	stat_inc(BEACON_STAT_SOCK_RANGE_REFUSED);
	return 1;
}

/*
 * Translates a destination to VIP `vip` (from sock_vip()). Returns 1 and rewrites *dest to the
 * backend, or -ECONNREFUSED if the VIP has no usable backend. `connect` is a connect() (one
 * reverse entry per socket: written without looking first); otherwise a sendmsg(), which runs
 * per datagram and writes the entry only when it is missing. `pin_udp` records a connected UDP
 * socket for the destroy iterator.
 */
static __always_inline int sock_xlate_fwd(__u64 cookie, const struct vip_info *vip,
					  struct sock_dest *dest, int connect, int pin_udp)
{
	struct vip_endpoint ep = {};
	struct sock_rev_key rkey;
	struct backend_ref ref;
	struct backend *be;
	int new_flow = 0;

	be = pick_backend(vip->index, cookie_hash(cookie), dest->family, &ref);
	if (!be) {
		count_vip_miss(vip->index);
		stat_inc(BEACON_STAT_SOCK_NO_BACKEND);
		return -ECONNREFUSED;
	}
	sock_rev_key_fill(&rkey, cookie, &be->addr, be->port, dest->family);
	if (connect || !bpf_map_lookup_elem(&beacon_sock_rev, &rkey)) {
		ep.addr = dest->addr;
		ep.port = dest->port;
		ep.family = dest->family;
		/* The filter bit first: a reverse lookup that sees the entry must see the bit. */
		revnat_filter_set(&be->addr, be->port, dest->proto);
		bpf_map_update_elem(&beacon_sock_rev, &rkey, &ep, BPF_ANY);
		new_flow = 1;
	}
	if (pin_udp)
		bpf_map_update_elem(&beacon_sock_conn, &cookie, &ref, BPF_ANY);
	count_forward(vip->index, ref.id, 0, new_flow);
	stat_inc(BEACON_STAT_SOCK_XLATE);
	dest->addr = be->addr;
	dest->port = be->port;
	return 1;
}

/* Whether a peer may be a backend this host's sockets reached through a VIP (the reply filter
 * of lib/flow.h, shared with XDP: a set bit only costs a lookup). recvmsg()/getpeername() of
 * other peers need neither the socket cookie nor a hash-map lookup. */
static __always_inline int sock_peer_maybe_backend(const struct sock_dest *peer)
{
	return revnat_filter_test(&peer->addr, peer->port, peer->proto);
}

/*
 * Translates a peer (recvmsg source, getpeername result) back. Returns 1 and rewrites *peer
 * to the VIP endpoint if this socket reached the peer through a VIP, else 0.
 */
static __always_inline int sock_xlate_rev(__u64 cookie, struct sock_dest *peer)
{
	struct sock_rev_key rkey;
	struct vip_endpoint *ep;

	sock_rev_key_fill(&rkey, cookie, &peer->addr, peer->port, peer->family);
	ep = bpf_map_lookup_elem(&beacon_sock_rev, &rkey);
	if (!ep)
		return 0;
	stat_inc(BEACON_STAT_SOCK_REVNAT);
	peer->addr = ep->addr;
	peer->port = ep->port;
	return 1;
}

#endif /* BEACON_SOCK_H */

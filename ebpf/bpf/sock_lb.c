/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Socket load balancing: cgroup sock_addr programs, attached to a cgroup v2 (normally the
 * root), that send sockets straight to a backend instead of a VIP.
 *
 *   cgroup/connect4|6      TCP connect() and connected UDP: destination VIP -> backend
 *   cgroup/sendmsg4|6      unconnected UDP sendto()/sendmsg(): destination VIP -> backend
 *   cgroup/recvmsg4|6      UDP recvfrom()/recvmsg(): source backend -> VIP
 *   cgroup/getpeername4|6  getpeername(): backend -> VIP
 *
 * The entry points only move fields between the context and a struct sock_dest; lib/sock.h
 * does the work. IPv4-mapped IPv6 destinations (::ffff:a.b.c.d on a dual-stack socket) are
 * looked up as IPv4 VIPs, as the kernel will send IPv4.
 * A VIP without a usable backend fails connect()/sendmsg() with ECONNREFUSED, and so does any
 * other address in the named-VIP ranges 11.0.0.0/8 and fd01:c::/64 (fail closed: with the
 * data plane on, nothing sent to those ranges leaves the node untranslated).
 */
#include "lib/sock.h"

static __always_inline int is_v4_mapped(const __be32 *w)
{
	return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0x0000ffff);
}

static __always_inline int sock_reject(int err)
{
	bpf_set_retval(err);
	return SYS_REJECT;
}

static __always_inline int l4_supported(__u32 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP;
}

static __always_inline void sock4_dest_load(struct bpf_sock_addr *ctx, struct sock_dest *dest)
{
	__builtin_memset(dest, 0, sizeof(*dest));
	dest->addr.v4 = ctx->user_ip4;
	dest->port = (__be16)ctx->user_port;
	dest->proto = (__u8)ctx->protocol;
	dest->family = BEACON_AF_INET;
}

static __always_inline void sock4_dest_store(struct bpf_sock_addr *ctx,
					     const struct sock_dest *dest)
{
	ctx->user_ip4 = dest->addr.v4;
	ctx->user_port = dest->port;
}

/* Returns whether the address is IPv4-mapped (then *dest holds the IPv4 form). */
static __always_inline int sock6_dest_load(struct bpf_sock_addr *ctx, struct sock_dest *dest)
{
	__be32 w[4];

	w[0] = ctx->user_ip6[0];
	w[1] = ctx->user_ip6[1];
	w[2] = ctx->user_ip6[2];
	w[3] = ctx->user_ip6[3];
	__builtin_memset(dest, 0, sizeof(*dest));
	dest->port = (__be16)ctx->user_port;
	dest->proto = (__u8)ctx->protocol;
	if (is_v4_mapped(w)) {
		dest->addr.v4 = w[3];
		dest->family = BEACON_AF_INET;
		return 1;
	}
	__builtin_memcpy(dest->addr.v6, w, 16);
	dest->family = BEACON_AF_INET6;
	return 0;
}

static __always_inline void sock6_dest_store(struct bpf_sock_addr *ctx,
					     const struct sock_dest *dest, int mapped)
{
	if (mapped) {
		ctx->user_ip6[3] = dest->addr.v4;
	} else {
		ctx->user_ip6[0] = dest->addr.v6[0];
		ctx->user_ip6[1] = dest->addr.v6[1];
		ctx->user_ip6[2] = dest->addr.v6[2];
		ctx->user_ip6[3] = dest->addr.v6[3];
	}
	ctx->user_port = dest->port;
}

static __always_inline int sock4_fwd(struct bpf_sock_addr *ctx, int connect)
{
	struct vip_info *vip;
	struct sock_dest dest;
	int ret;

	sock4_dest_load(ctx, &dest);
	vip = l4_supported(ctx->protocol) ? sock_vip(&dest) : NULL;
	if (!vip)
		return sock_refuse_unknown(&dest) ? sock_reject(-ECONNREFUSED) : SYS_PROCEED;
	ret = sock_xlate_fwd(bpf_get_socket_cookie(ctx), vip, &dest, connect,
			     connect && dest.proto == IPPROTO_UDP);
	if (ret < 0)
		return sock_reject(ret);
	if (ret > 0)
		sock4_dest_store(ctx, &dest);
	return SYS_PROCEED;
}

static __always_inline int sock6_fwd(struct bpf_sock_addr *ctx, int connect)
{
	struct vip_info *vip;
	struct sock_dest dest;
	int mapped;
	int ret;

	mapped = sock6_dest_load(ctx, &dest);
	vip = l4_supported(ctx->protocol) ? sock_vip(&dest) : NULL;
	if (!vip)
		return sock_refuse_unknown(&dest) ? sock_reject(-ECONNREFUSED) : SYS_PROCEED;
	ret = sock_xlate_fwd(bpf_get_socket_cookie(ctx), vip, &dest, connect,
			     connect && dest.proto == IPPROTO_UDP);
	if (ret < 0)
		return sock_reject(ret);
	if (ret > 0)
		sock6_dest_store(ctx, &dest, mapped);
	return SYS_PROCEED;
}

static __always_inline int sock4_rev(struct bpf_sock_addr *ctx)
{
	struct sock_dest peer;

	sock4_dest_load(ctx, &peer);
	if (!sock_peer_maybe_backend(&peer))
		return SYS_PROCEED;
	if (sock_xlate_rev(bpf_get_socket_cookie(ctx), &peer))
		sock4_dest_store(ctx, &peer);
	return SYS_PROCEED;
}

static __always_inline int sock6_rev(struct bpf_sock_addr *ctx)
{
	struct sock_dest peer;
	int mapped = sock6_dest_load(ctx, &peer);

	if (!sock_peer_maybe_backend(&peer))
		return SYS_PROCEED;
	if (sock_xlate_rev(bpf_get_socket_cookie(ctx), &peer))
		sock6_dest_store(ctx, &peer, mapped);
	return SYS_PROCEED;
}

SEC("cgroup/connect4")
int beacon_connect4(struct bpf_sock_addr *ctx)
{
	return sock4_fwd(ctx, 1);
}

SEC("cgroup/connect6")
int beacon_connect6(struct bpf_sock_addr *ctx)
{
	return sock6_fwd(ctx, 1);
}

SEC("cgroup/sendmsg4")
int beacon_sendmsg4(struct bpf_sock_addr *ctx)
{
	return sock4_fwd(ctx, 0);
}

SEC("cgroup/sendmsg6")
int beacon_sendmsg6(struct bpf_sock_addr *ctx)
{
	return sock6_fwd(ctx, 0);
}

SEC("cgroup/recvmsg4")
int beacon_recvmsg4(struct bpf_sock_addr *ctx)
{
	return sock4_rev(ctx);
}

SEC("cgroup/recvmsg6")
int beacon_recvmsg6(struct bpf_sock_addr *ctx)
{
	return sock6_rev(ctx);
}

SEC("cgroup/getpeername4")
int beacon_getpeername4(struct bpf_sock_addr *ctx)
{
	return sock4_rev(ctx);
}

SEC("cgroup/getpeername6")
int beacon_getpeername6(struct bpf_sock_addr *ctx)
{
	return sock6_rev(ctx);
}

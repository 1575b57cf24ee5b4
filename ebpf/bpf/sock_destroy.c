/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * beacon_udp_destroy: a BPF iterator over UDP sockets that destroys connected UDP sockets whose
 * socket-LB backend was removed.
 *
 * connect() pins a UDP socket to one backend for its lifetime; when that backend goes away the
 * application would keep sending into the void (cilium#12859). Userspace marks the backend
 * BEACON_BACKEND_F_REMOVED, then reads this iterator once: for each UDP socket recorded in
 * beacon_sock_conn whose backend is no longer valid, the bpf_sock_destroy kfunc (kernel >= 6.5)
 * aborts it, and the application sees ECONNABORTED and can reconnect (which picks a live
 * backend). Drained backends keep their sockets.
 *
 * aya 0.14 cannot resolve `extern ... __ksym` kfunc declarations, so the kfunc is called
 * through a helper-call stub with an unused id; ebpf/src/kfunc.rs patches those calls into
 * real kfunc calls, with the id of bpf_sock_destroy in the running kernel's BTF, before load.
 */
#include "lib/counters.h"
#include "lib/lb.h"

/* The iterator context (kernel: DEFINE_BPF_ITER_FUNC(udp, ...)). Only udp_sk is read; its
 * offset is fixed by the iterator ABI: one pointer after meta. */
struct bpf_iter_meta;
struct udp_sock;
struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct udp_sock *udp_sk;
	__u32 uid;
	__u32 pad;
	int bucket;
};

static long (*const beacon_kfunc_sock_destroy)(void *sk) = (void *)BEACON_KFUNC_SOCK_DESTROY_MAGIC;

SEC("iter/udp")
int beacon_udp_destroy(struct bpf_iter__udp *ctx)
{
	struct udp_sock *sk = ctx->udp_sk;
	struct backend_ref *ref;
	__u64 cookie;

	if (!sk)
		return 0;
	cookie = bpf_get_socket_cookie(sk);
	ref = bpf_map_lookup_elem(&beacon_sock_conn, &cookie);
	if (!ref || backend_ref_get(ref))
		return 0;
	if (beacon_kfunc_sock_destroy(sk) == 0)
		stat_inc(BEACON_STAT_SOCK_DESTROYED);
	bpf_map_delete_elem(&beacon_sock_conn, &cookie);
	return 0;
}

//! Beacon's BPF data plane: the kernel side of VIP load balancing, written in C (`bpf/`),
//! compiled by `build.rs` with clang-19, and embedded here as one object for aya 0.14.
//!
//! Programs (see [`abi::programs`] for names and how to attach each):
//! - socket LB, the east-west path: cgroup `connect4/6`, `sendmsg4/6`, `recvmsg4/6`,
//!   `getpeername4/6` send sockets straight to a backend picked from the VIP's Maglev ring
//!   and show the VIP to the application;
//! - `beacon_udp_destroy`, a UDP socket iterator that destroys connected UDP sockets whose
//!   backend was removed (load it from [`kfunc::object_for_running_kernel`]);
//! - packet path: `beacon_xdp_lb` (XDP destination NAT with a flow table) and
//!   `beacon_tc_revnat` (tc egress source NAT of the replies).
//!
//! [`abi`] mirrors every map key and value. This crate does **not** attach anything, fill
//! maps or build Maglev tables: that is `beacon-vip-lb`'s job.

#![warn(missing_docs)]

pub mod abi;
pub mod kfunc;

/// The BPF object with every Beacon program and map (`bpf/beacon.bpf.c`), 8-byte aligned.
/// Load it with `aya::Ebpf::load(OBJECT)`; to load the UDP iterator too, load
/// [`kfunc::object_for_running_kernel`] instead.
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/beacon.bpf.o"));

/// Benchmark baseline only: a minimal IPv4 XDP DNAT (`bpf/bench/dnat_baseline.c`, program
/// `baseline_xdp_dnat`, map `baseline_dnat`) that `examples/xdp_bench.rs` compares against.
#[doc(hidden)]
pub static BENCH_BASELINE_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/dnat_baseline.o"));

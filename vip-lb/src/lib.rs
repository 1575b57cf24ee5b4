//! Beacon's VIP load balancer userspace (aya): not built yet.
//!
//! This crate will load the BPF programs of `ebpf/` and keep their maps in step with the catalog
//! (issue 4). It is empty today; nothing depends on it.

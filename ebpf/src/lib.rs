//! Beacon's BPF programs (C, built with clang): not built yet.
//!
//! This crate will compile the socket and XDP load-balancer programs and embed the object
//! (issue 4). It is empty today; nothing depends on it.

//! Beacon's gossip layer (foca SWIM over QUIC, mutual TLS): not built yet.
//!
//! This crate will carry membership and the replicated catalog between agents (issue 3). It is
//! empty today; nothing depends on it.

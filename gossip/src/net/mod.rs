//! I/O for the sans-IO [`Node`](crate::Node): the QUIC transport with mutual TLS, and the driver
//! task that owns a node and connects it to the transport, the clock and the agent.

pub mod driver;
pub mod transport;

pub use driver::{Gossip, spawn};
pub use transport::{Credentials, Incoming, Transport, TransportError};

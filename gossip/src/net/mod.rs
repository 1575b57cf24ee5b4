//! I/O for the sans-IO [`Node`](crate::Node): the QUIC transport with mutual TLS, and the driver
//! task that owns a node and connects it to the transport, the clock and the agent.

mod deny;
pub mod driver;
pub mod keys;
pub mod transport;

pub use driver::{Gossip, Reload, ReloadError, spawn};
pub use keys::{MASTER_POLLER_EKU_EXTENSION, MASTER_POLLER_OID, X509Keys};
pub use transport::{Credentials, Incoming, Transport, TransportError};

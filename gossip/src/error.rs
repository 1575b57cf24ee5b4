//! Errors from the gossip core. Everything that comes from the network ends up here as a value:
//! the transport logs it and carries on (or drops the stream), it never panics.

/// An error handling input from a peer or from the agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Occurs when a peer's bytes do not decode as the message we expected.
    #[error("malformed {what}: {source}")]
    Decode {
        /// Which message was being decoded.
        what: &'static str,
        /// The decoder's complaint.
        source: postcard::Error,
    },
    /// Occurs when a message decodes but has bytes left over after it.
    #[error("malformed {what}: {extra} trailing bytes")]
    Trailing {
        /// Which message was being decoded.
        what: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// Occurs when a message carries another cluster's id: two clusters must never merge.
    #[error("message for cluster {got:#018x}, this node is in cluster {expected:#018x}")]
    WrongCluster {
        /// Our cluster id.
        expected: u64,
        /// The id in the message.
        got: u64,
    },
    /// Occurs when a sync stream carries a message out of turn (e.g. a response where a request
    /// was due).
    #[error("unexpected sync message: wanted a {wanted}")]
    UnexpectedSyncMessage {
        /// The message kind that was due.
        wanted: &'static str,
    },
    /// Occurs when a peer speaks sync version 1, whose records carry no signatures.
    #[error("a peer sent unsigned (version 1) sync records: upgrade it to this release")]
    UnsignedPeer,
    /// Occurs when a saved copy of the store is not whole: truncated, damaged, or not one.
    #[error("unreadable saved store: {0}")]
    Corrupt(&'static str),
    /// Occurs when foca rejects a datagram or an operation (malformed SWIM packet, a packet from
    /// ourselves, a full packet).
    #[error("swim: {0}")]
    Swim(#[from] foca::Error),
}

//! What travels with every origin version so that any node can check who wrote it: the
//! writer's signature and the short id of the certificate that signs. Checking it is
//! `core::trust`'s work; this module only holds the data, so the store can keep it.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A certificate's short id: the first 8 bytes of the SHA-256 of its DER.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CertId(pub [u8; 8]);

/// A writer's signature on one origin version, carried wherever the version goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    /// The signing certificate.
    pub cert: CertId,
    /// ECDSA P-256 with SHA-256, fixed-length `r || s` (64 bytes), over [`signed_message`].
    pub signature: Bytes,
}

impl CertId {
    /// The id of a certificate.
    pub fn of(certificate: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, certificate);
        let mut id = [0; 8];
        id.copy_from_slice(&digest.as_ref()[..8]);
        Self(id)
    }
}

impl fmt::Debug for CertId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

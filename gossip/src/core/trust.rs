//! Who may write what: every origin version is signed by its writer, and every node checks the
//! signature, the writer's certificate and its right to that origin before storing it.
//!
//! The transport's mutual TLS only proves a peer holds *some* certificate from the cluster CA;
//! without this, any such holder could publish another node's origin or the Mesos master's, and
//! every node would serve it. So each version carries a [`Seal`]: the id of the writer's
//! certificate and an ECDSA P-256 signature over the cluster id, the origin, the version and the
//! payload. A relay passes the seal along untouched (foca re-sends an item's bytes as they came;
//! sync sends the stored seal), so any node can check a copy it got third-hand. The certificate
//! itself travels once per node, not per record: every node broadcasts its own when it starts,
//! syncs carry the certificates of the records they hold and the ones the requester lacks, and a
//! broadcast sealed by a certificate we do not know yet is pulled from its sender, whose answer
//! carries it.
//!
//! The core knows no X.509: [`Keys`] signs for this node and turns a certificate into a
//! [`Writer`] (names, role, public key), so the simulator can fake certificates with real
//! signatures while the agent checks real ones against the CA (`crate::net::X509Keys`). The
//! rule, identical on every node: `Origin::Node(name)` only by a certificate that names `name`;
//! `Origin::Shared("mesos-master")` only by a certificate with the master-poller role; no other
//! shared origin by anyone. A stamp more than [`crate::NodeConfig::max_clock_skew`] ahead of our
//! wall clock is refused, so no peer can push an origin's version out of its owner's reach.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

pub use crate::core::seal::{CertId, Seal};
use crate::core::store::{Origin, Version};

/// The shared origin only master pollers may write.
pub const MESOS_MASTER: &str = "mesos-master";

/// Certificates remembered at most; a full cluster's worth, bounded so a peer cannot grow it.
const MAX_CERTIFICATES: usize = 65_536;

/// What a certificate lets its holder write, once [`Keys::admit`] has checked it.
#[derive(Clone, Debug)]
pub struct Writer {
    /// The node names it carries: it may write `Origin::Node(name)` for each.
    pub names: Vec<String>,
    /// Whether it may write the shared Mesos-master origin.
    pub master_poller: bool,
    /// The uncompressed P-256 public key (65 bytes).
    pub public_key: Vec<u8>,
}

/// This node's key and the cluster's certificate policy.
pub trait Keys: Send + Sync {
    /// This node's certificate, as peers pass it to [`Keys::admit`].
    fn certificate(&self) -> &[u8];
    /// Signs `message` with this node's key: ECDSA P-256 SHA-256, fixed-length `r || s`.
    fn sign(&self, message: &[u8]) -> Vec<u8>;
    /// Checks `certificate` against the cluster CA at `unix_secs`: what its holder may write.
    fn admit(&self, certificate: &[u8], unix_secs: u64) -> Result<Writer, String>;
}

/// Why a version was dropped; each reason has its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// No seal at all (an old peer, or someone skipping the signature).
    Unsigned,
    /// A certificate that does not chain to the CA, has expired, or holds no P-256 key.
    BadCertificate,
    /// A seal naming a certificate nobody sent us.
    UnknownCertificate,
    /// The signature does not verify.
    BadSignature,
    /// A valid writer, but the origin is not theirs.
    Foreign,
    /// The stamp is further ahead of our clock than the allowed skew.
    FutureStamp,
    /// The payload does not hash to its version.
    BadHash,
    /// The writer's certificate names a node on the deny list ([`crate::Node::set_revoked`]).
    Revoked,
}

/// Dropped versions by [`Reason`], for `beacon_gossip_rejected_total{reason}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rejections {
    counts: [u64; 8],
}

/// Why [`Trust::check`] did not accept a version.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The seal's certificate is unknown: fetch it (pull from the sender), then check again.
    Unknown,
    /// Dropped for good.
    Rejected(Reason),
}

/// This node's signing key, the writers it has admitted, and the rejection counters.
pub(crate) struct Trust {
    keys: Arc<dyn Keys>,
    cluster: u64,
    max_skew_ms: u64,
    own: CertId,
    writers: HashMap<CertId, (Writer, Bytes)>,
    /// Node names whose certificates no longer count, whatever the CA says.
    revoked: BTreeSet<String>,
    /// Wall clock at an instant: the node extrapolates from it (see `Node::set_wall_clock`).
    wall: (Instant, u64),
    pub(crate) rejections: Rejections,
}

impl Reason {
    /// Every reason, in counter order.
    pub const ALL: [Self; 8] = [
        Self::Unsigned,
        Self::BadCertificate,
        Self::UnknownCertificate,
        Self::BadSignature,
        Self::Foreign,
        Self::FutureStamp,
        Self::BadHash,
        Self::Revoked,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unsigned => "unsigned",
            Self::BadCertificate => "bad_certificate",
            Self::UnknownCertificate => "unknown_certificate",
            Self::BadSignature => "bad_signature",
            Self::Foreign => "foreign",
            Self::FutureStamp => "future_stamp",
            Self::BadHash => "bad_hash",
            Self::Revoked => "revoked",
        }
    }
}

impl Rejections {
    /// Versions dropped for `reason`.
    pub fn get(&self, reason: Reason) -> u64 {
        self.counts[reason as usize]
    }

    /// Versions dropped for any reason.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub(crate) fn count(&mut self, reason: Reason) {
        self.counts[reason as usize] += 1;
    }
}

impl Writer {
    /// Whether this writer may write `origin` (the rule in the module docs).
    pub fn may_write(&self, origin: &Origin) -> bool {
        match origin {
            Origin::Node(name) => self.names.iter().any(|n| n == name),
            Origin::Shared(name) => self.master_poller && name == MESOS_MASTER,
        }
    }
}

/// The bytes a seal signs: a domain tag, the cluster, the origin, the version and the payload.
/// The payload itself is signed, not its version's hash, which is FNV and easy to collide.
pub fn signed_message(cluster: u64, origin: &Origin, version: Version, payload: &[u8]) -> Vec<u8> {
    let (kind, name) = match origin {
        Origin::Node(name) => (0u8, name),
        Origin::Shared(name) => (1u8, name),
    };
    let mut message = Vec::with_capacity(64 + name.len() + payload.len());
    message.extend_from_slice(b"beacon-gossip origin v1\0");
    message.extend_from_slice(&cluster.to_le_bytes());
    message.push(kind);
    message.extend_from_slice(&(name.len() as u64).to_le_bytes());
    message.extend_from_slice(name.as_bytes());
    message.extend_from_slice(&version.stamp.to_le_bytes());
    message.extend_from_slice(&version.hash.to_le_bytes());
    message.extend_from_slice(payload);
    message
}

impl Trust {
    pub(crate) fn new(keys: Arc<dyn Keys>, cluster: u64, max_skew_ms: u64, now: Instant) -> Self {
        let own = CertId::of(keys.certificate());
        let trust = Self {
            keys,
            cluster,
            max_skew_ms,
            own,
            writers: HashMap::new(),
            revoked: BTreeSet::new(),
            wall: (now, 0),
            rejections: Rejections::default(),
        };
        // Our own certificate is admitted once the wall clock is known (`set_wall_clock`):
        // its validity is checked against it.
        trust
    }

    /// Sign with `keys` from now on (a rotated certificate and key). Returns whether the
    /// certificate changed, so the caller announces the new one.
    pub(crate) fn set_keys(&mut self, now: Instant, keys: Arc<dyn Keys>) -> bool {
        let own = CertId::of(keys.certificate());
        let changed = own != self.own;
        self.keys = keys;
        self.own = own;
        let certificate = Bytes::copy_from_slice(self.keys.certificate());
        self.learn(now, &certificate);
        changed
    }

    /// Refuse, from now on, every version sealed by a certificate naming one of `names`.
    pub(crate) fn set_revoked(&mut self, names: BTreeSet<String>) {
        self.revoked = names;
    }

    /// Whether node `name` is on the deny list.
    pub(crate) fn is_revoked(&self, name: &str) -> bool {
        self.revoked.contains(name)
    }

    /// The deny list.
    pub(crate) fn revoked(&self) -> &BTreeSet<String> {
        &self.revoked
    }

    /// Our certificate's id and DER, to announce.
    pub(crate) fn own_certificate(&self) -> (CertId, Bytes) {
        let der = self.writers.get(&self.own).map(|(_, der)| der.clone());
        (self.own, der.unwrap_or_default())
    }

    pub(crate) fn set_wall_clock(&mut self, now: Instant, wall_millis: u64) {
        self.wall = (now, wall_millis);
        if !self.writers.contains_key(&self.own) {
            let certificate = Bytes::copy_from_slice(self.keys.certificate());
            self.learn(now, &certificate);
        }
    }

    /// Our wall clock at `now`, in milliseconds since the Unix epoch.
    pub(crate) fn wall_millis(&self, now: Instant) -> u64 {
        let (at, ms) = self.wall;
        let elapsed = now.saturating_duration_since(at).as_millis();
        ms.saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }

    /// Whether `stamp` is further ahead of our clock than the allowed skew.
    pub(crate) fn is_from_the_future(&self, now: Instant, stamp: u64) -> bool {
        stamp > self.wall_millis(now).saturating_add(self.max_skew_ms)
    }

    /// Seal a version we write.
    pub(crate) fn seal(&self, origin: &Origin, version: Version, payload: &[u8]) -> Seal {
        let message = signed_message(self.cluster, origin, version, payload);
        Seal {
            cert: self.own,
            signature: Bytes::from(self.keys.sign(&message)),
        }
    }

    /// Whether we know the certificate `id`.
    pub(crate) fn knows(&self, id: &CertId) -> bool {
        self.writers.contains_key(id)
    }

    /// The DER of a known certificate, to pass along.
    pub(crate) fn certificate(&self, id: &CertId) -> Option<Bytes> {
        self.writers.get(id).map(|(_, der)| der.clone())
    }

    /// The ids of every certificate we know, for a sync request.
    pub(crate) fn known(&self) -> Vec<CertId> {
        let mut ids: Vec<CertId> = self.writers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Check and remember a certificate a peer sent. Returns whether it is now known.
    pub(crate) fn learn(&mut self, now: Instant, certificate: &Bytes) -> bool {
        let id = CertId::of(certificate);
        if self.writers.contains_key(&id) {
            return true;
        }
        if self.writers.len() >= MAX_CERTIFICATES {
            return false;
        }
        let unix_secs = self.wall_millis(now) / 1000;
        match self.keys.admit(certificate, unix_secs) {
            Ok(writer) if writer.public_key.len() == 65 => {
                self.writers.insert(id, (writer, certificate.clone()));
                true
            }
            _ => {
                self.rejections.count(Reason::BadCertificate);
                false
            }
        }
    }

    /// Check one version before it is stored: a seal from a known writer who owns the origin, a
    /// good signature, a stamp not from the future. Counts what it rejects.
    pub(crate) fn check(
        &mut self,
        now: Instant,
        origin: &Origin,
        version: Version,
        payload: &[u8],
        seal: Option<&Seal>,
    ) -> Result<(), Refusal> {
        let verdict = self.verdict(now, origin, version, payload, seal);
        if let Err(Refusal::Rejected(reason)) = verdict {
            self.rejections.count(reason);
        }
        verdict
    }

    fn verdict(
        &self,
        now: Instant,
        origin: &Origin,
        version: Version,
        payload: &[u8],
        seal: Option<&Seal>,
    ) -> Result<(), Refusal> {
        let reject = |reason| Err(Refusal::Rejected(reason));
        let Some(seal) = seal else {
            return reject(Reason::Unsigned);
        };
        if self.is_from_the_future(now, version.stamp) {
            return reject(Reason::FutureStamp);
        }
        let Some((writer, _)) = self.writers.get(&seal.cert) else {
            return Err(Refusal::Unknown);
        };
        if writer.names.iter().any(|name| self.revoked.contains(name)) {
            return reject(Reason::Revoked);
        }
        if !writer.may_write(origin) {
            return reject(Reason::Foreign);
        }
        let message = signed_message(self.cluster, origin, version, payload);
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            &writer.public_key,
        );
        match key.verify(&message, &seal.signature) {
            Ok(()) => Ok(()),
            Err(_) => reject(Reason::BadSignature),
        }
    }
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trust")
            .field("own", &self.own)
            .field("writers", &self.writers.len())
            .field("rejections", &self.rejections)
            .finish_non_exhaustive()
    }
}

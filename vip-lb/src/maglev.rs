//! Maglev consistent hashing: a VIP's lookup table of `M` slots, each naming a backend, so that a
//! flow hash picks a backend with one array read, every node builds the same table from the same
//! backends, and removing one backend of `N` moves little more than the `1/N` of flows it held.
//!
//! The table follows the Maglev paper (Eisenbud et al., "Maglev: A Fast and Reliable Software
//! Network Load Balancer", NSDI 2016, §3.4), with Katran's weighted population
//! (`MaglevHashV2`, `research/ebpf-lb.md` §2):
//!
//! - **Canonical order.** Backends are sorted by address then port, and a backend listed twice
//!   counts once with its highest weight, so the order backends arrived in on a node is
//!   irrelevant. [`MaglevTable::backends`] is that order, and slots hold indexes into it.
//! - **Permutation.** Each backend's preference list over slots is
//!   `permutation[j] = (offset + j × skip) mod M`, with `offset = h₁ mod M` and
//!   `skip = h₂ mod (M − 1) + 1`. `h₁` and `h₂` are the first and second 8 bytes, big-endian, of
//!   SHA-1 over [`SEED`], then the address (4 or 16 octets), then the port (2 octets, big-endian):
//!   two independent hashes of the backend's stable identity. `M` prime makes every `skip`
//!   coprime with `M`, so each list visits every slot once.
//! - **Weighted population.** In rounds, each backend adds its weight to a running credit; when
//!   the credit reaches the largest weight, the backend pays that much and takes its next
//!   preferred free slot. A backend of weight `w` so takes `w / max` slots per round and ends with
//!   a share close to `w / Σw`. Weight 0 (draining) takes no slot. With all weights equal this is
//!   the paper's round-robin population exactly.
//!
//! The paper's balance guarantee asks for `M` well above `N`; Cilium's rule is `M > 100 × N`.
//! Measured by the tests: with equal weights every backend is within one slot of its share
//! (worst 0.6 % off at N = 160, M = 16381); weights 1:2:3:4 in M = 4093 come out 0.07 % off.
//! Removing one backend of N moves its own slots plus some others: 11.2 % of the table for
//! N = 10, M = 4093 (its share is 10 %); 4.6 % for N = 40, M = 4093 (2.5 %); 2.5 % for N = 100,
//! M = 16381 (1 %); 1.6 % for N = 100, M = 65537 (1 %). The extra shrinks as M grows.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use sha1::{Digest, Sha1};

/// Prefix of every hashed identity. Changing it reshuffles every table, on every node at once;
/// it is part of the wire contract between nodes of different versions, so it never changes.
pub const SEED: &[u8] = b"beacon-maglev-v1";

/// A backend as the table sees it: where flows go and how many it should get.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaglevBackend {
    /// Address and port: the identity the permutation is hashed from.
    pub addr: SocketAddr,
    /// Relative share of slots; 0 drains the backend (no slot, so no new flows).
    pub weight: u32,
}

/// A built lookup table.
#[derive(Clone, PartialEq, Eq)]
pub struct MaglevTable {
    backends: Vec<MaglevBackend>,
    slots: Vec<u32>,
    size: u32,
}

/// Why a table could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MaglevError {
    /// Occurs when the table size is not a prime number.
    #[error("Maglev table size {0} is not prime; use a prime such as 4093, 16381 or 65537")]
    NotPrime(u32),
    /// Occurs when there are more weighted backends than slots.
    #[error(
        "Maglev table size {size} is smaller than the {backends} weighted backends; \
         use a prime above 100 times the backend count"
    )]
    TooSmall {
        /// The table size asked for.
        size: u32,
        /// Backends with a weight above 0.
        backends: usize,
    },
}

impl MaglevTable {
    /// Builds the table of `size` slots (a prime, such as the BPF ring size) for `backends`, in
    /// any order.
    ///
    /// When no backend has a weight above 0 (none at all, or all draining) the table has no slot
    /// and [`lookup`](Self::lookup) finds nothing: whether to refuse connections or fall back is
    /// the caller's decision.
    pub fn build(backends: &[MaglevBackend], size: u32) -> Result<Self, MaglevError> {
        if !is_prime(size) {
            return Err(MaglevError::NotPrime(size));
        }
        let backends = canonical(backends);
        let weighted = backends.iter().filter(|b| b.weight > 0).count();
        if weighted > size as usize {
            return Err(MaglevError::TooSmall {
                size,
                backends: weighted,
            });
        }
        let slots = if weighted == 0 {
            Vec::new()
        } else {
            populate(&backends, size)
        };
        Ok(Self {
            backends,
            slots,
            size,
        })
    }

    /// The table size `M` it was built for.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The backends in canonical order (address, then port): slots index into this.
    pub fn backends(&self) -> &[MaglevBackend] {
        &self.backends
    }

    /// For each slot, the index of its backend in [`backends`](Self::backends): `size` entries,
    /// or none when no backend has weight.
    pub fn slots(&self) -> &[u32] {
        &self.slots
    }

    /// The backend of a flow whose hash is `hash` (slot `hash mod M`).
    pub fn lookup(&self, hash: u64) -> Option<&MaglevBackend> {
        if self.slots.is_empty() {
            return None;
        }
        let slot = hash % u64::from(self.size);
        // slot < size = slots.len(); slot values are indexes into backends.
        let index = self.slots[slot as usize];
        self.backends.get(index as usize)
    }

    /// How many slots each backend holds, in canonical order.
    pub fn slot_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.backends.len()];
        for &index in &self.slots {
            counts[index as usize] += 1;
        }
        counts
    }
}

impl fmt::Debug for MaglevTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The slots would be thousands of numbers: show what they add up to.
        f.debug_struct("MaglevTable")
            .field("size", &self.size)
            .field("backends", &self.backends)
            .field("slot_counts", &self.slot_counts())
            .finish()
    }
}

/// Sorted by address then port, one entry per address and port with its highest weight.
fn canonical(backends: &[MaglevBackend]) -> Vec<MaglevBackend> {
    let mut sorted = backends.to_vec();
    // Highest weight first within an address, so dedup keeps it.
    sorted.sort_by(|a, b| a.addr.cmp(&b.addr).then(b.weight.cmp(&a.weight)));
    sorted.dedup_by_key(|b| b.addr);
    sorted
}

/// Marks an empty slot while populating.
const EMPTY: u32 = u32::MAX;

fn populate(backends: &[MaglevBackend], size: u32) -> Vec<u32> {
    let m = u64::from(size);
    let prefs: Vec<(u64, u64)> = backends.iter().map(|b| permutation(b.addr, m)).collect();
    let max_weight = backends
        .iter()
        .map(|b| u64::from(b.weight))
        .max()
        .unwrap_or(0);
    let mut credit = vec![0u64; backends.len()];
    let mut next = vec![0u64; backends.len()];
    let mut slots = vec![EMPTY; size as usize];
    let mut filled = 0u32;
    // Each pass over the backends gives at least the heaviest one a slot, and every list visits
    // every slot, so this ends after at most `size` passes.
    loop {
        for (i, backend) in backends.iter().enumerate() {
            if backend.weight == 0 {
                continue;
            }
            credit[i] += u64::from(backend.weight);
            if credit[i] < max_weight {
                continue;
            }
            credit[i] -= max_weight;
            let (offset, skip) = prefs[i];
            loop {
                let slot = ((offset + next[i] * skip) % m) as usize;
                next[i] += 1;
                if slots[slot] == EMPTY {
                    // i < backends.len() ≤ size ≤ u32::MAX.
                    slots[slot] = i as u32;
                    filled += 1;
                    break;
                }
            }
            if filled == size {
                return slots;
            }
        }
    }
}

/// (offset, skip) of a backend's preference list.
fn permutation(addr: SocketAddr, m: u64) -> (u64, u64) {
    let mut hasher = Sha1::new();
    hasher.update(SEED);
    match addr.ip() {
        IpAddr::V4(v4) => hasher.update(v4.octets()),
        IpAddr::V6(v6) => hasher.update(v6.octets()),
    }
    hasher.update(addr.port().to_be_bytes());
    let digest = hasher.finalize();
    let word = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&digest[at..at + 8]);
        u64::from_be_bytes(bytes)
    };
    (word(0) % m, word(8) % (m - 1) + 1)
}

fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    let n = u64::from(n);
    (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

#[cfg(test)]
mod tests;

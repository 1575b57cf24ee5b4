//! Addresses of named VIPs: a pure function of the set of names, so every node computes the same
//! ones, whatever order names arrive in, across restarts and versions.
//!
//! dcos-net hashed the name into the pool and probed linearly past taken addresses, in a table
//! each node filled in its own arrival order, so two colliding names could get swapped addresses
//! on different nodes, or after a restart (`research/dcos-net.md` §1.3). Here:
//!
//! - **Hash.** Probe `k` of a name is the first 8 bytes, big-endian, of SHA-1 of its canonical
//!   name `<name>.<framework>` ([`VipName::canonical`]) for `k = 0`, and of `<name>.<framework>#k`
//!   (decimal `k`) after that. `#` never occurs in a canonical name, so probes of one name are
//!   never another name's first choice by construction of the input. SHA-1 is fixed by FIPS
//!   180-4, so addresses never change with the Rust version or the platform.
//! - **IPv4**, 11.0.0.0/8 without any `.0` or `.255` last octet (some hosts and firewalls still
//!   treat those as network and broadcast addresses): 65,536 × 254 = 16,646,144 addresses. The
//!   hash `h` gives `x = h mod 16,646,144`; the address is `11.a.b.c` with `a.b = x / 254` and
//!   `c = x mod 254 + 1`.
//! - **IPv6**, fd01:c::/64: the interface identifier is `h mod (2^64 − 129) + 1`, which avoids
//!   the all-zeros Subnet-Router anycast identifier (RFC 4291 §2.6.1) and the top 128 reserved for
//!   subnet anycast (RFC 2526).
//!
//! # Collisions
//!
//! With `n` names in 16.6 M IPv4 addresses, two names share a first choice with probability
//! about `1 − exp(−n²/2N)`: 0.03 % for 100 names, 3 % for 1,000, 12 % for 2,000, 53 % for 5,000,
//! 95 % for 10,000 (about 3 colliding pairs). IPv6 collisions (2^64 addresses) are negligible but
//! handled by the same rule.
//!
//! The rule: an address held by several names goes to the name that reached it with the fewest
//! probes, and among equals to the name that sorts first (by name, then framework); the others
//! take their next probe. This is deferred acceptance (Gale–Shapley) with names proposing, whose
//! result is unique whatever order the names are processed in, so it depends only on the set.
//! A name's address differs from its first choice only while another name of the set claims that
//! address with priority; names that collide with nobody keep their first choice whatever else
//! comes and goes. When a colliding name appears or disappears, only the names of that collision
//! chain can move. IP VIPs declared inside a pool are never given to a name.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use crate::vip::VipName;

/// The IPv4 pool of named VIPs: 11.0.0.0/8 (DC/OS's default `dcos_l4lb_min/max_named_ip`).
pub const NAMED_V4_POOL: (Ipv4Addr, u8) = (Ipv4Addr::new(11, 0, 0, 0), 8);

/// The IPv6 pool of named VIPs: fd01:c::/64 (DC/OS's default).
pub const NAMED_V6_POOL: (Ipv6Addr, u8) = (Ipv6Addr::new(0xfd01, 0xc, 0, 0, 0, 0, 0, 0), 64);

/// Addresses usable in the IPv4 pool: every `11.a.b.c` with `c` in 1..=254.
const V4_SLOTS: u64 = 65_536 * 254;

/// Interface identifiers usable in the IPv6 pool: 1 to 2^64 − 129.
const V6_SLOTS: u64 = u64::MAX - 128;

/// Probes a name tries before it is left without an address. Each probe is a fresh uniform pick,
/// so running out needs the pool nearly full: 32 misses in a row at 1 % occupancy has
/// probability 10^-64.
const MAX_PROBES: u32 = 32;

/// Whether `ip` lies in a named-VIP pool.
pub fn in_named_pool(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == NAMED_V4_POOL.0.octets()[0],
        IpAddr::V6(v6) => v6.segments()[..4] == NAMED_V6_POOL.0.segments()[..4],
    }
}

/// The addresses of a set of named VIPs, per family.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedAddresses {
    /// IPv4 address of each name.
    pub v4: BTreeMap<VipName, Ipv4Addr>,
    /// IPv6 address of each name.
    pub v6: BTreeMap<VipName, Ipv6Addr>,
}

impl NamedAddresses {
    /// Gives each name an address in each pool (see the module documentation), never one of
    /// `reserved` (the IP VIPs declared literally). Duplicate names count once.
    pub fn allocate<'a>(
        names: impl IntoIterator<Item = &'a VipName>,
        reserved: impl IntoIterator<Item = IpAddr>,
    ) -> Self {
        let names: BTreeSet<&VipName> = names.into_iter().collect();
        let (mut taken_v4, mut taken_v6) = (BTreeSet::new(), BTreeSet::new());
        for ip in reserved {
            match ip {
                IpAddr::V4(v4) => taken_v4.insert(v4),
                IpAddr::V6(v6) => taken_v6.insert(v6),
            };
        }
        Self {
            v4: assign(&names, &taken_v4, v4_probe),
            v6: assign(&names, &taken_v6, v6_probe),
        }
    }

    /// The IPv4 and IPv6 addresses of `name`, if it was allocated.
    pub fn get(&self, name: &VipName) -> (Option<Ipv4Addr>, Option<Ipv6Addr>) {
        (self.v4.get(name).copied(), self.v6.get(name).copied())
    }
}

impl VipName {
    /// The IPv4 address this name gets when no other name claims it first: probe 0.
    pub fn home_v4(&self) -> Ipv4Addr {
        v4_probe(self, 0)
    }

    /// The IPv6 address this name gets when no other name claims it first: probe 0.
    pub fn home_v6(&self) -> Ipv6Addr {
        v6_probe(self, 0)
    }
}

fn v4_probe(name: &VipName, k: u32) -> Ipv4Addr {
    let x = probe_hash(name, k) % V4_SLOTS;
    let [_, _, _, _, _, _, a, b] = (x / 254).to_be_bytes();
    // x mod 254 + 1 is 1..=254: fits a u8.
    let c = (x % 254 + 1) as u8;
    Ipv4Addr::new(NAMED_V4_POOL.0.octets()[0], a, b, c)
}

fn v6_probe(name: &VipName, k: u32) -> Ipv6Addr {
    let iid = probe_hash(name, k) % V6_SLOTS + 1;
    let prefix = u128::from(NAMED_V6_POOL.0);
    Ipv6Addr::from(prefix | u128::from(iid))
}

/// The first 8 bytes, big-endian, of SHA-1 of probe `k`'s input.
fn probe_hash(name: &VipName, k: u32) -> u64 {
    let mut input = name.canonical();
    if k > 0 {
        input.push('#');
        input.push_str(&k.to_string());
    }
    let digest = Sha1::digest(input.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Deferred acceptance: names propose to their probes in turn; an address keeps the proposal
/// with the lowest (probe, name) and sends the other back to its next probe.
fn assign<T: Ord + Copy>(
    names: &BTreeSet<&VipName>,
    reserved: &BTreeSet<T>,
    probe: impl Fn(&VipName, u32) -> T,
) -> BTreeMap<VipName, T> {
    let mut holders: BTreeMap<T, (u32, &VipName)> = BTreeMap::new();
    let mut free: Vec<(&VipName, u32)> = names.iter().map(|&n| (n, 0)).collect();
    while let Some((name, mut k)) = free.pop() {
        while k < MAX_PROBES {
            let slot = probe(name, k);
            if reserved.contains(&slot) {
                k += 1;
                continue;
            }
            match holders.get(&slot) {
                Some(&(held_k, held)) if (held_k, held) < (k, name) => k += 1,
                Some(&(held_k, held)) => {
                    holders.insert(slot, (k, name));
                    free.push((held, held_k + 1));
                    break;
                }
                None => {
                    holders.insert(slot, (k, name));
                    break;
                }
            }
        }
    }
    holders
        .into_iter()
        .map(|(slot, (_, name))| (name.clone(), slot))
        .collect()
}

#[cfg(test)]
pub(crate) fn assign_for_test<T: Ord + Copy>(
    names: &[&VipName],
    reserved: &BTreeSet<T>,
    probe: impl Fn(&VipName, u32) -> T,
) -> BTreeMap<VipName, T> {
    assign(&names.iter().copied().collect(), reserved, probe)
}

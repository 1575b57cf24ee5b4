//! The records of one owner name as a zone stores them, shared by the zone's Mesos part and its
//! registrations overlay (`overlay.rs`), which both answer through the same code.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::LowerName;

/// The records of one owner name, compactly: records are made when answered (a hickory
/// `Record` is 272 bytes before its names, and a zone holds a hundred thousand of them).
#[derive(Clone, Debug, Default)]
pub(crate) struct Node {
    pub(crate) a: Vec<Ipv4Addr>,
    pub(crate) aaaa: Vec<Ipv6Addr>,
    /// (port, index of the target in the targets table of the part holding it).
    pub(crate) srv: Vec<(u16, u32)>,
    /// Indices in the targets table of the part holding it of the names a reverse name points at.
    pub(crate) ptr: Vec<u32>,
}

impl Node {
    /// A node with no records: an empty non-terminal.
    pub(crate) const EMPTY: Self = Self {
        a: Vec::new(),
        aaaa: Vec::new(),
        srv: Vec::new(),
        ptr: Vec::new(),
    };

    /// Whether Mesos-DNS considers the name to exist: it has an A, AAAA or SRV value.
    pub(crate) fn has_data(&self) -> bool {
        !(self.a.is_empty() && self.aaaa.is_empty() && self.srv.is_empty())
    }

    /// Distinct SRV targets, in record order (a set, not a scan of the list: a name may have
    /// thousands).
    pub(crate) fn targets(&self) -> Vec<u32> {
        let mut seen = HashSet::with_capacity(self.srv.len());
        self.srv
            .iter()
            .map(|&(_, t)| t)
            .filter(|t| seen.insert(*t))
            .collect()
    }
}

/// A name found in one part of a zone: its stored spelling, its node, and the targets table its
/// SRV and PTR indices point into.
#[derive(Clone, Copy)]
pub(crate) struct Found<'z> {
    pub(crate) owner: &'z LowerName,
    pub(crate) node: &'z Node,
    pub(crate) targets: &'z [LowerName],
}

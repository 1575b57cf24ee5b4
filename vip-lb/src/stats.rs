//! Counters the data plane keeps per VIP and per backend, summed over CPUs.

use std::net::SocketAddr;

use beacon_catalog::vip::{Protocol, VipKey};
use beacon_ebpf::abi;

/// Per-VIP or per-backend counters (sums of the per-CPU `lb_counters`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets XDP translated to this VIP or backend.
    pub packets: u64,
    /// Their bytes, Ethernet header included.
    pub bytes: u64,
    /// New XDP flows and socket connects/sendmsgs that picked it.
    pub new_flows: u64,
    /// VIP: packets or connects that found no usable backend. Backend: flows moved away from it
    /// because it was removed.
    pub misses: u64,
}

/// Counters of one kernel VIP and its backends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VipStats {
    /// The catalog VIP.
    pub key: VipKey,
    /// The address and port clients use (a named VIP has one entry per address family).
    pub address: SocketAddr,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The VIP's counters.
    pub counters: Counters,
    /// Each backend's, in canonical order.
    pub backends: Vec<BackendStats>,
}

/// Counters of one backend of a VIP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendStats {
    /// Where its connections go.
    pub addr: SocketAddr,
    /// Its weight (0: draining).
    pub weight: u32,
    /// The node it runs on.
    pub node: String,
    /// Its counters.
    pub counters: Counters,
}

impl Counters {
    /// The sum of per-CPU values.
    pub(crate) fn sum<'a>(per_cpu: impl IntoIterator<Item = &'a abi::LbCounters>) -> Self {
        per_cpu.into_iter().fold(Self::default(), |a, c| Self {
            packets: a.packets + c.packets,
            bytes: a.bytes + c.bytes,
            new_flows: a.new_flows + c.new_flows,
            misses: a.misses + c.misses,
        })
    }
}

/// Every global counter of `beacon_stats`, with a metric-friendly name.
pub(crate) const GLOBAL: [(abi::Stat, &str); 19] = [
    (abi::Stat::XdpPackets, "xdp_packets"),
    (abi::Stat::XdpNotIp, "xdp_not_ip"),
    (abi::Stat::XdpUnsupported, "xdp_unsupported"),
    (abi::Stat::XdpNotL4, "xdp_not_l4"),
    (abi::Stat::XdpNotVip, "xdp_not_vip"),
    (abi::Stat::XdpNoBackend, "xdp_no_backend"),
    (abi::Stat::XdpFlowHit, "xdp_flow_hit"),
    (abi::Stat::XdpFlowNew, "xdp_flow_new"),
    (abi::Stat::XdpFlowReselect, "xdp_flow_reselect"),
    (abi::Stat::TcPackets, "tc_packets"),
    (abi::Stat::TcRevnat, "tc_revnat"),
    (abi::Stat::SockXlate, "sock_xlate"),
    (abi::Stat::SockNoBackend, "sock_no_backend"),
    (abi::Stat::SockRevnat, "sock_revnat"),
    (abi::Stat::SockDestroyed, "sock_destroyed"),
    (abi::Stat::SockRangeRefused, "sock_range_refused"),
    (abi::Stat::XdpFlowUnsaved, "xdp_flow_unsaved"),
    (abi::Stat::XdpRevnatRestored, "xdp_revnat_restored"),
    (abi::Stat::XdpRangeDropped, "xdp_range_dropped"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_global_counter_is_listed_once() {
        assert_eq!(GLOBAL.len() as u32, abi::STAT_MAX);
        for (i, (stat, _)) in GLOBAL.iter().enumerate() {
            assert_eq!(*stat as usize, i);
        }
    }

    #[test]
    fn sums_over_cpus() {
        let c = abi::LbCounters {
            packets: 1,
            bytes: 2,
            new_flows: 3,
            misses: 4,
        };
        let s = Counters::sum(&[c, c]);
        assert_eq!((s.packets, s.bytes, s.new_flows, s.misses), (2, 4, 6, 8));
    }
}

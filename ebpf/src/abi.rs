//! The map ABI: every key and value struct of `bpf/lib/types.h` and the constants of
//! `bpf/lib/consts.h`, mirrored as `#[repr(C)]` types that aya can copy in and out of maps.
//!
//! Addresses are 16 bytes with an IPv4 address in the first 4 (the rest zero) and a `family`
//! field; ports and addresses are in network byte order in memory. Use the constructors
//! ([`VipKey::new`], [`Backend::new`], [`FlowKey::new`]) rather than filling fields by hand.
//! Padding fields must be zero: the kernel compares hash keys byte for byte.
//!
//! The tests at the bottom pin sizes and offsets to the C `_Static_assert`s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// VIP slots: VIP indices run `0..MAX_VIPS`.
pub const MAX_VIPS: u32 = 512;
/// Slots of XDP's VIP index `beacon_vip_slots` (a power of two, 32 per VIP).
pub const VIP_SLOTS: u32 = MAX_VIPS * 32;
/// Consecutive slots (wrapping) a VIP may occupy from [`vip_slot_hash`]; see
/// [`vip_slot_candidates`].
pub const VIP_SLOT_PROBES: u32 = 4;
/// Maglev table size per VIP (prime). Userspace builds tables of exactly this many slots.
/// Memory for all rings: `MAX_VIPS * RING_SIZE * 4` bytes = 8 MiB.
pub const RING_SIZE: u32 = 4093;
/// Backend ids run `1..MAX_BACKENDS`; id 0 is "no backend" (an empty ring slot).
pub const MAX_BACKENDS: u32 = 4096;
/// Entries of the XDP flow table and of its reverse table.
pub const FLOW_TABLE_SIZE: u32 = 65536;
/// Entries of the overflow reverse table ([`maps::REVNAT_OVERFLOW`]).
pub const REVNAT_OVERFLOW_SIZE: u32 = 8192;
/// Entries of the socket reverse map and the connected-UDP map.
pub const SOCK_TABLE_SIZE: u32 = 65536;
/// Ring slots a new flow tries when its slot names a drained or removed backend.
pub const PICK_PROBES: u32 = 4;
/// `BEACON_REVNAT_FILTER_BITS`: bits of the reply filter ([`maps::REVNAT_FILTER`]).
pub const REVNAT_FILTER_BITS: u32 = 65536;

/// The named-VIP ranges, where socket LB fails closed (`BEACON_NAMED_V4_*` in `consts.h`): a
/// connect()/sendmsg() to an address in them that is no VIP is refused with `ECONNREFUSED`.
pub const NAMED_V4_RANGE: (Ipv4Addr, u8) = (Ipv4Addr::new(11, 0, 0, 0), 8);
/// The IPv6 named-VIP range (`BEACON_NAMED_V6_*`).
pub const NAMED_V6_RANGE: (Ipv6Addr, u8) = (Ipv6Addr::new(0xfd01, 0xc, 0, 0, 0, 0, 0, 0), 64);

/// Address family of an IPv4 [`VipKey`], [`Backend`], ... (`AF_INET`).
pub const AF_INET: u8 = 2;
/// Address family of an IPv6 one (`AF_INET6`).
pub const AF_INET6: u8 = 10;
/// `IPPROTO_TCP`.
pub const PROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
pub const PROTO_UDP: u8 = 17;

/// [`VipInfo::flags`]: socket LB ignores this VIP.
pub const VIP_F_NO_SOCK_LB: u32 = 1 << 0;
/// [`VipInfo::flags`]: XDP ignores this VIP.
pub const VIP_F_NO_PACKET_LB: u32 = 1 << 1;

/// [`Backend::flags`]: weight 0. Keeps its flows and sockets, takes no new ones. Userspace
/// also leaves it out of the ring; the data plane skips it if it is still there.
pub const BACKEND_F_DRAIN: u8 = 1 << 0;
/// [`Backend::flags`]: gone. Its XDP flows are moved to another backend; connected UDP
/// sockets pinned to it are destroyed by the UDP iterator.
pub const BACKEND_F_REMOVED: u8 = 1 << 1;

/// Immediate of the helper-call stub that [`crate::kfunc`] patches into a call of the
/// `bpf_sock_destroy` kfunc.
pub const KFUNC_SOCK_DESTROY_MAGIC: u32 = 0x7eac_0de5;

/// Layout version of the maps userspace pins ([`maps::PINNED`]), stored in [`maps::ABI`]. Bump it
/// whenever a pinned map's key, value, size or meaning changes: a starting agent adopts pinned
/// maps only when their version is this one (and their shapes match the object's).
pub const MAPS_ABI_VERSION: u32 = 3;

/// Map names in the object.
pub mod maps {
    /// `HASH` [`super::VipKey`] → [`super::VipInfo`]. Userspace writes.
    pub const VIPS: &str = "beacon_vips";
    /// `ARRAY` `u32` slot → [`super::VipSlot`], [`super::VIP_SLOTS`] entries: XDP's copy of
    /// [`VIPS`], searched with inline loads instead of a hash-map call. **Userspace writes it
    /// beside `VIPS`** (every VIP in both), in the order [`super::VipSlot`] describes.
    pub const VIP_SLOTS: &str = "beacon_vip_slots";
    /// `ARRAY` `u32` → `u32` backend id, `MAX_VIPS * RING_SIZE` entries; row `i` (entries
    /// `i * RING_SIZE ..`) is the Maglev table of VIP index `i`. Userspace writes.
    pub const RINGS: &str = "beacon_rings";
    /// `ARRAY` `u32` backend id → [`super::Backend`]. Userspace writes.
    pub const BACKENDS: &str = "beacon_backends";
    /// `LRU_HASH` (per-CPU LRU lists) [`super::FlowKey`] client→VIP → [`super::BackendRef`].
    pub const FLOWS: &str = "beacon_flows";
    /// `LRU_HASH` [`super::FlowKey`] backend→client → [`super::VipEndpoint`]. XDP writes,
    /// tc reads.
    pub const REVNAT: &str = "beacon_revnat";
    /// `LRU_HASH` (per-CPU LRU lists), [`super::REVNAT_OVERFLOW_SIZE`] entries, like [`REVNAT`]:
    /// the reverse entries of new flows the rate guard did not save in [`FLOWS`]. XDP writes,
    /// tc reads when [`REVNAT`] has no entry.
    pub const REVNAT_OVERFLOW: &str = "beacon_revnat_overflow";
    /// `PERCPU_ARRAY` `u32` → `struct flow_rate` (two `u64`: window start in ns, new flows in
    /// it), one entry: the rate guard's window on each CPU. XDP only.
    pub const FLOW_RATE: &str = "beacon_flow_rate";
    /// `ARRAY` `u32` → `u64`, [`super::REVNAT_FILTER_BITS`] / 64 entries: a bitmap over a hash
    /// of the backend endpoints XDP has sent flows to; tc looks replies up in [`REVNAT`] only
    /// when their source's bit is set. XDP sets bits; nothing clears them. Userspace leaves it.
    pub const REVNAT_FILTER: &str = "beacon_revnat_filter";
    /// `LRU_HASH` [`super::SockRevKey`] → [`super::VipEndpoint`]. Socket LB.
    pub const SOCK_REV: &str = "beacon_sock_rev";
    /// `LRU_HASH` `u64` socket cookie → [`super::BackendRef`]: connected UDP sockets.
    pub const SOCK_CONN: &str = "beacon_sock_conn";
    /// `PERCPU_ARRAY` VIP index → [`super::LbCounters`].
    pub const VIP_STATS: &str = "beacon_vip_stats";
    /// `PERCPU_ARRAY` backend id → [`super::LbCounters`].
    pub const BACKEND_STATS: &str = "beacon_backend_stats";
    /// `PERCPU_ARRAY` [`super::Stat`] → `u64`.
    pub const STATS: &str = "beacon_stats";
    /// `ARRAY` `u32` → `u32`, one entry: [`super::MAPS_ABI_VERSION`] of the pinned maps.
    /// Userspace only; no program reads it.
    pub const ABI: &str = "beacon_abi";

    /// Every map that outlives the agent when pinned: all but the object's `.rodata` (load-time
    /// configuration, which belongs to each load).
    pub const PINNED: [&str; 15] = [
        VIPS,
        VIP_SLOTS,
        RINGS,
        BACKENDS,
        FLOWS,
        REVNAT,
        REVNAT_OVERFLOW,
        FLOW_RATE,
        REVNAT_FILTER,
        SOCK_REV,
        SOCK_CONN,
        VIP_STATS,
        BACKEND_STATS,
        STATS,
        ABI,
    ];
}

/// Load-time configuration: `volatile const` globals of `bpf/lib/config.h`, set with
/// `EbpfLoader::override_global(name, value, true)` before the object loads.
pub mod globals {
    /// `u32`: new flows each CPU may save in the XDP flow table per one-second window; flows
    /// over it are balanced but not saved (the new-flow rate guard). 0: no guard (the default).
    pub const NEW_FLOW_RATE_LIMIT: &str = "beacon_new_flow_rate_limit";
}

/// Program names in the object, with how to attach them (aya 0.14).
pub mod programs {
    /// `Xdp`: `load()`, `attach(iface, XdpMode::…)` on the interface clients' packets arrive on.
    pub const XDP_LB: &str = "beacon_xdp_lb";
    /// `SchedClassifier`: `load()`, `attach(iface, TcAttachType::Egress)` on the same interface
    /// (after `tc::qdisc_add_clsact(iface)`).
    pub const TC_REVNAT: &str = "beacon_tc_revnat";
    /// `CgroupSockAddr` programs: `load()`, `attach(cgroup_dir_file, CgroupAttachMode::Single)`.
    pub const SOCK_LB: [&str; 8] = [
        "beacon_connect4",
        "beacon_connect6",
        "beacon_sendmsg4",
        "beacon_sendmsg6",
        "beacon_recvmsg4",
        "beacon_recvmsg6",
        "beacon_getpeername4",
        "beacon_getpeername6",
    ];
    /// `Iter`: `load("udp", &btf)`, `attach()`, `take_link(id)?.into_file()?`, read to EOF
    /// to run one pass. Needs the object from [`crate::kfunc::patch`].
    pub const UDP_DESTROY: &str = "beacon_udp_destroy";
}

/// Global counters, indices of `beacon_stats` (mirrors `enum beacon_stat`).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// Every packet XDP saw.
    XdpPackets = 0,
    /// Not IPv4/IPv6 (or VLAN-tagged): passed.
    XdpNotIp,
    /// Fragments, IPv4 options, IPv6 extension headers: passed.
    XdpUnsupported,
    /// Not TCP/UDP: passed.
    XdpNotL4,
    /// No VIP for the destination: passed.
    XdpNotVip,
    /// VIP without a usable backend: passed untouched.
    XdpNoBackend,
    /// Flow table hit with a valid backend.
    XdpFlowHit,
    /// Flow table miss: backend picked from the ring.
    XdpFlowNew,
    /// Pinned backend removed: picked again.
    XdpFlowReselect,
    /// Every packet the tc program saw.
    TcPackets,
    /// Replies translated back to VIP:port.
    TcRevnat,
    /// connect/sendmsg rewritten to a backend.
    SockXlate,
    /// connect/sendmsg to a VIP without backends: refused.
    SockNoBackend,
    /// recvmsg/getpeername rewritten back to the VIP.
    SockRevnat,
    /// Connected UDP sockets destroyed by the iterator.
    SockDestroyed,
    /// connect/sendmsg to an address in the named-VIP ranges that is no VIP: refused.
    SockRangeRefused,
    /// New flows over the rate guard: balanced, not saved in the flow table (also counted in
    /// [`Stat::XdpFlowNew`]).
    XdpFlowUnsaved,
    /// Flow hits whose reverse entry had been evicted and was written again.
    XdpRevnatRestored,
    /// Packets to an address:port in the named-VIP ranges that is no VIP: dropped.
    XdpRangeDropped,
}

/// Number of [`Stat`] counters (`BEACON_STAT_MAX`).
pub const STAT_MAX: u32 = 19;

/// `struct vip_key`: one VIP is one (address, port, protocol).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VipKey {
    /// Address; IPv4 in the first 4 bytes.
    pub addr: [u8; 16],
    /// Port, network byte order in memory.
    pub port: u16,
    /// [`PROTO_TCP`] or [`PROTO_UDP`].
    pub proto: u8,
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: u8,
}

/// `struct vip_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VipInfo {
    /// Ring row and `beacon_vip_stats` slot, `< MAX_VIPS`.
    pub index: u32,
    /// `VIP_F_*`.
    pub flags: u32,
}

/// `struct vip_slot`: one slot of XDP's VIP index `beacon_vip_slots` (new in this ABI; the
/// XDP program no longer reads `beacon_vips` except on overflow).
///
/// Every VIP in `beacon_vips` also goes into one free slot among [`vip_slot_candidates`] of
/// its key, with `info` equal to its `beacon_vips` value. An ARRAY update is a plain copy
/// that a packet may observe half done, so userspace keeps every write to bytes a lookup could
/// match in an order where only equal bytes are rewritten:
/// - **add**: insert into `beacon_vips`; write the slot with `key.family = 0` (an empty slot
///   never matches); write it again with the real family;
/// - **remove**: write the slot with `key.family = 0` and all else unchanged (XDP stops
///   translating the VIP from that moment, established flows included); then delete it from
///   `beacon_vips`; the slot may be zeroed later;
/// - **change flags**: rewrite the slot with only `info.flags` changed; a new `info.index`
///   is a remove followed by an add.
///
/// If all candidates are taken (with at most `MAX_VIPS` VIPs in `VIP_SLOTS = 32 × MAX_VIPS`
/// slots this is vanishingly rare), leave the VIP out of the slots and set `overflow` to 1 in
/// its first candidate: XDP then falls back to `beacon_vips` for keys that start there.
/// Leaving `overflow` set for longer than needed only costs that fallback lookup.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VipSlot {
    /// The VIP's key; `family == 0` marks an empty slot.
    pub key: VipKey,
    /// The VIP's `beacon_vips` value.
    pub info: VipInfo,
    /// Nonzero: a VIP whose first candidate is this slot is only in `beacon_vips`.
    pub overflow: u32,
}

/// `struct backend`: an entry of `beacon_backends`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Backend {
    /// Address; IPv4 in the first 4 bytes.
    pub addr: [u8; 16],
    /// Port, network byte order in memory.
    pub port: u16,
    /// [`AF_INET`] or [`AF_INET6`]; must match the VIPs whose rings name it.
    pub family: u8,
    /// `BACKEND_F_*`.
    pub flags: u8,
    /// Bumped when the id is reused for another address, so old flows do not follow it.
    pub generation: u32,
}

/// `struct backend_ref`: a pinned backend (flow table and connected-UDP values).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BackendRef {
    /// Backend id.
    pub id: u32,
    /// The backend's `generation` when it was pinned.
    pub generation: u32,
}

/// `struct flow_key`: a 5-tuple as on the wire.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Source address.
    pub src: [u8; 16],
    /// Destination address.
    pub dst: [u8; 16],
    /// Source port, network byte order in memory.
    pub sport: u16,
    /// Destination port, network byte order in memory.
    pub dport: u16,
    /// [`PROTO_TCP`] or [`PROTO_UDP`].
    pub proto: u8,
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: u8,
    /// Zero.
    pub pad: [u8; 2],
}

/// `struct vip_endpoint`: what a reply's source or a socket's peer is translated back to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VipEndpoint {
    /// VIP address.
    pub addr: [u8; 16],
    /// VIP port, network byte order in memory.
    pub port: u16,
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: u8,
    /// Zero.
    pub pad: u8,
}

/// `struct sock_rev_key`: a socket (by cookie) and the backend it talks to.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SockRevKey {
    /// `SO_COOKIE` of the socket.
    pub cookie: u64,
    /// Backend address.
    pub addr: [u8; 16],
    /// Backend port, network byte order in memory.
    pub port: u16,
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: u8,
    /// Zero.
    pub pad: [u8; 5],
}

/// `struct lb_counters`: per-CPU counters of a VIP or a backend; sum over CPUs.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct LbCounters {
    /// XDP packets sent to this VIP / backend.
    pub packets: u64,
    /// Their bytes, Ethernet header included.
    pub bytes: u64,
    /// XDP flows and socket connects/sendmsgs (to a new backend) that picked it.
    pub new_flows: u64,
    /// VIP: packets or connects that found no usable backend. Backend: flows moved away
    /// because it was removed.
    pub misses: u64,
}

// SAFETY: all are #[repr(C)] plain integers and byte arrays with no implicit padding (the
// layout tests below check the sizes), so every bit pattern is valid.
unsafe impl aya::Pod for VipKey {}
unsafe impl aya::Pod for VipInfo {}
unsafe impl aya::Pod for VipSlot {}
unsafe impl aya::Pod for Backend {}
unsafe impl aya::Pod for BackendRef {}
unsafe impl aya::Pod for FlowKey {}
unsafe impl aya::Pod for VipEndpoint {}
unsafe impl aya::Pod for SockRevKey {}
unsafe impl aya::Pod for LbCounters {}

/// Splits an address into the 16-byte map form and its family.
pub fn addr_bytes(ip: IpAddr) -> ([u8; 16], u8) {
    let mut bytes = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => {
            bytes[..4].copy_from_slice(&v4.octets());
            (bytes, AF_INET)
        }
        IpAddr::V6(v6) => (v6.octets(), AF_INET6),
    }
}

/// The address a 16-byte map form and family stand for.
pub fn addr_from_bytes(bytes: [u8; 16], family: u8) -> IpAddr {
    if family == AF_INET {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(bytes))
    }
}

impl VipKey {
    /// The key of VIP `addr` (port in host order) for protocol `proto`.
    pub fn new(addr: SocketAddr, proto: u8) -> Self {
        let (bytes, family) = addr_bytes(addr.ip());
        Self {
            addr: bytes,
            port: addr.port().to_be(),
            proto,
            family,
        }
    }
}

impl Backend {
    /// A backend at `addr` (port in host order).
    pub fn new(addr: SocketAddr, flags: u8, generation: u32) -> Self {
        let (bytes, family) = addr_bytes(addr.ip());
        Self {
            addr: bytes,
            port: addr.port().to_be(),
            family,
            flags,
            generation,
        }
    }

    /// Its address and port.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(
            addr_from_bytes(self.addr, self.family),
            u16::from_be(self.port),
        )
    }
}

impl FlowKey {
    /// The key of a packet from `src` to `dst` (same family; ports in host order).
    pub fn new(src: SocketAddr, dst: SocketAddr, proto: u8) -> Self {
        let (src_bytes, family) = addr_bytes(src.ip());
        let (dst_bytes, _) = addr_bytes(dst.ip());
        Self {
            src: src_bytes,
            dst: dst_bytes,
            sport: src.port().to_be(),
            dport: dst.port().to_be(),
            proto,
            family,
            pad: [0; 2],
        }
    }
}

impl VipEndpoint {
    /// Its address and port.
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(
            addr_from_bytes(self.addr, self.family),
            u16::from_be(self.port),
        )
    }
}

/// The `beacon_rings` index of slot `slot` of VIP index `vip_index`.
pub fn ring_index(vip_index: u32, slot: u32) -> u32 {
    vip_index * RING_SIZE + slot
}

/// The ring slot a hash lands on (`pick_backend()` in `bpf/lib/lb.h`): multiply-shift,
/// `hash * RING_SIZE / 2^32`, which is uniform and needs no division.
pub fn ring_slot(hash: u32) -> u32 {
    ((u64::from(hash) * u64::from(RING_SIZE)) >> 32) as u32
}

/// `flow_hash()` of `bpf/lib/hash.h`: the hash XDP uses to pick a ring slot for a new flow
/// ([`ring_slot`], then up to [`PICK_PROBES`] slots on).
pub fn flow_hash(key: &FlowKey, seed: u32) -> u32 {
    let words = if key.family == AF_INET6 { 4 } else { 1 };
    let mut h = seed;
    for i in 0..words {
        h = hash_word(h, word(&key.src, i));
    }
    for i in 0..words {
        h = hash_word(h, word(&key.dst, i));
    }
    h = hash_word(h, (u32::from(key.sport) << 16) | u32::from(key.dport));
    h = hash_word(h, u32::from(key.proto));
    hash_final(h, u32::from(key.family))
}

/// `vip_slot_hash()` of `bpf/lib/hash.h`: where a VIP key's candidate slots in
/// `beacon_vip_slots` start. Node-local, so unseeded.
pub fn vip_slot_hash(key: &VipKey) -> u32 {
    let words = if key.family == AF_INET6 { 4 } else { 1 };
    let mut h = 0;
    for i in 0..words {
        h = hash_word(h, word(&key.addr, i));
    }
    let tail = (u32::from(key.port) << 16) | (u32::from(key.proto) << 8) | u32::from(key.family);
    h = hash_word(h, tail);
    hash_final(h, u32::from(key.family))
}

/// The `beacon_vip_slots` indices a VIP may occupy, in the order XDP searches them; the
/// first one carries the overflow mark ([`VipSlot::overflow`]).
pub fn vip_slot_candidates(key: &VipKey) -> [u32; VIP_SLOT_PROBES as usize] {
    let h = vip_slot_hash(key);
    std::array::from_fn(|i| h.wrapping_add(i as u32) & (VIP_SLOTS - 1))
}

fn word(bytes: &[u8; 16], i: usize) -> u32 {
    u32::from_ne_bytes([
        bytes[4 * i],
        bytes[4 * i + 1],
        bytes[4 * i + 2],
        bytes[4 * i + 3],
    ])
}

/// `cookie_hash()` of `bpf/lib/hash.h`: the hash socket LB uses to pick a ring slot.
pub fn cookie_hash(cookie: u64, seed: u32) -> u32 {
    let mut h = seed;
    h = hash_word(h, cookie as u32);
    h = hash_word(h, (cookie >> 32) as u32);
    hash_final(h, 8)
}

fn hash_word(h: u32, k: u32) -> u32 {
    let k = k
        .wrapping_mul(0xcc9e_2d51)
        .rotate_left(15)
        .wrapping_mul(0x1b87_3593);
    (h ^ k)
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

fn hash_final(h: u32, len: u32) -> u32 {
    let mut h = h ^ len;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::*;

    #[test]
    fn sizes_match_static_asserts_in_types_h() {
        assert_eq!(size_of::<VipKey>(), 20);
        assert_eq!(size_of::<VipInfo>(), 8);
        assert_eq!(size_of::<VipSlot>(), 32);
        assert_eq!(size_of::<Backend>(), 24);
        assert_eq!(size_of::<BackendRef>(), 8);
        assert_eq!(size_of::<FlowKey>(), 40);
        assert_eq!(size_of::<VipEndpoint>(), 20);
        assert_eq!(size_of::<SockRevKey>(), 32);
        assert_eq!(size_of::<LbCounters>(), 32);
    }

    #[test]
    fn offsets_match_c_layout() {
        assert_eq!(offset_of!(VipKey, port), 16);
        assert_eq!(offset_of!(VipKey, family), 19);
        assert_eq!(offset_of!(VipSlot, info), 20);
        assert_eq!(offset_of!(VipSlot, overflow), 28);
        assert_eq!(offset_of!(Backend, family), 18);
        assert_eq!(offset_of!(Backend, generation), 20);
        assert_eq!(offset_of!(FlowKey, sport), 32);
        assert_eq!(offset_of!(FlowKey, family), 37);
        assert_eq!(offset_of!(SockRevKey, addr), 8);
        assert_eq!(offset_of!(SockRevKey, port), 24);
        assert_eq!(offset_of!(SockRevKey, family), 26);
    }

    #[test]
    fn constructors_use_network_order() {
        let k = VipKey::new("10.0.0.1:80".parse().unwrap(), PROTO_TCP);
        assert_eq!(&k.addr[..4], &[10, 0, 0, 1]);
        assert_eq!(k.port.to_ne_bytes(), [0, 80]);
        assert_eq!(k.family, AF_INET);
        let b = Backend::new("[fd00::2]:8080".parse().unwrap(), 0, 1);
        assert_eq!(b.family, AF_INET6);
        assert_eq!(b.socket_addr(), "[fd00::2]:8080".parse().unwrap());
    }

    #[test]
    fn vip_slot_candidates_are_consecutive_and_wrap() {
        assert!(VIP_SLOTS.is_power_of_two());
        let k = VipKey::new("10.100.0.1:80".parse().unwrap(), PROTO_TCP);
        let c = vip_slot_candidates(&k);
        assert_eq!(c[0], vip_slot_hash(&k) & (VIP_SLOTS - 1));
        for w in c.windows(2) {
            assert_eq!(w[1], (w[0] + 1) % VIP_SLOTS);
        }
        let udp = VipKey::new("10.100.0.1:80".parse().unwrap(), PROTO_UDP);
        assert_ne!(vip_slot_hash(&k), vip_slot_hash(&udp));
    }

    #[test]
    fn stat_max_follows_the_last_counter() {
        assert_eq!(Stat::XdpRangeDropped as u32 + 1, STAT_MAX);
    }
}

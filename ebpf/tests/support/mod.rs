//! Shared test support: loading the object, filling maps, building and
//! checking packets. Packets are built here, with checksums computed from scratch, so the
//! expected output of a translation is "the same packet built with the new addresses".

#![allow(dead_code, unreachable_pub)]

use std::net::{IpAddr, SocketAddr};

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData, PerCpuArray},
};
use beacon_ebpf::abi::{
    self, AF_INET, Backend, FlowKey, LbCounters, PROTO_TCP, PROTO_UDP, RING_SIZE, Stat, VipInfo,
    VipKey, VipSlot,
};

/// Loads the object (every map is fresh: tests in parallel do not share state).
pub fn load() -> Ebpf {
    Ebpf::load(beacon_ebpf::OBJECT).expect("load beacon object")
}

/// Loads the object with the new-flow rate guard at `rate_limit` and, if given, flow tables of
/// `flow_table` entries.
pub fn load_with(rate_limit: u32, flow_table: Option<u32>) -> Ebpf {
    let mut loader = aya::EbpfLoader::new();
    loader.override_global(abi::globals::NEW_FLOW_RATE_LIMIT, &rate_limit, true);
    if let Some(size) = flow_table {
        loader.map_max_entries(abi::maps::FLOWS, size);
        loader.map_max_entries(abi::maps::REVNAT, size);
    }
    loader
        .load(beacon_ebpf::OBJECT)
        .expect("load beacon object")
}

/// Keeps the calling thread on CPU 0, so that every test run of a program sees the same per-CPU
/// state (LRU lists, the rate guard's window).
pub fn stay_on_cpu0() {
    // SAFETY: a zeroed cpu_set_t is valid; sched_setaffinity(0, ..) affects this thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        let rc = libc::sched_setaffinity(0, size_of_val(&set), &set);
        assert_eq!(
            rc,
            0,
            "sched_setaffinity: {}",
            std::io::Error::last_os_error()
        );
    }
}

pub fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Map writes the way userspace will do them.
pub struct Maps<'a>(pub &'a mut Ebpf);

impl Maps<'_> {
    /// Adds a VIP the way the ABI asks: `beacon_vips`, then a free XDP slot written with
    /// family 0 and then again with the real family.
    pub fn vip(&mut self, addr: SocketAddr, proto: u8, index: u32, flags: u32) {
        let key = VipKey::new(addr, proto);
        let info = VipInfo { index, flags };
        let mut vips: HashMap<&mut MapData, VipKey, VipInfo> =
            HashMap::try_from(self.0.map_mut(abi::maps::VIPS).unwrap()).unwrap();
        vips.insert(key, info, 0).unwrap();
        let mut slots = self.slots();
        let at = abi::vip_slot_candidates(&key)
            .into_iter()
            .find(|i| {
                let s = slots.get(i, 0).unwrap();
                s.key.family == 0 || s.key == key
            })
            .expect("a free VIP slot");
        let overflow = slots.get(&at, 0).unwrap().overflow;
        let mut slot = VipSlot {
            key: VipKey { family: 0, ..key },
            info,
            overflow,
        };
        slots.set(at, slot, 0).unwrap();
        slot.key.family = key.family;
        slots.set(at, slot, 0).unwrap();
    }

    /// Removes a VIP: its XDP slot's family to 0 first, then `beacon_vips`.
    pub fn vip_remove(&mut self, addr: SocketAddr, proto: u8) {
        let key = VipKey::new(addr, proto);
        let mut slots = self.slots();
        for i in abi::vip_slot_candidates(&key) {
            let mut s = slots.get(&i, 0).unwrap();
            if s.key == key {
                s.key.family = 0;
                slots.set(i, s, 0).unwrap();
            }
        }
        let mut vips: HashMap<&mut MapData, VipKey, VipInfo> =
            HashMap::try_from(self.0.map_mut(abi::maps::VIPS).unwrap()).unwrap();
        vips.remove(&key).unwrap();
    }

    /// Puts a VIP only in `beacon_vips`, marking its first slot candidate as overflowed (what
    /// userspace does when every candidate is taken).
    pub fn vip_overflowed(&mut self, addr: SocketAddr, proto: u8, index: u32, flags: u32) {
        let key = VipKey::new(addr, proto);
        let mut vips: HashMap<&mut MapData, VipKey, VipInfo> =
            HashMap::try_from(self.0.map_mut(abi::maps::VIPS).unwrap()).unwrap();
        vips.insert(key, VipInfo { index, flags }, 0).unwrap();
        let mut slots = self.slots();
        let first = abi::vip_slot_candidates(&key)[0];
        let mut s = slots.get(&first, 0).unwrap();
        s.overflow = 1;
        slots.set(first, s, 0).unwrap();
    }

    fn slots(&mut self) -> Array<&mut MapData, VipSlot> {
        Array::try_from(self.0.map_mut(abi::maps::VIP_SLOTS).unwrap()).unwrap()
    }

    pub fn backend(&mut self, id: u32, addr: SocketAddr, flags: u8, generation: u32) {
        let mut backends: Array<&mut MapData, Backend> =
            Array::try_from(self.0.map_mut(abi::maps::BACKENDS).unwrap()).unwrap();
        backends
            .set(id, Backend::new(addr, flags, generation), 0)
            .unwrap();
    }

    pub fn backend_flags(&mut self, id: u32, flags: u8) {
        let mut backends: Array<&mut MapData, Backend> =
            Array::try_from(self.0.map_mut(abi::maps::BACKENDS).unwrap()).unwrap();
        let mut be = backends.get(&id, 0).unwrap();
        be.flags = flags;
        backends.set(id, be, 0).unwrap();
    }

    /// Fills VIP `index`'s ring by repeating `pattern` (a stand-in for a Maglev table).
    pub fn ring(&mut self, index: u32, pattern: &[u32]) {
        let mut rings: Array<&mut MapData, u32> =
            Array::try_from(self.0.map_mut(abi::maps::RINGS).unwrap()).unwrap();
        for slot in 0..RING_SIZE {
            let id = if pattern.is_empty() {
                0
            } else {
                pattern[slot as usize % pattern.len()]
            };
            rings.set(abi::ring_index(index, slot), id, 0).unwrap();
        }
    }

    pub fn ring_slot(&self, index: u32, slot: u32) -> u32 {
        let rings: Array<&MapData, u32> =
            Array::try_from(self.0.map(abi::maps::RINGS).unwrap()).unwrap();
        rings.get(&abi::ring_index(index, slot), 0).unwrap()
    }

    pub fn backend_get(&self, id: u32) -> Backend {
        let backends: Array<&MapData, Backend> =
            Array::try_from(self.0.map(abi::maps::BACKENDS).unwrap()).unwrap();
        backends.get(&id, 0).unwrap()
    }

    pub fn vip_counters(&self, index: u32) -> LbCounters {
        self.counters(abi::maps::VIP_STATS, index)
    }

    pub fn backend_counters(&self, id: u32) -> LbCounters {
        self.counters(abi::maps::BACKEND_STATS, id)
    }

    fn counters(&self, map: &str, index: u32) -> LbCounters {
        let m: PerCpuArray<&MapData, LbCounters> =
            PerCpuArray::try_from(self.0.map(map).unwrap()).unwrap();
        m.get(&index, 0)
            .unwrap()
            .iter()
            .fold(LbCounters::default(), |a, c| LbCounters {
                packets: a.packets + c.packets,
                bytes: a.bytes + c.bytes,
                new_flows: a.new_flows + c.new_flows,
                misses: a.misses + c.misses,
            })
    }

    pub fn stat(&self, stat: Stat) -> u64 {
        let m: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(self.0.map(abi::maps::STATS).unwrap()).unwrap();
        m.get(&(stat as u32), 0).unwrap().iter().sum()
    }

    /// The backend the data plane's model picks for a new flow: the Rust mirror of the hash,
    /// then the ring, skipping backends that take no new flows.
    pub fn model_pick(&self, vip_index: u32, flow: &FlowKey) -> Option<u32> {
        let mut slot = abi::ring_slot(abi::flow_hash(flow, 0));
        for _ in 0..abi::PICK_PROBES {
            let id = self.ring_slot(vip_index, slot);
            if id == 0 {
                return None;
            }
            let be = self.backend_get(id);
            if be.family == flow.family
                && be.flags & (abi::BACKEND_F_DRAIN | abi::BACKEND_F_REMOVED) == 0
            {
                return Some(id);
            }
            slot = (slot + 1) % RING_SIZE;
        }
        None
    }
}

/// A TCP or UDP packet in an Ethernet frame.
#[derive(Clone, Debug)]
pub struct Packet {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub proto: u8,
    pub payload: Vec<u8>,
    /// UDP over IPv4 only: send a zero ("no checksum") UDP checksum.
    pub udp_no_csum: bool,
}

impl Packet {
    pub fn tcp(src: &str, dst: &str) -> Self {
        Self {
            src: sa(src),
            dst: sa(dst),
            proto: PROTO_TCP,
            payload: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            udp_no_csum: false,
        }
    }

    pub fn udp(src: &str, dst: &str) -> Self {
        Self {
            src: sa(src),
            dst: sa(dst),
            proto: PROTO_UDP,
            payload: b"\x12\x34 query".to_vec(),
            udp_no_csum: false,
        }
    }

    pub fn with_dst(&self, dst: SocketAddr) -> Self {
        Self {
            dst,
            ..self.clone()
        }
    }

    pub fn with_src(&self, src: SocketAddr) -> Self {
        Self {
            src,
            ..self.clone()
        }
    }

    /// The reply to this packet (addresses and ports swapped).
    pub fn reply(&self) -> Self {
        Self {
            src: self.dst,
            dst: self.src,
            payload: b"reply".to_vec(),
            ..self.clone()
        }
    }

    pub fn flow(&self) -> FlowKey {
        FlowKey::new(self.src, self.dst, self.proto)
    }

    pub fn build(&self) -> Vec<u8> {
        let l4 = self.l4();
        let mut frame = Vec::new();
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x02]); // dst MAC
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 0x01]); // src MAC
        match (self.src.ip(), self.dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                frame.extend_from_slice(&0x0800u16.to_be_bytes());
                let mut ip = vec![0x45, 0];
                ip.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
                ip.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, self.proto, 0, 0]);
                ip.extend_from_slice(&s.octets());
                ip.extend_from_slice(&d.octets());
                let c = checksum(&[&ip]);
                ip[10..12].copy_from_slice(&c.to_be_bytes());
                frame.extend_from_slice(&ip);
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                frame.extend_from_slice(&0x86ddu16.to_be_bytes());
                frame.extend_from_slice(&[0x60, 0, 0, 0]);
                frame.extend_from_slice(&(l4.len() as u16).to_be_bytes());
                frame.extend_from_slice(&[self.proto, 64]);
                frame.extend_from_slice(&s.octets());
                frame.extend_from_slice(&d.octets());
            }
            _ => panic!("mixed families"),
        }
        frame.extend_from_slice(&l4);
        frame
    }

    fn l4(&self) -> Vec<u8> {
        let mut l4 = Vec::new();
        l4.extend_from_slice(&self.src.port().to_be_bytes());
        l4.extend_from_slice(&self.dst.port().to_be_bytes());
        let csum_at = if self.proto == PROTO_TCP {
            l4.extend_from_slice(&1000u32.to_be_bytes()); // seq
            l4.extend_from_slice(&0u32.to_be_bytes()); // ack
            l4.extend_from_slice(&[0x50, 0x02]); // data offset 5, SYN
            l4.extend_from_slice(&65535u16.to_be_bytes());
            l4.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
            16
        } else {
            l4.extend_from_slice(&((8 + self.payload.len()) as u16).to_be_bytes());
            l4.extend_from_slice(&[0, 0]);
            6
        };
        l4.extend_from_slice(&self.payload);
        if !(self.proto == PROTO_UDP && self.udp_no_csum) {
            let mut c = checksum(&[
                &pseudo_header(self.src.ip(), self.dst.ip(), self.proto, l4.len()),
                &l4,
            ]);
            if c == 0 && self.proto == PROTO_UDP {
                c = 0xffff;
            }
            l4[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
        }
        l4
    }
}

fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => panic!("mixed families"),
    }
    p
}

/// The Internet checksum (RFC 1071) of the concatenation of `parts` (each even-length but
/// the last).
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for part in parts {
        for chunk in part.chunks(2) {
            let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
            sum += u32::from(word);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Checks the IPv4 header checksum and the TCP/UDP checksum of a frame from scratch.
/// Returns a description of the first bad one.
pub fn verify_checksums(frame: &[u8]) -> Result<(), String> {
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let (src, dst, proto, l4): (IpAddr, IpAddr, u8, &[u8]) = match ethertype {
        0x0800 => {
            let ip = &frame[14..34];
            if checksum(&[ip]) != 0 {
                return Err(format!(
                    "bad IPv4 header checksum {:#06x}",
                    u16::from_be_bytes([ip[10], ip[11]])
                ));
            }
            let s: [u8; 4] = ip[12..16].try_into().unwrap();
            let d: [u8; 4] = ip[16..20].try_into().unwrap();
            (s.into(), d.into(), ip[9], &frame[34..])
        }
        0x86dd => {
            let ip = &frame[14..54];
            let s: [u8; 16] = ip[8..24].try_into().unwrap();
            let d: [u8; 16] = ip[24..40].try_into().unwrap();
            (s.into(), d.into(), ip[6], &frame[54..])
        }
        other => return Err(format!("not IP: ethertype {other:#06x}")),
    };
    let csum_at = if proto == PROTO_TCP { 16 } else { 6 };
    let stored = u16::from_be_bytes([l4[csum_at], l4[csum_at + 1]]);
    if proto == PROTO_UDP && stored == 0 {
        return if src.is_ipv4() {
            Ok(())
        } else {
            Err("zero UDP checksum over IPv6".into())
        };
    }
    if checksum(&[&pseudo_header(src, dst, proto, l4.len()), l4]) != 0 {
        return Err(format!("bad L4 checksum {stored:#06x}"));
    }
    Ok(())
}

/// The destination address and port of a frame (IPv4 or IPv6, TCP or UDP).
pub fn frame_dst(frame: &[u8]) -> SocketAddr {
    frame_endpoints(frame).1
}

/// The source and destination of a frame.
pub fn frame_endpoints(frame: &[u8]) -> (SocketAddr, SocketAddr) {
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let (s, d, l4): (IpAddr, IpAddr, &[u8]) = if ethertype == 0x0800 {
        let s: [u8; 4] = frame[26..30].try_into().unwrap();
        let d: [u8; 4] = frame[30..34].try_into().unwrap();
        (s.into(), d.into(), &frame[34..])
    } else {
        let s: [u8; 16] = frame[22..38].try_into().unwrap();
        let d: [u8; 16] = frame[38..54].try_into().unwrap();
        (s.into(), d.into(), &frame[54..])
    };
    (
        SocketAddr::new(s, u16::from_be_bytes([l4[0], l4[1]])),
        SocketAddr::new(d, u16::from_be_bytes([l4[2], l4[3]])),
    )
}

pub const AF4: u8 = AF_INET;

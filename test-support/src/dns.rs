//! A small DNS client, as dig would ask: one query over UDP or TCP, the reply decoded, and
//! records and flags written as the reference files write them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// How a query travels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Transport {
    /// One datagram each way.
    Udp,
    /// A length-prefixed message on a new connection.
    Tcp,
}

/// Options of one query, as dig would send it.
#[derive(Clone, Copy, Debug)]
pub struct Ask {
    /// UDP or TCP.
    pub transport: Transport,
    /// An OPT record advertising this payload size, or none.
    pub edns: Option<u16>,
    /// The RD (recursion desired) flag.
    pub rd: bool,
}

impl Ask {
    /// dig +tcp.
    pub const TCP: Self = Self {
        transport: Transport::Tcp,
        edns: None,
        rd: true,
    };
    /// dig's default: UDP, no EDNS, RD set.
    pub const UDP: Self = Self {
        transport: Transport::Udp,
        edns: None,
        rd: true,
    };
}

/// The query message for `name` and `qtype`, with a fresh id.
pub fn query_message(name: &str, qtype: RecordType, ask: Ask) -> Message {
    let mut msg = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = ask.rd;
    let mut q = Query::query(Name::from_ascii(name).unwrap(), qtype);
    q.set_query_class(DNSClass::IN);
    msg.add_query(q);
    if let Some(size) = ask.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(size);
        msg.edns = Some(edns);
    }
    msg
}

fn rand_id() -> u16 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        & 0xffff) as u16
}

/// Asks `server` and returns its reply, checking that the id matches; panics on I/O errors.
pub fn query(server: SocketAddr, name: &str, qtype: RecordType, ask: Ask) -> Message {
    let msg = query_message(name, qtype, ask);
    let reply = exchange(server, &msg.to_vec().unwrap(), ask.transport)
        .unwrap_or_else(|e| panic!("{name} {qtype}: {e}"));
    let reply = Message::from_vec(&reply).unwrap();
    assert_eq!(reply.metadata.id, msg.metadata.id);
    reply
}

/// Sends raw bytes, returns the raw reply.
pub fn exchange(
    server: SocketAddr,
    bytes: &[u8],
    transport: Transport,
) -> std::io::Result<Vec<u8>> {
    match transport {
        Transport::Udp => {
            let s = UdpSocket::bind("127.0.0.1:0")?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.send_to(bytes, server)?;
            let mut buf = vec![0; 65535];
            let n = s.recv(&mut buf)?;
            buf.truncate(n);
            Ok(buf)
        }
        Transport::Tcp => {
            let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(bytes);
            s.write_all(&out)?;
            let mut len = [0; 2];
            s.read_exact(&mut len)?;
            let mut buf = vec![0; u16::from_be_bytes(len) as usize];
            s.read_exact(&mut buf)?;
            Ok(buf)
        }
    }
}

/// A record as the reference file writes it: `owner TTL TYPE rdata`, SOA serial as `SERIAL`.
pub fn show(r: &Record) -> String {
    let data = match &r.data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::SRV(s) => format!("{} {} {} {}", s.priority, s.weight, s.port, s.target),
        RData::SOA(s) => format!(
            "{} {} SERIAL {} {} {} {}",
            s.mname, s.rname, s.refresh, s.retry, s.expire, s.minimum
        ),
        RData::NS(n) => n.0.to_string(),
        RData::PTR(p) => p.0.to_string(),
        other => format!("{other}"),
    };
    format!("{} {} {} {}", r.name, r.ttl, r.record_type(), data)
}

/// dig's flag list: `qr aa tc rd ra`.
pub fn flags(m: &Message) -> String {
    let md = &m.metadata;
    let all = [
        (md.message_type == MessageType::Response, "qr"),
        (md.authoritative, "aa"),
        (md.truncation, "tc"),
        (md.recursion_desired, "rd"),
        (md.recursion_available, "ra"),
    ];
    all.iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| *f)
        .collect::<Vec<_>>()
        .join(" ")
}

//! Forwarding of names outside the domain to upstream resolvers (`research/mesos-dns.md` §4.4).
//!
//! The client's message goes out unchanged over the client's own transport, to each upstream in
//! order until one answers; the first answer comes back verbatim. A semaphore bounds the queries
//! in flight so that a slow upstream cannot make the agent hoard sockets and memory: past the
//! bound a query gets SERVFAIL at once.
//!
//! Only clients in [`ForwardConfig::allow`] may have names forwarded: anyone else is REFUSED,
//! so an agent listening on 0.0.0.0 is not an open resolver. A reply is taken only when it
//! comes from the upstream asked (the UDP socket is connected to it, so the kernel drops
//! datagrams from any other address or port) and echoes the query's id and question; anything
//! else is dropped, counted (`beacon_dns_upstream_replies_rejected_total`) and the wait goes on
//! until the timeout, so a spoofer racing the upstream cannot win with a guessed id alone.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, Query};
use hickory_proto::rr::LowerName;
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::time::timeout;

use crate::metrics::DnsMetrics;

/// Where and how to forward.
#[derive(Clone, Debug)]
pub struct ForwardConfig {
    /// Default upstreams, tried in order.
    pub resolvers: Vec<SocketAddr>,
    /// Per-zone upstreams (`ZoneResolvers`); the longest matching zone wins.
    pub zones: Vec<(LowerName, Vec<SocketAddr>)>,
    /// Timeout for each upstream attempt (`Timeout`).
    pub timeout: Duration,
    /// Whether to forward at all (`ExternalOn`).
    pub enabled: bool,
    /// Bound on upstream queries in flight.
    pub max_inflight: usize,
    /// Clients whose names outside the domain are forwarded; others get REFUSED for them.
    pub allow: Vec<IpNet>,
}

/// What became of a forwarded query.
#[derive(Debug)]
pub enum Forwarded {
    /// An upstream answered.
    Reply(Box<Message>),
    /// Forwarding is off or there is no upstream for the name: REFUSED, as Mesos-DNS.
    Refused,
    /// Every upstream failed or timed out: SERVFAIL.
    Failed,
    /// Too many queries in flight: SERVFAIL without trying.
    Overloaded,
}

/// Sends queries upstream.
#[derive(Debug)]
pub struct Forwarder {
    config: ForwardConfig,
    inflight: Arc<Semaphore>,
}

impl Forwarder {
    /// A forwarder with `config`.
    pub fn new(mut config: ForwardConfig) -> Self {
        config
            .zones
            .sort_by_key(|(zone, _)| std::cmp::Reverse(zone.num_labels()));
        let inflight = Arc::new(Semaphore::new(config.max_inflight.max(1)));
        Self { config, inflight }
    }

    /// Whether `client` may have names outside the domain forwarded.
    pub fn allows(&self, client: IpAddr) -> bool {
        // A dual-stack socket shows IPv4 clients as ::ffff:a.b.c.d.
        let client = client.to_canonical();
        self.config.allow.iter().any(|net| net.contains(&client))
    }

    /// Forwards `raw` (a whole DNS message for `name`) over TCP when `tcp`, else UDP. Replies
    /// that do not match the query are counted in `metrics` and ignored.
    pub async fn forward(
        &self,
        name: &LowerName,
        raw: &[u8],
        tcp: bool,
        metrics: &DnsMetrics,
    ) -> Forwarded {
        let upstreams = self.upstreams(name);
        if !self.config.enabled || upstreams.is_empty() {
            return Forwarded::Refused;
        }
        let Ok(_permit) = self.inflight.try_acquire() else {
            return Forwarded::Overloaded;
        };
        let Ok(expected) = Expected::of(raw) else {
            return Forwarded::Failed;
        };
        for upstream in upstreams {
            let exchange = Exchange {
                upstream: *upstream,
                raw,
                expected: &expected,
                metrics,
            };
            let reply = async {
                if tcp {
                    exchange.tcp().await
                } else {
                    exchange.udp().await
                }
            };
            match timeout(self.config.timeout, reply).await {
                Ok(Ok(msg)) => return Forwarded::Reply(Box::new(msg)),
                Ok(Err(error)) => tracing::debug!(%upstream, %error, "upstream failed"),
                Err(_) => tracing::debug!(%upstream, "upstream timed out"),
            }
        }
        Forwarded::Failed
    }

    fn upstreams(&self, name: &LowerName) -> &[SocketAddr] {
        self.config
            .zones
            .iter()
            .find(|(zone, _)| zone.zone_of(name))
            .map(|(_, ups)| &ups[..])
            .unwrap_or(&self.config.resolvers)
    }
}

/// What an upstream's reply must echo to be taken as the answer to the query forwarded.
struct Expected {
    id: u16,
    queries: Vec<Query>,
}

impl Expected {
    fn of(raw: &[u8]) -> Result<Self, hickory_proto::ProtoError> {
        let query = Message::from_vec(raw)?;
        Ok(Self {
            id: query.metadata.id,
            queries: query.queries,
        })
    }

    /// The reply in `bytes` if it answers the query (names compare case-insensitively, so an
    /// upstream that randomises case, 0x20-style, still matches).
    fn accept(&self, bytes: &[u8]) -> Option<Message> {
        let msg = Message::from_vec(bytes).ok()?;
        let ok = msg.metadata.id == self.id
            && msg.metadata.message_type == MessageType::Response
            && msg.queries == self.queries;
        ok.then_some(msg)
    }
}

/// One query to one upstream; the caller bounds its time.
struct Exchange<'a> {
    upstream: SocketAddr,
    raw: &'a [u8],
    expected: &'a Expected,
    metrics: &'a DnsMetrics,
}

impl Exchange<'_> {
    /// Over UDP, from a socket connected to the upstream: the kernel delivers nothing else.
    async fn udp(&self) -> std::io::Result<Message> {
        let bind: SocketAddr = if self.upstream.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind).await?;
        socket.connect(self.upstream).await?;
        socket.send(self.raw).await?;
        let mut buf = vec![0; 65535];
        loop {
            let n = socket.recv(&mut buf).await?;
            match self.expected.accept(&buf[..n]) {
                Some(msg) => return Ok(msg),
                None => self.rejected(),
            }
        }
    }

    async fn tcp(&self) -> std::io::Result<Message> {
        let len = u16::try_from(self.raw.len())
            .map_err(|_| std::io::Error::other("query over 65535 bytes"))?;
        let mut stream = TcpStream::connect(self.upstream).await?;
        stream.set_nodelay(true)?;
        let mut out = Vec::with_capacity(self.raw.len() + 2);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(self.raw);
        stream.write_all(&out).await?;
        loop {
            let reply_len = stream.read_u16().await?;
            let mut buf = vec![0; usize::from(reply_len)];
            stream.read_exact(&mut buf).await?;
            match self.expected.accept(&buf) {
                Some(msg) => return Ok(msg),
                None => self.rejected(),
            }
        }
    }

    fn rejected(&self) {
        tracing::debug!(upstream = %self.upstream, "upstream reply does not match the query; ignored");
        self.metrics.upstream_reply_rejected();
    }
}

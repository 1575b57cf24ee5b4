//! Forwarding of names outside the domain to upstream resolvers (`research/mesos-dns.md` §4.4).
//!
//! The client's message goes out unchanged over the client's own transport, to each upstream in
//! order until one answers; the first answer comes back verbatim. A semaphore bounds the queries
//! in flight so that a slow upstream cannot make the agent hoard sockets and memory: past the
//! bound a query gets SERVFAIL at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::Message;
use hickory_proto::rr::LowerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::time::timeout;

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

    /// Forwards `raw` (a whole DNS message for `name`) over TCP when `tcp`, else UDP.
    pub async fn forward(&self, name: &LowerName, raw: &[u8], tcp: bool) -> Forwarded {
        let upstreams = self.upstreams(name);
        if !self.config.enabled || upstreams.is_empty() {
            return Forwarded::Refused;
        }
        let Ok(_permit) = self.inflight.try_acquire() else {
            return Forwarded::Overloaded;
        };
        let Some(id) = raw.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
            return Forwarded::Failed;
        };
        for upstream in upstreams {
            let reply = async {
                if tcp {
                    exchange_tcp(*upstream, raw).await
                } else {
                    exchange_udp(*upstream, raw).await
                }
            };
            match timeout(self.config.timeout, reply).await {
                Ok(Ok(bytes)) => match Message::from_vec(&bytes) {
                    Ok(msg) if msg.metadata.id == id => return Forwarded::Reply(Box::new(msg)),
                    Ok(_) => tracing::debug!(%upstream, "upstream reply with a wrong id"),
                    Err(error) => tracing::debug!(%upstream, %error, "malformed upstream reply"),
                },
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

async fn exchange_udp(upstream: SocketAddr, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let bind: SocketAddr = if upstream.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(upstream).await?;
    socket.send(raw).await?;
    let mut buf = vec![0; 65535];
    let n = socket.recv(&mut buf).await?;
    buf.truncate(n);
    Ok(buf)
}

async fn exchange_tcp(upstream: SocketAddr, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let len =
        u16::try_from(raw.len()).map_err(|_| std::io::Error::other("query over 65535 bytes"))?;
    let mut stream = TcpStream::connect(upstream).await?;
    stream.set_nodelay(true)?;
    let mut out = Vec::with_capacity(raw.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(raw);
    stream.write_all(&out).await?;
    let reply_len = stream.read_u16().await?;
    let mut buf = vec![0; usize::from(reply_len)];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

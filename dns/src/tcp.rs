//! Beacon's DNS-over-TCP loop: an accept loop with NSD's bounds (`tcp-count`, `tcp-timeout`)
//! that answers with the same [`DnsHandler`] as UDP.
//!
//! hickory-server's TCP listener takes every connection and keeps it until it idles out, so
//! 400 idle connections used up the agent's file descriptors and its master poll failed. Here a
//! connection past the total cap or past its client's cap is closed as soon as it is accepted
//! (counted in `beacon_dns_tcp_refused_total`), an idle connection is closed after the idle
//! timeout, and a query must arrive whole and be answered within the query timeout, so a client
//! trickling bytes holds a slot for that long at most.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hickory_proto::rr::Record;
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use crate::handler::DnsHandler;
use crate::response::encode_udp;

/// The bounds of DNS over TCP.
#[derive(Clone, Copy, Debug)]
pub struct TcpLimits {
    /// Connections open at once, all clients together (NSD's `tcp-count`).
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_per_client: usize,
    /// A connection waiting this long for its next query is closed.
    pub idle_timeout: Duration,
    /// Time from a query's first byte to its reply written (NSD's `tcp-timeout`).
    pub query_timeout: Duration,
}

/// The running accept loop.
pub(crate) struct TcpLoop {
    stop: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpLoop {
    /// Serves `listener` with `handler` on the current tokio runtime.
    pub(crate) fn start(
        listener: TcpListener,
        handler: Arc<DnsHandler>,
        limits: TcpLimits,
    ) -> Self {
        let stop = Arc::new(Notify::new());
        let task = tokio::spawn(accept_loop(listener, handler, limits, stop.clone()));
        Self { stop, task }
    }

    /// Stops accepting and closes every connection.
    pub(crate) async fn stop(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

/// Connections open, in total and per client address.
#[derive(Default)]
struct Open {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// A connection's place in [`Open`], given back when it closes (or its task panics).
struct Slot {
    open: Arc<Mutex<Open>>,
    client: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total -= 1;
        if let Some(n) = open.per_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.per_client.remove(&self.client);
            }
        }
    }
}

/// A slot for a connection from `client`, or the cap it meets.
fn admit(
    open: &Arc<Mutex<Open>>,
    client: IpAddr,
    limits: &TcpLimits,
) -> Result<Slot, &'static str> {
    let mut guard = open.lock().unwrap_or_else(PoisonError::into_inner);
    if guard.total >= limits.max_connections {
        return Err("total");
    }
    let mine = guard.per_client.entry(client).or_default();
    if *mine >= limits.max_per_client {
        return Err("per_client");
    }
    *mine += 1;
    guard.total += 1;
    Ok(Slot {
        open: open.clone(),
        client,
    })
}

async fn accept_loop(
    listener: TcpListener,
    handler: Arc<DnsHandler>,
    limits: TcpLimits,
    stop: Arc<Notify>,
) {
    let open = Arc::new(Mutex::new(Open::default()));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            () = stop.notified() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match admit(&open, peer.ip().to_canonical(), &limits) {
                    Ok(slot) => {
                        let handler = handler.clone();
                        conns.spawn(serve(stream, peer, handler, limits, slot));
                    }
                    // Dropping the stream closes it: the client sees the refusal at once.
                    Err(cap) => handler.metrics().tcp_refused(cap),
                },
                Err(error) => {
                    // Out of descriptors (EMFILE) or the like: back off rather than spin.
                    tracing::warn!(%error, "cannot accept a DNS-over-TCP connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    conns.shutdown().await;
}

/// Answers the queries of one connection, in order, until it closes or times out.
async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    handler: Arc<DnsHandler>,
    limits: TcpLimits,
    _slot: Slot,
) {
    let _ = stream.set_nodelay(true);
    loop {
        let Ok(Ok(first)) = timeout(limits.idle_timeout, stream.read_u8()).await else {
            return;
        };
        let deadline = Instant::now() + limits.query_timeout;
        let answered = timeout_at(deadline, answer(&mut stream, first, peer, &handler)).await;
        if !matches!(answered, Ok(Ok(()))) {
            return;
        }
    }
}

/// Reads the rest of one query (its length's first byte already read), answers it and writes
/// the reply.
async fn answer(
    stream: &mut TcpStream,
    first: u8,
    peer: SocketAddr,
    handler: &DnsHandler,
) -> io::Result<()> {
    let len = u16::from_be_bytes([first, stream.read_u8().await?]);
    let mut query = vec![0; usize::from(len)];
    stream.read_exact(&mut query).await?;
    // Never answer a response (QR set), nor garbage without a header.
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return Err(io::ErrorKind::InvalidData.into());
    }
    let request = Request::from_bytes(query, peer, Protocol::Tcp)
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    let reply = Arc::new(Mutex::new(Vec::new()));
    let sink = TcpSink(reply.clone());
    handler.handle_request::<_, TokioTime>(&request, sink).await;
    let bytes = std::mem::take(&mut *reply.lock().unwrap_or_else(PoisonError::into_inner));
    if bytes.is_empty() {
        return Ok(()); // The handler chose not to answer (a malformed question).
    }
    let len = u16::try_from(bytes.len()).map_err(|_| io::Error::other("reply over 64 KiB"))?;
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes);
    stream.write_all(&out).await
}

/// Keeps the encoded reply for the connection to write.
#[derive(Clone)]
struct TcpSink(Arc<Mutex<Vec<u8>>>);

#[async_trait::async_trait]
impl ResponseHandler for TcpSink {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        // A TCP message is at most 65535 bytes; a longer one goes as a bare header with TC.
        let (info, bytes) = encode_udp(response, u16::MAX);
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = bytes;
        Ok(info)
    }
}

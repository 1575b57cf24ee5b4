//! Beacon's UDP loop: one OS thread per SO_REUSEPORT socket, each query handled inline.
//!
//! hickory-server's own UDP loop spawns a task and crosses a channel for every query, which costs
//! more than answering it (`research/gossip-dns.md` §3.2, measured at ~1.5x NSD's CPU per
//! query). Here each socket's thread receives a query, builds hickory-server's `Request`, calls
//! the same [`DnsHandler`] through the `RequestHandler` trait, and its `ResponseHandler` encodes
//! the reply into the thread's outbox. In-domain answers never wait, so the handler's future
//! completes on its first poll; a query that must wait (forwarding upstream) is handed to the
//! tokio runtime and sends its reply from there. Queries come in and replies go out in batches
//! (`recvmmsg`/`sendmmsg`, see [`batch`]). TCP has its own loop ([`crate::tcp`]).

mod batch;
mod cache;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hickory_proto::op::{MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_server::net::NetError;
use hickory_server::net::runtime::TokioTime;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;

use crate::handler::DnsHandler;
use crate::response::{CLASSIC_UDP_LIMIT, bare_header, encode_udp};

/// Largest query read; anything longer is cut and fails to parse (FORMERR), as no real query is.
const RECV_BUFFER: usize = 4096;

thread_local! {
    /// Set on the serving threads: their replies wait in [`OUTBOX`] for the batch send.
    static IN_LOOP: Cell<bool> = const { Cell::new(false) };
    /// Replies of the batch being handled on this thread.
    static OUTBOX: RefCell<Vec<(Vec<u8>, SocketAddr)>> = const { RefCell::new(Vec::new()) };
}

/// The UDP serving threads.
pub(crate) struct UdpLoops {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl UdpLoops {
    /// Starts one thread per socket. `runtime` runs the queries that must wait.
    pub(crate) fn start(
        sockets: Vec<UdpSocket>,
        handler: Arc<DnsHandler>,
        runtime: tokio::runtime::Handle,
    ) -> io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(sockets.len());
        for (i, socket) in sockets.into_iter().enumerate() {
            // A read timeout lets the thread notice `stop`.
            socket.set_nonblocking(false)?;
            socket.set_read_timeout(Some(Duration::from_millis(200)))?;
            let ctx = LoopContext {
                socket: Arc::new(socket),
                handler: handler.clone(),
                runtime: runtime.clone(),
                stop: stop.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("beacon-dns-udp-{i}"))
                .spawn(move || ctx.run())?;
            threads.push(thread);
        }
        Ok(Self { stop, threads })
    }

    /// Stops the threads and waits for them.
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

struct LoopContext {
    socket: Arc<UdpSocket>,
    handler: Arc<DnsHandler>,
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
}

impl LoopContext {
    fn run(self) {
        IN_LOOP.set(true);
        // Futures first polled here (forwarding) create timers and sockets of this runtime.
        let _runtime = self.runtime.enter();
        let mut batch = batch::RecvBatch::new(RECV_BUFFER);
        let mut cache = cache::AnswerCache::new();
        while !self.stop.load(Ordering::Relaxed) {
            let n = match batch.recv(&*self.socket) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(error) => {
                    // ICMP errors from earlier sends surface here on Linux; they concern one
                    // client, not the socket.
                    tracing::debug!(%error, "UDP receive error");
                    continue;
                }
            };
            cache.set_zone(self.handler.zone_id());
            for i in 0..n {
                if let Some((packet, src)) = batch.get(i) {
                    // A bug triggered by one query must not take the socket down with it.
                    let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.handle(&mut cache, packet, src)
                    }));
                    if handled.is_err() {
                        tracing::error!(%src, "panic while answering a query; it got no answer");
                    }
                }
            }
            let replies = OUTBOX.take();
            batch::send_all(self.socket.as_raw_fd(), &replies);
        }
    }

    /// Answers one datagram: from the cache when it can, else through the handler.
    fn handle(&self, cache: &mut cache::AnswerCache, packet: &[u8], src: SocketAddr) {
        // Never answer a response (QR set): two servers would bounce it forever.
        if packet.get(2).is_some_and(|flags| flags & 0x80 != 0) {
            return;
        }
        let start = Instant::now();
        match cache.lookup(packet, rand::random()) {
            cache::Lookup::Hit(reply, facts) => {
                let mut reply = reply.to_vec();
                reply[..2].copy_from_slice(&packet[..2]);
                OUTBOX.with_borrow_mut(|out| out.push((reply, src)));
                let metrics = self.handler.metrics();
                metrics.observe_raw(facts.qtype, facts.rcode, start.elapsed());
                metrics.cache_lookup(true);
            }
            cache::Lookup::Miss(key) => {
                self.handler.metrics().cache_lookup(false);
                let before = OUTBOX.with_borrow(Vec::len);
                self.answer(packet, src);
                OUTBOX.with_borrow(|out| {
                    if out.len() == before + 1 {
                        cache.insert(key, &out[before].0, cache::qtype(packet));
                    }
                });
            }
            cache::Lookup::Skip => self.answer(packet, src),
        }
    }

    /// Answers one datagram through the handler.
    fn answer(&self, packet: &[u8], src: SocketAddr) {
        let sink = UdpSink {
            socket: self.socket.clone(),
            dst: src,
        };
        let Ok(request) = Request::from_bytes(packet.to_vec(), src, Protocol::Udp) else {
            return sink.formerr(packet);
        };
        let handler = self.handler.clone();
        let mut answer: Pin<Box<dyn Future<Output = ResponseInfo> + Send>> =
            Box::pin(async move { handler.handle_request::<_, TokioTime>(&request, sink).await });
        if answer
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending()
        {
            self.runtime.spawn(answer);
        }
    }
}

/// Encodes a response and sends it from the serving thread (or a runtime task).
#[derive(Clone)]
struct UdpSink {
    socket: Arc<UdpSocket>,
    dst: SocketAddr,
}

impl UdpSink {
    fn send(&self, bytes: Vec<u8>) {
        if IN_LOOP.get() {
            OUTBOX.with_borrow_mut(|out| out.push((bytes, self.dst)));
        } else if let Err(error) = self.socket.send_to(&bytes, self.dst) {
            tracing::debug!(%error, dst = %self.dst, "UDP send failed");
        }
    }

    /// A header-only FORMERR for a query with a readable header; nothing for shorter garbage,
    /// which cannot be a query (and answering it would make us a reflector).
    fn formerr(&self, packet: &[u8]) {
        let Some(id) = packet.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
            return;
        };
        if packet.len() < 12 || packet[2] & 0x80 != 0 {
            return; // Too short to be a query, or a response: never answer those.
        }
        let mut metadata = Metadata::new(id, MessageType::Response, OpCode::Query);
        metadata.response_code = ResponseCode::FormErr;
        self.send(bare_header(metadata).1);
    }
}

#[async_trait::async_trait]
impl ResponseHandler for UdpSink {
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
        let limit = response.edns().map_or(CLASSIC_UDP_LIMIT, |e| {
            e.max_payload().max(CLASSIC_UDP_LIMIT)
        });
        let (info, bytes) = encode_udp(response, limit);
        self.send(bytes);
        Ok(info)
    }
}

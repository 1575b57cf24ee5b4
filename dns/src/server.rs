//! Sockets: one SO_REUSEPORT UDP socket per core (served by [`crate::udp`]) and a TCP listener on
//! the same port (served by [`crate::tcp`], with connection caps). Together with those two
//! modules, the only code of the crate that touches the network for serving.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};

use crate::handler::DnsHandler;
pub use crate::tcp::TcpLimits;
use crate::tcp::TcpLoop;
use crate::udp::UdpLoops;

/// Where and how to listen.
#[derive(Clone, Debug)]
pub struct ListenConfig {
    /// Address for UDP and TCP (`Listener:Port`); port 0 picks a free one.
    pub addr: SocketAddr,
    /// UDP sockets sharing the port; 0 means one per available core.
    pub udp_sockets: usize,
    /// Caps and timeouts of DNS over TCP.
    pub tcp: TcpLimits,
    /// Sockets handed over by the service manager (systemd socket activation), used instead
    /// of binding: they outlive a restart, so queries sent meanwhile wait in them.
    pub inherited: Inherited,
}

/// Sockets bound by someone else for this server's address.
#[derive(Debug, Default)]
pub struct Inherited {
    /// UDP sockets; when any, no other UDP socket is bound (one that closed with the process
    /// would lose the queries queued in it).
    pub udp: Vec<std::net::UdpSocket>,
    /// A listening TCP socket.
    pub tcp: Option<std::net::TcpListener>,
}

impl Clone for Inherited {
    /// Duplicates the descriptors; one that cannot be duplicated is left out (and bound anew).
    fn clone(&self) -> Self {
        Self {
            udp: self.udp.iter().filter_map(|s| s.try_clone().ok()).collect(),
            tcp: self.tcp.as_ref().and_then(|l| l.try_clone().ok()),
        }
    }
}

/// A running DNS server: Beacon's UDP threads and its TCP accept loop.
pub struct DnsServer {
    tcp: TcpLoop,
    udp: UdpLoops,
    local: SocketAddr,
}

impl DnsServer {
    /// Binds the sockets and starts serving with `handler`; must be called within a tokio
    /// runtime, which serves TCP and the queries that wait on an upstream.
    pub fn start(handler: DnsHandler, config: &ListenConfig) -> io::Result<Self> {
        let count = match config.udp_sockets {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let inherited = config.inherited.clone();
        let (sockets, local) = match inherited.udp.is_empty() {
            true => bind_udp_sockets(config.addr, count)?,
            false => {
                let local = inherited.udp[0].local_addr()?;
                for socket in &inherited.udp {
                    socket.set_nonblocking(true)?;
                }
                (inherited.udp, local)
            }
        };
        let tcp_listener = match inherited.tcp {
            Some(listener) => {
                listener.set_nonblocking(true)?;
                listener
            }
            None => bind_tcp(local)?,
        };
        let handler = Arc::new(handler);
        let udp = UdpLoops::start(sockets, handler.clone(), tokio::runtime::Handle::current())?;
        let listener = tokio::net::TcpListener::from_std(tcp_listener)?;
        let tcp = TcpLoop::start(listener, handler, config.tcp);
        Ok(Self { tcp, udp, local })
    }

    /// The bound address (UDP and TCP share it).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting queries: waits for the UDP ones in progress, closes TCP connections.
    pub async fn shutdown(self) {
        let udp = self.udp;
        let _ = tokio::task::spawn_blocking(move || udp.stop()).await;
        self.tcp.stop().await;
    }
}

/// `count` SO_REUSEPORT sockets on `addr` (the first picks the port when it is 0).
fn bind_udp_sockets(
    addr: SocketAddr,
    count: usize,
) -> io::Result<(Vec<std::net::UdpSocket>, SocketAddr)> {
    let first = bind_udp(addr)?;
    let local = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..count {
        sockets.push(bind_udp(local)?);
    }
    Ok((sockets, local))
}

fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    // A larger receive buffer absorbs bursts instead of dropping them; the kernel caps it at
    // net.core.rmem_max, so failure to get all of it is fine.
    let _ = socket.set_recv_buffer_size(4 << 20);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

fn bind_tcp(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

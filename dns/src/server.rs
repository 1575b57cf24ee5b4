//! Sockets: one SO_REUSEPORT UDP socket per core and a TCP listener on the same port, handed to
//! hickory-server. This is the only file of the crate that touches the network for serving.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_server::Server;
use socket2::{Domain, Protocol, Socket, Type};

use crate::handler::DnsHandler;

/// Where and how to listen.
#[derive(Clone, Debug)]
pub struct ListenConfig {
    /// Address for UDP and TCP (`Listener:Port`); port 0 picks a free one.
    pub addr: SocketAddr,
    /// UDP sockets sharing the port; 0 means one per available core.
    pub udp_sockets: usize,
    /// A TCP connection idle this long is closed.
    pub tcp_idle_timeout: Duration,
}

/// A running DNS server.
pub struct DnsServer {
    server: Server<DnsHandler>,
    local: SocketAddr,
}

impl DnsServer {
    /// Binds the sockets and starts serving with `handler` on the current tokio runtime.
    pub fn start(handler: DnsHandler, config: &ListenConfig) -> io::Result<Self> {
        let sockets = match config.udp_sockets {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let first = bind_udp(config.addr)?;
        let local = first.local_addr()?;
        let tcp = bind_tcp(local)?;
        let mut server = Server::new(handler);
        server.register_socket(tokio::net::UdpSocket::from_std(first)?);
        for _ in 1..sockets {
            server.register_socket(tokio::net::UdpSocket::from_std(bind_udp(local)?)?);
        }
        server.register_listener(
            tokio::net::TcpListener::from_std(tcp)?,
            config.tcp_idle_timeout,
            64,
        );
        Ok(Self { server, local })
    }

    /// The bound address (UDP and TCP share it).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops accepting queries and waits for the ones in progress.
    pub async fn shutdown(mut self) {
        if let Err(error) = self.server.shutdown_gracefully().await {
            tracing::warn!(%error, "DNS server shut down with an error");
        }
    }
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

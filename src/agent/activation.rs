//! systemd socket activation (`LISTEN_FDS`, `LISTEN_PID`; sd_listen_fds(3)): the service
//! manager binds the DNS sockets and keeps them open across restarts, so queries sent while the
//! agent restarts or upgrades wait in them for the new process instead of being refused.
//! `packaging/beacon.socket` declares them.

use std::net::SocketAddr;
use std::os::fd::{FromRawFd, RawFd};

use beacon_dns::server::Inherited;
use socket2::{Socket, Type};

/// The first descriptor systemd passes.
const FIRST_FD: RawFd = 3;

/// The sockets passed to this process that are bound to `addr` (UDP, and a TCP listener).
/// Others are left alone. Empty when the process was not socket-activated.
pub(super) fn inherited(addr: SocketAddr) -> Inherited {
    let mut found = Inherited::default();
    let count = passed_fds();
    for fd in FIRST_FD..FIRST_FD + count {
        // SAFETY: systemd passed these descriptors to this process, open, to be taken over;
        // each is taken once (the loop visits each number once) and owned from here on.
        let socket = unsafe { Socket::from_raw_fd(fd) };
        let bound = socket.local_addr().ok().and_then(|a| a.as_socket());
        let matches = bound.is_some_and(|b| b.port() == addr.port() && b.ip() == addr.ip());
        match (matches, socket.r#type()) {
            (true, Ok(Type::DGRAM)) => found.udp.push(socket.into()),
            (true, Ok(Type::STREAM)) if found.tcp.is_none() => found.tcp = Some(socket.into()),
            // Not ours to use: give the descriptor back untouched.
            _ => std::mem::forget(socket),
        }
    }
    if !found.udp.is_empty() || found.tcp.is_some() {
        tracing::info!(udp = found.udp.len(), tcp = found.tcp.is_some(), %addr, "DNS sockets from the service manager");
    }
    found
}

/// How many descriptors systemd passed to this very process (`LISTEN_PID` names it, so a child
/// that inherited the variables does not take them).
fn passed_fds() -> RawFd {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|pid| pid == std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<RawFd>().ok());
    match (for_us, count) {
        (true, Some(n)) if (0..1024).contains(&n) => n,
        _ => 0,
    }
}

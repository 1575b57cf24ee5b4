//! Batched datagram I/O: `recvmmsg(2)` and `sendmmsg(2)`, so that a loaded socket costs one
//! system call (and at most one wake-up) per batch instead of two per query.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};
use std::ptr;

/// Datagrams received or sent per system call at most.
pub(crate) const BATCH: usize = 32;

/// Receive buffers for one batch, reused for every call.
pub(crate) struct RecvBatch {
    bufs: Vec<u8>,
    buf_len: usize,
    addrs: Vec<libc::sockaddr_storage>,
    iovs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers in `iovs` and `msgs` point into the batch's own heap buffers, which
// move with it and are only used by the thread that owns it.
unsafe impl Send for RecvBatch {}

impl RecvBatch {
    /// Buffers for `BATCH` datagrams of up to `buf_len` bytes.
    pub(crate) fn new(buf_len: usize) -> Self {
        let mut batch = Self {
            bufs: vec![0; buf_len * BATCH],
            buf_len,
            // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for which all
            // zero bytes is a valid value.
            addrs: vec![unsafe { zeroed() }; BATCH],
            iovs: vec![unsafe { zeroed() }; BATCH],
            msgs: vec![unsafe { zeroed() }; BATCH],
        };
        for i in 0..BATCH {
            batch.iovs[i] = libc::iovec {
                iov_base: batch.bufs[i * buf_len..].as_mut_ptr().cast(),
                iov_len: buf_len,
            };
        }
        batch
    }

    /// Blocks until at least one datagram arrives (or the socket's read timeout passes), then
    /// takes every one already queued, up to `BATCH`. Returns how many.
    pub(crate) fn recv(&mut self, fd: &impl AsRawFd) -> io::Result<usize> {
        for i in 0..BATCH {
            let hdr = &mut self.msgs[i].msg_hdr;
            hdr.msg_name = ptr::from_mut(&mut self.addrs[i]).cast();
            hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            hdr.msg_iov = ptr::from_mut(&mut self.iovs[i]);
            hdr.msg_iovlen = 1;
            hdr.msg_control = ptr::null_mut();
            hdr.msg_controllen = 0;
            hdr.msg_flags = 0;
        }
        // SAFETY: every header points at live buffers of the lengths given, owned by `self`.
        let n = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// The `i`-th datagram of the last `recv` and its sender.
    pub(crate) fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let len = (self.msgs[i].msg_len as usize).min(self.buf_len);
        let src = to_socket_addr(&self.addrs[i])?;
        Some((&self.bufs[i * self.buf_len..i * self.buf_len + len], src))
    }
}

/// Sends `datagrams` with as few `sendmmsg` calls as possible. Errors concern single clients
/// (an unreachable address, a full buffer) and are only counted in the return value.
pub(crate) fn send_all(fd: RawFd, datagrams: &[(Vec<u8>, SocketAddr)]) -> usize {
    let mut failed = 0;
    for chunk in datagrams.chunks(BATCH) {
        let mut addrs: Vec<(libc::sockaddr_storage, libc::socklen_t)> =
            chunk.iter().map(|(_, a)| from_socket_addr(*a)).collect();
        let mut iovs: Vec<libc::iovec> = chunk
            .iter()
            .map(|(bytes, _)| libc::iovec {
                iov_base: bytes.as_ptr().cast_mut().cast(),
                iov_len: bytes.len(),
            })
            .collect();
        // SAFETY: mmsghdr is a plain C struct; zero is valid.
        let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { zeroed() }; chunk.len()];
        for (i, m) in msgs.iter_mut().enumerate() {
            m.msg_hdr.msg_name = ptr::from_mut(&mut addrs[i].0).cast();
            m.msg_hdr.msg_namelen = addrs[i].1;
            m.msg_hdr.msg_iov = ptr::from_mut(&mut iovs[i]);
            m.msg_hdr.msg_iovlen = 1;
        }
        let mut sent = 0;
        while sent < msgs.len() {
            // SAFETY: the headers point at `addrs`, `iovs` and the datagrams, all alive here;
            // the kernel only reads the iovec buffers.
            let n = unsafe {
                libc::sendmmsg(fd, msgs[sent..].as_mut_ptr(), (msgs.len() - sent) as u32, 0)
            };
            if n <= 0 {
                // Skip the datagram that failed and go on with the rest.
                failed += 1;
                sent += 1;
            } else {
                sent += n as usize;
            }
        }
    }
    failed
}

fn to_socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let sin = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let sin6 = unsafe { &*ptr::from_ref(storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn from_socket_addr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut storage: libc::sockaddr_storage = unsafe { zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            let sin = unsafe { &mut *ptr::from_mut(&mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *ptr::from_mut(&mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip() {
        for addr in ["127.0.0.1:53", "[::1]:5353", "[fe80::1%2]:9"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let (storage, _) = from_socket_addr(addr);
            assert_eq!(to_socket_addr(&storage), Some(addr));
        }
    }

    #[test]
    fn batches_carry_datagrams_both_ways() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..5u8 {
            client
                .send_to(&[i; 3], server.local_addr().unwrap())
                .unwrap();
        }
        let mut batch = RecvBatch::new(64);
        let mut got = 0;
        while got < 5 {
            let n = batch.recv(&server).unwrap();
            for i in 0..n {
                let (bytes, src) = batch.get(i).unwrap();
                assert_eq!(src, client.local_addr().unwrap());
                assert_eq!(bytes.len(), 3);
            }
            got += n;
        }
        let replies: Vec<(Vec<u8>, SocketAddr)> = (0..40)
            .map(|i| (vec![i; 2], client.local_addr().unwrap()))
            .collect();
        assert_eq!(send_all(server.as_raw_fd(), &replies), 0);
        let mut buf = [0; 8];
        for _ in 0..40 {
            assert_eq!(client.recv(&mut buf).unwrap(), 2);
        }
    }
}

//! The moving parts of `bench/vip.sh`: small servers, load generators and a stand-in for
//! userspace that programs the maps and attaches the programs (`vip-lb` will do that job; here
//! the maps are written through the `abi` types the way `ebpf/tests` do).
//!
//! ```text
//! vip_bench http-server ADDR NAME         epoll HTTP/1.1 server, body NAME, keep-alive or close
//! vip_bench udp-echo ADDR                 echoes every datagram
//! vip_bench xdp-lb IFACE MODE VIP_TCP VIP_UDP BACKEND_IP PORT_TCP PORT_UDP [BACKEND_IP ...]
//!                                         XDP (MODE drv|skb) + tc egress on IFACE until SIGTERM
//! vip_bench sock-lb CGROUP_DIR VIP_TCP BACKEND_ADDR
//!                                         socket LB programs on CGROUP_DIR until SIGTERM
//! vip_bench cps TARGETS SECS THREADS MAX  new TCP connections/s (one request each)
//! vip_bench rps TARGETS SECS CONNS MAX    keep-alive requests/s, p50/p99 latency
//! vip_bench udp TARGETS SECS THREADS FLOWS WINDOW MAX
//!                                         UDP echoes/s over FLOWS sockets, WINDOW in flight each
//! vip_bench spread TARGETS N              N new connections; which backends answered
//! vip_bench connect-ab DIRECT VIP N CHUNK 3>LB_CGROUP/cgroup.procs 4>OWN_CGROUP/cgroup.procs
//!                                         connect() latency, direct vs socket LB, interleaved
//! ```
//!
//! TARGETS is `ip:port` or a comma-separated list that threads take in turn.
//! Results are one line `RESULT key=value ...` on stdout; `bench/vip_report.py` reads them.
//! Every load loop stops at SECS or at MAX operations, whichever comes first.
//!
//! Why these servers and not nginx or python's http.server: python serves ~2k requests/s on
//! this machine, which would measure Python; nginx is not installed here and its worker
//! model would add its own variables. A single-threaded epoll loop that answers from a fixed
//! buffer is the cheapest server there is, so differences between modes show up as
//! differences in the network path.

use std::{
    collections::{BTreeMap, HashMap as StdHashMap},
    fs::File,
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream, UdpSocket},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapData},
    programs::{CgroupAttachMode, CgroupSockAddr, SchedClassifier, TcAttachType, Xdp, XdpMode, tc},
};
use beacon_ebpf::abi::{
    self, Backend, PROTO_TCP, PROTO_UDP, RING_SIZE, Stat, VipInfo, VipKey, VipSlot,
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n";
const REQUEST_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n";

static STOP: AtomicBool = AtomicBool::new(false);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = match a.as_slice() {
        ["http-server", addr, name] => http_server(addr.parse().expect("ADDR"), name),
        ["udp-echo", addr] => udp_echo(addr.parse().expect("ADDR")),
        ["xdp-lb", iface, mode, vip_tcp, vip_udp, rest @ ..] if rest.len() >= 3 => xdp_lb(
            iface,
            mode,
            vip_tcp.parse().expect("VIP_TCP"),
            vip_udp.parse().expect("VIP_UDP"),
            rest,
        ),
        ["sock-lb", cgroup, vip, backend] => sock_lb(
            cgroup,
            vip.parse().expect("VIP"),
            backend.parse().expect("BACKEND"),
        ),
        ["cps", t, secs, threads, max] => cps(targets(t), n(secs), n(threads), n(max)),
        ["rps", t, secs, conns, max] => rps(targets(t), n(secs), n(conns), n(max)),
        ["udp", t, secs, threads, flows, window, max] => {
            udp(targets(t), n(secs), n(threads), n(flows), n(window), n(max))
        }
        ["spread", t, count] => spread(&targets(t), n(count)),
        ["connect-ab", direct, vip, count, chunk] => connect_ab(
            direct.parse().expect("DIRECT"),
            vip.parse().expect("VIP"),
            n(count),
            n(chunk),
        ),
        _ => {
            eprintln!("usage: see the top of ebpf/examples/vip_bench.rs");
            std::process::exit(2);
        }
    };
    if let Err(e) = r {
        eprintln!("vip_bench {}: {e}", a.first().unwrap_or(&""));
        std::process::exit(1);
    }
}

/// `TARGET` of a load command: one address, or several separated by commas, which the
/// threads (connections) take in turn: thread `i` uses target `i % len`.
fn targets(s: &str) -> Arc<Vec<SocketAddr>> {
    Arc::new(s.split(',').map(|t| t.parse().expect("TARGET")).collect())
}

fn n(s: &str) -> u64 {
    s.parse().expect("a number")
}

// ---------------------------------------------------------------------------------------
// Servers

/// Single-threaded, level-triggered epoll HTTP/1.1 server. Every request (ending in a blank
/// line) gets the same response; `Connection: close` requests are answered and closed by the
/// server, so TIME_WAIT stays on the server side and clients never run out of ports.
fn http_server(addr: SocketAddr, name: &str) -> Result<()> {
    let body = format!("{name}\n");
    let keep = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
        body.len()
    );
    let close = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let lfd = listen_tcp(addr)?;
    // SAFETY: plain syscalls on descriptors this function owns; buffers outlive the calls.
    unsafe {
        let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        if ep < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        epoll_add(ep, lfd)?;
        println!("ready http {addr}");
        std::io::stdout().flush()?;
        let mut pending: StdHashMap<i32, Vec<u8>> = StdHashMap::new();
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        let mut buf = vec![0u8; 16384];
        loop {
            let k = libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1);
            if k < 0 {
                if std::io::Error::last_os_error().kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(std::io::Error::last_os_error().into());
            }
            for ev in &events[..k as usize] {
                let fd = ev.u64 as i32;
                if fd == lfd {
                    loop {
                        let c = libc::accept4(
                            lfd,
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        );
                        if c < 0 {
                            break;
                        }
                        let one: libc::c_int = 1;
                        libc::setsockopt(
                            c,
                            libc::IPPROTO_TCP,
                            libc::TCP_NODELAY,
                            (&one as *const libc::c_int).cast(),
                            4,
                        );
                        epoll_add(ep, c)?;
                    }
                    continue;
                }
                let got = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                if got < 0 && std::io::Error::last_os_error().kind() == ErrorKind::WouldBlock {
                    continue;
                }
                if got <= 0 {
                    pending.remove(&fd);
                    libc::close(fd);
                    continue;
                }
                let p = pending.entry(fd).or_default();
                p.extend_from_slice(&buf[..got as usize]);
                let mut out = Vec::new();
                let mut closing = false;
                while let Some(end) = find(p, b"\r\n\r\n") {
                    let req = &p[..end];
                    if find(req, b"onnection: close").is_some() {
                        out.extend_from_slice(close.as_bytes());
                        closing = true;
                        p.clear();
                        break;
                    }
                    out.extend_from_slice(keep.as_bytes());
                    p.drain(..end + 4);
                }
                if !out.is_empty() {
                    libc::write(fd, out.as_ptr().cast(), out.len());
                }
                if closing {
                    pending.remove(&fd);
                    libc::close(fd);
                }
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn listen_tcp(addr: SocketAddr) -> Result<i32> {
    let SocketAddr::V4(a) = addr else {
        return Err("IPv4 only".into());
    };
    // SAFETY: socket/bind/listen with a correctly sized sockaddr_in.
    unsafe {
        let fd = libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&one as *const libc::c_int).cast(),
            4,
        );
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: a.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            },
            sin_zero: [0; 8],
        };
        if libc::bind(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as u32,
        ) < 0
            || libc::listen(fd, 4096) < 0
        {
            return Err(format!("bind/listen {addr}: {}", std::io::Error::last_os_error()).into());
        }
        Ok(fd)
    }
}

/// # Safety
/// `ep` is an epoll descriptor and `fd` an open descriptor.
unsafe fn epoll_add(ep: i32, fd: i32) -> Result<()> {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: fd as u64,
    };
    // SAFETY: per this function's contract.
    if unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

fn udp_echo(addr: SocketAddr) -> Result<()> {
    let s = UdpSocket::bind(addr)?;
    println!("ready udp {addr}");
    std::io::stdout().flush()?;
    let mut buf = [0u8; 2048];
    loop {
        let (len, from) = s.recv_from(&mut buf)?;
        let _ = s.send_to(&buf[..len], from);
    }
}

// ---------------------------------------------------------------------------------------
// Userspace stand-in: program the maps, attach, hold until SIGTERM, print the counters.

fn xdp_lb(
    iface: &str,
    mode: &str,
    vip_tcp: SocketAddr,
    vip_udp: SocketAddr,
    rest: &[&str],
) -> Result<()> {
    // rest: BACKEND_IP PORT_TCP PORT_UDP [BACKEND_IP ...]
    let (port_tcp, port_udp): (u16, u16) = (rest[1].parse()?, rest[2].parse()?);
    let ips: Vec<&str> = std::iter::once(rest[0])
        .chain(rest[3..].iter().copied())
        .collect();
    let mut bpf = Ebpf::load(beacon_ebpf::OBJECT)?;
    let mut tcp_ids = Vec::new();
    let mut udp_ids = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let id = 1 + 2 * i as u32;
        backend(&mut bpf, id, format!("{ip}:{port_tcp}").parse()?)?;
        backend(&mut bpf, id + 1, format!("{ip}:{port_udp}").parse()?)?;
        tcp_ids.push(id);
        udp_ids.push(id + 1);
    }
    vip(&mut bpf, vip_tcp, PROTO_TCP, 0, &tcp_ids)?;
    vip(&mut bpf, vip_udp, PROTO_UDP, 1, &udp_ids)?;
    let flags = match mode {
        "drv" => XdpMode::Driver,
        "skb" => XdpMode::Skb,
        _ => return Err(format!("XDP mode {mode}: drv or skb").into()),
    };
    let p: &mut Xdp = bpf
        .program_mut(abi::programs::XDP_LB)
        .ok_or("no XDP program")?
        .try_into()?;
    p.load()?;
    p.attach(iface, flags)?;
    let _ = tc::qdisc_add_clsact(iface);
    let p: &mut SchedClassifier = bpf
        .program_mut(abi::programs::TC_REVNAT)
        .ok_or("no tc program")?
        .try_into()?;
    p.load()?;
    p.attach(iface, TcAttachType::Egress)?;
    hold("xdp")?;
    let stats: aya::maps::PerCpuArray<&MapData, u64> =
        aya::maps::PerCpuArray::try_from(bpf.map(abi::maps::STATS).ok_or("no stats")?)?;
    let get = |s: Stat| -> u64 {
        stats
            .get(&(s as u32), 0)
            .map(|v| v.iter().sum())
            .unwrap_or(0)
    };
    println!(
        "COUNTERS xdp_packets={} flow_new={} flow_hit={} not_vip={} tc_revnat={}",
        get(Stat::XdpPackets),
        get(Stat::XdpFlowNew),
        get(Stat::XdpFlowHit),
        get(Stat::XdpNotVip),
        get(Stat::TcRevnat)
    );
    Ok(())
}

fn sock_lb(cgroup: &str, vip_tcp: SocketAddr, be: SocketAddr) -> Result<()> {
    let mut bpf = Ebpf::load(beacon_ebpf::OBJECT)?;
    backend(&mut bpf, 1, be)?;
    vip(&mut bpf, vip_tcp, PROTO_TCP, 0, &[1])?;
    for name in abi::programs::SOCK_LB {
        let p: &mut CgroupSockAddr = bpf.program_mut(name).ok_or("no program")?.try_into()?;
        p.load()?;
        p.attach(File::open(cgroup)?, CgroupAttachMode::Single)?;
    }
    hold("sock")?;
    Ok(())
}

/// Adds VIP `addr` with ring row `index` over backends `ids`, as the ABI asks: `beacon_vips`,
/// the ring, then the XDP slot (family 0 first, then the real one).
fn vip(bpf: &mut Ebpf, addr: SocketAddr, proto: u8, index: u32, ids: &[u32]) -> Result<()> {
    let mut rings: Array<&mut MapData, u32> =
        Array::try_from(bpf.map_mut(abi::maps::RINGS).ok_or("no rings")?)?;
    // A stand-in for a Maglev table: the backends in turn.
    for slot in 0..RING_SIZE {
        rings.set(
            abi::ring_index(index, slot),
            ids[slot as usize % ids.len()],
            0,
        )?;
    }
    let key = VipKey::new(addr, proto);
    let info = VipInfo { index, flags: 0 };
    let mut vips: HashMap<&mut MapData, VipKey, VipInfo> =
        HashMap::try_from(bpf.map_mut(abi::maps::VIPS).ok_or("no vips")?)?;
    vips.insert(key, info, 0)?;
    let mut slots: Array<&mut MapData, VipSlot> =
        Array::try_from(bpf.map_mut(abi::maps::VIP_SLOTS).ok_or("no slots")?)?;
    let at = abi::vip_slot_candidates(&key)
        .into_iter()
        .find(|i| slots.get(i, 0).is_ok_and(|s| s.key.family == 0))
        .ok_or("no free VIP slot")?;
    let mut slot = VipSlot {
        key: VipKey { family: 0, ..key },
        info,
        overflow: 0,
    };
    slots.set(at, slot, 0)?;
    slot.key.family = key.family;
    slots.set(at, slot, 0)?;
    Ok(())
}

fn backend(bpf: &mut Ebpf, id: u32, addr: SocketAddr) -> Result<()> {
    let mut backends: Array<&mut MapData, Backend> =
        Array::try_from(bpf.map_mut(abi::maps::BACKENDS).ok_or("no backends")?)?;
    backends.set(id, Backend::new(addr, 0, 1), 0)?;
    Ok(())
}

/// Prints `ready`, then waits for SIGTERM or SIGINT (the programs stay attached meanwhile;
/// their links close when the process exits).
fn hold(what: &str) -> Result<()> {
    extern "C" fn on_signal(_: libc::c_int) {
        STOP.store(true, Ordering::SeqCst);
    }
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    println!("ready {what}");
    std::io::stdout().flush()?;
    while !STOP.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Load generators

/// Runs `threads` copies of `work` until `secs` pass or `max` operations are done in all;
/// `work(thread index, operations started, deadline, max)` returns the operations it
/// completed.
fn run_threads<F>(threads: u64, secs: u64, max: u64, work: F) -> (u64, f64)
where
    F: Fn(usize, &AtomicU64, Instant, u64) -> u64 + Send + Sync + 'static,
{
    let done = Arc::new(AtomicU64::new(0));
    let work = Arc::new(work);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (done, work) = (done.clone(), work.clone());
            thread::spawn(move || work(i as usize, &done, deadline, max))
        })
        .collect();
    let total = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    (total, start.elapsed().as_secs_f64())
}

fn cps(targets: Arc<Vec<SocketAddr>>, secs: u64, threads: u64, max: u64) -> Result<()> {
    let errors = Arc::new(AtomicU64::new(0));
    let errs = errors.clone();
    let (total, elapsed) = run_threads(threads, secs, max, move |i, done, deadline, max| {
        let target = targets[i % targets.len()];
        let mut mine = 0;
        let mut buf = [0u8; 512];
        while Instant::now() < deadline && done.fetch_add(1, Ordering::Relaxed) < max {
            let ok = (|| -> std::io::Result<()> {
                let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                s.write_all(REQUEST_CLOSE)?;
                while s.read(&mut buf)? > 0 {}
                Ok(())
            })();
            match ok {
                Ok(()) => mine += 1,
                Err(_) => {
                    errs.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        mine
    });
    println!(
        "RESULT cps={:.1} conns={total} errors={} secs={elapsed:.2}",
        total as f64 / elapsed,
        errors.load(Ordering::Relaxed)
    );
    Ok(())
}

fn rps(targets: Arc<Vec<SocketAddr>>, secs: u64, conns: u64, max: u64) -> Result<()> {
    let lat = Arc::new(std::sync::Mutex::new(Vec::<u32>::new()));
    let l = lat.clone();
    let (total, elapsed) = run_threads(conns, secs, max, move |i, done, deadline, max| {
        let target = targets[i % targets.len()];
        let mut mine = Vec::with_capacity(1 << 16);
        let r = (|| -> std::io::Result<()> {
            let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut buf = [0u8; 512];
            while Instant::now() < deadline && done.fetch_add(1, Ordering::Relaxed) < max {
                let t0 = Instant::now();
                s.write_all(REQUEST)?;
                let mut got = Vec::new();
                loop {
                    let k = s.read(&mut buf)?;
                    if k == 0 {
                        return Err(ErrorKind::UnexpectedEof.into());
                    }
                    got.extend_from_slice(&buf[..k]);
                    // The body is the backend's name and a newline.
                    if find(&got, b"\r\n\r\n").is_some_and(|h| got.len() > h + 4)
                        && got.ends_with(b"\n")
                    {
                        break;
                    }
                }
                mine.push(t0.elapsed().as_nanos() as u32);
            }
            Ok(())
        })();
        if let Err(e) = r {
            eprintln!("rps connection: {e}");
        }
        let k = mine.len() as u64;
        l.lock().unwrap_or_else(|p| p.into_inner()).extend(mine);
        k
    });
    let mut v = lat.lock().unwrap_or_else(|p| p.into_inner()).clone();
    v.sort_unstable();
    println!(
        "RESULT rps={:.1} requests={total} p50_us={:.1} p99_us={:.1} secs={elapsed:.2}",
        total as f64 / elapsed,
        pct(&v, 0.50) / 1e3,
        pct(&v, 0.99) / 1e3
    );
    Ok(())
}

/// UDP echoes per second: `flows` connected sockets (each its own 5-tuple, so the VIP modes
/// spread them over the backends), spread over `threads` threads (flow `f` on thread
/// `f % threads`, to target `f % len`), each with `window` datagrams in flight.
fn udp(
    targets: Arc<Vec<SocketAddr>>,
    secs: u64,
    threads: u64,
    flows: u64,
    window: u64,
    max: u64,
) -> Result<()> {
    let lost = Arc::new(AtomicU64::new(0));
    let lo = lost.clone();
    let (total, elapsed) = run_threads(threads, secs, max, move |i, done, deadline, max| {
        let r = (|| -> std::io::Result<u64> {
            let mut socks = Vec::new();
            for f in (i as u64..flows).step_by(threads as usize) {
                let s = UdpSocket::bind("0.0.0.0:0")?;
                s.connect(targets[f as usize % targets.len()])?;
                s.set_read_timeout(Some(Duration::from_millis(100)))?;
                socks.push(s);
            }
            let msg = [0x42u8; 32];
            let mut buf = [0u8; 64];
            for s in &socks {
                for _ in 0..window {
                    s.send(&msg)?;
                }
            }
            let mut mine = 0;
            'run: loop {
                for s in &socks {
                    if Instant::now() >= deadline || done.fetch_add(1, Ordering::Relaxed) >= max {
                        break 'run;
                    }
                    match s.recv(&mut buf) {
                        Ok(_) => mine += 1,
                        Err(e)
                            if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                        {
                            lo.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => return Err(e),
                    }
                    s.send(&msg)?;
                }
            }
            Ok(mine)
        })();
        r.unwrap_or_else(|e| {
            eprintln!("udp: {e}");
            0
        })
    });
    println!(
        "RESULT pps={:.1} echoes={total} timeouts={} secs={elapsed:.2}",
        total as f64 / elapsed,
        lost.load(Ordering::Relaxed)
    );
    Ok(())
}

fn spread(targets: &[SocketAddr], count: u64) -> Result<()> {
    let mut seen = BTreeMap::<String, u64>::new();
    for k in 0..count as usize {
        let target = targets[k % targets.len()];
        let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.write_all(REQUEST_CLOSE)?;
        let mut got = Vec::new();
        s.read_to_end(&mut got)?;
        let body = find(&got, b"\r\n\r\n").map_or(&got[..0], |h| &got[h + 4..]);
        *seen
            .entry(String::from_utf8_lossy(body).trim().to_owned())
            .or_default() += 1;
    }
    let list: Vec<String> = seen.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    println!("RESULT backends={}", list.join(","));
    Ok(())
}

/// Latency of blocking connect() calls to a direct target and to a VIP, interleaved in chunks
/// of `chunk` connects so drift on a shared machine hits every mode alike. The process moves
/// itself between cgroups by writing "0" to descriptors the caller opened: fd 3 is the socket
/// LB cgroup's `cgroup.procs`, fd 4 the original cgroup's. Modes: `direct` (outside the LB
/// cgroup), `sock-lb` (inside, to the VIP), `direct-in-cg` (inside, to the backend: the hooks'
/// cost on a connect that is not to a VIP). Only connect() is timed; each socket is closed
/// with an RST (linger 0) so no TIME_WAIT piles up.
fn connect_ab(direct: SocketAddr, vip: SocketAddr, count: u64, chunk: u64) -> Result<()> {
    // SAFETY: the caller passes fds 3 and 4 open for writing (checked by the first write).
    let (lb_cg, orig_cg) = unsafe { (File::from_raw_fd(3), File::from_raw_fd(4)) };
    let modes: [(&str, &File, SocketAddr); 3] = [
        ("direct", &orig_cg, direct),
        ("sock-lb", &lb_cg, vip),
        ("direct-in-cg", &lb_cg, direct),
    ];
    let mut lat: Vec<Vec<u32>> = vec![Vec::with_capacity(count as usize); modes.len()];
    let mut left = count;
    while left > 0 {
        let k = left.min(chunk);
        for (i, (_, cg, target)) in modes.iter().enumerate() {
            (&**cg).write_all(b"0")?;
            for _ in 0..k {
                lat[i].push(connect_once(*target)?);
            }
        }
        left -= k;
    }
    (&orig_cg).write_all(b"0")?;
    for (i, (name, _, _)) in modes.iter().enumerate() {
        let v = &mut lat[i];
        v.sort_unstable();
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len().max(1) as f64;
        println!(
            "RESULT mode={name} p50_us={:.2} p99_us={:.2} mean_us={:.2} connects={}",
            pct(v, 0.50) / 1e3,
            pct(v, 0.99) / 1e3,
            mean / 1e3,
            v.len()
        );
    }
    Ok(())
}

/// One blocking connect() to `target`; returns its duration in ns.
fn connect_once(target: SocketAddr) -> Result<u32> {
    let SocketAddr::V4(a) = target else {
        return Err("IPv4 only".into());
    };
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a fresh socket, owned at once, connected with a correctly sized sockaddr_in.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let fd = OwnedFd::from_raw_fd(fd);
        let t0 = Instant::now();
        let r = libc::connect(
            fd.as_raw_fd(),
            (&sin as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as u32,
        );
        let dt = t0.elapsed();
        if r < 0 {
            return Err(format!("connect {target}: {}", std::io::Error::last_os_error()).into());
        }
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            size_of::<libc::linger>() as u32,
        );
        Ok(dt.as_nanos() as u32)
    }
}

fn pct(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    f64::from(sorted[i])
}

//! Helpers: processes, free ports and a small HTTP client; the DNS client is
//! `beacon_test_support::dns`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) use beacon_test_support::dns::{
    Ask, Transport, exchange, flags, query, query_message, show,
};

pub(crate) const CONFORMANCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/conformance/mesos-dns"
);

pub(crate) fn conformance(file: &str) -> PathBuf {
    Path::new(CONFORMANCE).join(file)
}

/// A port free for both UDP and TCP on 127.0.0.1 at the time of the call.
pub(crate) fn free_port() -> u16 {
    for _ in 0..100 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1");
}

/// A scratch directory removed on drop.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "beacon-it-{tag}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Held by the tests that run `beacon demo`: its data plane attaches to the root cgroup (one
/// data plane per host, as the demo says), where two at once would refuse each other's VIPs
/// (each fails closed on the named-VIP ranges it does not program).
pub(crate) static ROOT_CGROUP_DATA_PLANE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes [`ROOT_CGROUP_DATA_PLANE`], whatever a panicking holder left.
pub(crate) fn root_cgroup_data_plane() -> std::sync::MutexGuard<'static, ()> {
    ROOT_CGROUP_DATA_PLANE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A child process killed (by its PID) on drop.
pub(crate) struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn beacon() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beacon"));
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    if std::env::var_os("BEACON_TEST_LOG").is_none() {
        cmd.stderr(Stdio::null());
    }
    cmd
}

/// `beacon fake-master` serving `state` (re-read when the file changes).
pub(crate) struct FakeMaster {
    pub addr: SocketAddr,
    pub state: PathBuf,
    _proc: Proc,
}

impl FakeMaster {
    pub(crate) fn start(dir: &TempDir, state: &[u8]) -> Self {
        Self::start_on(dir, state, ([127, 0, 0, 1], free_port()).into())
    }

    /// A fake master on a given loopback address.
    pub(crate) fn start_on(dir: &TempDir, state: &[u8], addr: SocketAddr) -> Self {
        Self::start_with_on(dir, state, addr, &[])
    }

    /// A fake master with more `beacon fake-master` options.
    pub(crate) fn start_with(dir: &TempDir, state: &[u8], options: &[&str]) -> Self {
        Self::start_with_on(dir, state, ([127, 0, 0, 1], free_port()).into(), options)
    }

    fn start_with_on(dir: &TempDir, state: &[u8], addr: SocketAddr, options: &[&str]) -> Self {
        let path = dir.path(&format!("state-{}.json", addr.ip()));
        std::fs::write(&path, state).unwrap();
        let child = beacon()
            .args(["fake-master", "--state"])
            .arg(&path)
            .args(["--listen", &addr.to_string()])
            .args(options)
            .spawn()
            .unwrap();
        let proc = Proc(child);
        wait_until("fake master up", || {
            http_get(addr, "/master/state")
                .map(|r| r.status == 200)
                .unwrap_or(false)
        });
        Self {
            addr,
            state: path,
            _proc: proc,
        }
    }

    /// The fake master's process id.
    pub(crate) fn pid(&self) -> u32 {
        self._proc.0.id()
    }

    /// Replaces the served state, atomically, and waits until it is served.
    pub(crate) fn serve(&self, body: &[u8]) {
        let tmp = self.state.with_extension("tmp");
        std::fs::write(&tmp, body).unwrap();
        std::fs::rename(&tmp, &self.state).unwrap();
        wait_until("fake master serves the new state", || {
            http_get(self.addr, "/master/state")
                .map(|r| r.body == body)
                .unwrap_or(false)
        });
    }
}

/// The secret of the token every test agent takes (see [`test_tokens`]).
pub(crate) const TEST_SECRET: &str = "bcn_integration-tests";

/// `[[api.tokens]]` stanzas: `tests`, holding [`TEST_SECRET`], may write anything anywhere.
pub(crate) fn test_tokens() -> String {
    use sha2::Digest;
    let digest: String = sha2::Sha256::digest(TEST_SECRET.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "[[api.tokens]]\nname = \"tests\"\nsecret_sha256 = \"{digest}\"\nframeworks = [\"*\"]\n\
         backend_cidrs = [\"0.0.0.0/0\", \"::/0\"]\nnamed_vips = true\nip_vip_cidrs = [\"0.0.0.0/0\", \"::/0\"]\n\
         max_registrations = 1000\n"
    )
}

/// A running `beacon agent --mesos-dns-config`.
pub(crate) struct Agent {
    pub dns: SocketAddr,
    pub http: SocketAddr,
    _proc: Proc,
}

impl Agent {
    /// Starts an agent with `config` (a Mesos-DNS config.json) whose listener, ports and masters
    /// are replaced to point at loopback and `master`, and waits until it is ready.
    pub(crate) fn start(dir: &TempDir, config: serde_json::Value, master: SocketAddr) -> Self {
        let agent = Self::start_unready(dir, config, master);
        wait_until("agent ready", || {
            http_get(agent.http, "/readyz")
                .map(|r| r.status == 200)
                .unwrap_or(false)
        });
        agent
    }

    /// The agent's process id.
    pub(crate) fn pid(&self) -> u32 {
        self._proc.0.id()
    }

    /// Starts an agent and waits only until its HTTP API answers.
    pub(crate) fn start_unready(
        dir: &TempDir,
        mut config: serde_json::Value,
        master: SocketAddr,
    ) -> Self {
        config["masters"] = serde_json::json!([master.to_string()]);
        Self::start_as_configured(dir, config)
    }

    /// Starts an agent with `config` as given (its masters, or its `zk`), on loopback, and
    /// waits only until its HTTP API answers.
    pub(crate) fn start_as_configured(dir: &TempDir, mut config: serde_json::Value) -> Self {
        let (dns_port, http_port) = (free_port(), free_port());
        config["listener"] = "127.0.0.1".into();
        config["port"] = dns_port.into();
        config["HTTPListener"] = "127.0.0.1".into();
        config["httpport"] = http_port.into();
        let path = dir.path("config.json");
        std::fs::write(&path, config.to_string()).unwrap();
        let tokens = dir.path("tokens.toml");
        std::fs::write(&tokens, test_tokens()).unwrap();
        let child = beacon()
            .args(["agent", "--mesos-dns-config"])
            .arg(&path)
            .arg("--tokens")
            .arg(&tokens)
            .spawn()
            .unwrap();
        let agent = Self {
            dns: ([127, 0, 0, 1], dns_port).into(),
            http: ([127, 0, 0, 1], http_port).into(),
            _proc: Proc(child),
        };
        wait_until("agent HTTP up", || {
            http_get(agent.http, "/healthz")
                .map(|r| r.status == 200)
                .unwrap_or(false)
        });
        agent
    }
}

pub(crate) fn wait_until(what: &str, ok: impl FnMut() -> bool) {
    wait_for(what, Duration::from_secs(20), ok);
}

/// [`wait_until`] with another deadline.
pub(crate) fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for: {what}");
}

pub(crate) struct HttpReply {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A minimal HTTP/1.1 GET (Connection: close, Content-Length bodies).
pub(crate) fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<HttpReply> {
    http_request(addr, "GET", path, &[])
}

pub(crate) fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<HttpReply> {
    http_request_with(addr, method, path, "", body)
}

/// [`http_request`] with the test token ([`TEST_SECRET`]): what a write needs.
pub(crate) fn http_write(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<HttpReply> {
    let auth = format!("Authorization: Bearer {TEST_SECRET}\r\n");
    http_request_with(addr, method, path, &auth, body)
}

/// An HTTP/1.1 request with `headers` (each line ending in CRLF) added.
pub(crate) fn http_request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> std::io::Result<HttpReply> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = headers
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(HttpReply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

/// The ids of every BPF link the kernel holds (`BPF_LINK_GET_NEXT_ID`), attached or pinned.
pub(crate) fn loaded_bpf_links() -> std::collections::BTreeSet<u32> {
    const BPF_LINK_GET_NEXT_ID: libc::c_long = 31;
    let mut ids = std::collections::BTreeSet::new();
    let mut id = 0u32;
    loop {
        // union bpf_attr: start_id, next_id.
        let mut attr = [id, 0u32, 0, 0];
        // SAFETY: `attr` is a `union bpf_attr` prefix of the size passed.
        let rc =
            unsafe { libc::syscall(libc::SYS_bpf, BPF_LINK_GET_NEXT_ID, attr.as_mut_ptr(), 16) };
        if rc != 0 {
            return ids;
        }
        id = attr[1];
        ids.insert(id);
    }
}

/// The ids of the BPF cgroup links process `pid` holds open (from `/proc/<pid>/fdinfo`).
pub(crate) fn cgroup_links_of(pid: u32) -> std::collections::BTreeSet<u32> {
    let dir = format!("/proc/{pid}/fdinfo");
    let files = std::fs::read_dir(&dir).unwrap().flatten();
    files
        .filter_map(|f| std::fs::read_to_string(f.path()).ok())
        .filter(|info| {
            info.lines()
                .any(|l| l.starts_with("link_type:") && l.ends_with("cgroup"))
        })
        .filter_map(|info| {
            let line = info.lines().find(|l| l.starts_with("link_id:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .collect()
}

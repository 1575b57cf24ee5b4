//! VIPs end to end through a real agent (root: it loads BPF programs): a named VIP and an IP
//! VIP declared by port labels in the master's state are programmed into the socket LB, attached
//! to a cgroup the test makes; the l4lb name answers only then; a client in that cgroup reaches
//! the backends through the VIP; `/v1/vips` and `/metrics` count it; a backend removed from the
//! state gets no more connections; an agent without a data plane publishes no VIP name.
//!
//! The client and the backends live in a network namespace with only a loopback interface:
//! 11.0.0.0/8 may be routed out of the machine, and a connect the socket LB failed to rewrite
//! must fail there, not leave.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use serde_json::json;

use beacon_test_support::cgroup::Cgroup;
use beacon_test_support::netns::{Netns, tag};
use beacon_test_support::privileged::require_root;

use crate::support::*;

const NAME: &str = "web.marathon.l4lb.thisdcos.directory.";
const IP_VIP: &str = "198.18.7.7"; // benchmarking range: never routed, only ever rewritten

/// What a client in `cgroup` and in `ns` reads from `ip:port` (bash's /dev/tcp: connect, read
/// all). It joins the cgroup first: `ip netns exec` hides /sys/fs/cgroup.
fn fetch(cgroup: &Cgroup, ns: &Netns, ip: &str, port: u16) -> String {
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec ip netns exec {} bash -c \
         'exec 3<>/dev/tcp/{ip}/{port} && timeout 5 cat <&3'",
        cgroup.path().display(),
        ns.name()
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A TCP server on 127.0.0.1 in `ns` that writes its name to every connection.
fn backend(ns: &Netns, name: &'static str) -> u16 {
    let listener = ns.run(|| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap());
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.write_all(format!("{name}\n").as_bytes());
        }
    });
    port
}

fn state(master: std::net::SocketAddr, ports: &[(u16, &str)]) -> Vec<u8> {
    let tasks: Vec<_> = ports
        .iter()
        .map(|(port, id)| {
            json!({"id": id, "name": "web", "slave_id": "S1", "state": "TASK_RUNNING",
            "resources": {"ports": format!("[{port}-{port}]")},
            "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0,
                "container_status": {"network_infos": [{"ip_addresses": [{"ip_address": "127.0.0.1"}]}]}}],
            "discovery": {"name": "web", "ports": {"ports": [{"number": port, "protocol": "tcp", "name": "http",
                "labels": {"labels": [{"key": "VIP_0", "value": "/web:80"}, {"key": "VIP_1", "value": format!("{IP_VIP}:8080")}]}}]}}})
        })
        .collect();
    json!({"leader": format!("master@{master}"),
        "slaves": [{"id": "S1", "hostname": "127.0.0.1", "pid": "slave(1)@127.0.0.1:5051"}],
        "frameworks": [{"name": "marathon", "tasks": tasks}]})
    .to_string()
    .into_bytes()
}

fn start_agent(
    dir: &TempDir,
    name: &str,
    master: std::net::SocketAddr,
    vip: &str,
) -> (Proc, std::net::SocketAddr, std::net::SocketAddr) {
    let (dns, http) = (free_port(), free_port());
    let toml = format!(
        "[mesos_dns]\nmasters = [\"{master}\"]\nrefresh_seconds = 1\nlistener = \"127.0.0.1\"\nport = {dns}\n\
         http_listener = \"127.0.0.1\"\nhttp_port = {http}\nexternal_on = false\n[vip]\n{vip}\n"
    );
    let path = dir.path(&format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beacon"));
    cmd.args(["agent", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if std::env::var_os("BEACON_TEST_LOG").is_none() {
        cmd.stderr(Stdio::null());
    }
    let proc = Proc(cmd.spawn().unwrap());
    let http = std::net::SocketAddr::from(([127, 0, 0, 1], http));
    wait_until("agent ready", || {
        http_get(http, "/readyz").is_ok_and(|r| r.status == 200)
    });
    (proc, ([127, 0, 0, 1], dns).into(), http)
}

/// A bpffs directory for one test's data plane (never the default `/sys/fs/bpf/beacon`):
/// whatever an agent pinned there is detached and removed when dropped, even if the test fails.
struct PinDir(PathBuf);

impl PinDir {
    fn new(short: &str) -> Self {
        Self(format!("/sys/fs/bpf/beacon-test-{short}-{}", tag()).into())
    }

    /// `[vip]` lines for an agent whose data plane runs on `cgroup` and pins here.
    fn vip_config(&self, cgroup: &Cgroup) -> String {
        format!(
            "data_plane = \"on\"\ncgroup = \"{}\"\nbpffs_dir = \"{}\"",
            cgroup.path().display(),
            self.0.display()
        )
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if let Err(e) = beacon_vip_lb::remove_pinned(&self.0) {
            eprintln!("removing {}: {e}", self.0.display());
        }
    }
}

fn vip_address(dns: std::net::SocketAddr) -> Option<String> {
    let reply = query(dns, NAME, RecordType::A, Ask::UDP);
    reply.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(a.0.to_string()),
        _ => None,
    })
}

#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn a_named_vip_and_an_ip_vip_reach_their_backends() {
    require_root("a_named_vip_and_an_ip_vip_reach_their_backends");
    let dir = TempDir::new("vips");
    let cgroup = Cgroup::new("it-vips");
    let ns = Netns::new(&format!("beacon-vipc-{}", tag()));
    let ports = [
        (backend(&ns, "b1"), "web.1"),
        (backend(&ns, "b2"), "web.2"),
        (backend(&ns, "b3"), "web.3"),
    ];
    let master_addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let master = FakeMaster::start_on(&dir, &state(master_addr, &ports), master_addr);
    let pins = PinDir::new("it-vips");
    let vip = pins.vip_config(&cgroup);
    let (_agent, dns, http) = start_agent(&dir, "on", master.addr, &vip);

    wait_until("the l4lb name answers", || vip_address(dns).is_some());
    let address = vip_address(dns).unwrap();
    assert!(address.starts_with("11."), "{address}");
    let vips = http_get(http, "/v1/vips").unwrap().json();
    let named = vips
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["vip"] == "web.marathon.l4lb.thisdcos.directory:80")
        .unwrap_or_else(|| panic!("{vips}"));
    assert_eq!(named["address"], address.as_str());
    assert_eq!(named["programmed"], true);
    assert_eq!(named["backend"].as_array().unwrap().len(), 3);

    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..12 {
        let reply = fetch(&cgroup, &ns, &address, 80);
        assert!(["b1", "b2", "b3"].contains(&reply.as_str()), "{reply:?}");
        seen.insert(reply);
    }
    assert!(seen.len() >= 2, "12 connections all went to {seen:?}");
    assert!(["b1", "b2", "b3"].contains(&fetch(&cgroup, &ns, IP_VIP, 8080).as_str()));

    let metrics = http_get(http, "/metrics").unwrap().text();
    assert!(metrics.contains("beacon_vip_data_plane 1"), "{metrics}");
    let flows = metrics
        .lines()
        .find(|l| {
            l.starts_with("beacon_vip_new_flows_total{")
                && l.contains("web.marathon.l4lb.thisdcos.directory:80")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
    assert!(flows.is_some_and(|n| n >= 12), "{metrics}");
    // The data plane's own counters: every connect above was translated at the socket.
    let translated = (metrics.lines())
        .find_map(|l| l.strip_prefix("beacon_vip_data_plane_events_total{event=\"sock_xlate\"} "))
        .and_then(|v| v.trim().parse::<u64>().ok());
    assert!(translated.is_some_and(|n| n >= 12), "{metrics}");

    // b3's task goes away: no connection reaches it any more.
    master.serve(&state(master.addr, &ports[..2]));
    wait_until("b3 out of /v1/vips", || {
        let vips = http_get(http, "/v1/vips").unwrap().json();
        vips.as_array()
            .unwrap()
            .iter()
            .all(|v| v["backend"].as_array().unwrap().len() == 2)
    });
    for _ in 0..12 {
        let reply = fetch(&cgroup, &ns, &address, 80);
        assert!(["b1", "b2"].contains(&reply.as_str()), "{reply:?}");
    }

    // Without a data plane the same catalog publishes no VIP name.
    let (_off, off_dns, _) = start_agent(&dir, "off", master.addr, "data_plane = \"off\"");
    let reply = query(off_dns, NAME, RecordType::A, Ask::UDP);
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
}

/// Without a data plane (here: a cgroup that does not exist; elsewhere: not root, no BPF) the
/// agent says so in one line, serves discovery, and publishes no VIP name; with
/// `data_plane = "on"` it refuses to start instead.
#[test]
fn without_a_data_plane_discovery_runs_and_vip_names_stay_unpublished() {
    let dir = TempDir::new("vips-off");
    let master_addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let master = FakeMaster::start_on(&dir, &state(master_addr, &[(31000, "web.1")]), master_addr);
    let (dns, http) = (free_port(), free_port());
    let config = |mode: &str| {
        format!(
            "[mesos_dns]\nmasters = [\"{}\"]\nlistener = \"127.0.0.1\"\nport = {dns}\n\
             http_listener = \"127.0.0.1\"\nhttp_port = {http}\nexternal_on = false\n\
             [vip]\ndata_plane = \"{mode}\"\ncgroup = \"/nonexistent/beacon-cgroup\"\n",
            master.addr
        )
    };
    let path = dir.path("auto.toml");
    std::fs::write(&path, config("auto")).unwrap();
    let log = dir.path("auto.log");
    let child = Command::new(env!("CARGO_BIN_EXE_beacon"))
        .args(["agent", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _agent = Proc(child);
    let http = std::net::SocketAddr::from(([127, 0, 0, 1], http));
    let dns = std::net::SocketAddr::from(([127, 0, 0, 1], dns));
    wait_until("agent ready", || {
        http_get(http, "/readyz").is_ok_and(|r| r.status == 200)
    });
    let text = std::fs::read_to_string(&log).unwrap();
    let off: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("VIP data plane off"))
        .collect();
    assert_eq!(off.len(), 1, "{text}");
    assert_eq!(
        query(dns, "web.marathon.mesos.", RecordType::A, Ask::UDP)
            .answers
            .len(),
        1
    );
    let reply = query(dns, NAME, RecordType::A, Ask::UDP);
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    let vips = http_get(http, "/v1/vips").unwrap().json();
    assert_eq!(vips[0]["programmed"], false, "{vips}");
    let metrics = http_get(http, "/metrics").unwrap().text();
    assert!(metrics.contains("beacon_vip_data_plane 0"), "{metrics}");

    let path = dir.path("on.toml");
    std::fs::write(&path, config("on")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_beacon"))
        .args(["agent", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot start the VIP data plane"),
        "{stderr}"
    );
}

/// A client in `cgroup` and `ns` that connects to `ip:80` every 50 ms, `n` times, and prints one
/// line per attempt: `R <reply>` (empty when the connect or read failed).
fn steady_client(cgroup: &Cgroup, ns: &Netns, ip: &str, n: usize) -> Proc {
    let script = format!(
        "echo $$ > {}/cgroup.procs && exec ip netns exec {} bash -c \
         'for i in $(seq 1 {n}); do \
            r=$( (exec 3<>/dev/tcp/{ip}/80 && timeout 2 head -n1 <&3) 2>/dev/null ); \
            echo \"R $r\"; sleep 0.05; \
          done'",
        cgroup.path().display(),
        ns.name()
    );
    let child = Command::new("bash")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

/// Runs `steady_client` across a `kill -9` of the agent and its restart 2 s later; returns
/// (requests, failed, the VIP's address).
fn requests_across_kill_9(
    dir: &TempDir,
    master: &FakeMaster,
    cgroup: &Cgroup,
    ns: &Netns,
    vip: &str,
) -> (usize, usize, String) {
    let (mut agent, dns, _) = start_agent(dir, "kill9", master.addr, vip);
    wait_until("the l4lb name answers", || vip_address(dns).is_some());
    let address = vip_address(dns).unwrap();
    let mut client = steady_client(cgroup, ns, &address, 120);
    let lines = BufReader::new(client.0.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut replies = Vec::new();
    let collect = |until: Instant, replies: &mut Vec<String>| {
        while let Ok(line) = rx.recv_timeout(until.saturating_duration_since(Instant::now())) {
            replies.push(line.trim_start_matches('R').trim().to_string());
        }
    };
    collect(Instant::now() + Duration::from_secs(1), &mut replies);
    // kill -9: the agent's PID only.
    agent.0.kill().unwrap();
    agent.0.wait().unwrap();
    collect(Instant::now() + Duration::from_secs(2), &mut replies);
    let (_restarted, _, _) = start_agent(dir, "kill9", master.addr, vip);
    collect(Instant::now() + Duration::from_secs(30), &mut replies);
    let failed = replies
        .iter()
        .filter(|r| !["b1", "b2"].contains(&r.as_str()))
        .count();
    (replies.len(), failed, address)
}

/// Issue 10: the data plane outlives the agent. A client calls a named VIP every 50 ms while the
/// agent is killed with SIGKILL and started again 2 s later: with the maps and links pinned no
/// request fails. Unpinned (the data plane dies with the agent, as before) requests fail.
/// `beacon dataplane remove` then leaves nothing pinned and nothing attached.
#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn the_data_plane_outlives_a_kill_9_of_the_agent() {
    require_root("the_data_plane_outlives_a_kill_9_of_the_agent");
    let dir = TempDir::new("vips-kill9");
    let cgroup = Cgroup::new("it-kill9");
    let ns = Netns::new(&format!("beacon-k9-{}", tag()));
    let ports = [(backend(&ns, "b1"), "web.1"), (backend(&ns, "b2"), "web.2")];
    let master_addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let master = FakeMaster::start_on(&dir, &state(master_addr, &ports), master_addr);

    let unpinned = format!(
        "data_plane = \"on\"\ncgroup = \"{}\"\nbpffs_dir = \"\"",
        cgroup.path().display()
    );
    let (sent, failed, _) = requests_across_kill_9(&dir, &master, &cgroup, &ns, &unpinned);
    println!("unpinned: {sent} requests, {failed} failed across kill -9 and restart");
    assert!(failed > 0, "unpinned, the data plane dies with the agent");

    let pins = PinDir::new("it-kill9");
    let vip = pins.vip_config(&cgroup);
    let (sent, failed, address) = requests_across_kill_9(&dir, &master, &cgroup, &ns, &vip);
    println!("pinned: {sent} requests, {failed} failed across kill -9 and restart");
    assert!(sent >= 100, "{sent} requests");
    assert_eq!(failed, 0, "{failed} of {sent} requests failed");

    // The last agent is gone (killed when dropped): balancing goes on until removed.
    assert!(["b1", "b2"].contains(&fetch(&cgroup, &ns, &address, 80).as_str()));
    let config = dir.path("kill9.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_beacon"))
        .args(["dataplane", "remove", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("8 links detached"), "{stdout}");
    assert!(!pins.0.exists(), "nothing left pinned");
    assert_eq!(fetch(&cgroup, &ns, &address, 80), "", "nothing attached");
}

/// `beacon demo` keeps its data plane unpinned: it attaches the socket LB (as root) while it
/// runs and leaves nothing attached or pinned when it ends (SIGINT, as Ctrl-C).
#[test]
#[cfg_attr(
    unprivileged,
    ignore = "needs root (BPF, network namespaces, cgroups); runs under CI=true"
)]
fn the_demo_leaves_nothing_attached_or_pinned() {
    require_root("the_demo_leaves_nothing_attached_or_pinned");
    let _one = root_cgroup_data_plane();
    let child = Command::new(env!("CARGO_BIN_EXE_beacon"))
        .args(["demo", "--json", "--nodes", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut demo = Proc(child);
    let lines = BufReader::new(demo.0.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let vip = lines.map_while(Result::ok).any(|l| l.contains("\"vip\""));
        let _ = tx.send(vip);
    });
    let vip_on = rx.recv_timeout(Duration::from_secs(30));
    assert_eq!(vip_on, Ok(true), "the demo's data plane is on (as root)");
    let pid = demo.0.id();
    let links = cgroup_links_of(pid);
    assert_eq!(links.len(), 8, "the socket-LB links: {links:?}");

    // SIGINT, to the demo's PID only.
    // SAFETY: kill has no memory preconditions; the PID is our child's, not yet reaped.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGINT) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while demo.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the demo did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<u32> = loaded_bpf_links().intersection(&links).copied().collect();
    assert!(left.is_empty(), "links left attached or pinned: {left:?}");
}

//! Registrations survive what an operator's disk can do to them: a save that fails changes
//! nothing, and an unreadable file is set aside and the registrations recovered from the
//! cluster's copy before the node takes writes.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::support::*;

struct Node {
    dns: SocketAddr,
    http: SocketAddr,
    config: std::path::PathBuf,
    proc: Proc,
}

fn run(config: &std::path::Path) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beacon"));
    cmd.args(["agent", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    if std::env::var_os("BEACON_TEST_LOG").is_none() {
        cmd.stderr(Stdio::null());
    }
    Proc(cmd.spawn().unwrap())
}

/// A cluster node with no Mesos source: only registrations, kept in `state-<name>`.
fn node(dir: &TempDir, name: &str, gossip: u16, seed: Option<u16>) -> Node {
    let (dns, http) = (free_port(), free_port());
    let seeds = seed
        .map(|p| format!("\"n1@127.0.0.1:{p}\""))
        .unwrap_or_default();
    let toml = format!(
        "[mesos_dns]\nlistener = \"127.0.0.1\"\nport = {dns}\nhttp_listener = \"127.0.0.1\"\nhttp_port = {http}\n\
         external_on = false\n[node]\nname = \"{name}\"\nstate_dir = \"{}\"\n\
         [cluster]\nlisten = \"127.0.0.1:{gossip}\"\nseeds = [{seeds}]\ntls_dir = \"{}\"\n\
         [vip]\ndata_plane = \"off\"\n{}",
        dir.path(&format!("state-{name}")).display(),
        dir.path("tls").display(),
        test_tokens()
    );
    let config = dir.path(&format!("{name}.toml"));
    std::fs::write(&config, toml).unwrap();
    let node = Node {
        dns: ([127, 0, 0, 1], dns).into(),
        http: ([127, 0, 0, 1], http).into(),
        proc: run(&config),
        config,
    };
    wait_until("agent up", || {
        http_get(node.http, "/healthz").is_ok_and(|r| r.status == 200)
    });
    node
}

fn put(node: &Node, id: &str, ip: &str) -> HttpReply {
    let body = json!({"name": id, "framework": "shop", "ips": [ip]}).to_string();
    http_write(
        node.http,
        "PUT",
        &format!("/v1/registrations/{id}"),
        body.as_bytes(),
    )
    .unwrap()
}

fn answers(node: &Node, id: &str) -> bool {
    let name = format!("{id}.shop.mesos.");
    !query(node.dns, &name, RecordType::A, Ask::UDP)
        .answers
        .is_empty()
}

fn registrations(node: &Node) -> usize {
    let list = http_get(node.http, "/v1/registrations").map(|r| r.json());
    list.ok()
        .and_then(|l| l.as_object().map(|o| o.len()))
        .unwrap_or(0)
}

fn certificates(dir: &TempDir) {
    let tls = dir.path("tls");
    let tls = tls.to_str().unwrap();
    let beacon = |args: &[&str]| {
        let ok = Command::new(env!("CARGO_BIN_EXE_beacon"))
            .args(args)
            .stdout(Stdio::null())
            .status();
        assert!(ok.unwrap().success(), "beacon {args:?}");
    };
    beacon(&["tls", "ca", "--dir", tls]);
    for name in ["n1", "n2"] {
        beacon(&["tls", "node", "--name", name, "--dir", tls]);
    }
}

#[test]
fn an_unreadable_registrations_file_is_set_aside_and_recovered_from_the_cluster() {
    let dir = TempDir::new("durable");
    certificates(&dir);
    let (g1, g2) = (free_port(), free_port());
    let n1 = node(&dir, "n1", g1, None);
    let mut n2 = node(&dir, "n2", g2, Some(g1));
    let ids: Vec<String> = (0..50).map(|i| format!("svc{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(put(&n2, id, &format!("10.9.1.{i}")).status, 201);
    }
    wait_until("n1 answers n2's registrations", || {
        ids.iter().all(|id| answers(&n1, id))
    });

    // n2 stops, and its file is cut in half (a disk that lost the end of a write).
    // SAFETY: kill has no memory preconditions; the PID is our own child's.
    unsafe { libc::kill(n2.proc.0.id() as libc::pid_t, libc::SIGTERM) };
    let _ = n2.proc.0.wait();
    let file = dir.path("state-n2").join("registrations.json");
    let saved = std::fs::read(&file).unwrap();
    std::fs::write(&file, &saved[..saved.len() / 2]).unwrap();

    n2.proc = run(&n2.config);
    wait_until("n2 recovers its 50 registrations", || {
        registrations(&n2) == 50
    });
    let aside = std::fs::read_dir(dir.path("state-n2")).unwrap().flatten();
    let aside: Vec<_> = aside
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("registrations.json.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "the unreadable file is kept aside");
    assert_eq!(put(&n2, "after", "10.9.2.1").status, 201);
    for node in [&n1, &n2] {
        wait_until("every registration answered", || {
            ids.iter().all(|id| answers(node, id)) && answers(node, "after")
        });
    }
    // The file is whole again: it parses.
    let saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(saved.as_object().map(|o| o.len()), Some(51));
}

#[test]
fn a_save_that_fails_changes_nothing() {
    let dir = TempDir::new("durable-save");
    certificates(&dir);
    let n1 = node(&dir, "n1", free_port(), None);
    assert_eq!(put(&n1, "kept", "10.9.3.1").status, 201);
    // The temporary file's name taken by a directory: the next save cannot be written.
    std::fs::create_dir_all(dir.path("state-n1").join("registrations.json.tmp")).unwrap();
    let reply = put(&n1, "lost", "10.9.3.2");
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.json()["rule"], "publish");
    assert_eq!(registrations(&n1), 1);
    let nx = query(n1.dns, "lost.shop.mesos.", RecordType::A, Ask::UDP);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert!(answers(&n1, "kept"));
}

/// Restarted while the master is down, the agent serves what it served before, at once, and
/// says how old it is; before, it answered SERVFAIL for every name until the master came back.
#[test]
fn a_restart_during_a_master_outage_serves_the_last_known_state() {
    let dir = TempDir::new("durable-master");
    let master = FakeMaster::start(
        &dir,
        &std::fs::read(conformance("fake-loopback-leader.json")).unwrap(),
    );
    let (dns, http) = (free_port(), free_port());
    let toml = format!(
        "[mesos_dns]\nmasters = [\"{}\"]\nlistener = \"127.0.0.1\"\nport = {dns}\n\
         http_listener = \"127.0.0.1\"\nhttp_port = {http}\nexternal_on = false\n\
         [node]\nstate_dir = \"{}\"\n[vip]\ndata_plane = \"off\"\n",
        master.addr,
        dir.path("state").display()
    );
    let config = dir.path("agent.toml");
    std::fs::write(&config, toml).unwrap();
    let http: SocketAddr = ([127, 0, 0, 1], http).into();
    let dns: SocketAddr = ([127, 0, 0, 1], dns).into();
    let mut agent = run(&config);
    wait_until("ready", || {
        http_get(http, "/readyz").is_ok_and(|r| r.status == 200)
    });
    let nginx = || {
        query(dns, "nginx.marathon.mesos.", RecordType::A, Ask::UDP)
            .answers
            .len()
    };
    assert_eq!(nginx(), 1);
    wait_until("the state kept", || {
        dir.path("state").join("last-mesos-master.json").exists()
    });
    // SAFETY: kill has no memory preconditions; the PID is our own child's.
    unsafe { libc::kill(agent.0.id() as libc::pid_t, libc::SIGTERM) };
    let _ = agent.0.wait();
    drop(master);

    let _agent = run(&config);
    wait_until("ready from the last-known state", || {
        http_get(http, "/readyz").is_ok_and(|r| r.status == 200 && r.text().contains("last-known"))
    });
    assert_eq!(nginx(), 1, "answered from the last-known state");
}

/// A planned restart loses no DNS query: the service manager (the test, here) holds the DNS
/// sockets and hands them to each agent (systemd socket activation). As `systemctl restart`
/// does, the old agent is stopped and then a new one started on the same sockets: queries sent
/// in between wait in the socket and are answered by the new agent.
#[test]
fn a_restart_on_socket_activated_sockets_loses_no_query() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;

    let dir = TempDir::new("durable-activation");
    let master = FakeMaster::start(
        &dir,
        &std::fs::read(conformance("fake-loopback-leader.json")).unwrap(),
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dns = udp.local_addr().unwrap();
    let tcp = std::net::TcpListener::bind(dns).unwrap();
    let http = free_port();
    let toml = format!(
        "[mesos_dns]\nmasters = [\"{}\"]\nlistener = \"127.0.0.1\"\nport = {}\n\
         http_listener = \"127.0.0.1\"\nhttp_port = {http}\nexternal_on = false\n\
         [node]\nstate_dir = \"{}\"\n[vip]\ndata_plane = \"off\"\n",
        master.addr,
        dns.port(),
        dir.path("state").display()
    );
    let config = dir.path("agent.toml");
    std::fs::write(&config, toml).unwrap();
    let (udp_fd, tcp_fd) = (udp.as_raw_fd(), tcp.as_raw_fd());
    let activated = || {
        // `sh` execs the agent, so `$$` is the agent's PID, as LISTEN_PID must be.
        let script = format!(
            "LISTEN_PID=$$ LISTEN_FDS=2 exec {} agent --config \"$0\"",
            env!("CARGO_BIN_EXE_beacon")
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if std::env::var_os("BEACON_TEST_LOG").is_none() {
            cmd.stderr(Stdio::null());
        }
        // SAFETY: dup2 is async-signal-safe; the descriptors are open for the child's lifetime.
        unsafe {
            cmd.pre_exec(move || {
                // Through spare numbers first, so that neither source is overwritten before it
                // is copied; dup2 leaves the copies open across exec.
                for (from, to) in [(udp_fd, 100), (tcp_fd, 101), (100, 3), (101, 4)] {
                    if libc::dup2(from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        Proc(cmd.spawn().unwrap())
    };
    let http: SocketAddr = ([127, 0, 0, 1], http).into();
    let mut old = activated();
    wait_until("ready", || {
        http_get(http, "/readyz").is_ok_and(|r| r.status == 200)
    });

    // A client asks every 5 ms, each query waiting up to 3 s, while the agent is replaced.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let (mut sent, mut answered) = (0, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                sent += 1;
                let msg = query_message("leader.mesos.", RecordType::A, Ask::UDP);
                let reply = exchange(dns, &msg.to_vec().unwrap(), Ask::UDP.transport);
                let reply = reply
                    .ok()
                    .and_then(|r| hickory_proto::op::Message::from_vec(&r).ok());
                answered += usize::from(reply.is_some_and(|r| r.answers.len() == 1));
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            (sent, answered)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: kill has no memory preconditions; the PID is our own child's.
    unsafe { libc::kill(old.0.id() as libc::pid_t, libc::SIGTERM) };
    let _ = old.0.wait();
    let new = activated();
    wait_until("ready again", || {
        http_get(http, "/readyz").is_ok_and(|r| r.status == 200)
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (sent, answered) = client.join().unwrap();
    assert!(sent > 50, "{sent}");
    assert_eq!(answered, sent, "queries lost across the restart");
    drop(new);
}

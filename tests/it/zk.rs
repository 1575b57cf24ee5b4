//! ZooKeeper master detection against a real ZooKeeper (Debian's `zookeeper`, a standalone server
//! on a loopback port) and fake masters on their own loopback addresses: a config.json with only
//! `zk` answers `leader`, `master` and `masterN`, follows the leader when its znode goes, and
//! survives ZooKeeper restarting or being down at start. Under `CI=true` a missing ZooKeeper fails
//! the tests; elsewhere they say they are skipped.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::json;
use zookeeper_client::{Acls, Client, CreateMode};

use crate::support::{
    Agent, Ask, FakeMaster, Proc, TempDir, conformance, free_port, http_get, query, show, wait_for,
};

const ZK_SERVER: &str = "/usr/share/zookeeper/bin/zkServer.sh";
/// Generous: a JVM starting on a loaded 2-core machine, then a client's reconnection backoff.
const PATIENCE: Duration = Duration::from_secs(90);

/// Whether ZooKeeper is installed; panics under `CI=true` when it is not.
fn zookeeper_installed() -> bool {
    if Path::new(ZK_SERVER).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but ZooKeeper is not installed ({ZK_SERVER}): apt-get install zookeeper (.ci/run does)"
    );
    eprintln!("skipped: ZooKeeper is not installed ({ZK_SERVER}); apt-get install zookeeper");
    false
}

/// A standalone ZooKeeper on 127.0.0.1, its data kept across restarts (as a real one's is).
struct ZooKeeper {
    dir: TempDir,
    port: u16,
    proc: Option<Proc>,
}

impl ZooKeeper {
    fn new() -> Self {
        let (dir, port) = (TempDir::new("zk"), free_port());
        let cfg = format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n",
            dir.path("data").display()
        );
        std::fs::write(dir.path("zoo.cfg"), cfg).unwrap();
        Self {
            dir,
            port,
            proc: None,
        }
    }

    /// Starts the server; `zkServer.sh start-foreground` execs java, so the child is the JVM.
    fn start(&mut self) {
        let child = Command::new(ZK_SERVER)
            .arg("start-foreground")
            .arg(self.dir.path("zoo.cfg"))
            .env("ZOO_LOG_DIR", &self.dir.0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.proc = Some(Proc(child));
    }

    /// Kills the server (by its PID).
    fn stop(&mut self) {
        self.proc = None;
    }

    fn url(&self) -> String {
        format!("zk://127.0.0.1:{}/mesos", self.port)
    }

    /// A client session for creating znodes; waits until the server accepts it.
    fn znodes(&self) -> Znodes {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let server = format!("127.0.0.1:{}", self.port);
        let mut client = None;
        wait_for("zookeeper accepts a session", PATIENCE, || {
            let connect = Client::connector()
                .with_session_timeout(Duration::from_secs(30))
                .with_fail_eagerly()
                .connect(&server);
            client = rt.block_on(connect).ok();
            client.is_some() || {
                std::thread::sleep(Duration::from_millis(500));
                false
            }
        });
        let znodes = Znodes {
            client: client.unwrap(),
            rt,
        };
        let root = CreateMode::Persistent.with_acls(Acls::anyone_all());
        match znodes
            .rt
            .block_on(znodes.client.create("/mesos", b"", &root))
        {
            Ok(_) | Err(zookeeper_client::Error::NodeExists) => znodes,
            Err(e) => panic!("create /mesos: {e}"),
        }
    }
}

/// Znodes as Mesos masters write them, through the Rust client (a `zkCli.sh` per call would
/// start a JVM each time).
struct Znodes {
    client: Client,
    rt: tokio::runtime::Runtime,
}

impl Znodes {
    /// Registers `master` as contending: a sequential `json.info_` child with its MasterInfo
    /// (persistent, which reads the same as a master's ephemeral one); returns its path.
    fn register(&self, master: SocketAddr) -> String {
        let info = json!({
            "address": {"hostname": master.ip().to_string(), "ip": master.ip().to_string(), "port": master.port()},
            "hostname": master.ip().to_string(), "id": format!("m-{master}"),
            "pid": format!("master@{master}"), "port": master.port(), "version": "1.11.0",
        });
        let mode = CreateMode::PersistentSequential.with_acls(Acls::anyone_all());
        let create = self
            .client
            .create("/mesos/json.info_", info.to_string().as_bytes(), &mode);
        let (_, seq) = self.rt.block_on(create).unwrap();
        format!("/mesos/json.info_{seq}")
    }

    fn delete(&self, path: &str) {
        self.rt.block_on(self.client.delete(path, None)).unwrap();
    }
}

/// A fake master on its own loopback address whose state names it the leader.
fn master(dir: &TempDir, last_octet: u8) -> FakeMaster {
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(conformance("fake-loopback-leader.json")).unwrap())
            .unwrap();
    let addr: SocketAddr = ([127, 0, 0, last_octet], free_port()).into();
    state["leader"] = format!("master@{addr}").into();
    FakeMaster::start_on(dir, state.to_string().as_bytes(), addr)
}

fn zk_agent(dir: &TempDir, zk: &ZooKeeper) -> Agent {
    let config = json!({"zk": zk.url(), "refreshSeconds": 60, "ZkDetectionTimeout": 1});
    Agent::start_as_configured(dir, config)
}

/// The addresses a name has, sorted, or the response code when it has none.
fn a(agent: &Agent, name: &str) -> Result<Vec<String>, ResponseCode> {
    let reply = query(agent.dns, name, RecordType::A, Ask::UDP);
    let mut ips: Vec<String> = (reply.answers.iter().map(show))
        .filter_map(|r| r.split_whitespace().last().map(str::to_string))
        .collect();
    ips.sort();
    match ips.is_empty() {
        true => Err(reply.metadata.response_code),
        false => Ok(ips),
    }
}

fn ip(master: &FakeMaster) -> String {
    master.addr.ip().to_string()
}

fn detection_timeouts(agent: &Agent) -> u64 {
    let text = http_get(agent.http, "/metrics")
        .map(|r| r.text())
        .unwrap_or_default();
    (text.lines())
        .find_map(|l| l.strip_prefix("beacon_zk_detection_timeouts_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn zk_alone_answers_the_masters_and_follows_the_leader() {
    if !zookeeper_installed() {
        return;
    }
    let dir = TempDir::new("zk-alone");
    let mut zk = ZooKeeper::new();
    zk.start();
    let (m1, m2) = (master(&dir, 11), master(&dir, 12));
    let znodes = zk.znodes();
    let first = znodes.register(m1.addr);
    znodes.register(m2.addr);
    let agent = zk_agent(&dir, &zk);
    wait_for("leader.mesos is the lowest sequence", PATIENCE, || {
        a(&agent, "leader.mesos.") == Ok(vec![ip(&m1)])
    });
    wait_for("master.mesos names both masters", PATIENCE, || {
        a(&agent, "master.mesos.") == Ok(vec![ip(&m1), ip(&m2)])
    });
    assert_eq!(a(&agent, "master0.mesos."), Ok(vec![ip(&m1)]));
    assert_eq!(a(&agent, "master1.mesos."), Ok(vec![ip(&m2)]));

    znodes.delete(&first);
    wait_for("the leader moves when its znode goes", PATIENCE, || {
        a(&agent, "leader.mesos.") == Ok(vec![ip(&m2)])
    });
    wait_for("master.mesos follows zookeeper", PATIENCE, || {
        a(&agent, "master.mesos.") == Ok(vec![ip(&m2)])
    });
    assert_eq!(a(&agent, "master0.mesos."), Ok(vec![ip(&m2)]));
}

#[test]
fn zookeeper_restarted_mid_run() {
    if !zookeeper_installed() {
        return;
    }
    let dir = TempDir::new("zk-restart");
    let mut zk = ZooKeeper::new();
    zk.start();
    let (m1, m2) = (master(&dir, 21), master(&dir, 22));
    let first = {
        let znodes = zk.znodes();
        let first = znodes.register(m1.addr);
        znodes.register(m2.addr);
        first
    };
    let agent = zk_agent(&dir, &zk);
    wait_for("leader.mesos from zookeeper", PATIENCE, || {
        a(&agent, "leader.mesos.") == Ok(vec![ip(&m1)])
    });

    zk.stop();
    wait_for("the leaderless spell is counted", PATIENCE, || {
        detection_timeouts(&agent) >= 1
    });
    assert_eq!(
        a(&agent, "leader.mesos."),
        Ok(vec![ip(&m1)]),
        "the last state stays in service while zookeeper is down"
    );

    zk.start();
    zk.znodes().delete(&first);
    wait_for("the leader moves after zookeeper is back", PATIENCE, || {
        a(&agent, "leader.mesos.") == Ok(vec![ip(&m2)])
    });
}

#[test]
fn zookeeper_down_at_start() {
    if !zookeeper_installed() {
        return;
    }
    let dir = TempDir::new("zk-down");
    let mut zk = ZooKeeper::new();
    let m1 = master(&dir, 31);
    let agent = zk_agent(&dir, &zk);
    wait_for("the agent says it has no leader", PATIENCE, || {
        detection_timeouts(&agent) >= 1
    });
    assert_eq!(http_get(agent.http, "/readyz").unwrap().status, 503);
    assert_eq!(a(&agent, "leader.mesos."), Err(ResponseCode::ServFail));

    zk.start();
    zk.znodes().register(m1.addr);
    wait_for("served once zookeeper is up", PATIENCE, || {
        a(&agent, "leader.mesos.") == Ok(vec![ip(&m1)])
    });
    assert_eq!(http_get(agent.http, "/readyz").unwrap().status, 200);
}

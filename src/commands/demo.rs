//! `beacon demo`: a cluster on loopback that needs no root and no Mesos.
//!
//! It starts a fake Mesos master serving a sample state, small HTTP backends for the sample
//! service `demo-web` (each reply names the backend), and N agents on free loopback ports that
//! poll the master and form a gossip cluster (mutual TLS, certificates made for the run). It then prints what to try, or one JSON line per node with `--json`.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::agent::Agent;
use crate::cli::DemoArgs;
use crate::commands::fake_master::FakeMaster;
use crate::common::{BoxError, shutdown_signal};
use crate::config::Config;

const BACKENDS: usize = 3;

/// The demo's named VIP (`VIP_0=/demo-web:80` on the demo-web tasks).
const DEMO_VIP: &str = "demo-web.marathon.l4lb.thisdcos.directory";

/// Runs the demo until SIGINT or SIGTERM.
pub async fn run(args: &DemoArgs) -> Result<(), BoxError> {
    let stop = CancellationToken::new();
    let mut backend_ports = Vec::new();
    for i in 0..BACKENDS {
        backend_ports.push(start_backend(i + 1, stop.clone()).await?);
    }
    let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let master = FakeMaster::start(loopback, Vec::new()).await?;
    master.set_body(
        sample_state(master.addr(), &backend_ports)
            .to_string()
            .into_bytes(),
    );

    let token = demo_token();
    let mut agents = Vec::new();
    // The agents form a cluster: certificates from a throw-away CA, gossip on loopback, every
    // node joining through the first.
    let tls_dir = std::env::temp_dir().join(format!("beacon-demo-{}", std::process::id()));
    crate::commands::tls::create_ca(&tls_dir, 1)?;
    let mut seed = None;
    for i in 1..=args.nodes {
        let name = format!("n{i}");
        // Every demo node polls the (fake) master: each may publish its state.
        crate::commands::tls::issue_node_with_role(&tls_dir, &name, 1, true)?;
        let mut config = demo_config(master.addr());
        config.node.name = name.clone();
        config.api.tokens = vec![token.settings.clone()];
        config.cluster.listen = Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        config.cluster.tls_dir = tls_dir.clone();
        config.cluster.seeds = seed.iter().cloned().collect();
        // One data plane per host: the first node balances the demo VIP (as root); on a real
        // cluster every node runs its own.
        if i > 1 {
            config.vip = crate::config::VipSettings::off();
        }
        // Not pinned: the demo's data plane goes when the demo does, however it ends.
        config.vip.bpffs_dir = std::path::PathBuf::new();
        let agent = Agent::start(config).await?;
        if let (None, Some(addr)) = (&seed, agent.gossip_addr) {
            seed = Some(crate::config::Seed { name, addr });
        }
        agents.push(agent);
    }
    wait_ready(&agents).await;
    print_summary(args, &agents, &backend_ports, &token.secret);

    shutdown_signal().await;
    for agent in agents {
        agent.stop().await;
    }
    let _ = std::fs::remove_dir_all(&tls_dir);
    master.stop();
    stop.cancel();
    Ok(())
}

fn demo_config(master: SocketAddr) -> Config {
    let mut config = Config::default();
    let m = &mut config.mesos_dns;
    m.masters = vec![master.to_string()];
    m.listener = "127.0.0.1".into();
    m.port = 0;
    m.http_listener = "127.0.0.1".into();
    m.http_port = 0;
    m.refresh_seconds = 2;
    m.resolvers = Vec::new();
    m.external_on = false;
    config.dns.udp_sockets = 1;
    config
}

async fn wait_ready(agents: &[Agent]) {
    for _ in 0..100 {
        if agents.iter().all(Agent::is_ready) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::warn!("not every agent loaded the demo catalog within 5 s");
}

/// The demo's write token: framework `demo`, backends on loopback or in 10.0.0.0/8, named VIPs.
fn demo_token() -> crate::commands::token::Minted {
    crate::commands::token::mint(&crate::cli::TokenNewArgs {
        name: "demo".into(),
        framework: vec!["demo".into()],
        backend_cidr: ["127.0.0.0/8", "10.0.0.0/8"]
            .map(|c| c.parse().expect("a CIDR"))
            .to_vec(),
        vips: true,
        ip_vip_cidr: Vec::new(),
        max_registrations: 100,
    })
}

fn print_summary(args: &DemoArgs, agents: &[Agent], backend_ports: &[u16], token: &str) {
    let addr = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
    let vip_on = agents.first().is_some_and(|a| a.vip_data_plane);
    if args.json {
        println!("{}", json!({"token": token}));
        for (i, agent) in agents.iter().enumerate() {
            println!(
                "{}",
                json!({"node": format!("n{}", i + 1), "dns": addr(agent.dns_addr), "http": addr(agent.http_addr)})
            );
        }
        if vip_on {
            println!("{}", json!({"vip": DEMO_VIP, "port": 80}));
        }
        return;
    }
    println!(
        "Beacon demo: {} agent(s) serving the sample catalog of a fake Mesos master.\n",
        agents.len()
    );
    for (i, agent) in agents.iter().enumerate() {
        println!(
            "  n{}: DNS {}  HTTP {}",
            i + 1,
            addr(agent.dns_addr),
            addr(agent.http_addr)
        );
    }
    let (Some(dns), Some(http)) = (agents[0].dns_addr, agents[0].http_addr) else {
        return;
    };
    let dig = format!("dig @{} -p {}", dns.ip(), dns.port());
    println!("\nTry:");
    println!("  {dig} web.marathon.mesos A +short");
    println!("  {dig} _demo-web._tcp.marathon.mesos SRV");
    println!("  {dig} _http._search._tcp.marathon.mesos SRV");
    println!("  {dig} leader.mesos A");
    println!(
        "  curl -s -X PUT http://{http}/v1/registrations/hello -H 'Authorization: Bearer {token}' -d '{{\"name\":\"hello\",\"framework\":\"demo\",\"ips\":[\"127.0.0.1\"]}}'"
    );
    if let Some(last) = agents.last().and_then(|a| a.dns_addr) {
        println!(
            "  dig @{} -p {} hello.demo.mesos A +short   # answered by every node",
            last.ip(),
            last.port()
        );
    }
    println!("  cargo run --release -- members --api http://{http}");
    println!("  curl -s http://{http}/v1/services/_demo-web._tcp.marathon.mesos.");
    println!("  curl -s http://{http}/v1/axfr");
    println!("  curl -s http://{http}/metrics | grep beacon_");
    if let Some(port) = backend_ports.first() {
        println!("  curl -s http://127.0.0.1:{port}/   # a demo-web backend; its reply names it");
    }
    match vip_on {
        true => {
            println!(
                "  curl -s http://$({dig} {DEMO_VIP} A +short):80/   # the VIP: a backend answers"
            );
            println!("  cargo run --release -- vips --api http://{http}");
        }
        false => {
            println!("  (the VIP data plane is off: run the demo as root to balance {DEMO_VIP})")
        }
    }
    println!("\nCtrl-C stops everything.");
}

async fn start_backend(n: usize, stop: CancellationToken) -> std::io::Result<u16> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let port = listener.local_addr()?.port();
    let reply = format!("demo-web backend {n} (127.0.0.1:{port})\n");
    let app = Router::new().route("/", get(move || async move { reply }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    Ok(port)
}

/// A Mesos master state with three agents, a Marathon framework running `web` (host ports),
/// `search` (DiscoveryInfo with named ports) and `demo-web` (the demo backends), and a
/// second framework.
fn sample_state(master: SocketAddr, backend_ports: &[u16]) -> serde_json::Value {
    let agent = |i: u32| json!({"id": format!("demo-agent-S{i}"), "hostname": format!("127.0.0.{}", i + 1), "pid": format!("slave(1)@127.0.0.{}:5051", i + 1)});
    let running = |ip: &str, ts: f64| {
        json!([{"state": "TASK_RUNNING", "timestamp": ts,
        "container_status": {"network_infos": [{"ip_addresses": [{"ip_address": ip}]}]}}])
    };
    let mut tasks = vec![
        json!({"id": "web.1", "name": "web", "slave_id": "demo-agent-S0", "state": "TASK_RUNNING",
               "resources": {"ports": "[31000-31001]"}, "statuses": running("127.0.0.1", 1.0)}),
        json!({"id": "web.2", "name": "web", "slave_id": "demo-agent-S1", "state": "TASK_RUNNING",
               "resources": {"ports": "[31000-31001]"}, "statuses": running("127.0.0.2", 1.0)}),
        json!({"id": "search.1", "name": "search", "slave_id": "demo-agent-S2", "state": "TASK_RUNNING",
               "resources": {"ports": "[31500-31500]"}, "statuses": running("127.0.0.3", 1.0),
               "discovery": {"name": "search", "visibility": "CLUSTER", "ports": {"ports": [
                   {"number": 8080, "protocol": "tcp", "name": "http"},
                   {"number": 9300, "protocol": "tcp", "name": "transport"}]}}}),
    ];
    for (i, port) in backend_ports.iter().enumerate() {
        tasks.push(json!({"id": format!("demo-web.{i}"), "name": "demo-web", "slave_id": "demo-agent-S0",
            "state": "TASK_RUNNING", "resources": {"ports": format!("[{port}-{port}]")},
            "statuses": running("127.0.0.1", 1.0),
            "discovery": {"name": "demo-web", "ports": {"ports": [{"number": port, "protocol": "tcp", "name": "http",
                "labels": {"labels": [{"key": "VIP_0", "value": "/demo-web:80"}]}}]}}}));
    }
    json!({
        "leader": format!("master@{master}"),
        "slaves": [agent(0), agent(1), agent(2)],
        "frameworks": [
            {"name": "marathon", "pid": "scheduler(1)@127.0.0.1:8080", "hostname": "localhost", "tasks": tasks},
            {"name": "jobs", "pid": "scheduler(1)@127.0.0.2:9090", "hostname": "localhost", "tasks": [
                {"id": "nightly.1", "name": "nightly", "slave_id": "demo-agent-S1", "state": "TASK_RUNNING",
                 "resources": {"ports": "[]"}, "statuses": running("127.0.0.2", 1.0)}]},
        ],
    })
}

//! Writes, tried as an attacker would: every write needs a token, stays inside its scope, and
//! never takes what Mesos owns. Each test is an attack the agent refused; before tokens and the
//! ownership rule, each succeeded.

use std::net::SocketAddr;
use std::process::{Command, Stdio};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use crate::support::*;

/// A second token's secret: `shop` may register into framework `shop` only, addresses in
/// 10.9.0.0/16 only, no VIPs, at most two registrations.
const SHOP_SECRET: &str = "bcn_shop-token";

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    (sha2::Sha256::digest(text.as_bytes()).iter())
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Node {
    dns: SocketAddr,
    http: SocketAddr,
    _proc: Proc,
}

/// A TOML-configured agent polling `master`, taking the test token and `shop`.
fn start(dir: &TempDir, master: SocketAddr, vip_ranges: &str) -> Node {
    let (dns, http) = (free_port(), free_port());
    let toml = format!(
        "[mesos_dns]\nmasters = [\"{master}\"]\nlistener = \"127.0.0.1\"\nport = {dns}\n\
         http_listener = \"127.0.0.1\"\nhttp_port = {http}\nexternal_on = false\n\
         [vip]\ndata_plane = \"off\"\nip_vip_ranges = [{vip_ranges}]\n\
         [api]\nmax_connections = 8\nheader_timeout_secs = 1\n\
         {}[[api.tokens]]\nname = \"shop\"\nsecret_sha256 = \"{}\"\nframeworks = [\"shop\"]\n\
         backend_cidrs = [\"10.9.0.0/16\"]\nmax_registrations = 2\n",
        test_tokens(),
        sha256_hex(SHOP_SECRET)
    );
    let path = dir.path("trust.toml");
    std::fs::write(&path, toml).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_beacon"))
        .args(["agent", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let node = Node {
        dns: ([127, 0, 0, 1], dns).into(),
        http: ([127, 0, 0, 1], http).into(),
        _proc: Proc(child),
    };
    wait_until("agent ready", || {
        http_get(node.http, "/readyz").is_ok_and(|r| r.status == 200)
    });
    node
}

fn fixture() -> Vec<u8> {
    std::fs::read(conformance("fake-loopback-leader.json")).unwrap()
}

fn put_as(node: &Node, secret: Option<&str>, id: &str, body: &Value) -> HttpReply {
    let auth = secret.map_or(String::new(), |s| format!("Authorization: Bearer {s}\r\n"));
    let path = format!("/v1/registrations/{id}");
    http_request_with(node.http, "PUT", &path, &auth, body.to_string().as_bytes()).unwrap()
}

fn delete_as(node: &Node, secret: Option<&str>, id: &str) -> HttpReply {
    let auth = secret.map_or(String::new(), |s| format!("Authorization: Bearer {s}\r\n"));
    let path = format!("/v1/registrations/{id}");
    http_request_with(node.http, "DELETE", &path, &auth, b"").unwrap()
}

/// The refusal's status, and its JSON body's rule.
fn refused(reply: &HttpReply) -> (u16, String) {
    let body = reply.json();
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    (
        reply.status,
        body["rule"].as_str().unwrap_or_default().to_string(),
    )
}

fn a_records(node: &Node, name: &str) -> Vec<String> {
    let reply = query(node.dns, name, RecordType::A, Ask::UDP);
    reply.answers.iter().map(show).collect()
}

#[test]
fn writes_without_a_valid_token_are_refused_and_change_nothing() {
    let dir = TempDir::new("trust-401");
    let master = FakeMaster::start(&dir, &fixture());
    let node = start(&dir, master.addr, "");
    let body = json!({"name": "web", "framework": "shop", "ips": ["10.9.0.1"]});
    for secret in [None, Some("bcn_guessed"), Some("")] {
        let reply = put_as(&node, secret, "web-1", &body);
        assert_eq!(refused(&reply), (401, "token".into()), "{secret:?}");
    }
    let nx = query(node.dns, "web.shop.mesos.", RecordType::A, Ask::UDP);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    // A registration made with a token cannot be deleted without one.
    assert_eq!(put_as(&node, Some(SHOP_SECRET), "web-1", &body).status, 201);
    assert_eq!(
        refused(&delete_as(&node, None, "web-1")),
        (401, "token".into())
    );
    assert_eq!(a_records(&node, "web.shop.mesos.").len(), 1);
}

#[test]
fn a_token_writes_only_inside_its_scope() {
    let dir = TempDir::new("trust-403");
    let master = FakeMaster::start(&dir, &fixture());
    let node = start(&dir, master.addr, "\"10.50.0.0/16\"");
    let shop = Some(SHOP_SECRET);
    let reg = |framework: &str, ip: &str, labels: Value| {
        json!({"name": "svc", "framework": framework, "ips": [ip],
               "ports": [{"number": 8080, "protocol": "tcp", "labels": labels}]})
    };
    for (body, rule) in [
        (reg("marathon", "10.9.0.1", json!({})), "framework"),
        (reg("shop", "192.0.2.1", json!({})), "backend_cidrs"),
        (
            reg("shop", "10.9.0.1", json!({"VIP_0": "/svc:80"})),
            "named_vips",
        ),
        (
            reg("shop", "10.9.0.1", json!({"VIP_0": "10.50.0.1:80"})),
            "ip_vip_cidrs",
        ),
    ] {
        assert_eq!(
            refused(&put_as(&node, shop, "svc", &body)),
            (403, rule.into()),
            "{body}"
        );
    }
    // The broad test token may use the node's IP VIP ranges, and nothing outside them.
    let outside = reg("shop", "10.9.0.1", json!({"VIP_0": "10.60.0.1:80"}));
    let reply = put_as(&node, Some(TEST_SECRET), "svc", &outside);
    assert_eq!(refused(&reply), (403, "ip_vip_ranges".into()));
    assert!(a_records(&node, "svc.shop.mesos.").is_empty());

    // At most two registrations; another token's cannot be changed or deleted.
    for i in 1..=2 {
        let body = reg("shop", &format!("10.9.0.{i}"), json!({}));
        assert_eq!(put_as(&node, shop, &format!("s{i}"), &body).status, 201);
    }
    let third = reg("shop", "10.9.0.3", json!({}));
    assert_eq!(
        refused(&put_as(&node, shop, "s3", &third)),
        (403, "max_registrations".into())
    );
    let theirs = reg("shop", "10.66.0.1", json!({}));
    let reply = put_as(&node, Some(TEST_SECRET), "s1", &theirs);
    assert_eq!(refused(&reply), (403, "owner".into()));
    assert_eq!(
        refused(&delete_as(&node, Some(TEST_SECRET), "s1")),
        (403, "owner".into())
    );
    assert_eq!(a_records(&node, "svc.shop.mesos.").len(), 2);
}

#[test]
fn a_name_or_vip_mesos_serves_cannot_be_joined() {
    let dir = TempDir::new("trust-409");
    // The fixture's nginx task also declares a named VIP.
    let mut state: Value = serde_json::from_slice(&fixture()).unwrap();
    let marathon = (state["frameworks"].as_array_mut().unwrap().iter_mut())
        .find(|f| f["name"] == "marathon")
        .unwrap();
    let nginx = (marathon["tasks"].as_array_mut().unwrap().iter_mut())
        .find(|t| t["name"] == "nginx")
        .unwrap();
    nginx["statuses"][0]["container_status"] =
        json!({"network_infos": [{"ip_addresses": [{"ip_address": "10.3.0.3"}]}]});
    nginx["discovery"] = json!({"name": "nginx", "visibility": "FRAMEWORK", "ports": {"ports": [
        {"number": 80, "protocol": "tcp", "labels": {"labels": [{"key": "VIP_0", "value": "/nginx:80"}]}}]}});
    let master = FakeMaster::start(&dir, state.to_string().as_bytes());
    let node = start(&dir, master.addr, "");
    let before = a_records(&node, "nginx.marathon.mesos.");
    assert!(!before.is_empty());

    let join_name = json!({"name": "nginx", "framework": "marathon", "ips": ["10.66.0.1"]});
    let reply = put_as(&node, Some(TEST_SECRET), "evil", &join_name);
    assert_eq!(refused(&reply), (409, "owner".into()));
    assert_eq!(reply.json()["owner"], "mesos-master");
    let join_vip = json!({"name": "evil", "framework": "marathon", "ips": ["10.66.0.1"],
        "ports": [{"number": 8080, "protocol": "tcp", "labels": {"VIP_0": "/nginx:80"}}]});
    let reply = put_as(&node, Some(TEST_SECRET), "evil", &join_vip);
    assert_eq!(refused(&reply), (409, "owner".into()));
    assert!(reply.text().contains("/nginx"), "{}", reply.text());
    assert_eq!(a_records(&node, "nginx.marathon.mesos."), before);
    let vips = http_get(node.http, "/v1/vips").unwrap().text();
    assert!(!vips.contains("10.66.0.1"), "{vips}");
}

#[test]
fn an_ip_vip_on_the_masters_address_is_refused() {
    let dir = TempDir::new("trust-fence");
    let master = FakeMaster::start(&dir, &fixture());
    // Even where the node's ranges and the token allow the master's network.
    let node = start(&dir, master.addr, "\"127.0.0.0/8\"");
    let body = json!({"name": "poll", "framework": "shop", "ips": ["10.9.0.1"],
        "ports": [{"number": 8080, "protocol": "tcp",
                   "labels": {"VIP_0": master.addr.to_string()}}]});
    let reply = put_as(&node, Some(TEST_SECRET), "poll", &body);
    assert_eq!(refused(&reply), (403, "vip_fence".into()));
    let vips = http_get(node.http, "/v1/vips").unwrap().text();
    assert!(!vips.contains(&master.addr.to_string()), "{vips}");
}

#[test]
fn one_registration_cannot_fill_the_vip_table() {
    let dir = TempDir::new("trust-flood");
    let master = FakeMaster::start(&dir, &fixture());
    let node = start(&dir, master.addr, "");
    // 520 VIP ports in one body, as the attack did: over the per-registration limits.
    let ports: Vec<Value> = (1..=520)
        .map(|p| json!({"number": 10000 + p, "protocol": "tcp", "labels": {"VIP_0": format!("/flood{p}:80")}}))
        .collect();
    let body = json!({"name": "flood", "framework": "shop", "ips": ["10.9.0.1"], "ports": ports});
    let reply = put_as(&node, Some(TEST_SECRET), "flood", &body);
    assert_eq!(refused(&reply), (400, "limits".into()));
    // Within the per-registration limits, the node's VIP quota (64) still holds.
    for batch in 0..3 {
        let ports: Vec<Value> = (0..30)
            .map(|p| {
                let n = batch * 30 + p;
                json!({"number": 10000 + n, "protocol": "tcp", "labels": {"VIP_0": format!("/flood{n}:80")}})
            })
            .collect();
        let body = json!({"name": format!("flood{batch}"), "framework": "shop", "ips": ["10.9.0.1"], "ports": ports});
        let reply = put_as(&node, Some(TEST_SECRET), &format!("flood{batch}"), &body);
        match batch {
            0 | 1 => assert_eq!(reply.status, 201, "{}", reply.text()),
            _ => assert_eq!(refused(&reply), (403, "vip_quota".into())),
        }
    }
}

/// The attacks on the HTTP listener itself: a client that never finishes its headers, many
/// idle connections, a body too large. Each is cut short, and the API keeps answering.
#[test]
fn slow_idle_and_oversized_requests_are_cut_short() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    let dir = TempDir::new("trust-http");
    let master = FakeMaster::start(&dir, &fixture());
    let node = start(&dir, master.addr, "");
    let closed_within = |stream: &mut TcpStream, limit: Duration| {
        stream.set_read_timeout(Some(limit)).unwrap();
        let mut buf = [0u8; 256];
        // Closed: EOF (or a reset); still open: the read times out.
        !matches!(stream.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut)
    };
    // Headers sent slowly: the connection is closed after header_timeout_secs (1 s here).
    let mut slow = TcpStream::connect(node.http).unwrap();
    slow.write_all(b"PUT /v1/registrations/x HTTP/1.1\r\nHost: a\r\n")
        .unwrap();
    let started = Instant::now();
    assert!(
        closed_within(&mut slow, Duration::from_secs(5)),
        "a slow header kept its connection"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));

    // 40 idle connections: past max_connections (8) they are closed at once.
    let mut idle: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(node.http).unwrap())
        .collect();
    let cut = (idle.iter_mut())
        .map(|s| closed_within(s, Duration::from_millis(300)))
        .filter(|closed| *closed)
        .count();
    assert!(cut >= 32, "only {cut} of 40 idle connections were closed");
    drop(idle);
    wait_until("the API answers again", || {
        http_get(node.http, "/readyz").is_ok_and(|r| r.status == 200)
    });

    // A body over max_body_bytes: 413, with a JSON body naming the rule.
    let big = json!({"name": "big", "framework": "shop", "ips": ["10.9.0.1"], "pad": "x".repeat(100_000)});
    let reply = put_as(&node, Some(TEST_SECRET), "big", &big);
    assert_eq!(refused(&reply), (413, "body".into()));
}

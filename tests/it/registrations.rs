//! The registration API: a service registered over HTTP is answered over DNS at once, a bad body
//! is refused with the reason, and a deleted registration is gone.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::json;

use crate::support::*;

fn start() -> (TempDir, FakeMaster, Agent) {
    let dir = TempDir::new("registrations");
    let master = FakeMaster::start(
        &dir,
        &std::fs::read(conformance("fake-loopback-leader.json")).unwrap(),
    );
    let agent = Agent::start(&dir, json!({"refreshSeconds": 60}), master.addr);
    (dir, master, agent)
}

fn put(agent: &Agent, id: &str, body: &serde_json::Value) -> HttpReply {
    http_write(
        agent.http,
        "PUT",
        &format!("/v1/registrations/{id}"),
        body.to_string().as_bytes(),
    )
    .unwrap()
}

#[test]
fn registered_services_are_answered_and_deleted() {
    let (_dir, _master, agent) = start();
    let body = json!({"name": "web", "framework": "shop", "ips": ["10.9.0.1", "10.9.0.2"],
        "ports": [{"number": 8080, "protocol": "tcp", "name": "http", "labels": {"VIP_0": "/web:80"}}]});
    assert_eq!(put(&agent, "web-1", &body).status, 201);
    assert_eq!(
        put(&agent, "web-1", &body).status,
        200,
        "a second PUT replaces"
    );

    let a = query(agent.dns, "web.shop.mesos.", RecordType::A, Ask::UDP);
    let mut ips: Vec<String> = a.answers.iter().map(show).collect();
    ips.sort();
    assert_eq!(
        ips,
        vec![
            "web.shop.mesos. 60 A 10.9.0.1",
            "web.shop.mesos. 60 A 10.9.0.2"
        ]
    );
    let srv = query(
        agent.dns,
        "_web._tcp.shop.mesos.",
        RecordType::SRV,
        Ask::UDP,
    );
    assert_eq!(srv.answers.len(), 1);
    assert!(
        show(&srv.answers[0]).contains(" 8080 web-"),
        "{}",
        show(&srv.answers[0])
    );
    let named = query(
        agent.dns,
        "_http._web._tcp.shop.mesos.",
        RecordType::SRV,
        Ask::UDP,
    );
    assert_eq!(named.answers.len(), 1);
    // The Mesos names are still there.
    assert_eq!(
        query(agent.dns, "leader.mesos.", RecordType::A, Ask::UDP)
            .answers
            .len(),
        1
    );

    let list = http_get(agent.http, "/v1/registrations").unwrap().json();
    assert_eq!(list["web-1"]["name"], "web");

    let deleted = http_write(agent.http, "DELETE", "/v1/registrations/web-1", b"").unwrap();
    assert_eq!(deleted.status, 204);
    let gone = query(agent.dns, "web.shop.mesos.", RecordType::A, Ask::UDP);
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        http_write(agent.http, "DELETE", "/v1/registrations/web-1", b"")
            .unwrap()
            .status,
        404
    );
}

#[test]
fn bad_registrations_get_400_with_the_reason() {
    let (_dir, _master, agent) = start();
    for (id, body, needle) in [
        ("a", json!({"name": "web"}), "framework: missing"),
        (
            "a",
            json!({"name": "web", "framework": "shop", "ips": []}),
            "ips",
        ),
        (
            "a",
            json!({"name": "web", "framework": "shop", "ips": ["not-an-ip"]}),
            "IP address",
        ),
        (
            "a",
            json!({"name": "web", "framework": "shop", "ips": ["10.0.0.1"], "ports": [{"number": 0}]}),
            "ports[0].number",
        ),
        (
            "bad/id",
            json!({"name": "web", "framework": "shop", "ips": ["10.0.0.1"]}),
            "",
        ),
    ] {
        let reply = put(&agent, id, &body);
        assert!(
            reply.status == 400 || (id.contains('/') && reply.status == 404),
            "{id} {body}: {}",
            reply.status
        );
        assert!(reply.text().contains(needle), "{}", reply.text());
    }
    let garbage = http_write(agent.http, "PUT", "/v1/registrations/x", b"\x00\xff{").unwrap();
    assert_eq!(garbage.status, 400);
    assert_eq!(
        http_get(agent.http, "/v1/registrations").unwrap().json(),
        json!({})
    );
}

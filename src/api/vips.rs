//! `GET /v1/vips`: dcos-net's shape (`{"vip": "<name>.<framework>.l4lb.thisdcos.directory:<port>"
//! or "<ip>:<port>", "protocol", "backend": [{"ip", "port"}]}`), with what Beacon adds: the
//! named VIP's addresses, whether the data plane has programmed it, each backend's weight, node
//! and reachability, and packet counters per VIP and per backend.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use beacon_catalog::vip::VipAddress;
use serde::Serialize;

use super::{ApiState, go_json};
use crate::publish::vips::Counters;

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/v1/vips", get(vips))
}

#[derive(Serialize)]
struct Vip {
    vip: String,
    protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address6: Option<String>,
    programmed: bool,
    #[serde(flatten)]
    counters: Counters,
    backend: Vec<Backend>,
}

#[derive(Serialize)]
struct Backend {
    ip: String,
    port: u16,
    weight: u32,
    node: String,
    reachable: bool,
    #[serde(flatten)]
    counters: Counters,
}

async fn vips(State(state): State<ApiState>) -> Response {
    let vips = state.publisher.vips().clone();
    let read = tokio::task::spawn_blocking(move || (vips.state(), vips.stats())).await;
    let Ok((current, stats)) = read else {
        return super::text(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    };
    let mut out = Vec::new();
    for (key, backends) in &current.table.vips {
        let vip = key.display_name();
        // The addresses DNS gives the name: IPv4 for IPv4 backends, IPv6 for IPv6 ones.
        let (v4, v6) = match &key.address {
            VipAddress::Named(name) => current.addresses.get(name),
            VipAddress::Ip(_) => (None, None),
        };
        let v4 = v4.filter(|_| backends.iter().any(|b| b.ip.is_ipv4()));
        let v6 = v6.filter(|_| backends.iter().any(|b| b.ip.is_ipv6()));
        let (counters, per_backend) = stats.get(key).cloned().unwrap_or_default();
        out.push(Vip {
            vip,
            protocol: key.protocol.as_str(),
            address: v4.map(|a| a.to_string()),
            address6: v6.map(|a| a.to_string()),
            programmed: current.programmed.contains(key),
            counters,
            backend: backends
                .iter()
                .map(|b| Backend {
                    ip: b.ip.to_string(),
                    port: b.port,
                    weight: b.weight,
                    node: b.node.clone(),
                    reachable: !current.unreachable.contains(&b.node),
                    counters: per_backend
                        .get(&std::net::SocketAddr::new(b.ip, b.port))
                        .cloned()
                        .unwrap_or_default(),
                })
                .collect(),
        });
    }
    go_json(&out)
}

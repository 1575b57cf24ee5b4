//! `GET /v1/nodes`: the cluster's members as this node sees them.

use std::time::Instant;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use beacon_gossip::Liveness;
use serde::Serialize;

use super::ApiState;

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/v1/nodes", get(nodes))
}

#[derive(Serialize)]
struct Member {
    name: String,
    address: String,
    state: &'static str,
    incarnation: u16,
    /// Seconds since a datagram from it arrived; absent for this node and for nodes never heard.
    last_seen_secs_ago: Option<f64>,
}

/// This node first, then every other member it knows of.
async fn nodes(State(state): State<ApiState>) -> Response {
    let me = Member {
        name: state.registrations.node().to_string(),
        address: state
            .gossip
            .as_ref()
            .map(|(_, addr)| addr.to_string())
            .unwrap_or_default(),
        state: "up",
        incarnation: 0,
        last_seen_secs_ago: None,
    };
    let Some((gossip, _)) = &state.gossip else {
        return axum::Json(vec![me]).into_response();
    };
    let now = Instant::now();
    let others = crate::cluster::members(gossip).await.into_iter();
    let members: Vec<Member> = std::iter::once(me)
        .chain(others.map(|m| {
            Member {
                name: m.id.name().to_string(),
                address: m.id.addr().to_string(),
                state: match m.state {
                    Liveness::Up => "up",
                    Liveness::Suspect => "suspect",
                    Liveness::Down => "down",
                    Liveness::Left => "left",
                },
                incarnation: m.incarnation,
                last_seen_secs_ago: m
                    .last_seen
                    .map(|t| now.saturating_duration_since(t).as_secs_f64()),
            }
        }))
        .collect();
    axum::Json(members).into_response()
}

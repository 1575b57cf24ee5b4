//! The HTTP API: the Mesos-DNS endpoints (`research/mesos-dns.md` §6), the dcos-net ones
//! (`/v1/nodes`, `/v1/vips`, `/v1/records`), registrations, the operator endpoints (`/metrics`,
//! `/healthz`, `/readyz`) and the read-only web view over them (`/ui`).

mod auth;
mod mesos_dns;
mod nodes;
mod ops;
mod records;
mod registrations;
mod server;
mod ui;
mod vips;

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::publish::{Current, Publisher, Registrations};

/// What the handlers read.
#[derive(Clone)]
pub struct ApiState {
    config: Arc<Config>,
    current: Current,
    registry: Registry,
    publisher: Publisher,
    registrations: Arc<Registrations>,
    /// The gossip handle and this node's gossip address, in a cluster.
    gossip: Option<(beacon_gossip::net::Gossip, std::net::SocketAddr)>,
    cluster_metrics: Option<Arc<crate::metrics::ClusterMetrics>>,
}

impl ApiState {
    /// State over `current`, describing `config`, exporting `registry`; `publisher` answers
    /// the questions that need records generated again.
    pub fn new(
        config: Arc<Config>,
        current: Current,
        registry: Registry,
        publisher: Publisher,
        registrations: Arc<Registrations>,
        gossip: Option<(beacon_gossip::net::Gossip, std::net::SocketAddr)>,
    ) -> Self {
        match crate::metrics::VipCollector::new(publisher.vips().clone()) {
            Ok(collector) => {
                if let Err(error) = registry.register(Box::new(collector)) {
                    tracing::warn!(%error, "VIP metrics not registered");
                }
            }
            Err(error) => tracing::warn!(%error, "VIP metrics not registered"),
        }
        let cluster_metrics = gossip.as_ref().and_then(|_| {
            crate::metrics::ClusterMetrics::new(&registry)
                .ok()
                .map(Arc::new)
        });
        Self {
            config,
            current,
            registry,
            publisher,
            registrations,
            gossip,
            cluster_metrics,
        }
    }
}

/// The API's routes.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(mesos_dns::routes(state.config.mesos_dns.enumeration_on))
        .merge(ops::routes())
        .merge(registrations::routes(state.config.api.max_body_bytes))
        .merge(nodes::routes())
        .merge(vips::routes())
        .merge(records::routes())
        .merge(ui::routes())
        .fallback(not_found)
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown`, within the connection limits of `[api]`.
pub async fn serve(listener: TcpListener, state: ApiState, shutdown: CancellationToken) {
    let api = &state.config.api;
    let limits = server::Limits {
        max_connections: api.max_connections,
        header_timeout: api.header_timeout,
    };
    server::serve(listener, router(state), limits, shutdown).await;
}

/// Mesos-DNS's 404: plain text.
async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404: Page Not Found")
}

fn text(status: StatusCode, body: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// A JSON body formatted as Go's `json.MarshalIndent(v, " ", " ")`, which is what Mesos-DNS
/// clients have always received.
fn go_json<T: serde::Serialize>(value: &T) -> Response {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    if let Err(error) = value.serialize(&mut ser) {
        tracing::error!(%error, "cannot encode a reply");
        return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
    }
    let body = String::from_utf8_lossy(&buf).replace('\n', "\n ");
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

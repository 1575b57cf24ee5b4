//! Operator endpoints: Prometheus metrics, liveness and readiness.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::{Encoder, TextEncoder};

use super::{ApiState, text};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { text(StatusCode::OK, "ok") }))
        .route("/readyz", get(readyz))
}

async fn metrics(State(state): State<ApiState>) -> Response {
    if let (Some((gossip, _)), Some(cluster)) = (&state.gossip, &state.cluster_metrics) {
        cluster.update(gossip).await;
    }
    let mut buf = Vec::new();
    if let Err(error) = TextEncoder::new().encode(&state.registry.gather(), &mut buf) {
        tracing::error!(%error, "cannot encode metrics");
        return text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics");
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], buf).into_response()
}

/// Ready once the first catalog is loaded: before that, DNS answers SERVFAIL for the domain.
async fn readyz(State(state): State<ApiState>) -> Response {
    let last_known = state
        .current
        .last_known
        .load(std::sync::atomic::Ordering::Relaxed);
    match state.current.is_ready() {
        true if last_known != 0 => {
            let age = (crate::common::wall_millis() / 1000).saturating_sub(last_known);
            let body = format!(
                "ready: serving the last-known Mesos master state, {age} s old, until a master answers"
            );
            (StatusCode::OK, body).into_response()
        }
        true => text(StatusCode::OK, "ready"),
        false => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the first catalog load",
        ),
    }
}

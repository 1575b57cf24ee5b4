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
/// Says so when what is served is a kept copy: the cluster's store restored from the state
/// directory (until a peer syncs), or the last-known master state (until a master answers).
async fn readyz(State(state): State<ApiState>) -> Response {
    let restored = match &state.gossip {
        Some((gossip, _)) => gossip.restored().await.ok().flatten(),
        None => None,
    };
    if let Some(saved_at) = restored.filter(|_| state.current.is_ready()) {
        let age = crate::common::wall_millis().saturating_sub(saved_at) / 1000;
        let body = format!(
            "ready: serving the cluster's records restored from the state directory, {age} s old, until a peer answers"
        );
        return (StatusCode::OK, body).into_response();
    }
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

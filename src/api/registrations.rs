//! `PUT`, `DELETE` and `GET /v1/registrations`: services announced to this node.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use beacon_catalog::registration::{Registration, validate_id};
use serde_json::json;

use super::ApiState;
use crate::publish::registrations::Put;

pub(super) fn routes() -> Router<ApiState> {
    Router::new().route("/v1/registrations", get(list)).route(
        "/v1/registrations/{id}",
        get(get_one).put(put).delete(delete),
    )
}

async fn list(State(state): State<ApiState>) -> Response {
    axum::Json(state.registrations.list()).into_response()
}

async fn get_one(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.registrations.list().remove(&id) {
        Some(reg) => axum::Json(reg).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("no registration {id:?} on this node"),
        ),
    }
}

/// Accepts a registration; the reply comes once it is published, so a DNS query sent after it
/// sees the new names.
async fn put(State(state): State<ApiState>, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(e) = validate_id(&id) {
        return error(StatusCode::BAD_REQUEST, e.to_string());
    }
    let reg = match Registration::parse(&body) {
        Ok(reg) => reg,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let registrations = state.registrations.clone();
    let job_id = id.clone();
    let result = tokio::task::spawn_blocking(move || registrations.put(&job_id, reg)).await;
    match result {
        Ok(Ok(put)) => {
            let status = if put == Put::Created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (
                status,
                axum::Json(json!({"id": id, "node": state.registrations.node()})),
            )
                .into_response()
        }
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn delete(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let registrations = state.registrations.clone();
    let job_id = id.clone();
    match tokio::task::spawn_blocking(move || registrations.delete(&job_id)).await {
        Ok(Ok(true)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Ok(false)) => error(
            StatusCode::NOT_FOUND,
            format!("no registration {id:?} on this node"),
        ),
        Ok(Err(e)) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({"error": message}))).into_response()
}

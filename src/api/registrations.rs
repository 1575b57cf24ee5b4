//! `PUT`, `DELETE` and `GET /v1/registrations`: services announced to this node. Reads are open;
//! writes need a token and stay inside its scope (`auth`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use beacon_catalog::registration::{Registration, RegistrationError, validate_id};
use serde_json::json;

use super::ApiState;
use super::auth::{Refusal, authenticate, check_limits, check_scope};
use crate::publish::registrations::{Put, WriteError};
use crate::publish::vips::VipRefusal;

pub(super) fn routes(max_body: usize) -> Router<ApiState> {
    let one = get(get_one)
        .put(put)
        .delete(delete)
        .fallback(method_not_allowed);
    Router::new()
        .route("/v1/registrations", get(list).fallback(method_not_allowed))
        .route("/v1/registrations/{id}", one)
        .layer(DefaultBodyLimit::max(max_body))
}

async fn method_not_allowed() -> Response {
    let message = "use GET, PUT or DELETE on /v1/registrations/{id}, GET on /v1/registrations";
    Refusal::new(StatusCode::METHOD_NOT_ALLOWED, "method", message).into_response()
}

async fn list(State(state): State<ApiState>) -> Response {
    axum::Json(state.registrations.list()).into_response()
}

async fn get_one(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match state.registrations.list().remove(&id) {
        Some(reg) => axum::Json(reg).into_response(),
        None => not_found(&id),
    }
}

/// Accepts a registration; the reply comes once it is published, so a DNS query sent after it
/// sees the new names.
async fn put(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let api = &state.config.api;
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let message = match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => format!(
                    "the body is over [api] max_body_bytes ({} bytes)",
                    api.max_body_bytes
                ),
                _ => rejection.body_text(),
            };
            return Refusal::new(rejection.status(), "body", message).into_response();
        }
    };
    let token = match authenticate(api, &headers) {
        Ok(token) => token,
        Err(refusal) => return refusal.into_response(),
    };
    let reg = match parse(&id, &body) {
        Ok(reg) => reg,
        Err(refusal) => return refusal.into_response(),
    };
    let checked = check_limits(api, &reg)
        .and_then(|()| check_scope(token, &state.config.vip.ip_vip_ranges, &reg))
        .and_then(|()| state.publisher.check_owners(&reg).map_err(Refusal::from))
        .and_then(|()| check_vips(&state, &reg));
    if let Err(refusal) = checked {
        return refusal.into_response();
    }
    let (registrations, job_id) = (state.registrations.clone(), id.clone());
    let (name, max) = (token.name.clone(), token.max_registrations);
    let result = tokio::task::spawn_blocking(move || registrations.put(&job_id, reg, &name, max));
    match result.await {
        Ok(Ok(put)) => {
            let status = match put {
                Put::Created => StatusCode::CREATED,
                Put::Replaced => StatusCode::OK,
            };
            let body = json!({"id": id, "node": state.registrations.node()});
            (status, axum::Json(body)).into_response()
        }
        Ok(Err(e)) => write_error(e).into_response(),
        Err(e) => internal(e.to_string()),
    }
}

async fn delete(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let token = match authenticate(&state.config.api, &headers) {
        Ok(token) => token.name.clone(),
        Err(refusal) => return refusal.into_response(),
    };
    let (registrations, job_id) = (state.registrations.clone(), id.clone());
    match tokio::task::spawn_blocking(move || registrations.delete(&job_id, &token)).await {
        Ok(Ok(true)) => StatusCode::NO_CONTENT.into_response(),
        Ok(Ok(false)) => not_found(&id),
        Ok(Err(e)) => write_error(e).into_response(),
        Err(e) => internal(e.to_string()),
    }
}

fn parse(id: &str, body: &[u8]) -> Result<Registration, Refusal> {
    let bad = |e: RegistrationError| {
        let mut refusal = Refusal::new(StatusCode::BAD_REQUEST, "body", e.to_string());
        refusal.field = e.field_name().map(str::to_string);
        refusal
    };
    validate_id(id).map_err(bad)?;
    Registration::parse(body).map_err(bad)
}

/// The node-level VIP rules: fenced addresses, the node's quota of registered VIPs.
fn check_vips(state: &ApiState, reg: &Registration) -> Result<(), Refusal> {
    let node = state.registrations.node();
    let refusal = match state.publisher.vips().check_registration(node, reg) {
        Ok(()) => return Ok(()),
        Err(refusal) => refusal,
    };
    Err(match refusal {
        VipRefusal::Label(m) => Refusal::new(StatusCode::BAD_REQUEST, "vip_label", m),
        VipRefusal::Fenced(m) => Refusal::new(StatusCode::FORBIDDEN, "vip_fence", m),
        VipRefusal::Quota(m) => Refusal::new(StatusCode::FORBIDDEN, "vip_quota", m),
    })
}

fn write_error(error: WriteError) -> Refusal {
    let message = error.to_string();
    match error {
        WriteError::NotOwner { .. } => Refusal::new(StatusCode::FORBIDDEN, "owner", message),
        WriteError::Quota { .. } => {
            Refusal::new(StatusCode::FORBIDDEN, "max_registrations", message)
        }
        WriteError::Publish(_) => Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "publish", message),
        WriteError::Recovering => {
            Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "recovering", message)
        }
    }
}

fn not_found(id: &str) -> Response {
    let message = format!("no registration {id:?} on this node");
    (StatusCode::NOT_FOUND, axum::Json(json!({"error": message}))).into_response()
}

fn internal(message: String) -> Response {
    let body = json!({"error": message, "rule": "internal"});
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response()
}

//! A stand-in Mesos master on loopback: serves a state document at `/master/state` (and the
//! pre-1.1 `/master/state.json`), and at `/state` so that it can stand in for an agent too.
//! Used by `beacon demo`, the integration tests and the benchmarks, so that every one of them
//! exercises the real pollers over real HTTP.
//!
//! It also speaks the part of the v1 operator API that Beacon uses (`POST /api/v1`):
//! `SUBSCRIBE` streams the state as a SUBSCRIBED snapshot, then, each time the document is
//! replaced, the difference as events (RecordIO framed), with heartbeats in between;
//! `GET_MASTER` names the leader; `/master/state-summary` gives the schedulers' pids.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use beacon_catalog::mesos_v1;
use bytes::Bytes;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::cli::FakeMasterArgs;
use crate::common::{BoxError, shutdown_signal};

/// A running fake master.
pub struct FakeMaster {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

struct Shared {
    /// Where it listens: a state naming another leader makes this master a standby.
    addr: SocketAddr,
    body: ArcSwap<Vec<u8>>,
    /// The document parsed, for the event streams; each replacement is sent to every stream.
    state: watch::Sender<Arc<serde_json::Value>>,
    /// Whether `/api/v1` exists (Mesos 1.1 and later).
    v1: AtomicBool,
    /// Seconds between heartbeats on a stream.
    heartbeat_secs: AtomicU64,
    /// When set, the `Authorization` header every request must carry.
    authorization: ArcSwap<Option<String>>,
    status: AtomicU64,
}

impl FakeMaster {
    /// Serves `body` on `addr` (port 0 picks one) until dropped or stopped.
    pub async fn start(addr: SocketAddr, body: Vec<u8>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        Self::serve(listener, body, None)
    }

    /// Serves `body` over HTTPS with `tls` (which may require client certificates).
    pub async fn start_tls(
        addr: SocketAddr,
        body: Vec<u8>,
        tls: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        Self::serve(listener, body, Some(tokio_rustls::TlsAcceptor::from(tls)))
    }

    fn serve(
        listener: tokio::net::TcpListener,
        body: Vec<u8>,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            addr,
            state: watch::channel(Arc::new(parse(&body).unwrap_or_default())).0,
            v1: AtomicBool::new(true),
            heartbeat_secs: AtomicU64::new(15),
            body: ArcSwap::from_pointee(body),
            authorization: ArcSwap::from_pointee(None),
            status: AtomicU64::new(200),
        });
        let app = Router::new()
            .route("/master/state", get(state))
            .route("/master/state.json", get(state))
            // The same document for an agent poller: a Mesos agent serves its own at `/state`.
            .route("/state", get(state))
            .route("/master/state-summary", get(summary))
            .route("/api/v1", post(v1))
            .with_state(shared.clone());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = match tls {
                None => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stop.cancelled_owned())
                        .await
                }
                Some(acceptor) => {
                    let listener = TlsListener { listener, acceptor };
                    axum::serve(listener, app)
                        .with_graceful_shutdown(stop.cancelled_owned())
                        .await
                }
            };
        });
        Ok(Self {
            addr,
            shared,
            shutdown,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `body` from now on, and streams what changed to every subscriber (when it is a
    /// state document: garbage, served as is at `/master/state`, leaves the streams alone).
    pub fn set_body(&self, body: Vec<u8>) {
        if let Some(state) = parse(&body) {
            self.shared.state.send_replace(Arc::new(state));
        }
        self.shared.body.store(Arc::new(body));
    }

    /// Whether `/api/v1` answers (false: a master older than Mesos 1.1, which is polled).
    pub fn set_v1(&self, on: bool) {
        self.shared.v1.store(on, Ordering::Relaxed);
    }

    /// Seconds between heartbeats on the event streams opened from now on.
    pub fn set_heartbeat(&self, secs: u64) {
        self.shared
            .heartbeat_secs
            .store(secs.max(1), Ordering::Relaxed);
    }

    /// Requires HTTP basic authentication with these credentials from now on.
    pub fn require_basic_auth(&self, user: &str, password: &str) {
        let token = base64_encode(format!("{user}:{password}").as_bytes());
        self.shared
            .authorization
            .store(Arc::new(Some(format!("Basic {token}"))));
    }

    /// Answers with `status` (and the body) from now on: 500 simulates a failing master.
    pub fn set_status(&self, status: u16) {
        self.shared
            .status
            .store(u64::from(status), Ordering::Relaxed);
    }

    /// Stops serving.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// TLS over a TCP listener, for axum: handshakes that fail are dropped (that is what a client
/// without an accepted certificate sees).
struct TlsListener {
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.listener.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

async fn state(State(shared): State<Arc<Shared>>, headers: axum::http::HeaderMap) -> Response {
    if let Some(refused) = refused(&shared, &headers) {
        return refused;
    }
    let status = u16::try_from(shared.status.load(Ordering::Relaxed))
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok());
    let body = shared.body.load_full();
    (
        status.unwrap_or(StatusCode::OK),
        [(header::CONTENT_TYPE, "application/json")],
        body.as_ref().clone(),
    )
        .into_response()
}

/// The answer when a request lacks the required credentials or the master is set to fail.
fn refused(shared: &Shared, headers: &axum::http::HeaderMap) -> Option<Response> {
    if let Some(expected) = shared.authorization.load().as_ref() {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return Some(StatusCode::UNAUTHORIZED.into_response());
        }
    }
    let status = shared.status.load(Ordering::Relaxed);
    (status != 200).then(|| {
        let code = u16::try_from(status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok());
        code.unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response()
    })
}

/// `/master/state-summary`: the frameworks (with their pids) and agents, without tasks.
async fn summary(State(shared): State<Arc<Shared>>, headers: axum::http::HeaderMap) -> Response {
    if let Some(refused) = refused(&shared, &headers) {
        return refused;
    }
    let state = shared.state.borrow().clone();
    let strip = |list: &serde_json::Value| -> Vec<serde_json::Value> {
        let items = list.as_array().map(Vec::as_slice).unwrap_or_default();
        items
            .iter()
            .map(|item| {
                let mut item = item.clone();
                if let Some(fields) = item.as_object_mut() {
                    fields.retain(|k, _| !k.contains("tasks") && k != "executors");
                }
                item
            })
            .collect()
    };
    let body = serde_json::json!({
        "hostname": state["hostname"],
        "frameworks": strip(&state["frameworks"]),
        "slaves": strip(&state["slaves"]),
    });
    axum::Json(body).into_response()
}

/// `POST /api/v1`: `SUBSCRIBE` and `GET_MASTER`; 404 while v1 is off.
async fn v1(
    State(shared): State<Arc<Shared>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    if !shared.v1.load(Ordering::Relaxed) {
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Some(refused) = refused(&shared, &headers) {
        return refused;
    }
    if let Some(leader) = elsewhere(&shared) {
        // A standby master sends v1 calls to the leader, as Mesos does.
        let location = format!("//{leader}/api/v1");
        return (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, location)],
        )
            .into_response();
    }
    let call: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    match call["type"].as_str() {
        Some("SUBSCRIBE") => subscribe(&shared),
        Some("GET_MASTER") => {
            let leader = shared.state.borrow()["leader"].clone();
            let info = serde_json::json!({"type": "GET_MASTER", "get_master": {"master_info": {"pid": leader}}});
            axum::Json(info).into_response()
        }
        _ => (StatusCode::BAD_REQUEST, "unsupported call").into_response(),
    }
}

/// The leader's address when the state names another host than this one's, on this one's
/// port (as the poller asks it: fixtures name the leader's host, not the test's port).
fn elsewhere(shared: &Shared) -> Option<String> {
    let state = shared.state.borrow();
    let leader: SocketAddr = state["leader"].as_str()?.split_once('@')?.1.parse().ok()?;
    // Only to loopback: a fixture naming a real address must never send an agent there.
    let moved = leader.ip() != shared.addr.ip() && leader.ip().is_loopback();
    moved.then(|| SocketAddr::new(leader.ip(), shared.addr.port()).to_string())
}

/// Opens an event stream: the snapshot now, then the differences, and heartbeats.
fn subscribe(shared: &Shared) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut states = shared.state.subscribe();
    let heartbeat = Duration::from_secs(shared.heartbeat_secs.load(Ordering::Relaxed));
    let mut previous = states.borrow_and_update().clone();
    let mut snapshot = mesos_v1::snapshot_from_v0(&previous);
    snapshot["subscribed"]["heartbeat_interval_seconds"] = heartbeat.as_secs().into();
    tokio::spawn(async move {
        let frame = |event: &serde_json::Value| {
            Bytes::from(mesos_v1::encode_record(event.to_string().as_bytes()))
        };
        if tx.send(frame(&snapshot)).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                changed = states.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let next = states.borrow_and_update().clone();
                    for event in mesos_v1::events_between_v0(&previous, &next) {
                        if tx.send(frame(&event)).await.is_err() {
                            return;
                        }
                    }
                    previous = next;
                }
                _ = tokio::time::sleep(heartbeat) => {
                    if tx.send(frame(&serde_json::json!({"type": "HEARTBEAT"}))).await.is_err() {
                        return;
                    }
                }
                _ = tx.closed() => return,
            }
        }
    });
    let body = axum::body::Body::from_stream(Records(rx));
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The records of one stream, as an HTTP body.
struct Records(mpsc::Receiver<Bytes>);

impl futures_core::Stream for Records {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|record| record.map(Ok))
    }
}

/// The document as JSON, when it is a state document (an object with a leader).
fn parse(body: &[u8]) -> Option<serde_json::Value> {
    let state: serde_json::Value = serde_json::from_slice(body).ok()?;
    state["leader"].is_string().then_some(state)
}

/// Standard base64, for the basic-auth check (no dependency for twelve lines).
fn base64_encode(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `beacon fake-master`: serves a state file, re-reading it when it changes so that tests and
/// benchmarks can change what the "master" reports (rewrite the file, rename it into place).
pub async fn run(args: &FakeMasterArgs) -> Result<(), BoxError> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = modified(&args.state);
    let master = FakeMaster::start(args.listen, read(&args.state)?).await?;
    master.set_v1(!args.no_v1);
    master.set_heartbeat(args.heartbeat_secs);
    println!(
        "fake master serving {} on http://{}/master/state",
        args.state.display(),
        master.addr()
    );
    let watch = async {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = modified(&args.state);
            if now != seen {
                seen = now;
                match read(&args.state) {
                    Ok(body) => master.set_body(body),
                    Err(error) => tracing::warn!(%error, "keeping the previous state"),
                }
            }
        }
    };
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = watch => {}
    }
    Ok(())
}

fn read(path: &Path) -> Result<Vec<u8>, BoxError> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()).into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(super::base64_encode(input.as_bytes()), want);
        }
    }
}

//! A stand-in Mesos master on loopback: serves a state document at `/master/state` (and the
//! pre-1.1 `/master/state.json`). Used by `beacon demo`, the integration tests and the
//! benchmarks, so that every one of them exercises the real poller over real HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

/// A running fake master.
pub struct FakeMaster {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

struct Shared {
    body: ArcSwap<Vec<u8>>,
    status: AtomicU64,
    requests: AtomicU64,
}

impl FakeMaster {
    /// Serves `body` on `addr` (port 0 picks one) until dropped or stopped.
    pub async fn start(addr: SocketAddr, body: Vec<u8>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            body: ArcSwap::from_pointee(body),
            status: AtomicU64::new(200),
            requests: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/master/state", get(state))
            .route("/master/state.json", get(state))
            .with_state(shared.clone());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
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

    /// Serves `body` from now on.
    pub fn set_body(&self, body: Vec<u8>) {
        self.shared.body.store(Arc::new(body));
    }

    /// Answers with `status` (and the body) from now on: 500 simulates a failing master.
    pub fn set_status(&self, status: u16) {
        self.shared
            .status
            .store(u64::from(status), Ordering::Relaxed);
    }

    /// State requests served so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
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

async fn state(State(shared): State<Arc<Shared>>) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
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

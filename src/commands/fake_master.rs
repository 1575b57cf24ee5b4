//! A stand-in Mesos master on loopback: serves a state document at `/master/state` (and the
//! pre-1.1 `/master/state.json`), and at `/state` so that it can stand in for an agent too.
//! Used by `beacon demo`, the integration tests and the benchmarks, so that every one of them
//! exercises the real pollers over real HTTP.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
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
    body: ArcSwap<Vec<u8>>,
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
            body: ArcSwap::from_pointee(body),
            authorization: ArcSwap::from_pointee(None),
            status: AtomicU64::new(200),
        });
        let app = Router::new()
            .route("/master/state", get(state))
            .route("/master/state.json", get(state))
            // The same document for an agent poller: a Mesos agent serves its own at `/state`.
            .route("/state", get(state))
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

    /// Serves `body` from now on.
    pub fn set_body(&self, body: Vec<u8>) {
        self.shared.body.store(Arc::new(body));
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
    if let Some(expected) = shared.authorization.load().as_ref() {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
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
    println!(
        "fake master serving {} on http://{}/master/state",
        args.state.display(),
        master.addr()
    );
    let watch = async {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
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

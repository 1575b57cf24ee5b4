//! The gossip transport: one QUIC endpoint per node, mutual TLS against the cluster CA.
//!
//! SWIM packets travel as QUIC datagrams (unreliable, like the UDP SWIM was designed for);
//! anti-entropy syncs are request/response exchanges on bidirectional streams, so they can carry
//! catalogs far larger than a datagram. Every connection, in and out, presents a certificate
//! signed by the cluster CA and verifies the peer's: a peer without one cannot connect, so it
//! can neither read nor inject anything. The client side also checks that the server's
//! certificate names the node it meant to reach. Both sides refuse a certificate naming a node
//! on the deny list ([`Transport::reload`], `net::deny`), which also closes such a peer's live
//! connections and puts a rotated certificate and key in use for new connections.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn_proto::HashedConnectionIdGenerator;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::{mpsc, oneshot, watch};

use crate::net::deny::{self, DenyList};

/// ALPN of Beacon's gossip protocol, version 1.
const ALPN: &[u8] = b"beacon-gossip/1";
/// Largest sync request or response read from a stream.
const MAX_SYNC_BYTES: usize = 64 << 20;

/// The node's credentials: its certificate chain and key, and the cluster CA.
pub struct Credentials {
    /// This node's certificate chain (leaf first).
    pub chain: Vec<CertificateDer<'static>>,
    /// Its private key.
    pub key: PrivateKeyDer<'static>,
    /// The cluster CA certificates peers must chain to.
    pub roots: Vec<CertificateDer<'static>>,
}

/// Why the transport failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Occurs when the TLS configuration is rejected (bad certificate or key).
    #[error("TLS setup: {0}")]
    Tls(String),
    /// Occurs when the endpoint cannot bind.
    #[error("cannot bind the gossip endpoint on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Occurs when a peer cannot be reached or refuses us (wrong CA, wrong name).
    #[error("cannot connect to {peer} ({name}): {reason}")]
    Connect {
        /// The peer's address.
        peer: SocketAddr,
        /// The node name expected in its certificate.
        name: String,
        /// What went wrong.
        reason: String,
    },
    /// Occurs when a sync exchange fails midway.
    #[error("sync with {peer}: {reason}")]
    Sync {
        /// The peer's address.
        peer: SocketAddr,
        /// What went wrong.
        reason: String,
    },
}

/// What peers send us.
#[derive(Debug)]
pub enum Incoming {
    /// A SWIM packet.
    Datagram {
        /// The sender's address.
        from: SocketAddr,
        /// The packet.
        bytes: Bytes,
    },
    /// A sync request; answer through `reply` (dropping it closes the stream).
    Sync {
        /// The sender's address.
        from: SocketAddr,
        /// The request.
        request: Bytes,
        /// Where the response goes.
        reply: oneshot::Sender<Bytes>,
    },
}

/// A node's QUIC endpoint, with one cached connection per peer.
pub struct Transport {
    endpoint: quinn::Endpoint,
    /// Keyed by address and expected name: a connection verified for one name never serves another.
    connections: Mutex<HashMap<(SocketAddr, String), quinn::Connection>>,
    incoming: mpsc::Sender<Incoming>,
    /// The client side of new connections (replaced when the node's certificate rotates).
    client: Mutex<quinn::ClientConfig>,
    /// The revoked node names, read by the TLS verifiers and the live connections.
    deny: watch::Sender<Arc<BTreeSet<String>>>,
}

impl Transport {
    /// Binds `addr` and starts accepting peers; what they send arrives on the receiver.
    pub fn bind(
        addr: SocketAddr,
        creds: &Credentials,
    ) -> Result<(Arc<Self>, mpsc::Receiver<Incoming>), TransportError> {
        let (deny, deny_rx) = watch::channel(Arc::new(BTreeSet::new()));
        let (server, client) = tls_configs(creds, &DenyList(deny_rx))?;
        let bind = |source| TransportError::Bind { addr, source };
        let socket = std::net::UdpSocket::bind(addr).map_err(bind)?;
        let config = endpoint_config(creds);
        let runtime = Arc::new(quinn::TokioRuntime);
        let endpoint = quinn::Endpoint::new(config, Some(server), socket, runtime).map_err(bind)?;
        let (tx, rx) = mpsc::channel(4096);
        let transport = Arc::new(Self {
            endpoint,
            connections: Mutex::new(HashMap::new()),
            incoming: tx,
            client: Mutex::new(client),
            deny,
        });
        tokio::spawn(accept_loop(transport.clone()));
        Ok((transport, rx))
    }

    /// Applies a new deny list and this node's current credentials: handshakes from now on
    /// refuse certificates naming a node in `revoked`, live connections with such peers are
    /// closed, and new connections present `creds` (a rotated certificate and key). Live
    /// connections of other peers keep the certificate they were made with.
    pub fn reload(
        &self,
        creds: &Credentials,
        revoked: BTreeSet<String>,
    ) -> Result<(), TransportError> {
        let (server, client) = tls_configs(creds, &DenyList(self.deny.subscribe()))?;
        self.endpoint.set_server_config(Some(server));
        *self.client.lock().unwrap_or_else(|e| e.into_inner()) = client;
        self.lock().retain(|(_, name), conn| {
            let keep = !revoked.contains(name);
            if !keep {
                conn.close(0u32.into(), b"revoked");
            }
            keep
        });
        // Incoming connections watch this and close themselves (`serve_connection`).
        self.deny.send_replace(Arc::new(revoked));
        Ok(())
    }

    /// Closes every connection, once what was queued on them has had `grace` to leave (QUIC
    /// sends queued datagrams before the close), and stops accepting peers.
    pub async fn close(&self, grace: Duration) {
        tokio::time::sleep(grace / 10).await;
        self.endpoint.close(0u32.into(), b"leaving");
        let _ = tokio::time::timeout(grace, self.endpoint.wait_idle()).await;
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// Sends a SWIM packet to `peer`, whose certificate must name `name`. Datagrams may be
    /// lost, as UDP would; a connection failure is returned so the caller can log it.
    pub async fn send_datagram(
        &self,
        peer: SocketAddr,
        name: &str,
        bytes: Bytes,
    ) -> Result<(), TransportError> {
        let conn = self.connection(peer, name).await?;
        conn.send_datagram(bytes).map_err(|e| {
            self.forget(peer, name);
            TransportError::Connect {
                peer,
                name: name.to_string(),
                reason: e.to_string(),
            }
        })
    }

    /// Sends a SWIM packet to `peer` over a new connection, which replaces the one held: for
    /// a packet that must not be lost to a connection the peer forgot by restarting.
    pub async fn send_datagram_fresh(
        &self,
        peer: SocketAddr,
        name: &str,
        bytes: Bytes,
    ) -> Result<(), TransportError> {
        self.forget(peer, name);
        self.send_datagram(peer, name, bytes).await
    }

    /// Sends a sync request to `peer` and reads its response.
    pub async fn sync(
        &self,
        peer: SocketAddr,
        name: &str,
        request: Bytes,
    ) -> Result<Bytes, TransportError> {
        let conn = self.connection(peer, name).await?;
        let err = |reason: String| TransportError::Sync { peer, reason };
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| err(e.to_string()))?;
        send.write_all(&request)
            .await
            .map_err(|e| err(e.to_string()))?;
        send.finish().map_err(|e| err(e.to_string()))?;
        let response = recv
            .read_to_end(MAX_SYNC_BYTES)
            .await
            .map_err(|e| err(e.to_string()))?;
        Ok(Bytes::from(response))
    }

    async fn connection(
        &self,
        peer: SocketAddr,
        name: &str,
    ) -> Result<quinn::Connection, TransportError> {
        let key = (peer, name.to_string());
        if let Some(conn) = self.lock().get(&key).filter(|c| c.close_reason().is_none()) {
            return Ok(conn.clone());
        }
        let err = |reason: String| TransportError::Connect {
            peer,
            name: name.to_string(),
            reason,
        };
        if self.deny.borrow().contains(name) {
            return Err(err("the node is on the deny list (revoked)".into()));
        }
        let client = self
            .client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let connecting = self
            .endpoint
            .connect_with(client, peer, name)
            .map_err(|e| err(e.to_string()))?;
        let conn = tokio::time::timeout(Duration::from_secs(5), connecting)
            .await
            .map_err(|_| err("timed out".into()))?
            .map_err(|e| err(e.to_string()))?;
        self.lock().insert(key, conn.clone());
        Ok(conn)
    }

    fn forget(&self, peer: SocketAddr, name: &str) {
        self.lock().remove(&(peer, name.to_string()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(SocketAddr, String), quinn::Connection>> {
        self.connections.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn accept_loop(transport: Arc<Transport>) {
    while let Some(incoming) = transport.endpoint.accept().await {
        let tx = transport.incoming.clone();
        let deny = transport.deny.subscribe();
        tokio::spawn(async move {
            match incoming.await {
                Ok(conn) => serve_connection(conn, tx, deny).await,
                // A peer without a certificate from our CA ends here.
                Err(error) => tracing::debug!(%error, "refused a gossip connection"),
            }
        });
    }
}

/// Forwards a peer's datagrams and sync requests until the connection closes, or until the
/// peer's name is put on the deny list.
async fn serve_connection(
    conn: quinn::Connection,
    tx: mpsc::Sender<Incoming>,
    mut deny: watch::Receiver<Arc<BTreeSet<String>>>,
) {
    let from = conn.remote_address();
    let names = peer_names(&conn);
    loop {
        tokio::select! {
            changed = deny.changed() => {
                let revoked = changed.is_err() || names.iter().any(|n| deny.borrow().contains(n));
                if revoked {
                    conn.close(0u32.into(), b"revoked");
                    return;
                }
            },
            datagram = conn.read_datagram() => match datagram {
                // A full queue drops the packet: SWIM tolerates loss, not an unbounded backlog.
                Ok(bytes) => { let _ = tx.try_send(Incoming::Datagram { from, bytes }); }
                Err(_) => return,
            },
            stream = conn.accept_bi() => match stream {
                Ok((send, recv)) => { tokio::spawn(serve_sync(from, send, recv, tx.clone())); }
                Err(_) => return,
            },
        }
    }
}

/// The node names in the peer's certificate.
fn peer_names(conn: &quinn::Connection) -> Vec<String> {
    conn.peer_identity()
        .and_then(|identity| identity.downcast::<Vec<CertificateDer<'static>>>().ok())
        .and_then(|chain| chain.first().map(deny::names))
        .unwrap_or_default()
}

async fn serve_sync(
    from: SocketAddr,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    tx: mpsc::Sender<Incoming>,
) {
    let Ok(request) = recv.read_to_end(MAX_SYNC_BYTES).await else {
        return;
    };
    let (reply, response) = oneshot::channel();
    if tx
        .send(Incoming::Sync {
            from,
            request: Bytes::from(request),
            reply,
        })
        .await
        .is_err()
    {
        return;
    }
    if let Ok(bytes) = response.await {
        let _ = send.write_all(&bytes).await;
        let _ = send.finish();
        let _ = send.stopped().await;
    }
}

/// The endpoint's stateless-reset key and connection-ID key, the same across restarts of a node
/// (both are derived from the node's private key). A node restarted on its old address then
/// recognises the connection IDs of its previous life and answers packets sent on them with a
/// valid stateless reset, so peers that still hold such a connection drop it and reconnect at
/// once. With random keys they would send into the void until the idle timeout (30 s), and the
/// restarted node, hearing from no one, would be declared down again.
fn endpoint_config(creds: &Credentials) -> quinn::EndpointConfig {
    let derive = |label: &[u8]| {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(label);
        ctx.update(creds.key.secret_der());
        ctx.finish()
    };
    let reset = derive(b"beacon-gossip stateless reset key\0");
    let reset = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, reset.as_ref());
    let cid = derive(b"beacon-gossip connection id key\0");
    let cid_key = u64::from_le_bytes(cid.as_ref()[..8].try_into().unwrap_or([0; 8]));
    let mut config = quinn::EndpointConfig::new(Arc::new(reset));
    config.cid_generator(move || Box::new(HashedConnectionIdGenerator::from_key(cid_key)));
    config
}

fn tls_configs(
    creds: &Credentials,
    deny: &DenyList,
) -> Result<(quinn::ServerConfig, quinn::ClientConfig), TransportError> {
    let tls = |e: &dyn std::fmt::Display| TransportError::Tls(e.to_string());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for root in &creds.roots {
        roots.add(root.clone()).map_err(|e| tls(&e))?;
    }
    let roots = Arc::new(roots);
    let client_verifier = Arc::new(deny::Clients {
        inner: rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()
        .map_err(|e| tls(&e))?,
        deny: deny.clone(),
    });
    let server_verifier = Arc::new(deny::Servers {
        inner: rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| tls(&e))?,
        deny: deny.clone(),
    });
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls(&e))?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(creds.chain.clone(), creds.key.clone_key())
        .map_err(|e| tls(&e))?;
    server.alpn_protocols = vec![ALPN.to_vec()];
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls(&e))?
        .dangerous()
        .with_custom_certificate_verifier(server_verifier)
        .with_client_auth_cert(creds.chain.clone(), creds.key.clone_key())
        .map_err(|e| tls(&e))?;
    client.alpn_protocols = vec![ALPN.to_vec()];
    let server = QuicServerConfig::try_from(server).map_err(|e| tls(&e))?;
    let client = QuicClientConfig::try_from(client).map_err(|e| tls(&e))?;
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(5)));
    transport.max_idle_timeout(Some(
        Duration::from_secs(30).try_into().map_err(|e| tls(&e))?,
    ));
    let transport = Arc::new(transport);
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(server));
    server.transport_config(transport.clone());
    let mut client = quinn::ClientConfig::new(Arc::new(client));
    client.transport_config(transport);
    Ok((server, client))
}

//! The driver: one task owns the [`Node`] (STYLE rule 2) and feeds it datagrams, sync streams
//! and timer ticks from the transport; the agent talks to it through a [`Gossip`] handle and
//! receives its [`Event`]s.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use crate::core::node::SyncOpen;
use crate::core::trust::{Keys, Rejections};
use crate::net::transport::{Credentials, Incoming, Transport, TransportError};
use crate::{Event, MemberState, Node, NodeId, Origin, Record, Snapshot, Version};

/// A handle on a running gossip node; cheap to clone. The node leaves the cluster and stops on
/// [`Gossip::leave`], or when every handle is gone.
#[derive(Clone)]
pub struct Gossip {
    commands: mpsc::Sender<Command>,
    traffic: Arc<Traffic>,
}

/// What the node sent and received, counted since it started (for metrics).
#[derive(Debug, Default)]
pub struct Traffic {
    /// SWIM datagrams received.
    pub datagrams_in: AtomicU64,
    /// SWIM datagrams sent.
    pub datagrams_out: AtomicU64,
    /// Bytes of datagrams and sync streams received.
    pub bytes_in: AtomicU64,
    /// Bytes of datagrams and sync streams sent.
    pub bytes_out: AtomicU64,
    /// Sync exchanges this node started.
    pub syncs: AtomicU64,
    /// Sync exchanges that failed.
    pub sync_failures: AtomicU64,
}

fn count(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

enum Command {
    Publish(Origin, Bytes, oneshot::Sender<Version>),
    Delete(Origin, oneshot::Sender<Version>),
    Members(oneshot::Sender<Vec<MemberState>>),
    Records(oneshot::Sender<Vec<(Origin, Record)>>),
    Rejections(oneshot::Sender<Rejections>),
    PublishAt(Origin, Bytes, u64, oneshot::Sender<Version>),
    Join(NodeId),
    Leave(oneshot::Sender<()>),
    Reload(Box<Reload>, oneshot::Sender<Result<(), TransportError>>),
    Snapshot(u64, oneshot::Sender<Option<(u64, Snapshot)>>),
    Restored(oneshot::Sender<Option<u64>>),
}

/// What [`Gossip::reload`] puts in force: this node's credentials and the deny list.
pub struct Reload {
    /// The node's certificate and key (rotated or not) and the cluster CA.
    pub credentials: Credentials,
    /// The signing keys made from the same files.
    pub keys: Arc<dyn Keys>,
    /// The revoked node names.
    pub revoked: BTreeSet<String>,
}

/// Why [`Gossip::reload`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The node has stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
    /// The new credentials were refused; the old ones stay in use.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// Why a request to the node failed: it has stopped.
#[derive(Debug, thiserror::Error)]
#[error("the gossip node has stopped")]
pub struct Stopped;

impl Gossip {
    /// Publishes `payload` as the records of `origin`.
    pub async fn publish(&self, origin: Origin, payload: Bytes) -> Result<Version, Stopped> {
        self.ask(|reply| Command::Publish(origin, payload, reply))
            .await
    }

    /// Deletes the records of `origin` (a newer, empty version).
    pub async fn delete(&self, origin: Origin) -> Result<Version, Stopped> {
        self.ask(|reply| Command::Delete(origin, reply)).await
    }

    /// The members and their state, for `/v1/nodes`.
    pub async fn members(&self) -> Result<Vec<MemberState>, Stopped> {
        self.ask(Command::Members).await
    }

    /// Every visible origin's records.
    pub async fn records(&self) -> Result<Vec<(Origin, Record)>, Stopped> {
        self.ask(Command::Records).await
    }

    /// The versions peers sent that this node refused, by reason, since it started.
    pub async fn rejections(&self) -> Result<Rejections, Stopped> {
        self.ask(Command::Rejections).await
    }

    /// Publishes as if the wall clock read `wall_millis`: how a node with a wrong or lying
    /// clock writes. For tests that play such a node; agents use [`Gossip::publish`].
    pub async fn publish_at(
        &self,
        origin: Origin,
        payload: Bytes,
        wall_millis: u64,
    ) -> Result<Version, Stopped> {
        self.ask(|reply| Command::PublishAt(origin, payload, wall_millis, reply))
            .await
    }

    /// Puts new credentials and a new deny list in force without a restart: revoked members are
    /// dropped and refused (see [`Node::set_revoked`] and [`Transport::reload`]), and a rotated
    /// certificate and key sign from now on and serve new connections.
    pub async fn reload(&self, reload: Reload) -> Result<(), ReloadError> {
        Ok(self
            .ask(|reply| Command::Reload(Box::new(reload), reply))
            .await??)
    }

    /// A copy of the store to keep ([`Node::snapshot`]), with the store's change count, unless
    /// the count is still `since` (nothing changed since the copy taken then).
    pub async fn snapshot(&self, since: u64) -> Result<Option<(u64, Snapshot)>, Stopped> {
        self.ask(|reply| Command::Snapshot(since, reply)).await
    }

    /// When the restored copy this node serves was saved (ms since the Unix epoch), until a
    /// peer has synced with it ([`Node::restored_at`]).
    pub async fn restored(&self) -> Result<Option<u64>, Stopped> {
        self.ask(Command::Restored).await
    }

    /// The traffic counters.
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// Tells every live member that this node is leaving, waits (up to about a second) for
    /// those datagrams to go out, and stops the node. Peers show it as left, not failed.
    pub async fn leave(&self) -> Result<(), Stopped> {
        self.ask(Command::Leave).await
    }

    /// Joins the cluster through `seed`.
    pub async fn join(&self, seed: NodeId) -> Result<(), Stopped> {
        self.commands
            .send(Command::Join(seed))
            .await
            .map_err(|_| Stopped)
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(command(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }
}

/// Starts the task that drives `node` over `transport`; events go out on the returned receiver.
/// The task ends after [`Gossip::leave`] or when every handle is gone; its handle lets the
/// owner wait for that.
pub fn spawn(
    node: Node,
    transport: Arc<Transport>,
    incoming: mpsc::Receiver<Incoming>,
) -> (Gossip, mpsc::Receiver<Event>, JoinHandle<()>) {
    let (commands, command_rx) = mpsc::channel(256);
    let (events, event_rx) = mpsc::channel(4096);
    let (sync_done, sync_rx) = mpsc::channel(256);
    let traffic = Arc::new(Traffic::default());
    let driver = Driver {
        node,
        transport,
        events,
        sync_done,
        traffic: traffic.clone(),
    };
    let task = tokio::spawn(driver.run(incoming, command_rx, sync_rx));
    (Gossip { commands, traffic }, event_rx, task)
}

/// The result of a sync this node started: the peer and its response (or failure).
type SyncResult = (NodeId, Result<Bytes, String>);

struct Driver {
    node: Node,
    transport: Arc<Transport>,
    events: mpsc::Sender<Event>,
    sync_done: mpsc::Sender<SyncResult>,
    traffic: Arc<Traffic>,
}

impl Driver {
    async fn run(
        mut self,
        mut incoming: mpsc::Receiver<Incoming>,
        mut commands: mpsc::Receiver<Command>,
        mut syncs: mpsc::Receiver<SyncResult>,
    ) {
        self.node.set_wall_clock(Instant::now(), wall_millis());
        let left = loop {
            self.flush().await;
            let deadline = self.node.poll_timeout().map(tokio::time::Instant::from_std);
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Leave(reply)) => break Some(reply),
                    Some(command) => self.command(command),
                    None => break None,
                },
                Some(message) = incoming.recv() => self.incoming(message),
                Some((peer, result)) = syncs.recv() => self.sync_finished(peer, result),
                () = sleep => {
                    let now = Instant::now();
                    // Follow the wall clock (NTP steps) for the stamp-skew check.
                    self.node.set_wall_clock(now, wall_millis());
                    self.node.handle_timeout(now);
                }
            }
        };
        self.leave().await;
        if let Some(reply) = left {
            let _ = reply.send(());
        }
    }

    /// Sends the leave to every live member and waits for the sends, then closes the endpoint.
    ///
    /// Each leave goes twice: over the connection we hold, and over a fresh one. A peer that
    /// restarted since we last spoke holds no state for the old connection, which delivers
    /// nothing (it only earns a stateless reset), and a peer that missed its leave learns it
    /// second-hand and then shows us as failed, not left. foca ignores the duplicate.
    async fn leave(&mut self) {
        self.node.leave(Instant::now());
        let mut sends = JoinSet::new();
        while let Some(t) = self.node.poll_transmit() {
            let bytes = Bytes::from(t.bytes);
            for fresh in [false, true] {
                let (transport, to, bytes) = (self.transport.clone(), t.to.clone(), bytes.clone());
                sends.spawn(async move {
                    let sent = match fresh {
                        false => transport.send_datagram(to.addr(), to.name(), bytes).await,
                        true => {
                            transport
                                .send_datagram_fresh(to.addr(), to.name(), bytes)
                                .await
                        }
                    };
                    if let Err(error) = sent {
                        tracing::debug!(peer = to.name(), fresh, %error, "leave not sent");
                    }
                });
            }
        }
        let all_sent = async { while sends.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(LEAVE_WAIT, all_sent).await;
        self.transport.close(LEAVE_WAIT).await;
    }

    fn command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Publish(origin, payload, reply) => {
                let _ = reply.send(self.node.publish(now, wall_millis(), origin, payload));
            }
            Command::Delete(origin, reply) => {
                let _ = reply.send(self.node.delete(now, wall_millis(), origin));
            }
            Command::Members(reply) => {
                let _ = reply.send(self.node.member_states());
            }
            Command::Records(reply) => {
                let _ = reply.send(self.node.records());
            }
            Command::Rejections(reply) => {
                let _ = reply.send(self.node.rejections());
            }
            Command::PublishAt(origin, payload, wall, reply) => {
                let _ = reply.send(self.node.publish(now, wall, origin, payload));
            }
            Command::Join(seed) => self.node.join(now, seed),
            Command::Reload(reload, reply) => {
                let result = self
                    .transport
                    .reload(&reload.credentials, reload.revoked.clone());
                if result.is_ok() {
                    self.node.set_keys(now, reload.keys);
                    self.node.set_revoked(now, reload.revoked);
                }
                let _ = reply.send(result);
            }
            Command::Snapshot(since, reply) => {
                let changes = self.node.store_changes();
                let copy = (changes != since).then(|| (changes, self.node.snapshot(wall_millis())));
                let _ = reply.send(copy);
            }
            Command::Restored(reply) => {
                let _ = reply.send(self.node.restored_at());
            }
            // Handled by the loop, which stops.
            Command::Leave(_) => {}
        }
    }

    fn incoming(&mut self, message: Incoming) {
        let now = Instant::now();
        match message {
            Incoming::Datagram { from, bytes } => {
                count(&self.traffic.datagrams_in, 1);
                count(&self.traffic.bytes_in, bytes.len());
                if let Err(error) = self.node.handle_datagram(now, &bytes) {
                    tracing::debug!(%from, %error, "dropped a gossip datagram");
                }
            }
            Incoming::Sync {
                from,
                request,
                reply,
            } => {
                let answer = match self.node.handle_sync_request(now, &request) {
                    Ok(response) => Ok(response),
                    // The third message of a sync (the requester's push) comes on a stream of its
                    // own; it needs no answer beyond an empty one.
                    Err(crate::Error::UnexpectedSyncMessage { .. }) => self
                        .node
                        .handle_sync_push(now, &request)
                        .map(|()| Vec::new()),
                    Err(e) => Err(e),
                };
                match answer {
                    Ok(bytes) => {
                        count(&self.traffic.bytes_out, bytes.len());
                        let _ = reply.send(Bytes::from(bytes));
                    }
                    Err(error) => tracing::debug!(%from, %error, "refused a sync request"),
                }
            }
        }
    }

    fn sync_finished(&mut self, peer: NodeId, result: Result<Bytes, String>) {
        match result {
            Ok(response) => {
                count(&self.traffic.bytes_in, response.len());
                self.handle_response(peer, &response);
            }
            Err(error) => {
                count(&self.traffic.sync_failures, 1);
                tracing::debug!(peer = ?peer, %error, "sync failed");
                self.node.handle_sync_failed(&peer);
            }
        }
    }

    fn handle_response(&mut self, peer: NodeId, response: &[u8]) {
        match self
            .node
            .handle_sync_response(Instant::now(), &peer, response)
        {
            Ok(Some(push)) => self.start_sync(peer, Bytes::from(push), false),
            Ok(None) => {}
            Err(error) => tracing::debug!(peer = ?peer, %error, "bad sync response"),
        }
    }

    /// Sends what the node wants sent and hands its events on. Sends run in tasks of their own
    /// so a slow connection attempt never stalls the node.
    async fn flush(&mut self) {
        while let Some(t) = self.node.poll_transmit() {
            count(&self.traffic.datagrams_out, 1);
            count(&self.traffic.bytes_out, t.bytes.len());
            let transport = self.transport.clone();
            tokio::spawn(async move {
                if let Err(error) = transport
                    .send_datagram(t.to.addr(), t.to.name(), Bytes::from(t.bytes))
                    .await
                {
                    tracing::debug!(%error, "gossip datagram not sent");
                }
            });
        }
        while let Some(SyncOpen { to, request, .. }) = self.node.poll_sync() {
            self.start_sync(to, Bytes::from(request), true);
        }
        while let Some(event) = self.node.poll_event() {
            if self.events.send(event).await.is_err() {
                break;
            }
        }
    }

    /// Runs a sync exchange in its own task; the response comes back to the loop when `reply`.
    fn start_sync(&self, peer: NodeId, request: Bytes, reply: bool) {
        count(&self.traffic.syncs, usize::from(reply));
        count(&self.traffic.bytes_out, request.len());
        let (transport, done) = (self.transport.clone(), self.sync_done.clone());
        tokio::spawn(async move {
            let result = transport
                .sync(peer.addr(), peer.name(), request)
                .await
                .map_err(|e| e.to_string());
            if reply {
                let _ = done.send((peer, result)).await;
            }
        });
    }
}

/// How long a leaving node waits for its leave datagrams to be sent, and then for its
/// connections to close.
const LEAVE_WAIT: Duration = Duration::from_secs(1);

fn wall_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

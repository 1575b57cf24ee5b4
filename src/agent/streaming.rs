//! Following the Mesos master's event stream (`[mesos_master] events`): subscribe, publish the
//! snapshot, then publish again as events change it, a few at a time. Every way a stream can end
//! (dropped, silent, an event that does not fit, another leader named by ZooKeeper) takes the
//! same path, as in dcos-net: a jittered pause (2 s doubling to 30 s), a new subscription and a
//! full re-sync from its snapshot. A master without the v1 API is polled instead.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::polling::{Follow, Refresh, woken};
use crate::source::stream::{Applied, Extras, StreamError, Subscription};

/// Changes are published at most this often: a burst of events (a deployment of 100
/// instances) is one publication, not 100.
const COALESCE: Duration = Duration::from_millis(25);
/// The first pause after a stream ends, and the longest.
const BACKOFF_FIRST: Duration = Duration::from_secs(2);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

impl Refresh {
    /// Follows the master's event stream until `shutdown`.
    pub(super) async fn follow_stream(mut self, follow: Follow, shutdown: CancellationToken) {
        let (mut backoff, mut loaded) = (BACKOFF_FIRST, false);
        // Held apart from `self`, which the session borrows meanwhile.
        let mut wake = self.wake.take();
        loop {
            let ended = tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                ended = self.session(&follow, &mut loaded, &mut backoff) => ended,
                _ = woken(&mut wake) => {
                    tracing::info!("zookeeper named other masters: subscribing again");
                    continue;
                }
            };
            follow.metrics.connected.set(0);
            let wait = match ended {
                StreamError::NoV1 { .. } => {
                    tracing::warn!(error = %ended, "polling the master");
                    let ok = self.once(loaded).await;
                    loaded |= ok;
                    if ok { self.period } else { BACKOFF_FIRST }
                }
                error => {
                    self.metrics.failures.inc();
                    follow.metrics.ended.inc();
                    let wait = jittered(backoff);
                    backoff = backoff.saturating_mul(2).min(BACKOFF_MAX);
                    tracing::warn!(%error, retry_in = ?wait, "mesos master event stream");
                    wait
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                _ = woken(&mut wake) => {}
            }
        }
    }

    /// One subscription, from its snapshot to its end; returns why it ended.
    async fn session(
        &self,
        follow: &Follow,
        loaded: &mut bool,
        backoff: &mut Duration,
    ) -> StreamError {
        let start = std::time::Instant::now();
        let mut sub = match follow.stream.subscribe().await {
            Ok(sub) => sub,
            Err(e) => return e,
        };
        let mut extras = match follow.stream.extras(&sub).await {
            Ok(extras) => extras,
            Err(e) => return e.into(),
        };
        if let Err(e) = self.publish_stream(follow, &sub, &extras, start).await {
            return e;
        }
        follow.metrics.connected.set(1);
        tracing::info!(master = %sub.master, "following the mesos master's event stream");
        (*loaded, *backoff) = (true, BACKOFF_FIRST);
        let (mut due, mut frameworks_changed) = (None::<Instant>, false);
        loop {
            let next = match due {
                None => Ok(sub.next().await),
                Some(at) => tokio::time::timeout_at(at, sub.next()).await,
            };
            match next {
                Ok(Ok(applied)) => {
                    follow.metrics.events.inc();
                    match applied {
                        Applied::Nothing => {}
                        Applied::Skipped => follow.metrics.skipped.inc(),
                        Applied::Changed | Applied::FrameworkChanged => {
                            frameworks_changed |= matches!(applied, Applied::FrameworkChanged);
                            due.get_or_insert_with(|| Instant::now() + COALESCE);
                        }
                    }
                }
                Ok(Err(ended)) => return ended,
                Err(_) => {
                    due = None;
                    let start = std::time::Instant::now();
                    if std::mem::take(&mut frameworks_changed) {
                        match follow.stream.extras(&sub).await {
                            Ok(new) => extras = new,
                            Err(e) => return e.into(),
                        }
                    }
                    if let Err(e) = self.publish_stream(follow, &sub, &extras, start).await {
                        return e;
                    }
                }
            }
        }
    }

    /// Publishes what `sub` has built, and counts it as a refresh.
    async fn publish_stream(
        &self,
        follow: &Follow,
        sub: &Subscription,
        extras: &Extras,
        start: std::time::Instant,
    ) -> Result<(), StreamError> {
        let catalog = follow.stream.catalog(sub, extras).await?;
        let first = !self.current.is_ready();
        let tasks = self
            .publish(catalog)
            .await
            .map_err(|e| StreamError::Ended {
                master: sub.master.clone(),
                reason: format!("publishing its state failed: {e}"),
            })?;
        let records = self.record_success(start.elapsed(), tasks);
        if first && self.current.is_ready() {
            tracing::info!(
                source = "mesos master events",
                tasks,
                records,
                "first catalog loaded; serving"
            );
        }
        Ok(())
    }
}

/// `wait` give or take a quarter, so that the agents of a cluster do not all subscribe again
/// at the same instant after a master restart.
fn jittered(wait: Duration) -> Duration {
    let quarter = wait.as_millis() as u64 / 4;
    let offset = rand::rngs::SmallRng::from_os_rng().random_range(0..=2 * quarter);
    Duration::from_millis(wait.as_millis() as u64 - quarter + offset)
}

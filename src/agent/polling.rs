//! The poll loops: each source is fetched on its period and published through the pipeline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use beacon_catalog::Catalog;
use beacon_dns::metrics::DnsMetrics;
use tokio_util::sync::CancellationToken;

use crate::common::wall_millis;
use crate::metrics::{SourceMetrics, StreamMetrics};
use crate::publish::last_known::LastKnown;
use crate::publish::{Current, MESOS_MASTER, NodeOrigin, PublishError, Sink};
use crate::source::FetchError;
use crate::source::master::MasterPoller;
use crate::source::mesos_agent::MesosAgentPoller;
use crate::source::stream::MasterStream;
use crate::source::zk::MastersRx;

/// Where a poll loop reads and what it writes.
#[derive(Clone)]
pub enum Source {
    /// The Mesos master's state: the shared `mesos-master` origin, kept as the last-known
    /// state when there is a state directory.
    Master(MasterPoller, Arc<dyn Sink>, Option<Arc<LastKnown>>),
    /// The local Mesos agent's state: the tasks part of this node's origin.
    MesosAgent(MesosAgentPoller, Arc<NodeOrigin>),
}

impl Source {
    fn name(&self) -> &'static str {
        match self {
            Self::Master(..) => "mesos master",
            Self::MesosAgent(..) => "mesos agent",
        }
    }

    async fn fetch(&self) -> Result<Catalog, FetchError> {
        match self {
            Self::Master(poller, ..) => poller.fetch().await,
            Self::MesosAgent(poller, _) => poller.fetch().await,
        }
    }

    /// Blocking: generation takes a while with tens of thousands of tasks.
    fn publish(&self, catalog: Catalog) -> Result<(), PublishError> {
        match self {
            Self::Master(_, sink, last_known) => {
                if let Some(last_known) = last_known {
                    last_known.save(&catalog);
                }
                sink.set(MESOS_MASTER, catalog)
            }
            Self::MesosAgent(_, node) => node.set_agent_tasks(catalog),
        }
    }
}

/// Returns when `wake` changes; never without one (or once its sender is gone).
pub(super) async fn woken(wake: &mut Option<MastersRx>) {
    let gone = match wake {
        Some(rx) => rx.changed().await.is_err(),
        None => true,
    };
    if gone {
        std::future::pending::<()>().await;
    }
}

/// The stream loop's parts besides the poll loop's.
pub struct Follow {
    /// Where the events come from.
    pub stream: MasterStream,
    /// Its metrics.
    pub metrics: StreamMetrics,
}

/// Why one poll failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum PollError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// A poll loop: poll, publish, sleep.
pub struct Refresh {
    /// What it polls and where that goes.
    pub source: Source,
    /// What is served, to tell the first load.
    pub current: Current,
    /// The source's metrics.
    pub metrics: SourceMetrics,
    /// Record counts go here.
    pub dns_metrics: DnsMetrics,
    /// Time between polls.
    pub period: Duration,
    /// Polls at once when this changes: ZooKeeper named other masters (a new leader), so
    /// waiting out the period would serve the old leader's state for up to a minute.
    pub wake: Option<MastersRx>,
    /// With `[mesos_master] events`: the master's event stream, followed instead of polling.
    pub follow: Option<Follow>,
}

/// The first retry after a failed poll.
const RETRY_FIRST: Duration = Duration::from_secs(1);

impl Refresh {
    /// Polls every `period` until `shutdown`; after a failure, retries sooner (1 s, doubling up
    /// to `period`), so that a master that was down at start-up does not leave DNS unready for
    /// a whole period.
    pub async fn run(mut self, shutdown: CancellationToken) {
        if let Some(follow) = self.follow.take() {
            return self.follow_stream(follow, shutdown).await;
        }
        let mut retry = RETRY_FIRST;
        let mut loaded = false;
        loop {
            let ok = self.once(loaded).await;
            loaded |= ok;
            let wait = match ok {
                true => {
                    retry = RETRY_FIRST;
                    self.period
                }
                false => {
                    let wait = retry.min(self.period);
                    retry = retry.saturating_mul(2);
                    wait
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                _ = woken(&mut self.wake) => retry = RETRY_FIRST,
            }
        }
    }

    /// Publishes `catalog` as the source's (locally, or to the cluster), off the async threads:
    /// with tens of thousands of tasks it takes a noticeable fraction of a second.
    pub(super) async fn publish(&self, catalog: Catalog) -> Result<usize, PollError> {
        let (source, tasks) = (self.source.clone(), catalog.task_count());
        match tokio::task::spawn_blocking(move || source.publish(catalog)).await {
            Ok(result) => result.map(|()| tasks).map_err(PollError::from),
            Err(e) => Err(PublishError::Panicked(e.to_string()).into()),
        }
    }

    /// One poll; whether it succeeded. `loaded_before`: whether an earlier one did, which the
    /// failure message says (there is no "last good state" before a first success).
    pub(super) async fn once(&self, loaded_before: bool) -> bool {
        let start = Instant::now();
        let first = !self.current.is_ready();
        let result = match self.source.fetch().await {
            Ok(catalog) => self.publish(catalog).await,
            Err(e) => Err(e.into()),
        };
        let source = self.source.name();
        match result {
            Ok(tasks) => {
                let records = self.record_success(start.elapsed(), tasks);
                let ms = start.elapsed().as_millis() as u64;
                if first && self.current.is_ready() {
                    tracing::info!(source, tasks, records, ms, "first catalog loaded; serving");
                } else {
                    tracing::debug!(source, tasks, records, ms, "catalog refreshed");
                }
                true
            }
            Err(error) => {
                self.metrics.failures.inc();
                match loaded_before {
                    true => {
                        tracing::warn!(source, %error, "poll failed; still serving its last good state")
                    }
                    false => {
                        tracing::warn!(source, %error, "poll failed; nothing loaded from it yet (retrying)")
                    }
                }
                false
            }
        }
    }

    /// Counts a successful poll; returns how many records are served now.
    pub(super) fn record_success(&self, elapsed: Duration, tasks: usize) -> usize {
        if matches!(self.source, Source::Master(..)) {
            // A master answered: what is served is no longer the last-known state.
            (self.current.last_known).store(0, std::sync::atomic::Ordering::Relaxed);
        }
        self.metrics.refreshes.inc();
        self.metrics.refresh_seconds.observe(elapsed.as_secs_f64());
        self.metrics.tasks.set(tasks as i64);
        self.metrics.last_success.set((wall_millis() / 1000) as i64);
        self.current.published.load().as_ref().map_or(0, |p| {
            let [a, aaaa, srv] = p.records.counts();
            self.dns_metrics.set_records(a, aaaa, srv);
            a + aaaa + srv
        })
    }
}

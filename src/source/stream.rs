//! The Mesos master's v1 operator API event stream (`research/mesos-live.md` §2): one
//! `SUBSCRIBE` per master connection, a snapshot, then the changes as they happen, so that a new
//! task is named within a fraction of a second and the master is not asked for its whole state
//! every `RefreshSeconds`.
//!
//! This module is the I/O: finding the master that streams (ZooKeeper's and the configured
//! ones, in the poller's order; reqwest follows a standby's 307 to the leader), cutting records
//! by their RecordIO length prefix (never by HTTP chunk), and the watchdog that notices a silent
//! master. What the events mean is `beacon_catalog::mesos_v1`; the loop that publishes what they
//! build is `agent::polling`.
//!
//! v1 carries neither the leader's pid nor the schedulers' pids, which Mesos-DNS's `leader` and
//! framework records use: they come from `GET_MASTER` and `/master/state-summary` (small: no
//! tasks), asked at every (re)subscription and after framework events.

use std::collections::HashMap;
use std::time::Duration;

use beacon_catalog::Catalog;
use beacon_catalog::mesos_v1::{Event, RecordIo, StreamState, decode_event};
use serde::Deserialize;

use super::http::{MesosClient, error_chain, read_body};
use super::master::MasterPoller;
use super::{ClientError, FetchError, resolve_hostnames};
use crate::config::MesosDnsConfig;

/// The largest record accepted: a SUBSCRIBED snapshot of a very large cluster fits.
const MAX_RECORD: usize = 256 << 20;
/// Missed heartbeats after which a silent stream is given up (dcos-net waited three).
const MISSED_HEARTBEATS: u32 = 3;
/// The heartbeat interval assumed when SUBSCRIBED gives none (Mesos's default).
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// The heartbeat intervals taken from a master, whatever it announces: a stream silent for
/// more than three times the longest is given up.
const HEARTBEAT_RANGE: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(300));
/// The most the small documents (GET_MASTER, state-summary) may weigh.
const MAX_SMALL: usize = 16 << 20;

/// Subscribes to the masters' event streams.
#[derive(Clone)]
pub struct MasterStream {
    /// For the stream itself: no total timeout.
    streaming: MesosClient,
    /// Knows the masters, and fetches the small documents (with the usual timeout).
    poller: MasterPoller,
    /// `StateTimeoutSeconds`: how long a master may take to answer the subscription, and how
    /// long the snapshot may take to arrive.
    timeout: Duration,
}

/// Why a subscription ended, or could not start.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// Occurs when a master has no v1 operator API (Mesos before 1.1): poll it instead.
    #[error("{url} answered {status}: no v1 operator API, polling /master/state instead")]
    NoV1 {
        /// The URL asked.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// Occurs when no master could be asked, or a document it serves failed.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Occurs when the connection breaks or the master ends the stream.
    #[error("the event stream from {master} ended: {reason}")]
    Ended {
        /// The master streaming.
        master: String,
        /// What happened.
        reason: String,
    },
    /// Occurs when no event (not even a heartbeat) arrived for a few heartbeat intervals.
    #[error("no event from {master} for {} s (heartbeats expected every {} s): re-subscribing", .silent.as_secs(), .interval.as_secs())]
    Silent {
        /// The master streaming.
        master: String,
        /// How long it was silent.
        silent: Duration,
        /// The heartbeat interval it announced.
        interval: Duration,
    },
    /// Occurs when an event cannot be applied to what the stream built: a full re-sync fixes it.
    #[error("event from {master} does not fit the state ({reason}): re-syncing")]
    Unplaced {
        /// The master streaming.
        master: String,
        /// What did not fit.
        reason: String,
    },
}

/// An open stream: its master, its framing, and the state its events build.
pub struct Subscription {
    /// The master it came from, `host:port`.
    pub master: String,
    response: reqwest::Response,
    /// Counts what is read.
    client: MesosClient,
    framing: RecordIo,
    /// What the events built so far.
    pub state: StreamState,
    /// How long to wait for an event before giving the stream up.
    silence: Duration,
    /// `master` and `masterN` from ZooKeeper, when it named them.
    detected: Vec<String>,
}

impl MasterStream {
    /// A streaming client with the TLS and authentication settings of `config`, asking the
    /// masters `poller` knows.
    pub fn new(config: &MesosDnsConfig, poller: MasterPoller) -> Result<Self, ClientError> {
        Ok(Self {
            streaming: MesosClient::streaming(config)?,
            poller,
            timeout: Duration::from_secs(config.state_timeout_seconds.max(1)),
        })
    }

    /// Counts the bytes read from the stream in `read`.
    pub fn count_bytes(mut self, read: prometheus::IntCounter) -> Self {
        self.streaming = self.streaming.count_bytes(read);
        self
    }

    /// Subscribes to the first master that streams and reads its snapshot.
    pub async fn subscribe(&self) -> Result<Subscription, StreamError> {
        let (detected, candidates) = self.poller.candidates()?;
        let mut errors = Vec::new();
        for master in candidates {
            match self.subscribe_to(&master, &detected).await {
                Ok(subscription) => return Ok(subscription),
                Err(StreamError::Fetch(e)) => errors.push(e),
                Err(other) => return Err(other),
            }
        }
        Err(FetchError::AllFailed(errors).into())
    }

    async fn subscribe_to(
        &self,
        master: &str,
        detected: &[String],
    ) -> Result<Subscription, StreamError> {
        let url = format!("{}://{master}/api/v1", self.streaming.scheme);
        // Only connecting times out on this client: a master that accepts the connection but
        // never answers must not hold the subscription forever.
        let subscribe = self.streaming.post_v1(&url, r#"{"type":"SUBSCRIBE"}"#);
        let response = tokio::time::timeout(self.timeout, subscribe)
            .await
            .map_err(|_| FetchError::Http {
                url: url.clone(),
                reason: format!("no answer to SUBSCRIBE within {} s", self.timeout.as_secs()),
            })??;
        let status = response.status().as_u16();
        if matches!(status, 404 | 405 | 501) {
            return Err(StreamError::NoV1 { url, status });
        }
        if !response.status().is_success() {
            let reason = response.status().to_string();
            return Err(FetchError::Http { url, reason }.into());
        }
        // The master that streams, after any redirect to the leader.
        let url = response.url();
        let master = match (url.host_str(), url.port_or_known_default()) {
            (Some(host), Some(port)) if host.contains(':') => format!("[{host}]:{port}"),
            (Some(host), Some(port)) => format!("{host}:{port}"),
            _ => master.to_string(),
        };
        let mut subscription = Subscription {
            master,
            response,
            client: self.streaming.clone(),
            framing: RecordIo::new(MAX_RECORD),
            state: StreamState::default(),
            silence: silence_for(None),
            detected: detected.to_vec(),
        };
        subscription.snapshot().await?;
        Ok(subscription)
    }

    /// What v1 does not carry, from the streaming master: ask again after framework events.
    pub async fn extras(&self, subscription: &Subscription) -> Result<Extras, FetchError> {
        let master = &subscription.master;
        let (leader, framework_pids) =
            tokio::try_join!(self.leader(master), self.framework_pids(master))?;
        Ok(Extras {
            leader,
            framework_pids,
        })
    }

    /// The catalog `subscription` has built, as `/master/state` would give it: with the
    /// leader's pid, the schedulers' pids and every hostname resolved.
    pub async fn catalog(
        &self,
        subscription: &Subscription,
        extras: &Extras,
    ) -> Result<Catalog, FetchError> {
        let master = &subscription.master;
        let url = format!("{}://{master}/api/v1", self.streaming.scheme);
        // Tens of milliseconds with tens of thousands of tasks: off the async workers' duty.
        let built = tokio::task::block_in_place(|| {
            (subscription.state).catalog(&extras.leader, &extras.framework_pids)
        });
        let mut catalog = built.map_err(|source| FetchError::State { url, source })?;
        catalog.masters.clone_from(&subscription.detected);
        resolve_hostnames(&mut catalog).await?;
        Ok(catalog)
    }

    /// The streaming master's pid (`master@ip:port`), from `GET_MASTER`.
    async fn leader(&self, master: &str) -> Result<String, FetchError> {
        #[derive(Deserialize)]
        struct Reply {
            get_master: GetMaster,
        }
        #[derive(Deserialize)]
        struct GetMaster {
            master_info: MasterInfo,
        }
        #[derive(Deserialize)]
        struct MasterInfo {
            pid: String,
        }
        let url = format!("{}://{master}/api/v1", self.streaming.scheme);
        let client = self.poller.client();
        let response = client.post_v1(&url, r#"{"type":"GET_MASTER"}"#).await?;
        let body = read_small(response, &url).await?;
        client.counted(body.len());
        let reply: Reply = serde_json::from_slice(&body).map_err(|e| FetchError::Http {
            url,
            reason: format!("GET_MASTER reply without get_master.master_info.pid: {e}"),
        })?;
        Ok(reply.get_master.master_info.pid)
    }

    /// Each framework's scheduler pid by framework id, from `/master/state-summary`.
    async fn framework_pids(&self, master: &str) -> Result<HashMap<String, String>, FetchError> {
        #[derive(Deserialize)]
        struct Summary {
            #[serde(default)]
            frameworks: Vec<Framework>,
        }
        #[derive(Deserialize)]
        struct Framework {
            #[serde(default)]
            id: Option<String>,
            #[serde(default)]
            pid: Option<String>,
        }
        let url = format!("{}://{master}/master/state-summary", self.streaming.scheme);
        let client = self.poller.client();
        let body = (client.get_within(&url, MAX_SMALL).await?).ok_or_else(|| FetchError::Http {
            url: url.clone(),
            reason: "404 Not Found".into(),
        })?;
        let summary: Summary = serde_json::from_slice(&body).map_err(|e| FetchError::Http {
            url,
            reason: format!("malformed state-summary: {e}"),
        })?;
        let pids = summary.frameworks.into_iter();
        Ok(pids.filter_map(|f| Some((f.id?, f.pid?))).collect())
    }
}

/// The leader's pid and the schedulers' pids, which the v1 API does not give.
pub struct Extras {
    leader: String,
    framework_pids: HashMap<String, String>,
}

/// A whole reply body of a few kilobytes (at most [`MAX_SMALL`]), or the error its status means.
async fn read_small(response: reqwest::Response, url: &str) -> Result<Vec<u8>, FetchError> {
    if !response.status().is_success() {
        return Err(FetchError::Http {
            url: url.to_string(),
            reason: response.status().to_string(),
        });
    }
    read_body(response, url, MAX_SMALL).await
}

/// How long a stream may stay silent: three heartbeat intervals, the interval the master
/// announced kept within [`HEARTBEAT_RANGE`] (a master announcing years must not make the
/// watchdog wait forever, nor overflow it).
fn silence_for(announced: Option<Duration>) -> Duration {
    let (least, most) = HEARTBEAT_RANGE;
    announced.unwrap_or(DEFAULT_HEARTBEAT).clamp(least, most) * MISSED_HEARTBEATS
}

/// What one event did to the state.
pub enum Applied {
    /// Nothing the catalog shows changed (a heartbeat, an unknown event type).
    Nothing,
    /// Tasks, agents or frameworks changed.
    Changed,
    /// A framework changed: its scheduler pid may have too.
    FrameworkChanged,
    /// The event was malformed: logged, counted and skipped.
    Skipped,
}

impl Subscription {
    /// Reads the first event, which must be SUBSCRIBED, and builds the state from it.
    async fn snapshot(&mut self) -> Result<(), StreamError> {
        let record = self.record().await?;
        match decode_event(&record) {
            Ok(Event::Subscribed {
                snapshot,
                heartbeat_interval,
            }) => {
                self.state = StreamState::from(snapshot);
                self.silence = silence_for(heartbeat_interval);
                Ok(())
            }
            Ok(_) => Err(self.ended("the first event was not SUBSCRIBED".into())),
            Err(e) => Err(self.ended(format!("bad SUBSCRIBED event: {e}"))),
        }
    }

    /// Reads the next event and applies it.
    pub async fn next(&mut self) -> Result<Applied, StreamError> {
        let record = self.record().await?;
        let event = match decode_event(&record) {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(master = %self.master, %error, "malformed event skipped");
                return Ok(Applied::Skipped);
            }
        };
        let applied = match &event {
            Event::Heartbeat | Event::Unknown(_) => Applied::Nothing,
            Event::Subscribed { .. } => {
                return Err(self.ended("a second SUBSCRIBED mid-stream".into()));
            }
            Event::FrameworkAdded(_) | Event::FrameworkUpdated(_) => Applied::FrameworkChanged,
            _ => Applied::Changed,
        };
        if let Err(unplaced) = self.state.apply(event) {
            return Err(StreamError::Unplaced {
                master: self.master.clone(),
                reason: unplaced.to_string(),
            });
        }
        Ok(applied)
    }

    /// The next whole record, reading as many chunks as it takes; gives up after `silence`.
    async fn record(&mut self) -> Result<Vec<u8>, StreamError> {
        loop {
            match self.framing.next_record() {
                Ok(Some(record)) => return Ok(record.to_vec()),
                Ok(None) => {}
                Err(e) => return Err(self.ended(format!("bad RecordIO framing: {e}"))),
            }
            let chunk = tokio::time::timeout(self.silence, self.response.chunk()).await;
            match chunk {
                Err(_) => {
                    return Err(StreamError::Silent {
                        master: self.master.clone(),
                        silent: self.silence,
                        interval: self.silence / MISSED_HEARTBEATS,
                    });
                }
                Ok(Ok(Some(bytes))) => {
                    self.client.counted(bytes.len());
                    self.framing.push(&bytes);
                }
                Ok(Ok(None)) => return Err(self.ended("the master closed it".into())),
                Ok(Err(e)) => return Err(self.ended(error_chain(&e))),
            }
        }
    }

    fn ended(&self, reason: String) -> StreamError {
        StreamError::Ended {
            master: self.master.clone(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_announcing_any_heartbeat_gets_a_bounded_watchdog() {
        assert_eq!(silence_for(None), Duration::from_secs(45));
        assert_eq!(
            silence_for(Some(Duration::from_secs(2))),
            Duration::from_secs(6)
        );
        assert_eq!(silence_for(Some(Duration::ZERO)), Duration::from_secs(3));
        // 10^18 s is a valid Duration; three of them are not.
        let years = Duration::from_secs(1_000_000_000_000_000_000);
        assert_eq!(silence_for(Some(years)), Duration::from_secs(900));
        assert_eq!(silence_for(Some(Duration::MAX)), Duration::from_secs(900));
    }
}

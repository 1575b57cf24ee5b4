//! The Mesos agent poller: `GET /state` from this node's own agent, as dcos-net polled its local
//! agent every 2 s. The agent's tasks become part of this node's origin, beside its
//! registrations, so each node is the only writer of the tasks it runs.
//!
//! Agents before Mesos 1.1 serve `/state.json`, and older ones `/slave(1)/state`: each is tried
//! after a 404.

use beacon_catalog::Catalog;
use beacon_catalog::mesos::parse_agent_state;

use super::http::MesosClient;
use super::{ClientError, FetchError, resolve_hostnames};
use crate::config::MesosDnsConfig;

/// Fetches and parses the local agent's state.
#[derive(Clone, Debug)]
pub struct MesosAgentPoller {
    client: MesosClient,
    address: String,
}

impl MesosAgentPoller {
    /// A poller for the agent at `address` (`host:port`), with the TLS and authentication
    /// settings of `config`.
    pub fn new(config: &MesosDnsConfig, address: &str) -> Result<Self, ClientError> {
        Ok(Self {
            client: MesosClient::new(config)?,
            address: address.to_string(),
        })
    }

    /// The agent's running tasks, with the hostnames they need resolved.
    pub async fn fetch(&self) -> Result<Catalog, FetchError> {
        let base = format!("{}://{}", self.client.scheme, self.address);
        let mut tried = String::new();
        for path in ["/state", "/state.json", "/slave(1)/state"] {
            let url = format!("{base}{path}");
            if let Some(body) = self.client.get(&url).await? {
                let mut catalog =
                    parse_agent_state(&body).map_err(|source| FetchError::State { url, source })?;
                resolve_hostnames(&mut catalog).await?;
                return Ok(catalog);
            }
            tried = url;
        }
        Err(FetchError::Http {
            url: tried,
            reason: "404 Not Found on /state, /state.json and /slave(1)/state".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::fake_master::FakeMaster;

    const STATE: &[u8] = br#"{"id": "S9", "hostname": "127.0.0.1",
        "pid": "slave(1)@127.0.0.1:5051",
        "frameworks": [{"name": "marathon", "executors": [{"tasks": [
            {"id": "web.1", "name": "web", "state": "TASK_RUNNING",
             "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0}]}]}]}]}"#;

    #[tokio::test]
    async fn reads_the_agent_state_and_names_the_agent_on_failure() {
        let agent = FakeMaster::start(([127, 0, 0, 1], 0).into(), STATE.to_vec())
            .await
            .unwrap();
        let poller = MesosAgentPoller::new(&MesosDnsConfig::default(), &agent.addr().to_string());
        let catalog = poller.unwrap().fetch().await.unwrap();
        assert_eq!(catalog.task_count(), 1);
        assert_eq!(catalog.agents[0].id, "S9");
        agent.set_body(b"{\"pid\": 7".to_vec());
        let poller = MesosAgentPoller::new(&MesosDnsConfig::default(), &agent.addr().to_string());
        let err = poller.unwrap().fetch().await.unwrap_err().to_string();
        assert!(err.contains(&format!("{}/state", agent.addr())), "{err}");
        assert!(err.contains("malformed state JSON"), "{err}");
    }
}

//! The Mesos master poller: `GET /master/state` from the configured masters, the way Mesos-DNS
//! fetches it (`research/mesos-dns.md` §2).
//!
//! Masters are tried in order: those ZooKeeper names (leader first), then the configured ones. A master that is not the leader names the leader in
//! its state; the poller then asks the leader's address on the same port. Masters older than
//! Mesos 1.1 only serve `/master/state.json`, tried after a 404. Any failure leaves the caller's
//! last good catalog in place: this module only reports what went wrong.

use std::net::IpAddr;

use beacon_catalog::Catalog;
use beacon_catalog::mesos::parse_state;

use super::http::MesosClient;
use super::zk::MastersRx;
use super::{ClientError, FetchError, resolve_hostnames};
use crate::config::MesosDnsConfig;

/// Fetches and parses master state.
#[derive(Clone, Debug)]
pub struct MasterPoller {
    client: MesosClient,
    masters: Vec<String>,
    /// What ZooKeeper names, with `zk`.
    detected: Option<MastersRx>,
}

impl MasterPoller {
    /// A poller for the masters and TLS/auth settings of `config`.
    pub fn new(config: &MesosDnsConfig) -> Result<Self, ClientError> {
        Ok(Self {
            client: MesosClient::new(config)?,
            masters: config.masters.clone(),
            detected: None,
        })
    }

    /// The poller asks the masters `detected` names first, leader first; the configured ones
    /// become the fallback.
    pub fn with_detected(mut self, detected: MastersRx) -> Self {
        self.detected = Some(detected);
        self
    }

    /// The HTTP client, for other documents from the same masters.
    pub fn client(&self) -> &MesosClient {
        &self.client
    }

    /// Counts the bytes read from the masters in `read`.
    pub fn count_bytes(mut self, read: prometheus::IntCounter) -> Self {
        self.client = self.client.count_bytes(read);
        self
    }

    /// The masters ZooKeeper names now, and every master to try in order: those, then the
    /// configured ones. An error when there is none.
    pub fn candidates(&self) -> Result<(Vec<String>, Vec<String>), FetchError> {
        let detected = (self.detected.as_ref()).map_or_else(Vec::new, |rx| rx.borrow().clone());
        let fallback = self.masters.iter().filter(|m| !detected.contains(m));
        let candidates: Vec<String> = detected.iter().chain(fallback).cloned().collect();
        match candidates.is_empty() {
            true => Err(FetchError::NoMasterKnown),
            false => Ok((detected, candidates)),
        }
    }

    /// Fetches the leader's state: the first master that answers, redirected to the leader it
    /// names, with every hostname the records need resolved. The catalog carries the masters
    /// ZooKeeper named, for `master` and `masterN`.
    pub async fn fetch(&self) -> Result<Catalog, FetchError> {
        let (detected, candidates) = self.candidates()?;
        let mut errors = Vec::new();
        for master in &candidates {
            match self.fetch_via(master).await {
                Ok(mut catalog) => {
                    catalog.masters.clone_from(&detected);
                    return Ok(catalog);
                }
                Err(e) => errors.push(e),
            }
        }
        Err(FetchError::AllFailed(errors))
    }

    async fn fetch_via(&self, master: &str) -> Result<Catalog, FetchError> {
        let mut catalog = self.fetch_from(master).await?;
        if let Some(leader) = catalog.leader.as_ref() {
            let contacted = master
                .rsplit_once(':')
                .map_or(master, |(h, _)| h)
                .trim_matches(['[', ']']);
            let port = master.rsplit_once(':').map_or("5050", |(_, p)| p);
            if leader.host != contacted {
                let leader_addr = match leader.host.parse::<IpAddr>() {
                    Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
                    _ => format!("{}:{port}", leader.host),
                };
                tracing::debug!(%master, leader = %leader_addr, "re-fetching state from the leader");
                catalog = self.fetch_from(&leader_addr).await?;
            }
        }
        resolve_hostnames(&mut catalog).await?;
        Ok(catalog)
    }

    async fn fetch_from(&self, master: &str) -> Result<Catalog, FetchError> {
        let url = format!("{}://{master}/master/state", self.client.scheme);
        let body = match self.client.get(&url).await? {
            Some(body) => body,
            // Mesos before 1.1 serves only the `.json` form.
            None => {
                let legacy = format!("{url}.json");
                self.client
                    .get(&legacy)
                    .await?
                    .ok_or_else(|| FetchError::Http {
                        url: legacy,
                        reason: "404 Not Found".into(),
                    })?
            }
        };
        parse_state(&body).map_err(|source| FetchError::State { url, source })
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::net::SocketAddr;
    use std::sync::Arc;

    use rustls_pki_types::PrivateKeyDer;

    use super::*;
    use crate::commands::fake_master::FakeMaster;

    fn state() -> Vec<u8> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/conformance/mesos-dns/fake-loopback-leader.json"
        );
        fs::read(path).unwrap()
    }

    fn config(master: SocketAddr) -> MesosDnsConfig {
        MesosDnsConfig {
            masters: vec![master.to_string()],
            ..MesosDnsConfig::default()
        }
    }

    /// A body larger than the reader allows is an error, not a document held whole.
    #[tokio::test]
    async fn an_oversized_body_is_refused() {
        let master = FakeMaster::start(([127, 0, 0, 1], 0).into(), state())
            .await
            .unwrap();
        let client = MesosClient::new(&config(master.addr())).unwrap();
        let url = format!("http://{}/master/state", master.addr());
        let whole = client.get_within(&url, 1 << 20).await.unwrap().unwrap();
        let err = client.get_within(&url, whole.len() - 1).await.unwrap_err();
        assert!(err.to_string().contains("body larger than"), "{err}");
    }

    #[tokio::test]
    async fn basic_auth_is_sent_when_configured() {
        let master = FakeMaster::start(([127, 0, 0, 1], 0).into(), state())
            .await
            .unwrap();
        master.require_basic_auth("beacon", "s3cret");
        let anonymous = MasterPoller::new(&config(master.addr())).unwrap();
        let err = anonymous.fetch().await.unwrap_err().to_string();
        assert!(err.contains("401"), "{err}");
        let mut with_auth = config(master.addr());
        with_auth.mesos_authentication = "basic".into();
        with_auth.mesos_credentials.principal = "beacon".into();
        with_auth.mesos_credentials.secret = "s3cret".into();
        let catalog = MasterPoller::new(&with_auth)
            .unwrap()
            .fetch()
            .await
            .unwrap();
        assert_eq!(catalog.frameworks.len(), 4);
    }

    /// A master on HTTPS that requires a client certificate, like a DC/OS strict-mode master.
    #[tokio::test]
    async fn https_with_a_ca_and_a_client_certificate() {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let dir = std::env::temp_dir().join(format!("beacon-https-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |name: &str| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(vec![name.to_string()])
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            (cert, key)
        };
        let (server_cert, server_key) = leaf("127.0.0.1");
        let (client_cert, client_key) = leaf("beacon");
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            fs::write(&path, pem).unwrap();
            path.to_string_lossy().into_owned()
        };
        let ca_file = write("ca.pem", ca_cert.pem());
        let cert_file = write("client.pem", client_cert.pem());
        let key_file = write("client-key.pem", client_key.serialize_pem());

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_cert.der().clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let key = PrivateKeyDer::try_from(server_key.serialize_der()).unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server_cert.der().clone()], key)
            .unwrap();
        let master = FakeMaster::start_tls(([127, 0, 0, 1], 0).into(), state(), Arc::new(tls))
            .await
            .unwrap();

        let mut config = config(master.addr());
        config.mesos_https_on = true;
        config.ca_cert_file = ca_file;
        let err = MasterPoller::new(&config)
            .unwrap()
            .fetch()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&master.addr().to_string()),
            "without a client certificate: {err}"
        );
        config.cert_file = cert_file;
        config.key_file = key_file;
        let catalog = MasterPoller::new(&config).unwrap().fetch().await.unwrap();
        assert_eq!(catalog.frameworks.len(), 4);
        config.ca_cert_file = dir.join("missing.pem").to_string_lossy().into_owned();
        let err = MasterPoller::new(&config).unwrap_err().to_string();
        assert!(err.contains("missing.pem"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn failures_name_the_master_and_the_cause() {
        let master = FakeMaster::start(([127, 0, 0, 1], 0).into(), b"{oops".to_vec())
            .await
            .unwrap();
        let err = MasterPoller::new(&config(master.addr()))
            .unwrap()
            .fetch()
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&master.addr().to_string()) && err.contains("malformed state JSON"),
            "{err}"
        );
        master.set_status(503);
        let err = MasterPoller::new(&config(master.addr()))
            .unwrap()
            .fetch()
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("503"), "{err}");
        assert!(
            MasterPoller::new(&MesosDnsConfig {
                mesos_authentication: "iam".into(),
                ..config(master.addr())
            })
            .is_err()
        );
    }
}

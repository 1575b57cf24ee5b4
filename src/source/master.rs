//! The Mesos master poller: `GET /master/state` from the configured masters, the way Mesos-DNS
//! fetches it (`research/mesos-dns.md` §2).
//!
//! Masters are tried in configured order. A master that is not the leader names the leader in
//! its state; the poller then asks the leader's address on the same port. Masters older than
//! Mesos 1.1 only serve `/master/state.json`, tried after a 404. Any failure leaves the caller's
//! last good catalog in place: this module only reports what went wrong.

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use beacon_catalog::Catalog;
use beacon_catalog::mesos::{StateError, parse_state};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::MesosDnsConfig;

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Occurs when a master cannot be reached or answers with an HTTP error.
    #[error("GET {url}: {reason}")]
    Http {
        /// The URL asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Occurs when a master's state document is rejected.
    #[error("state from {url}: {source}")]
    State {
        /// The URL asked.
        url: String,
        /// Why the document was rejected.
        source: StateError,
    },
    /// Occurs when a hostname in the state does not resolve.
    #[error("cannot resolve {host:?} named in the state: {reason}")]
    Resolve {
        /// The hostname.
        host: String,
        /// The resolver's error.
        reason: String,
    },
    /// Occurs when every master failed; holds each master's error.
    #[error("no master answered: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    AllFailed(Vec<Self>),
}

/// Why the HTTP client could not be built from the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Occurs when a certificate or key file cannot be read or parsed.
    #[error("cannot load {what} from {path:?}: {reason}")]
    Pem {
        /// Which file: CA, certificate or key.
        what: &'static str,
        /// The configured path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Occurs when the TLS or HTTP client cannot be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    /// Occurs when an authentication scheme Beacon does not implement is configured.
    #[error("MesosAuthentication {0:?} is not supported: use \"basic\" or none")]
    UnsupportedAuth(String),
}

/// Fetches and parses master state.
#[derive(Clone, Debug)]
pub struct MasterPoller {
    client: reqwest::Client,
    scheme: &'static str,
    masters: Vec<String>,
    auth: Option<(String, String)>,
}

impl MasterPoller {
    /// A poller for the masters and TLS/auth settings of `config`.
    pub fn new(config: &MesosDnsConfig) -> Result<Self, ClientError> {
        let auth = match config.mesos_authentication.as_str() {
            "" => None,
            "basic" => Some((
                config.mesos_credentials.principal.clone(),
                config.mesos_credentials.secret.clone(),
            )),
            other => return Err(ClientError::UnsupportedAuth(other.to_string())),
        };
        let timeout = Duration::from_secs(config.state_timeout_seconds.max(1));
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .no_proxy()
            .user_agent("Mesos-DNS")
            .pool_max_idle_per_host(0)
            .tls_backend_preconfigured(tls_config(config)?);
        let client = builder
            .build()
            .map_err(|e| ClientError::Setup(e.to_string()))?;
        Ok(Self {
            client,
            scheme: if config.mesos_https_on {
                "https"
            } else {
                "http"
            },
            masters: config.masters.clone(),
            auth,
        })
    }

    /// Fetches the leader's state: the first master that answers, redirected to the leader it
    /// names, with every hostname the records need resolved.
    pub async fn fetch(&self) -> Result<Catalog, FetchError> {
        let mut errors = Vec::new();
        for master in &self.masters {
            match self.fetch_via(master).await {
                Ok(catalog) => return Ok(catalog),
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
        let url = format!("{}://{master}/master/state", self.scheme);
        let body = match self.get(&url).await? {
            Some(body) => body,
            // Mesos before 1.1 serves only the `.json` form.
            None => {
                let legacy = format!("{url}.json");
                self.get(&legacy).await?.ok_or_else(|| FetchError::Http {
                    url: legacy,
                    reason: "404 Not Found".into(),
                })?
            }
        };
        parse_state(&body).map_err(|source| FetchError::State { url, source })
    }

    /// The body of a 2xx reply, `None` on 404, an error otherwise.
    async fn get(&self, url: &str) -> Result<Option<Vec<u8>>, FetchError> {
        let err = |reason: String| FetchError::Http {
            url: url.to_string(),
            reason,
        };
        let mut req = self
            .client
            .get(url)
            .header("Content-Type", "application/json");
        if let Some((user, pass)) = &self.auth {
            req = req.basic_auth(user, Some(pass));
        }
        let resp = req.send().await.map_err(|e| err(error_chain(&e)))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(err(status.to_string()));
        }
        let body = resp.bytes().await.map_err(|e| err(error_chain(&e)))?;
        Ok(Some(body.to_vec()))
    }
}

/// Resolves every hostname the catalog names. A pid host that does not resolve fails the poll,
/// as in Mesos-DNS; a framework hostname that does not resolve only loses its records.
async fn resolve_hostnames(catalog: &mut Catalog) -> Result<(), FetchError> {
    let fw_hosts: Vec<String> = catalog
        .frameworks
        .iter()
        .filter(|f| f.pid.is_none())
        .map(|f| f.hostname.clone())
        .collect();
    let mut lost = Vec::new();
    for host in catalog.hostnames() {
        let lookup = tokio::net::lookup_host((host.clone(), 0)).await;
        match lookup {
            Ok(addrs) => {
                let mut ips: Vec<IpAddr> = addrs.map(|a: SocketAddr| a.ip()).collect();
                ips.dedup();
                catalog.host_ips.insert(host, ips);
            }
            Err(e) if fw_hosts.contains(&host) => lost.push((host, e)),
            Err(e) => {
                return Err(FetchError::Resolve {
                    host,
                    reason: e.to_string(),
                });
            }
        }
    }
    for (host, error) in lost {
        tracing::debug!(%host, %error, "framework hostname does not resolve");
    }
    Ok(())
}

fn tls_config(config: &MesosDnsConfig) -> Result<rustls::ClientConfig, ClientError> {
    let pem_err = |what, path: &str, reason: String| ClientError::Pem {
        what,
        path: path.to_string(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    let ca_path = match config.ca_cert_file.as_str() {
        "" => "/etc/ssl/certs/ca-certificates.crt",
        path => path,
    };
    match fs::read(ca_path) {
        Ok(pem) => {
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| pem_err("CA certificates", ca_path, e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| pem_err("CA certificates", ca_path, e.to_string()))?;
            }
        }
        Err(e) if !config.ca_cert_file.is_empty() => {
            return Err(pem_err("CA certificates", ca_path, e.to_string()));
        }
        Err(_) => {} // No system bundle: only plain HTTP or a configured CA will work.
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Setup(e.to_string()))?
        .with_root_certificates(roots);
    if config.cert_file.is_empty() {
        return Ok(builder.with_no_client_auth());
    }
    let cert_pem = fs::read(&config.cert_file)
        .map_err(|e| pem_err("certificate", &config.cert_file, e.to_string()))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_err("certificate", &config.cert_file, e.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(&config.key_file)
        .map_err(|e| pem_err("key", &config.key_file, e.to_string()))?;
    builder
        .with_client_auth_cert(chain, key)
        .map_err(|e| ClientError::Setup(e.to_string()))
}

/// An error with its causes, on one line: reqwest's top-level message alone rarely says why.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_master::FakeMaster;

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

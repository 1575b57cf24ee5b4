//! The HTTP client both pollers share: the TLS, client-certificate and basic-auth settings of
//! `[mesos_dns]` (in DC/OS, masters and agents share one CA and one set of credentials).

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::FetchError;
use crate::config::MesosDnsConfig;

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

/// An HTTP client for Mesos endpoints.
#[derive(Clone, Debug)]
pub struct MesosClient {
    client: reqwest::Client,
    /// `http` or `https`.
    pub scheme: &'static str,
    auth: Option<(String, String)>,
    /// Counts the body bytes read, when set (what a source costs the master).
    read: Option<prometheus::IntCounter>,
}

impl MesosClient {
    /// A client with the TLS and authentication settings of `config`, whose requests time out
    /// after `StateTimeoutSeconds`.
    pub fn new(config: &MesosDnsConfig) -> Result<Self, ClientError> {
        Self::build(config, true)
    }

    /// The same client for a response that lasts (the event stream): only connecting times
    /// out; the stream's own heartbeat watchdog notices a silent master.
    pub fn streaming(config: &MesosDnsConfig) -> Result<Self, ClientError> {
        Self::build(config, false)
    }

    /// Counts every body byte read from now on in `read`.
    pub fn count_bytes(mut self, read: prometheus::IntCounter) -> Self {
        self.read = Some(read);
        self
    }

    fn build(config: &MesosDnsConfig, total_timeout: bool) -> Result<Self, ClientError> {
        let auth = match config.mesos_authentication.as_str() {
            "" => None,
            "basic" => Some((
                config.mesos_credentials.principal.clone(),
                config.mesos_credentials.secret.clone(),
            )),
            other => return Err(ClientError::UnsupportedAuth(other.to_string())),
        };
        let timeout = Duration::from_secs(config.state_timeout_seconds.max(1));
        let mut builder = reqwest::Client::builder();
        if total_timeout {
            builder = builder.timeout(timeout);
        }
        let builder = builder
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
            auth,
            read: None,
        })
    }

    /// The body of a 2xx reply, `None` on 404, an error otherwise (also for a body over
    /// [`MAX_BODY`]).
    pub async fn get(&self, url: &str) -> Result<Option<Vec<u8>>, FetchError> {
        self.get_within(url, MAX_BODY).await
    }

    /// [`get`](Self::get) with a body of at most `limit` bytes.
    pub async fn get_within(&self, url: &str, limit: usize) -> Result<Option<Vec<u8>>, FetchError> {
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
        let body = read_body(resp, url, limit).await?;
        self.counted(body.len());
        Ok(Some(body))
    }

    /// POSTs a v1 operator API call (`{"type": ...}` as JSON) and returns the response,
    /// whatever its status, for the caller to read (as a whole, or as a stream).
    pub async fn post_v1(
        &self,
        url: &str,
        body: &'static str,
    ) -> Result<reqwest::Response, FetchError> {
        let mut req = (self.client.post(url))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(body);
        if let Some((user, pass)) = &self.auth {
            req = req.basic_auth(user, Some(pass));
        }
        req.send().await.map_err(|e| FetchError::Http {
            url: url.to_string(),
            reason: error_chain(&e),
        })
    }

    /// Adds `n` to the bytes-read counter.
    pub fn counted(&self, n: usize) {
        if let Some(read) = &self.read {
            read.inc_by(n as u64);
        }
    }
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

/// The most a state document may weigh (a 10,000-task master's is about 5 MB).
pub(crate) const MAX_BODY: usize = 256 << 20;

/// A response's body, read chunk by chunk and refused past `limit` bytes, so that a master (or
/// whatever answers in its place) cannot make the agent hold an unbounded document.
pub(crate) async fn read_body(
    mut response: reqwest::Response,
    url: &str,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    let err = |reason: String| FetchError::Http {
        url: url.to_string(),
        reason,
    };
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| err(error_chain(&e)))? {
        if body.len() + chunk.len() > limit {
            return Err(err(format!("body larger than {limit} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An error with its causes, on one line: reqwest's top-level message alone rarely says why.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

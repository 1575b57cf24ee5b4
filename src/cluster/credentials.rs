//! This node's TLS files, and keeping gossip in step with them without a restart.
//!
//! In `[cluster] tls_dir`: `ca.pem`, `<name>.pem`, `<name>-key.pem` and, optionally, `revoked`
//! (one node name per line, `#` comments). A certificate cannot be taken back from whoever holds
//! it, so revocation is a deny list every node keeps; rotation is a new certificate and key in
//! the same files. Both take effect on SIGHUP, or within [`POLL`] of a file changing (its mtime),
//! so that an operator's `cp` or a config-management run is enough.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use beacon_gossip::net::{Credentials, Gossip, Reload, X509Keys};
use prometheus::IntGauge;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// How often the files' mtimes are checked.
pub const POLL: Duration = Duration::from_secs(2);

/// Why the TLS files could not be used.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path}: {reason}; make the node's files with `beacon tls node --name NAME --dir DIR` \
     and set [cluster] tls_dir to DIR"
)]
pub struct CredentialsError {
    /// The file.
    pub path: String,
    /// What went wrong.
    pub reason: String,
}

/// The TLS files of node `name` in `dir`.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    dir: PathBuf,
    name: String,
}

/// What the files hold.
pub struct Loaded {
    /// The node's certificate chain and key, and the CA.
    pub credentials: Credentials,
    /// The revoked node names.
    pub revoked: BTreeSet<String>,
}

impl TlsFiles {
    /// The files of node `name` in `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        Self {
            dir: dir.to_path_buf(),
            name: name.to_string(),
        }
    }

    /// Reads the credentials and the deny list (a missing `revoked` is an empty list).
    pub fn load(&self) -> Result<Loaded, CredentialsError> {
        let failed = |path: &Path, e: &dyn std::fmt::Display| CredentialsError {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let read_certs = |file: &str| -> Result<Vec<CertificateDer<'static>>, CredentialsError> {
            let path = self.dir.join(file);
            CertificateDer::pem_file_iter(&path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| failed(&path, &e))
        };
        let key_path = self.dir.join(format!("{}-key.pem", self.name));
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| failed(&key_path, &e))?;
        let revoked_path = self.dir.join("revoked");
        let revoked = match std::fs::read_to_string(&revoked_path) {
            Ok(text) => parse_revoked(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
            Err(e) => return Err(failed(&revoked_path, &e)),
        };
        let credentials = Credentials {
            chain: read_certs(&format!("{}.pem", self.name))?,
            key,
            roots: read_certs("ca.pem")?,
        };
        Ok(Loaded {
            credentials,
            revoked,
        })
    }

    /// The files' modification times: a change means reload.
    fn stamps(&self) -> Vec<Option<SystemTime>> {
        let files = [
            format!("{}.pem", self.name),
            format!("{}-key.pem", self.name),
            "ca.pem".into(),
            "revoked".into(),
        ];
        files
            .iter()
            .map(|f| {
                std::fs::metadata(self.dir.join(f))
                    .and_then(|m| m.modified())
                    .ok()
            })
            .collect()
    }
}

/// The deny list's names: one per line, blank lines and `#` comments ignored.
pub fn parse_revoked(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whole days until `certificate` expires (negative once it has), for
/// `beacon_tls_certificate_expiry_days`.
pub fn expiry_days(certificate: &CertificateDer<'_>, now: SystemTime) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(certificate).ok()?;
    let not_after = cert.validity().not_after.timestamp();
    let now = now.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs() as i64;
    Some((not_after - now).div_euclid(86_400))
}

/// Sets the expiry gauge from `credentials`' leaf certificate.
pub fn set_expiry(gauge: &IntGauge, credentials: &Credentials) {
    let days = credentials
        .chain
        .first()
        .and_then(|c| expiry_days(c, SystemTime::now()));
    gauge.set(days.unwrap_or(0));
}

/// Reloads gossip's credentials and deny list on SIGHUP and whenever a file changes, until
/// gossip stops. A file that cannot be read or a certificate that is refused leaves the last
/// good state in force (and says so in the log).
pub async fn watch(files: TlsFiles, gossip: Gossip, expiry: IntGauge) {
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut stamps = files.stamps();
    loop {
        let hup = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        let signalled = tokio::select! {
            _ = hup => true,
            () = tokio::time::sleep(POLL) => false,
        };
        let now = files.stamps();
        if !signalled && now == stamps {
            continue;
        }
        stamps = now;
        if !reload(&files, &gossip, &expiry).await {
            return;
        }
    }
}

/// One reload; returns false once gossip has stopped.
async fn reload(files: &TlsFiles, gossip: &Gossip, expiry: &IntGauge) -> bool {
    let loaded = match files.load() {
        Ok(loaded) => loaded,
        Err(error) => {
            tracing::error!(%error, "TLS files not reloaded; the previous ones stay in use");
            return true;
        }
    };
    let keys = match X509Keys::new(&loaded.credentials) {
        Ok(keys) => Arc::new(keys),
        Err(error) => {
            tracing::error!(%error, "TLS files not reloaded; the previous ones stay in use");
            return true;
        }
    };
    set_expiry(expiry, &loaded.credentials);
    let revoked = loaded.revoked.clone();
    let reload = Reload {
        credentials: loaded.credentials,
        keys,
        revoked,
    };
    match gossip.reload(reload).await {
        Ok(()) => {
            tracing::info!(revoked = ?loaded.revoked, "TLS files reloaded");
            true
        }
        Err(beacon_gossip::net::ReloadError::Stopped(_)) => false,
        Err(error) => {
            tracing::error!(%error, "TLS files not reloaded; the previous ones stay in use");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deny_list_takes_names_and_skips_comments() {
        let list = parse_revoked("# revoked nodes\nn3\n\n  n4  # lost laptop\n#n5\n");
        assert_eq!(list.into_iter().collect::<Vec<_>>(), ["n3", "n4"]);
    }

    #[test]
    fn expiry_counts_whole_days_left() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["n1".into()]).unwrap();
        params.not_after = rcgen::date_time_ymd(2030, 1, 31);
        let cert = params.self_signed(&key).unwrap();
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        let jan_1_2030 = 1_893_456_000;
        assert_eq!(expiry_days(cert.der(), at(jan_1_2030)), Some(30));
        assert_eq!(
            expiry_days(cert.der(), at(jan_1_2030 + 29 * 86_400 + 1)),
            Some(0)
        );
        assert_eq!(
            expiry_days(cert.der(), at(jan_1_2030 + 30 * 86_400 + 1)),
            Some(-1)
        );
    }
}

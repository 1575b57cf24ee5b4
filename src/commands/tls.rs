//! The cluster's certificates: `beacon tls ca` makes a cluster CA, `beacon tls node` issues a
//! node certificate signed by it. Every gossip connection is mutual TLS against that CA, so a
//! peer without a certificate from it can neither join, read nor write.
//!
//! Files are PEM: `ca.pem`/`ca-key.pem` and `<node>.pem`/`<node>-key.pem` in one directory.
//! Private keys are written with mode 0600 and never overwritten.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// Why certificates could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// Occurs when a file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Occurs when a key or certificate cannot be generated or parsed.
    #[error("{what}: {source}")]
    Cert {
        /// What was being done.
        what: String,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// Occurs when a node name is not a DNS label (it is the name peers verify).
    #[error(
        "invalid node name {0:?}: use 1 to 63 of a-z, 0-9 and '-', not starting or ending with '-'"
    )]
    BadName(String),
    /// Occurs when the output would replace an existing key.
    #[error("{0} exists; remove it first if you mean to replace it")]
    Exists(PathBuf),
}

/// Creates a cluster CA in `dir`, valid for `days`.
pub fn create_ca(dir: &Path, days: u32) -> Result<PathBuf, TlsError> {
    let (cert_path, key_path) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    refuse_existing(&[&cert_path, &key_path])?;
    let key = KeyPair::generate().map_err(cert_err("generating the CA key"))?;
    let cert = ca_params(days)
        .self_signed(&key)
        .map_err(cert_err("signing the CA certificate"))?;
    write(dir, &key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write(dir, &cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(cert_path)
}

/// Issues a certificate for node `name` from the CA in `dir`, valid for `days`. Peers verify
/// it as both client and server, under the DNS name `name`.
pub fn issue_node(dir: &Path, name: &str, days: u32) -> Result<PathBuf, TlsError> {
    issue_node_with_role(dir, name, days, false)
}

/// [`issue_node`], with the master-poller role when `master_poller`: an extended key usage
/// (`beacon_gossip::net::MASTER_POLLER_OID`) without which peers refuse the node's writes of
/// the Mesos master's state.
pub fn issue_node_with_role(
    dir: &Path,
    name: &str,
    days: u32,
    master_poller: bool,
) -> Result<PathBuf, TlsError> {
    if !is_node_name(name) {
        return Err(TlsError::BadName(name.to_string()));
    }
    let (cert_path, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    refuse_existing(&[&cert_path, &key_path])?;
    let ca_key_pem = read(&dir.join("ca-key.pem"))?;
    let ca_pem = read(&dir.join("ca.pem"))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(cert_err("reading ca-key.pem"))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(cert_err("reading ca.pem"))?;
    let key = KeyPair::generate().map_err(cert_err("generating the node key"))?;
    let mut params = node_params(name, days)?;
    if master_poller {
        // rcgen encodes custom EKU OIDs only with u64 components; the UUID-arc OID is written
        // as the whole extension (id-ce-extKeyUsage, 2.5.29.37) instead.
        params.extended_key_usages.clear();
        params
            .custom_extensions
            .push(rcgen::CustomExtension::from_oid_content(
                &[2, 5, 29, 37],
                beacon_gossip::net::MASTER_POLLER_EKU_EXTENSION.to_vec(),
            ));
    }
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(cert_err("signing the node certificate"))?;
    write(dir, &key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write(dir, &cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(cert_path)
}

/// Whether `name` can name a node: a lower-case DNS label.
pub fn is_node_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn ca_params(days: u32) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "Beacon cluster CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params, days);
    params
}

fn node_params(name: &str, days: u32) -> Result<CertificateParams, TlsError> {
    let mut params =
        CertificateParams::new(vec![name.to_string()]).map_err(cert_err("node name"))?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    set_validity(&mut params, days);
    Ok(params)
}

fn set_validity(params: &mut CertificateParams, days: u32) {
    let now = rcgen::date_time_ymd(1970, 1, 1)
        + std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
    // A little slack for clocks that disagree.
    params.not_before = now - std::time::Duration::from_secs(3600);
    params.not_after = now + std::time::Duration::from_secs(u64::from(days) * 86_400);
}

fn cert_err(what: &'static str) -> impl Fn(rcgen::Error) -> TlsError {
    move |source| TlsError::Cert {
        what: what.to_string(),
        source,
    }
}

fn refuse_existing(paths: &[&Path]) -> Result<(), TlsError> {
    match paths.iter().find(|p| p.exists()) {
        Some(p) => Err(TlsError::Exists(p.to_path_buf())),
        None => Ok(()),
    }
}

fn read(path: &Path) -> Result<String, TlsError> {
    fs::read_to_string(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write(dir: &Path, path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let io = |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("beacon-tls-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn verifies(ca_dir: &Path, cert: &Path, name: &str) -> bool {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(ca_dir.join("ca.pem")).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let leaf = CertificateDer::from_pem_file(cert).unwrap();
        let name = ServerName::try_from(name.to_string()).unwrap();
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
            .is_ok()
    }

    #[test]
    fn node_certificates_verify_against_their_ca_only() {
        let (a, b) = (temp("a"), temp("b"));
        create_ca(&a, 30).unwrap();
        create_ca(&b, 30).unwrap();
        let n1 = issue_node(&a, "n1", 30).unwrap();
        let rogue = issue_node(&b, "n1", 30).unwrap();
        assert!(verifies(&a, &n1, "n1"));
        assert!(!verifies(&a, &n1, "n2"), "the name is part of the identity");
        assert!(
            !verifies(&a, &rogue, "n1"),
            "another CA's certificate is refused"
        );
        assert!(matches!(create_ca(&a, 30), Err(TlsError::Exists(_))));
        assert!(matches!(issue_node(&a, "n1", 30), Err(TlsError::Exists(_))));
        assert!(matches!(
            issue_node(&a, "Bad_Name", 30),
            Err(TlsError::BadName(_))
        ));
        let mode = fs::metadata(a.join("n1-key.pem")).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let _ = (fs::remove_dir_all(&a), fs::remove_dir_all(&b));
    }
}

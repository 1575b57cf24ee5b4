//! The agent's [`Keys`]: its node key signs, and writers' certificates are checked against the
//! cluster CA with webpki, as TLS checks them, plus the master-poller role.
//!
//! The role is an extended key usage: a private OID under the UUID arc (X.667),
//! `2.25.285709754464839782575581963290917847271`, beside serverAuth and clientAuth. An EKU is
//! what says what a key may be used for, webpki reads it while it builds the path (no X.509
//! parser needed), and a node name (a DNS label) can never collide with it, as a SAN or OU
//! convention could. `beacon tls node --role master-poller` writes it
//! ([`MASTER_POLLER_EKU_EXTENSION`]).

use std::cell::Cell;
use std::time::Duration;

use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeId, KeyPurposeIdIter};

use crate::core::trust::{Keys, Writer};
use crate::net::transport::{Credentials, TransportError};

/// The master-poller role's OID, DER content (`2.25.285709754464839782575581963290917847271`).
pub const MASTER_POLLER_OID: &[u8] = &[
    0x69, 0x83, 0xad, 0xf1, 0xd9, 0x9e, 0x93, 0xa0, 0xca, 0xb8, 0xad, 0x9d, 0xcf, 0xaf, 0xa3, 0xc4,
    0xc6, 0xd7, 0x81, 0x67,
];

/// The whole extended-key-usage extension value of a master poller's certificate, DER:
/// `SEQUENCE { serverAuth, clientAuth, master-poller }`. rcgen takes custom EKU OIDs only with
/// components that fit a u64, so the certificate tool writes this as a raw extension (OID
/// 2.5.29.37).
pub const MASTER_POLLER_EKU_EXTENSION: &[u8] = &[
    0x30, 0x2a, // SEQUENCE, 42 bytes
    0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01, // serverAuth
    0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02, // clientAuth
    0x06, 0x14, 0x69, 0x83, 0xad, 0xf1, 0xd9, 0x9e, 0x93, 0xa0, 0xca, 0xb8, 0xad, 0x9d, 0xcf, 0xaf,
    0xa3, 0xc4, 0xc6, 0xd7, 0x81, 0x67, // master-poller
];

/// clientAuth's OID, DER content: every node certificate must allow it (as TLS requires).
const CLIENT_AUTH_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

/// The DER prefix of a P-256 public key's SubjectPublicKeyInfo; the 65-byte point follows.
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// This node's key and certificate, and the cluster CA. See the module docs.
pub struct X509Keys {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    certificate: Vec<u8>,
    anchors: Vec<TrustAnchor<'static>>,
}

/// Notes the master-poller OID while webpki walks a certificate's EKUs, and requires
/// clientAuth when the certificate lists EKUs at all.
#[derive(Default)]
struct Roles {
    master_poller: Cell<bool>,
}

impl X509Keys {
    /// The keys of the node whose TLS credentials are `creds` (an ECDSA P-256 key, as
    /// `beacon tls node` makes).
    pub fn new(creds: &Credentials) -> Result<Self, TransportError> {
        let tls = |what: &str| {
            TransportError::Tls(format!(
                "{what}; make the node's files with `beacon tls node`, which uses ECDSA P-256"
            ))
        };
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            creds.key.secret_der(),
            &rng,
        )
        .map_err(|_| tls("the node key is not a PKCS#8 ECDSA P-256 key"))?;
        let certificate = creds
            .chain
            .first()
            .ok_or_else(|| tls("no node certificate"))?
            .to_vec();
        // A rotation copies two files; between the copies the key is not the certificate's.
        let der = CertificateDer::from(certificate.as_slice());
        let spki = EndEntityCert::try_from(&der)
            .map(|cert| cert.subject_public_key_info().to_vec())
            .map_err(|e| tls(&format!("the node certificate: {e}")))?;
        if spki.strip_prefix(P256_SPKI_PREFIX) != Some(key.public_key().as_ref()) {
            return Err(tls(
                "the node key is not the key of the node certificate (copy both files, the \
                 certificate and its -key.pem, from one `beacon tls node` run)",
            ));
        }
        let anchors = creds
            .roots
            .iter()
            .map(|root| webpki::anchor_from_trusted_cert(root).map(|a| a.to_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls(&format!("the CA certificate: {e}")))?;
        Ok(Self {
            key,
            rng,
            certificate,
            anchors,
        })
    }
}

impl Keys for X509Keys {
    fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        // ring fails to sign only if the system RNG fails; an empty seal is then refused by
        // every peer, which is the safe outcome.
        self.key
            .sign(&self.rng, message)
            .map_or_else(|_| Vec::new(), |s| s.as_ref().to_vec())
    }

    fn admit(&self, certificate: &[u8], unix_secs: u64) -> Result<Writer, String> {
        let der = CertificateDer::from(certificate);
        let cert = EndEntityCert::try_from(&der).map_err(|e| e.to_string())?;
        let roles = Roles::default();
        let time = UnixTime::since_unix_epoch(Duration::from_secs(unix_secs));
        cert.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.anchors,
            &[],
            time,
            &roles,
            None,
            None,
        )
        .map_err(|e| format!("not a valid certificate from the cluster CA: {e}"))?;
        let spki = cert.subject_public_key_info();
        let public_key = spki
            .strip_prefix(P256_SPKI_PREFIX)
            .filter(|point| point.len() == 65)
            .ok_or("not an ECDSA P-256 key")?
            .to_vec();
        Ok(Writer {
            names: cert.valid_dns_names().map(str::to_owned).collect(),
            master_poller: roles.master_poller.get(),
            public_key,
        })
    }
}

impl ExtendedKeyUsageValidator for Roles {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let (mut listed, mut client) = (false, false);
        for id in iter {
            let id = id?;
            listed = true;
            client |= id == KeyPurposeId::new(CLIENT_AUTH_OID);
            if id == KeyPurposeId::new(MASTER_POLLER_OID) {
                self.master_poller.set(true);
            }
        }
        if listed && !client {
            let context = webpki::RequiredEkuNotFoundContext {
                required: webpki::KeyUsage::client_auth(),
                present: Vec::new(),
            };
            return Err(webpki::Error::RequiredEkuNotFoundContext(context));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, CustomExtension, ExtendedKeyUsagePurpose, IsCa,
        Issuer, KeyPair,
    };
    use rustls_pki_types::PrivateKeyDer;

    use super::*;

    fn ca() -> (CertificateDer<'static>, Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        (cert.der().clone(), Issuer::new(params, key))
    }

    fn node(
        ca: &(CertificateDer<'static>, Issuer<'static, KeyPair>),
        name: &str,
        poller: bool,
    ) -> X509Keys {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.into()]).unwrap();
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if poller {
            params.extended_key_usages.clear();
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[2, 5, 29, 37],
                    MASTER_POLLER_EKU_EXTENSION.to_vec(),
                ));
        }
        let cert = params.signed_by(&key, &ca.1).unwrap();
        X509Keys::new(&Credentials {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            roots: vec![ca.0.clone()],
        })
        .unwrap()
    }

    #[test]
    fn names_and_roles_come_from_certificates_of_our_ca_only() {
        let (ours, theirs) = (ca(), ca());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let n1 = node(&ours, "n1", false);
        let poller = node(&ours, "n2", true);
        let rogue = node(&theirs, "n1", true);
        let writer = n1.admit(n1.certificate(), now).unwrap();
        assert_eq!(writer.names, ["n1"]);
        assert!(!writer.master_poller);
        let writer = n1.admit(poller.certificate(), now).unwrap();
        assert_eq!(writer.names, ["n2"]);
        assert!(writer.master_poller);
        assert!(n1.admit(rogue.certificate(), now).is_err());
        // A signature by n1's key verifies against the key admitted from its certificate.
        let writer = poller.admit(n1.certificate(), now).unwrap();
        let key = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            writer.public_key,
        );
        assert!(key.verify(b"m", &n1.sign(b"m")).is_ok());
    }
}

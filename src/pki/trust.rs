//! Trust anchors and CRLs (DESIGN.md §5, §11).
//!
//! A [`TrustStore`] is immutable once built; operators reload by building a new one
//! (an OpenSSL store cannot replace a CRL). Its [`TrustStore::version`] is a hash of
//! its contents, so verification caches key on it and a reload invalidates them.
//!
//! CRLs are kept beside the OpenSSL store rather than inside it: the engine evaluates
//! revocation itself so that "no current CRL" becomes INDETERMINATE / TRY_LATER (not a
//! chain failure) and so that the time-dependent part (is the CRL current *now*) can be
//! re-evaluated per call while the expensive part (CRL signature, serial lookup) is
//! cached.

use std::path::Path;

use chrono::{DateTime, Utc};
use openssl::hash::MessageDigest;
use openssl::pkey::Id;
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder, X509StoreRef};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{
    X509Crl, X509CrlRef, X509NameRef, X509PurposeId, X509Ref, X509StoreContext, X509,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::pki::certs::{asn1_to_unix, name_to_string, unix_to_rfc3339};
use crate::pki::gm::{self, Sm2Certificate, Sm2PublicKey};
use crate::pki::policy::key_type;

/// Largest trust file read from a directory.
const MAX_TRUST_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Why a trust store could not be built.
#[derive(Debug, Error)]
pub enum TrustStoreError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Bytes that are not a PEM or DER certificate.
    #[error("not a certificate: {0}")]
    BadCertificate(String),
    /// Bytes that are not a PEM or DER CRL.
    #[error("not a CRL: {0}")]
    BadCrl(String),
    /// OpenSSL refused to build the store.
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// A CRL with the fields the engine needs pre-extracted.
pub(crate) struct StoredCrl {
    pub(crate) crl: X509Crl,
    pub(crate) source: CrlSource,
    pub(crate) issuer_der: Vec<u8>,
    pub(crate) this_update: i64,
    pub(crate) next_update: Option<i64>,
}

/// Where a CRL in the store came from, named in verification reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrlSource {
    /// Registered by the operator (API upload or the certificates directory).
    Operator,
    /// Fetched by the exchange from a CRL distribution point.
    Fetched {
        /// The http URL named in the certificates.
        url: String,
        /// When it was fetched, Unix seconds.
        at: i64,
    },
}

impl std::fmt::Display for CrlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CrlSource::Operator => f.write_str("crl (uploaded by the operator)"),
            CrlSource::Fetched { url, at } => {
                write!(f, "crl (fetched from {url} at {})", unix_to_rfc3339(*at))
            }
        }
    }
}

/// A verified OCSP answer about one certificate (read by the OCSP module, `pki::ocsp`; kept
/// here, beside the CRLs, because the store carries it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspAnswer {
    /// The responder it came from.
    pub url: String,
    /// When the responder signed it (producedAt), Unix seconds.
    pub produced_at: i64,
    /// thisUpdate, Unix seconds.
    pub this_update: i64,
    /// nextUpdate, Unix seconds; `None` when the responder gives none.
    pub next_update: Option<i64>,
    /// The revocation time when the status is revoked; `None` when good.
    pub revoked_at: Option<i64>,
}

impl OcspAnswer {
    /// How reports name the source: `ocsp (<url>, produced at <time>)`.
    pub fn source(&self) -> String {
        format!(
            "ocsp ({}, produced at {})",
            self.url,
            unix_to_rfc3339(self.produced_at)
        )
    }
}

/// Whether a trust anchor has a current CRL (for operator dashboards).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CaCrlStatus {
    /// Anchor subject.
    pub subject: String,
    /// Anchor SHA-256 fingerprint.
    pub sha256_fingerprint: String,
    /// A CRL signed by this anchor is current at the time asked.
    pub has_current_crl: bool,
    /// Latest nextUpdate among this anchor's CRLs, RFC 3339.
    pub next_update: Option<String>,
}

/// Immutable set of trust anchors and CRLs.
pub struct TrustStore {
    store: X509Store,
    anchors: Vec<X509>,
    /// The anchors with SM2 keys, read for the SM2 chain builder (OpenSSL 3.0 checks SM2
    /// certificate signatures with an empty distinguishing ID, not GM/T 0009's default).
    sm2_anchors: Vec<Sm2Certificate>,
    crls: Vec<StoredCrl>,
    /// Verified OCSP answers by the SHA-256 of the certificate they speak of.
    ocsp: Vec<([u8; 32], OcspAnswer)>,
    version: String,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("anchors", &self.anchors.len())
            .field("crls", &self.crls.len())
            .field("ocsp_answers", &self.ocsp.len())
            .field("version", &self.version)
            .finish()
    }
}

/// Collects anchors and CRLs, then [`TrustStoreBuilder::build`]s a [`TrustStore`].
#[derive(Default)]
pub struct TrustStoreBuilder {
    anchors: Vec<X509>,
    crls: Vec<(X509Crl, CrlSource)>,
    ocsp: Vec<([u8; 32], OcspAnswer)>,
}

fn is_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

impl TrustStoreBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds trust anchors from PEM (one or more certificates) or DER bytes.
    pub fn add_certificates(&mut self, bytes: &[u8]) -> Result<&mut Self, TrustStoreError> {
        let certs = if is_pem(bytes) {
            X509::stack_from_pem(bytes)
                .map_err(|e| TrustStoreError::BadCertificate(e.to_string()))?
        } else {
            vec![X509::from_der(bytes)
                .map_err(|e| TrustStoreError::BadCertificate(e.to_string()))?]
        };
        if certs.is_empty() {
            return Err(TrustStoreError::BadCertificate(
                "no certificate in PEM".into(),
            ));
        }
        self.anchors.extend(certs);
        Ok(self)
    }

    /// Adds CRLs from PEM (one or more) or DER bytes, registered by the operator.
    pub fn add_crls(&mut self, bytes: &[u8]) -> Result<&mut Self, TrustStoreError> {
        self.add_crls_from(bytes, CrlSource::Operator)
    }

    /// Adds CRLs from PEM (one or more) or DER bytes, saying where they came from.
    pub fn add_crls_from(
        &mut self,
        bytes: &[u8],
        source: CrlSource,
    ) -> Result<&mut Self, TrustStoreError> {
        const BEGIN: &str = "-----BEGIN X509 CRL-----";
        if is_pem(bytes) {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| TrustStoreError::BadCrl("PEM is not ASCII".into()))?;
            let mut found = 0;
            for (start, _) in text.match_indices(BEGIN) {
                let crl = X509Crl::from_pem(&bytes[start..])
                    .map_err(|e| TrustStoreError::BadCrl(e.to_string()))?;
                self.crls.push((crl, source.clone()));
                found += 1;
            }
            if found == 0 {
                return Err(TrustStoreError::BadCrl("no CRL in PEM".into()));
            }
        } else {
            self.crls.push((
                X509Crl::from_der(bytes).map_err(|e| TrustStoreError::BadCrl(e.to_string()))?,
                source,
            ));
        }
        Ok(self)
    }

    /// Loads every `*.pem`, `*.crt`, `*.cer`, `*.der` (certificates) and `*.crl` file of a
    /// directory (not recursive). PEM files may hold certificates and CRLs together.
    pub fn add_directory(&mut self, dir: &Path) -> Result<&mut Self, TrustStoreError> {
        let io = |path: &Path, source| TrustStoreError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase)
                .unwrap_or_default();
            if !["pem", "crt", "cer", "der", "crl"].contains(&ext.as_str()) {
                continue;
            }
            let bytes = read_capped(&path).map_err(|e| io(&path, e))?;
            if is_pem(&bytes) {
                let text = String::from_utf8_lossy(&bytes);
                if text.contains("-----BEGIN CERTIFICATE-----") {
                    self.add_certificates(&bytes)?;
                }
                if text.contains("-----BEGIN X509 CRL-----") {
                    self.add_crls(&bytes)?;
                }
            } else if ext == "crl" {
                self.add_crls(&bytes)?;
            } else {
                self.add_certificates(&bytes)?;
            }
        }
        Ok(self)
    }

    /// Adds an OCSP answer, verified by `pki::ocsp::read_response`, about the
    /// certificate whose DER has SHA-256 `certificate_sha256`.
    pub fn add_ocsp_answer(
        &mut self,
        certificate_sha256: [u8; 32],
        answer: OcspAnswer,
    ) -> &mut Self {
        self.ocsp.push((certificate_sha256, answer));
        self
    }

    /// Builds the immutable store.
    pub fn build(self) -> Result<TrustStore, TrustStoreError> {
        let mut builder = X509StoreBuilder::new()?;
        // Time is checked by the engine at the *signing* time, not here; PARTIAL_CHAIN
        // lets an operator trust an intermediate directly; purpose ANY because the S/MIME
        // purpose rejects documentSigning EKUs (DESIGN.md §11).
        builder.set_flags(X509VerifyFlags::NO_CHECK_TIME | X509VerifyFlags::PARTIAL_CHAIN)?;
        builder.set_purpose(X509PurposeId::ANY)?;

        let mut items: Vec<Vec<u8>> = Vec::new();
        let mut anchors = Vec::new();
        for cert in self.anchors {
            let der = cert.to_der()?;
            let mut item = b"C".to_vec();
            item.extend_from_slice(&der);
            if items.contains(&item) {
                continue;
            }
            items.push(item);
            builder.add_cert(cert.clone())?;
            anchors.push(cert);
        }
        let mut crls = Vec::new();
        for (crl, source) in self.crls {
            // The source is part of the item: reports name it, so a CRL that changes
            // source changes the version (and the cached facts that name it).
            let mut item = b"R".to_vec();
            item.extend_from_slice(source.to_string().as_bytes());
            item.push(0);
            item.extend_from_slice(&crl.to_der()?);
            if items.contains(&item) {
                continue;
            }
            items.push(item);
            crls.push(StoredCrl {
                issuer_der: crl.issuer_name().to_der()?,
                this_update: asn1_to_unix(crl.last_update())?,
                next_update: crl.next_update().map(asn1_to_unix).transpose()?,
                crl,
                source,
            });
        }
        for (fingerprint, answer) in &self.ocsp {
            let mut item = b"O".to_vec();
            item.extend_from_slice(fingerprint);
            item.extend_from_slice(format!("{answer:?}").as_bytes());
            items.push(item);
        }
        // Order-independent: the same files in any order give the same version.
        items.sort();
        let mut hasher = Sha256::new();
        for item in &items {
            hasher.update((item.len() as u64).to_be_bytes());
            hasher.update(item);
        }
        let version = hex::encode(&hasher.finalize()[..16]);
        let sm2_anchors = anchors.iter().filter_map(sm2_certificate).collect();
        Ok(TrustStore {
            store: builder.build(),
            sm2_anchors,
            anchors,
            crls,
            ocsp: self.ocsp,
            version,
        })
    }
}

/// `cert` read as an SM2 certificate, when it carries an SM2 key.
fn sm2_certificate(cert: &X509) -> Option<Sm2Certificate> {
    let parsed = Sm2Certificate::from_der(&cert.to_der().ok()?).ok()?;
    parsed.public_key().ok()?;
    Some(parsed)
}

/// The SM2 key of `cert`, if it has one.
fn sm2_key(cert: &X509Ref) -> Option<Sm2PublicKey> {
    Sm2Certificate::from_der(&cert.to_der().ok()?)
        .ok()?
        .public_key()
        .ok()
}

/// Whether `cert` is signed SM2-with-SM3 (so its chain is built by [`gm`], not OpenSSL).
fn is_sm2_signed(cert: &X509Ref) -> bool {
    cert.to_der()
        .ok()
        .and_then(|der| Sm2Certificate::from_der(&der).ok())
        .is_some_and(|c| c.certificate().signature_algorithm.oid == gm::oid::SM2_WITH_SM3)
}

/// Whether the key of `issuer` validly signed `crl`: an SM2 key with GM/T 0009's default
/// distinguishing ID (which OpenSSL 3.0 does not use for CRLs), any other by OpenSSL.
pub(crate) fn crl_signed_by(crl: &X509CrlRef, issuer: &X509Ref) -> bool {
    let Ok(key) = issuer.public_key() else {
        return false;
    };
    if key_type(&key) == Id::SM2 {
        return match (sm2_key(issuer), crl.to_der()) {
            (Some(key), Ok(der)) => gm::verify_crl_signed_by(&der, &key).is_ok(),
            _ => false,
        };
    }
    crl.verify(&key).unwrap_or(false)
}

fn read_capped(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_TRUST_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_TRUST_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "file too large",
        ));
    }
    Ok(bytes)
}

impl TrustStore {
    /// Loads a store from a directory (see [`TrustStoreBuilder::add_directory`]).
    pub fn from_directory(dir: &Path) -> Result<Self, TrustStoreError> {
        let mut builder = TrustStoreBuilder::new();
        builder.add_directory(dir)?;
        builder.build()
    }

    /// Hash of the anchors and CRLs; changes whenever the contents change.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The trust anchors.
    pub fn anchors(&self) -> &[X509] {
        &self.anchors
    }

    /// The OpenSSL store of the anchors (time checks off, partial chains allowed).
    pub(crate) fn x509_store(&self) -> &X509StoreRef {
        &self.store
    }

    /// The OCSP answer about the certificate whose DER has this SHA-256, if any.
    pub(crate) fn ocsp_answer(&self, certificate_sha256: &[u8; 32]) -> Option<&OcspAnswer> {
        self.ocsp
            .iter()
            .find(|(f, _)| f == certificate_sha256)
            .map(|(_, a)| a)
    }

    /// Builds the chain from `cert` to an anchor, using `untrusted` intermediates.
    /// Time is not checked here (see the module docs). Returns the chain, leaf first,
    /// or OpenSSL's reason.
    pub(crate) fn build_chain(
        &self,
        cert: &X509,
        untrusted: &Stack<X509>,
    ) -> Result<Result<Vec<X509>, String>, openssl::error::ErrorStack> {
        if is_sm2_signed(cert) {
            return Ok(self.build_sm2_chain(cert, untrusted));
        }
        let mut ctx = X509StoreContext::new()?;
        ctx.init(&self.store, cert, untrusted, |ctx| {
            if ctx.verify_cert()? {
                let chain = ctx
                    .chain()
                    .map(|c| c.iter().map(|x| x.to_owned()).collect())
                    .unwrap_or_default();
                Ok(Ok(chain))
            } else {
                Ok(Err(ctx.error().error_string().to_owned()))
            }
        })
    }

    /// [`build_chain`](Self::build_chain) for a certificate signed SM2-with-SM3: the same
    /// rules (each issuer a CA allowed to sign certificates whose key verifies the
    /// signature, intermediates from `untrusted`, no time checks), with the default
    /// distinguishing ID.
    fn build_sm2_chain(&self, cert: &X509, untrusted: &Stack<X509>) -> Result<Vec<X509>, String> {
        let leaf = cert
            .to_der()
            .map_err(|e| e.to_string())
            .and_then(|der| Sm2Certificate::from_der(&der).map_err(|e| e.to_string()))?;
        let carried: Vec<Sm2Certificate> = untrusted
            .iter()
            .filter_map(|c| c.to_der().ok())
            .filter_map(|der| Sm2Certificate::from_der(&der).ok())
            .collect();
        let chain = gm::verify::chain_to_anchor(&leaf, &carried, &self.sm2_anchors)
            .map_err(|e| e.to_string())?;
        chain
            .iter()
            .map(|c| X509::from_der(c.der()).map_err(|e| e.to_string()))
            .collect()
    }

    /// Whether `cert` may be registered as a signing certificate at `at`: it chains to a
    /// trust anchor through a CA (it is not an anchor itself), and a current CRL of that
    /// CA, validly signed, is registered and does not list it, so its revocation status
    /// is known. `Err` says what is missing, as the end of a sentence about the
    /// certificate.
    pub fn check_registrable(&self, cert: &X509, at: DateTime<Utc>) -> Result<(), String> {
        let untrusted = Stack::new().map_err(|e| e.to_string())?;
        let chain = self
            .build_chain(cert, &untrusted)
            .map_err(|e| e.to_string())?
            .map_err(|reason| format!("does not chain to a trust anchor ({reason})"))?;
        let Some(issuer) = chain.get(1) else {
            return Err("is a trust anchor itself, not a certificate issued by one".into());
        };
        let now = at.timestamp();
        let current: Vec<&StoredCrl> = self
            .crls_named(issuer.subject_name())
            .into_iter()
            .filter(|c| crl_signed_by(&c.crl, issuer))
            .filter(|c| c.this_update <= now && c.next_update.is_some_and(|n| now < n))
            .collect();
        if current.is_empty() {
            return Err(format!(
                "has no known revocation status: no current CRL of {} is registered",
                name_to_string(issuer.subject_name())
            ));
        }
        if current.iter().any(|c| {
            matches!(
                c.crl.get_by_cert(cert),
                openssl::x509::CrlStatus::Revoked(_)
            )
        }) {
            return Err("is revoked by its CA".into());
        }
        Ok(())
    }

    /// The trust anchor that issued and validly signed `crl`, if any: a CRL fetched from
    /// a distribution point is stored only when this finds one.
    pub fn crl_signer(&self, crl: &X509CrlRef) -> Option<&X509> {
        let issuer = crl.issuer_name().to_der().ok()?;
        self.anchors.iter().find(|anchor| {
            anchor.subject_name().to_der().ok().as_deref() == Some(&issuer[..])
                && crl_signed_by(crl, anchor)
        })
    }

    /// CRLs naming `issuer` as their issuer (signatures not yet checked).
    pub(crate) fn crls_named(&self, issuer: &X509NameRef) -> Vec<&StoredCrl> {
        let Ok(der) = issuer.to_der() else {
            return Vec::new();
        };
        self.crls.iter().filter(|c| c.issuer_der == der).collect()
    }

    /// For each anchor, whether one of its (validly signed) CRLs is current at `at`.
    pub fn crl_status(&self, at: DateTime<Utc>) -> Vec<CaCrlStatus> {
        let now = at.timestamp();
        self.anchors
            .iter()
            .map(|anchor| {
                let own: Vec<&StoredCrl> = self
                    .crls_named(anchor.subject_name())
                    .into_iter()
                    .filter(|c| crl_signed_by(&c.crl, anchor))
                    .collect();
                let has_current_crl = own
                    .iter()
                    .any(|c| c.this_update <= now && c.next_update.is_some_and(|n| now < n));
                CaCrlStatus {
                    subject: name_to_string(anchor.subject_name()),
                    sha256_fingerprint: anchor
                        .digest(MessageDigest::sha256())
                        .map(|d| hex::encode(&*d))
                        .unwrap_or_default(),
                    has_current_crl,
                    next_update: own
                        .iter()
                        .filter_map(|c| c.next_update)
                        .max()
                        .map(unix_to_rfc3339),
                }
            })
            .collect()
    }
}

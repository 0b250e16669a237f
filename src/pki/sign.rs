//! Detached CAdES-BES signing (DESIGN.md §4).

use chrono::Utc;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::{Id, PKeyRef, Private};
use openssl::stack::Stack;
use openssl::x509::X509;
use thiserror::Error;

use crate::pki::cms_parse::{oid, parse_signed_data};
use crate::pki::document::MAX_DOCUMENT_BYTES;
use crate::pki::gm::{self, Sm2Certificate, Sm2PrivateKey, Sm2SignError};
use crate::pki::policy::key_type;

/// OpenSSL's `CMS_CADES` flag: adds the signingCertificateV2 attribute. rust-openssl 0.10
/// has no named constant for it.
const CMS_CADES: u32 = 0x10_0000;

/// Why signing failed.
#[derive(Debug, Error)]
pub enum SignError {
    /// Refused to sign more than a document can be.
    #[error("document is {0} bytes, more than the {MAX_DOCUMENT_BYTES}-byte limit")]
    TooLarge(usize),
    /// The key's default digest is not SHA-256 (e.g. a P-384 key); only SHA-256 is
    /// specified for guarantees.
    #[error("the signing key does not sign with SHA-256; use P-256 or RSA-2048+")]
    UnsupportedKey,
    /// OpenSSL failed (e.g. key does not match certificate).
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    /// An SM2 signature could not be made (e.g. key does not match certificate).
    #[error("SM2: {0}")]
    Sm2(#[from] Sm2SignError),
}

/// Signs `document` with a detached CMS SignedData: CAdES-BES (signingCertificateV2 and
/// signingTime), SHA-256, binary mode (no CRLF translation), DER, carrying `cert` and any
/// `chain` certificates. An SM2 key signs SM2-with-SM3 over an SM3 digest instead
/// ([`gm::sign_detached`]: OpenSSL 3.0's CMS cannot), with the same attributes.
pub fn sign_detached(
    document: &[u8],
    cert: &X509,
    key: &PKeyRef<Private>,
    chain: &[X509],
) -> Result<Vec<u8>, SignError> {
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(SignError::TooLarge(document.len()));
    }
    if key_type(key) == Id::SM2 {
        return sign_sm2(document, cert, key, chain);
    }
    let mut extra = Stack::new()?;
    for c in chain {
        extra.push(c.clone())?;
    }
    let flags = CMSOptions::DETACHED
        | CMSOptions::BINARY
        | CMSOptions::NOSMIMECAP
        | CMSOptions::from_bits_retain(CMS_CADES);
    // CMS_sign adds contentType, messageDigest and signingTime itself; the digest is the
    // key's default, which is SHA-256 for P-256 and RSA in OpenSSL 3 (checked below).
    let cms = CmsContentInfo::sign(Some(cert), Some(key), Some(&extra), Some(document), flags)?;
    let der = cms.to_der()?;
    let uses_sha256 = parse_signed_data(&der)
        .map(|sd| sd.signer.digest_algorithm == oid::SHA256)
        .unwrap_or(false);
    if !uses_sha256 {
        return Err(SignError::UnsupportedKey);
    }
    Ok(der)
}

fn sign_sm2(
    document: &[u8],
    cert: &X509,
    key: &PKeyRef<Private>,
    chain: &[X509],
) -> Result<Vec<u8>, SignError> {
    let read = |c: &X509| -> Result<Sm2Certificate, SignError> {
        Sm2Certificate::from_der(&c.to_der()?)
            .map_err(|e| Sm2SignError::NotSm2Certificate(e.to_string()).into())
    };
    let mut pkcs8 = key.private_key_to_pkcs8()?;
    let sm2_key = Sm2PrivateKey::from_pkcs8_der(&pkcs8).map_err(Sm2SignError::from);
    pkcs8.fill(0);
    let extra = chain.iter().map(read).collect::<Result<Vec<_>, _>>()?;
    // The signer's claimed signing time, from the system clock as OpenSSL's CMS takes it.
    Ok(gm::sign_detached(
        document,
        &sm2_key?,
        &read(cert)?,
        &extra,
        Utc::now(),
    )?)
}

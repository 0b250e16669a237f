//! Detached CAdES-BES signing (DESIGN.md §4).

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::pkey::{PKeyRef, Private};
use openssl::stack::Stack;
use openssl::x509::X509;
use thiserror::Error;

use crate::pki::cms_parse::{oid, parse_signed_data};
use crate::pki::document::MAX_DOCUMENT_BYTES;

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
}

/// Signs `document` with a detached CMS SignedData: CAdES-BES (signingCertificateV2 and
/// signingTime), SHA-256, binary mode (no CRLF translation), DER, carrying `cert` and any
/// `chain` certificates.
pub fn sign_detached(
    document: &[u8],
    cert: &X509,
    key: &PKeyRef<Private>,
    chain: &[X509],
) -> Result<Vec<u8>, SignError> {
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(SignError::TooLarge(document.len()));
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

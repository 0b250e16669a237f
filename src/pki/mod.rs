//! PKI layer: the signed guarantee document, CAdES-BES signing, hosted issuer keys,
//! trust anchors and CRLs, the signature policy, and the verification engine whose
//! report follows the ETSI EN 319 102-1 vocabulary (DESIGN.md §4–§5).
//!
//! This layer knows nothing about the database or HTTP; of the domain it uses only the
//! money parser (amounts in documents are decimal strings).

pub mod certs;
pub mod cli;
pub mod cms_parse;
pub mod demo;
pub mod document;
pub mod gm;
pub mod keys;
pub mod ocsp;
pub mod policy;
pub mod report;
pub mod sign;
pub mod timestamp;
pub mod trust;
pub mod verify;

#[cfg(test)]
mod sm2_tests;
#[cfg(test)]
mod tests;

pub use cli::{
    run_pki_cli, run_verify_cli, CaArgs, CrlArgs, IssuerArgs, KeyAlgorithm, PkiCommand, RevokeArgs,
    TsaArgs, VerifyArgs, EXIT_USAGE,
};
pub use document::{DocumentError, GuaranteeDocument, MAX_DOCUMENT_BYTES, MAX_SIGNATURE_BYTES};
pub use keys::{
    decrypt_private_key, encrypt_private_key, import_pem, import_pkcs12, open, seal,
    HostedKeyError, ImportedKey, MasterKey,
};
pub use policy::{
    DigestAlgorithm, EcCurve, PolicyRule, PolicyViolation, SignaturePolicy, SigningKeyUsage,
};
pub use report::{
    Check, CheckId, CheckResult, Indication, SignatureTimeStamp, SignerDetails, SubIndication,
    VerificationReport,
};
pub use sign::{sign_detached, SignError};
pub use timestamp::{
    add_signature_timestamp, timestamp_of, verify_signature_timestamp, verify_token,
    TimeStampAuthority, TimeStampError, TimeStampInfo, TokenError, TsaTrust,
};
pub use trust::{CaCrlStatus, CrlSource, TrustStore, TrustStoreBuilder, TrustStoreError};
pub use verify::{
    certificate_details, format_failure_report, Acceptance, Expectations, Registration,
    RegistryCheck, Supersession, TimeOptions, VerificationEngine, VerifyOptions,
};

/// Lowercase hex SHA-256 of `bytes`: the form used for document hashes and certificate
/// fingerprints throughout reports and caches.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
}

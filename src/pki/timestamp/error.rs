//! What can go wrong issuing, attaching and verifying time-stamps.

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::pki::cms_parse::CmsFormatError;

/// Why a token is not a valid time-stamp of the message by the exchange's TSA.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    /// Not a DER time-stamp token (a ContentInfo holding a one-signer SignedData over an
    /// id-ct-TSTInfo) that can be read.
    #[error("not a readable time-stamp token: {0}")]
    Malformed(String),
    /// Signed by a certificate that does not chain to the exchange's TSA anchors:
    /// another TSA's token.
    #[error("the token was not issued by the exchange's time-stamping authority: {0}")]
    NotOurs(String),
    /// Signed by a certificate under the TSA anchor that is not a time-stamping
    /// certificate (critical extended key usage timeStamping alone).
    #[error("the token's signer is not a time-stamping certificate: {0}")]
    NotTimeStamping(String),
    /// The signature does not verify over the token's content: it was altered.
    #[error("the token was altered after signing: {0}")]
    Altered(String),
    /// The token is valid but time-stamps another message (another signature value).
    #[error("the token time-stamps another message")]
    ImprintMismatch,
    /// genTime lies outside the validity of the TSA certificate or its chain.
    #[error(
        "genTime {gen_time} is outside the TSA certificate validity ({not_before} to {not_after})"
    )]
    OutsideValidity {
        /// The token's genTime, RFC 3339.
        gen_time: String,
        /// Latest notBefore in the chain, RFC 3339.
        not_before: String,
        /// Earliest notAfter in the chain, RFC 3339.
        not_after: String,
    },
    /// An algorithm the exchange does not accept (digest other than SHA-2, a signature
    /// algorithm not matching the key).
    #[error("unsupported algorithm: {0}")]
    Unsupported(String),
}

/// Why a token could not be issued or added to a signature.
#[derive(Debug, Error)]
pub enum TimeStampError {
    /// The certificate is not one a TSA may sign with (see RFC 3161 §2.3).
    #[error("not a time-stamping certificate: {0}")]
    NotTimeStampingCertificate(String),
    /// The private key does not belong to the certificate.
    #[error("the TSA private key does not match its certificate")]
    KeyMismatch,
    /// Only P-256 and RSA keys of 2048 bits or more, with SHA-256, are used.
    #[error("the TSA key must be ECDSA P-256 or RSA of at least 2048 bits")]
    UnsupportedKey,
    /// The time asked for lies outside the TSA certificate's validity.
    #[error("{0} is outside the validity of the TSA certificate")]
    OutsideValidity(DateTime<Utc>),
    /// A policy that is not a dotted object identifier.
    #[error("{0:?} is not an object identifier")]
    BadPolicy(String),
    /// The guarantee signature is not a single-signer DER CMS SignedData.
    #[error(transparent)]
    Signature(#[from] CmsFormatError),
    /// The signature already carries a signature time-stamp.
    #[error("the signature already carries a signature time-stamp")]
    AlreadyTimeStamped,
    /// The signature carries more than one signature time-stamp.
    #[error("the signature carries more than one signature time-stamp")]
    SeveralTimeStamps,
    /// The token does not fit the signature (not a token, or over another signature).
    #[error("the time-stamp token does not fit the signature: {0}")]
    Token(#[from] TokenError),
    /// A structure could not be encoded.
    #[error("DER encoding: {0}")]
    Encoding(#[from] der::Error),
    /// OpenSSL failed.
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

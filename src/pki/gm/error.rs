//! What can go wrong with SM2 keys, certificates and signatures.

use thiserror::Error;

/// Why an SM2 key could not be read, written or used.
#[derive(Debug, Error)]
pub enum Sm2KeyError {
    /// Not a PKCS#8 SM2 private key (wrong curve, wrong algorithm, malformed).
    #[error("not an SM2 private key in PKCS#8: {0}")]
    Pkcs8(String),
    /// Not an SM2 public key (not on the curve, wrong algorithm, malformed).
    #[error("not an SM2 public key: {0}")]
    PublicKey(String),
    /// The signature primitive failed (it does not for a valid key and the default ID).
    #[error("SM2 signing failed")]
    Sign,
    /// A structure could not be encoded.
    #[error("DER encoding: {0}")]
    Encoding(#[from] der::Error),
}

/// Why an SM2 certificate or CMS signature could not be made.
#[derive(Debug, Error)]
pub enum Sm2SignError {
    /// Refused to sign more than a document can be.
    #[error("document is {0} bytes, more than the {max}-byte limit", max = crate::pki::document::MAX_DOCUMENT_BYTES)]
    TooLarge(usize),
    /// The private key does not belong to the certificate.
    #[error("the private key does not belong to the certificate")]
    KeyMismatch,
    /// The certificate does not carry an SM2 public key.
    #[error("not an SM2 certificate: {0}")]
    NotSm2Certificate(String),
    /// A time that a certificate or signingTime cannot carry (before 1970 or after 9999).
    #[error("time {0} cannot be encoded")]
    Time(String),
    /// A serial number to revoke that is not hex.
    #[error("{0:?} is not a hex serial number")]
    Serial(String),
    /// The key failed.
    #[error(transparent)]
    Key(#[from] Sm2KeyError),
    /// A structure could not be encoded.
    #[error("DER encoding: {0}")]
    Encoding(#[from] der::Error),
}

/// Why a detached SM2 CMS signature is not a valid signature of the document by a
/// certificate under a trusted SM2 CA. The first three are format failures
/// ([`Sm2Error::is_format_failure`]): the bytes are not a signature this verifier reads.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Sm2Error {
    /// The document or the signature exceeds its size cap (checked before parsing).
    #[error("{what} is {len} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// "document" or "signature".
        what: &'static str,
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Not a DER CMS SignedData (garbage, truncated, not detached, several signers, a
    /// required attribute missing) or a certificate in it cannot be read.
    #[error("not a readable SM2 CMS signature: {0}")]
    Malformed(String),
    /// A digest or signature algorithm other than SM3 and SM2 (e.g. an RSA or ECDSA
    /// signature, which the OpenSSL path verifies), or a signer key that is not SM2.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// No certificate carried in the signature matches its signer identifier.
    #[error("no certificate in the signature matches its signer identifier")]
    SignerNotFound,
    /// The document's SM3 digest is not the signed messageDigest: the document was
    /// changed after signing (or is another document).
    #[error("the document does not match the signature: its SM3 digest differs from the signed messageDigest")]
    DigestMismatch,
    /// The signature value does not verify over the signed attributes with the signer
    /// certificate's key: a signed attribute was changed, or another key signed.
    #[error("the signature value does not verify with the signer certificate's key")]
    BadSignature,
    /// The signer certificate does not chain to one of the trusted SM2 CAs.
    #[error("the signer certificate does not chain to a trusted SM2 CA: {0}")]
    Untrusted(String),
    /// A certificate of the chain is not valid at the time of validation.
    #[error("certificate {subject} is not valid at {at} (valid from {not_before} to {not_after})")]
    NotValidAt {
        /// The certificate's subject.
        subject: String,
        /// The time of validation, RFC 3339.
        at: String,
        /// notBefore, RFC 3339.
        not_before: String,
        /// notAfter, RFC 3339.
        not_after: String,
    },
    /// The signer certificate's keyUsage (or extendedKeyUsage) does not allow signing
    /// documents.
    #[error("the signer certificate may not sign documents: {0}")]
    WrongKeyUsage(String),
}

impl Sm2Error {
    /// True for the errors that say "these bytes are not a signature we read", as opposed
    /// to a readable signature that fails a check.
    pub fn is_format_failure(&self) -> bool {
        matches!(
            self,
            Sm2Error::TooLarge { .. } | Sm2Error::Malformed(_) | Sm2Error::UnsupportedAlgorithm(_)
        )
    }
}

//! The exchange's own time-stamping authority (RFC 3161) and the CAdES-T signature
//! time-stamp (DESIGN.md §4–§5).
//!
//! When the exchange accepts a guarantee signature it asks its TSA for a time-stamp token
//! over the signature value ([`TimeStampAuthority::stamp`]) and adds the token to the
//! signature as the unsigned attribute id-aa-signatureTimeStampToken
//! ([`add_signature_timestamp`]); the signed attributes, and so the signature itself, are
//! left byte for byte as the issuer made them. A verifier reads the token back
//! ([`timestamp_of`]) and checks it against the exchange's TSA anchors
//! ([`verify_token`]); the token's genTime is then the trusted proof that the signature
//! existed at that time, which anyone can also check with `openssl ts -verify`.
//!
//! TSTInfo is encoded and decoded with RustCrypto's `x509-tsp`, the token's SignedData
//! built with the `cms` types and signed with OpenSSL (so the signed attributes are
//! exactly the three RFC 3161 and RFC 5035 ask for); tokens are read with the zero-copy
//! reader of [`crate::pki::cms_parse`], so the signature is checked over the bytes
//! received.

pub mod attribute;
pub mod authority;
pub mod error;
mod token;
pub mod verify;

#[cfg(test)]
mod tests;

use der::oid::ObjectIdentifier;
use sha2::{Digest, Sha256, Sha384, Sha512};

pub use attribute::{add_signature_timestamp, signature_value, timestamp_of};
pub use authority::TimeStampAuthority;
pub use error::{TimeStampError, TokenError};
pub use verify::{
    verify_signature_timestamp, verify_token, TimeStampInfo, TsaTrust, TsaTrustError,
};

/// Object identifiers of RFC 3161, RFC 5652, RFC 5035 and the exchange's TSA policy.
pub mod oid {
    use der::oid::ObjectIdentifier;

    /// The policy under which the exchange's TSA issues tokens (TSTInfo `policy`):
    /// 1.3.6.1.4.1.32473.3161.1. It sits under IANA's enterprise number for
    /// documentation (RFC 5612), which no organization owns, so it collides with nobody;
    /// an operator with its own Private Enterprise Number sets its own arc with
    /// [`super::TimeStampAuthority::with_policy`].
    pub const EXCHANGE_TSA_POLICY: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.32473.3161.1");
    /// 1.2.840.113549.1.9.16.2.14 id-aa-signatureTimeStampToken (the CAdES-T attribute)
    pub const SIGNATURE_TIME_STAMP_TOKEN: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");
    /// 1.2.840.113549.1.9.16.1.4 id-ct-TSTInfo
    pub const TST_INFO: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
    /// 1.3.6.1.5.5.7.3.8 id-kp-timeStamping
    pub const TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
    /// 1.2.840.113549.1.7.2 id-signedData
    pub const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    /// 1.2.840.113549.1.9.3 contentType
    pub const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
    /// 1.2.840.113549.1.9.4 messageDigest
    pub const MESSAGE_DIGEST: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
    /// 1.2.840.113549.1.9.16.2.47 signingCertificateV2
    pub const SIGNING_CERTIFICATE_V2: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
    /// 2.16.840.1.101.3.4.2.1 id-sha256
    pub const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
    /// 2.16.840.1.101.3.4.2.2 id-sha384
    pub const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
    /// 2.16.840.1.101.3.4.2.3 id-sha512
    pub const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");
    /// 1.2.840.10045.4.3.2 ecdsa-with-SHA256
    pub const ECDSA_WITH_SHA256: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
    /// 1.2.840.10045.4.3.3 ecdsa-with-SHA384
    pub const ECDSA_WITH_SHA384: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
    /// 1.2.840.10045.4.3.4 ecdsa-with-SHA512
    pub const ECDSA_WITH_SHA512: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.4");
    /// 1.2.840.10045.2.1 id-ecPublicKey (some signers put the key OID here)
    pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    /// 1.2.840.113549.1.1.1 rsaEncryption (PKCS#1 v1.5, hash from the digest algorithm)
    pub const RSA_ENCRYPTION: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    /// 1.2.840.113549.1.1.11 sha256WithRSAEncryption
    pub const SHA256_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
    /// 1.2.840.113549.1.1.12 sha384WithRSAEncryption
    pub const SHA384_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.12");
    /// 1.2.840.113549.1.1.13 sha512WithRSAEncryption
    pub const SHA512_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.13");
}

/// The digests accepted for message imprints and token signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    /// The digest an AlgorithmIdentifier's OID content names, if it is one we accept.
    pub(crate) fn from_oid(oid_content: &[u8]) -> Option<Hash> {
        [
            (oid::SHA256, Hash::Sha256),
            (oid::SHA384, Hash::Sha384),
            (oid::SHA512, Hash::Sha512),
        ]
        .into_iter()
        .find(|(o, _)| o.as_bytes() == oid_content)
        .map(|(_, h)| h)
    }

    pub(crate) fn digest(self, bytes: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha256 => Sha256::digest(bytes).to_vec(),
            Hash::Sha384 => Sha384::digest(bytes).to_vec(),
            Hash::Sha512 => Sha512::digest(bytes).to_vec(),
        }
    }

    pub(crate) fn message_digest(self) -> openssl::hash::MessageDigest {
        use openssl::hash::MessageDigest;
        match self {
            Hash::Sha256 => MessageDigest::sha256(),
            Hash::Sha384 => MessageDigest::sha384(),
            Hash::Sha512 => MessageDigest::sha512(),
        }
    }
}

/// True when `content` (an OID's content octets) is `oid`.
pub(crate) fn is_oid(content: &[u8], oid: ObjectIdentifier) -> bool {
    content == oid.as_bytes()
}

/// Whether a certificate may sign time-stamp tokens (RFC 3161 §2.3): its extended key
/// usage is critical and is timeStamping alone; a keyUsage, if present, allows only
/// digitalSignature and nonRepudiation. Returns why not, in a sentence.
pub(crate) fn check_tsa_certificate(der: &[u8]) -> Result<(), String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|_| "The certificate cannot be read.".to_owned())?;
    let eku = match cert.extended_key_usage() {
        Ok(Some(eku)) => eku,
        Ok(None) => return Err("The certificate has no extended key usage timeStamping.".into()),
        Err(_) => return Err("The certificate's extended key usage cannot be read.".into()),
    };
    let only_time_stamping = eku.value.time_stamping
        && !eku.value.any
        && !eku.value.server_auth
        && !eku.value.client_auth
        && !eku.value.code_signing
        && !eku.value.email_protection
        && !eku.value.ocsp_signing
        && eku.value.other.is_empty();
    if !only_time_stamping {
        return Err("The certificate's extended key usage is not timeStamping alone.".into());
    }
    if !eku.critical {
        return Err("The certificate's extended key usage timeStamping is not critical.".into());
    }
    match cert.key_usage() {
        Ok(None) => Ok(()),
        Ok(Some(ku)) => {
            let signs = ku.value.digital_signature() || ku.value.non_repudiation();
            let others = ku.value.flags & !(0b11) != 0;
            if signs && !others {
                Ok(())
            } else {
                Err("The certificate's key usage is not digitalSignature (or nonRepudiation) alone.".into())
            }
        }
        Err(_) => Err("The certificate's key usage cannot be read.".into()),
    }
}

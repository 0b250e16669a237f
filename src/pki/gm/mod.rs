//! National cryptography (国密, "GM"): SM2 signatures with SM3 hashes for issuers whose
//! keys OpenSSL 3.0's CMS cannot use, built on RustCrypto's `sm2`, `sm3`, `x509-cert` and
//! `cms` crates.
//!
//! - [`key`]: SM2 key pairs, PKCS#8 in and out (so a hosted key can be sealed with
//!   [`crate::pki::keys::seal`] like an OpenSSL key), and the raw signature primitive
//!   ([`sm2_sign_raw`], [`sm2_verify_raw`]) with the default distinguishing ID.
//! - [`cert`]: SM2 certificates: reading them, and a demo CA issuing issuer certificates
//!   with the same extensions as [`crate::pki::demo`]'s RSA/ECDSA ones.
//! - [`crl`]: SM2 CRLs, issued by the demo CA and checked with the default ID.
//! - [`sign`] and [`verify`]: detached CMS SignedData (GM/T 0010) over a document.
//!
//! # Identifiers
//!
//! Every SM2 signature here, on certificates and in CMS, uses the default distinguishing
//! ID `1234567812345678` of GM/T 0009 ([`DEFAULT_DISTINGUISHING_ID`]): the signed value
//! is SM3(Z ‖ message) with Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA).
//!
//! Object identifiers, in what we emit and what we accept (see [`oid`]):
//!
//! - **Content types.** We emit PKCS#7's id-signedData (1.2.840.113549.1.7.2) and id-data
//!   (1.2.840.113549.1.7.1); we accept those and GM/T 0010's 1.2.156.10197.6.1.4.2.2 and
//!   1.2.156.10197.6.1.4.2.1, in any combination. GM/T 0010 says its structures are
//!   PKCS#7's with other OIDs; the OpenSSL line (GmSSL 2, Tongsuo, whose CMS cannot even
//!   read the GM/T OIDs — Tongsuo issue #813) and BouncyCastle emit the PKCS#7 ones, so
//!   those are what every verifier reads, while GmSSL 3 emits the GM/T ones.
//! - **Signature algorithm** (SignerInfo.signatureAlgorithm). We emit SM2-with-SM3,
//!   1.2.156.10197.1.501, as GmSSL 3 (`cms.c`), Tongsuo and BouncyCastle do; we also accept
//!   GM/T 0010's sm2-1 signature (1.2.156.10197.1.301.1) and the bare SM2 key algorithm
//!   (1.2.156.10197.1.301, as OpenSSL puts the key algorithm there for RSA).
//! - **Digest algorithm**: SM3, 1.2.156.10197.1.401, alone.
//!
//! GmSSL 3's own CMS signs SM3 of the signed attributes without Z (its source says so in a
//! comment) and digests the content with its ContentInfo header rather than into a
//! messageDigest attribute; such signatures do not verify here (nor anywhere else).

pub mod cert;
pub mod crl;
pub mod error;
pub mod key;
pub mod sign;
pub mod verify;

#[cfg(test)]
mod tests;

pub use cert::{Sm2Ca, Sm2Certificate, Sm2IssuedCert, Sm2IssuerSpec};
pub use crl::verify_crl_signed_by;
pub use error::{Sm2Error, Sm2KeyError, Sm2SignError};
pub use key::{sm2_sign_raw, sm2_verify_raw, Sm2PrivateKey, Sm2PublicKey};
pub use sign::sign_detached;
pub use verify::{verify_detached, Sm2Verified};

/// The default distinguishing ID of GM/T 0009 (`ENTL` = 128 bits), used for every SM2
/// signature made or checked here.
pub const DEFAULT_DISTINGUISHING_ID: &str = "1234567812345678";

/// SM3 of `bytes` (GM/T 0004).
pub fn sm3_digest(bytes: &[u8]) -> [u8; 32] {
    use sm3::{Digest, Sm3};
    Sm3::digest(bytes).into()
}

/// Object identifiers of the GM/T standards and of PKCS#7 / RFC 5652 used with them.
pub mod oid {
    use der::oid::ObjectIdentifier;

    /// 1.2.156.10197.1.401 SM3 (GM/T 0006)
    pub const SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.401");
    /// 1.2.156.10197.1.501 SM2-with-SM3 signature: certificates, and the SignerInfo
    /// signature algorithm we emit
    pub const SM2_WITH_SM3: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.501");
    /// 1.2.156.10197.1.301.1 sm2-1, the SM2 signature algorithm of GM/T 0006 and GM/T 0010
    /// (accepted as a SignerInfo signature algorithm)
    pub const SM2_SIGN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301.1");
    /// 1.2.156.10197.1.301 the SM2 curve (the id-ecPublicKey parameter of an SM2 key;
    /// accepted as a SignerInfo signature algorithm)
    pub const SM2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.1.301");
    /// 1.2.156.10197.6.1.4.2.1 GM/T 0010 data (accepted)
    pub const GM_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.156.10197.6.1.4.2.1");
    /// 1.2.156.10197.6.1.4.2.2 GM/T 0010 signedData (accepted)
    pub const GM_SIGNED_DATA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.156.10197.6.1.4.2.2");
    /// 1.2.840.113549.1.7.1 id-data (emitted)
    pub const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
    /// 1.2.840.113549.1.7.2 id-signedData (emitted)
    pub const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    /// 1.2.840.113549.1.9.3 contentType
    pub const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
    /// 1.2.840.113549.1.9.4 messageDigest
    pub const MESSAGE_DIGEST: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
    /// 1.2.840.113549.1.9.16.2.47 signingCertificateV2 (CAdES, RFC 5035)
    pub const SIGNING_CERTIFICATE_V2: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
    /// 1.2.840.113549.1.9.5 signingTime
    pub const SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
    /// 1.2.840.10045.2.1 id-ecPublicKey (the key algorithm of an SM2 certificate)
    pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    /// 2.5.4.97 organizationIdentifier
    pub const ORGANIZATION_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.97");
    /// 1.3.6.1.5.5.7.3.36 id-kp-documentSigning (RFC 9336)
    pub const DOCUMENT_SIGNING: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.36");
    /// 1.3.6.1.5.5.7.3.4 id-kp-emailProtection
    pub const EMAIL_PROTECTION: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.4");
    /// 2.5.29.37.0 anyExtendedKeyUsage
    pub const ANY_EXTENDED_KEY_USAGE: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.5.29.37.0");
}

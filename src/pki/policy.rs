//! The signature policy (签名策略): which digest and signature algorithms, which keys and
//! which certificate usages the exchange accepts for a guarantee signature, and how far a
//! signer's claimed signing time may stray at acceptance (DESIGN.md §5, "signature
//! policy" row). One value holds every rule; the verification engine applies it, the
//! services apply it when an operator registers a certificate or a trust anchor, the API
//! serves it and `baohan verify --policy` prints it.
//!
//! Every refusal names its rule by a stable id (such as `key.rsa_min_bits`) so that a
//! report, an API error and a log line all point at the same rule.

use chrono::{DateTime, DurationRound, SecondsFormat, Utc};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKeyRef, Public};
use openssl::x509::X509;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::ToSchema;

use crate::pki::cms_parse::oid;

/// A policy rule, named by a stable id that reports and errors carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum PolicyRule {
    /// The signer's digest algorithm is not one the policy accepts.
    #[serde(rename = "digest.algorithm")]
    DigestAlgorithm,
    /// The SignedData `digestAlgorithms` set does not name the signer's digest algorithm.
    #[serde(rename = "cms.digest_set_signer")]
    DigestSetSigner,
    /// The SignedData `digestAlgorithms` set names an algorithm the policy does not accept.
    #[serde(rename = "cms.digest_set_unknown")]
    DigestSetUnknown,
    /// The signature algorithm does not match the signer's key and digest algorithm.
    #[serde(rename = "signature.algorithm")]
    SignatureAlgorithm,
    /// The key is neither RSA nor ECDSA.
    #[serde(rename = "key.type")]
    KeyType,
    /// The RSA key is shorter than the policy's minimum.
    #[serde(rename = "key.rsa_min_bits")]
    RsaMinBits,
    /// The ECDSA key is on a curve the policy does not accept.
    #[serde(rename = "key.ec_curve")]
    EcCurve,
    /// The certificate's extensions cannot be read.
    #[serde(rename = "cert.extensions")]
    CertificateExtensions,
    /// keyUsage does not allow signing (digitalSignature or nonRepudiation).
    #[serde(rename = "cert.key_usage")]
    KeyUsage,
    /// extendedKeyUsage limits the certificate to other purposes.
    #[serde(rename = "cert.extended_key_usage")]
    ExtendedKeyUsage,
    /// A trust anchor is not a CA (basicConstraints CA:TRUE).
    #[serde(rename = "anchor.ca")]
    AnchorCa,
    /// A trust anchor's keyUsage does not allow keyCertSign.
    #[serde(rename = "anchor.key_cert_sign")]
    AnchorKeyCertSign,
    /// At acceptance: the claimed signingTime is too far from the exchange's time.
    #[serde(rename = "time.signing_time_skew")]
    SigningTimeSkew,
    /// At acceptance: the claimed signingTime is earlier than the draft it signs.
    #[serde(rename = "time.signing_time_before_draft")]
    SigningTimeBeforeDraft,
}

impl PolicyRule {
    /// Every rule, in the order [`SignaturePolicy`]'s description lists them.
    pub const ALL: [PolicyRule; 14] = [
        PolicyRule::DigestAlgorithm,
        PolicyRule::DigestSetSigner,
        PolicyRule::DigestSetUnknown,
        PolicyRule::SignatureAlgorithm,
        PolicyRule::KeyType,
        PolicyRule::RsaMinBits,
        PolicyRule::EcCurve,
        PolicyRule::CertificateExtensions,
        PolicyRule::KeyUsage,
        PolicyRule::ExtendedKeyUsage,
        PolicyRule::AnchorCa,
        PolicyRule::AnchorKeyCertSign,
        PolicyRule::SigningTimeSkew,
        PolicyRule::SigningTimeBeforeDraft,
    ];

    /// The stable id, e.g. `key.rsa_min_bits`.
    pub fn id(self) -> &'static str {
        match self {
            PolicyRule::DigestAlgorithm => "digest.algorithm",
            PolicyRule::DigestSetSigner => "cms.digest_set_signer",
            PolicyRule::DigestSetUnknown => "cms.digest_set_unknown",
            PolicyRule::SignatureAlgorithm => "signature.algorithm",
            PolicyRule::KeyType => "key.type",
            PolicyRule::RsaMinBits => "key.rsa_min_bits",
            PolicyRule::EcCurve => "key.ec_curve",
            PolicyRule::CertificateExtensions => "cert.extensions",
            PolicyRule::KeyUsage => "cert.key_usage",
            PolicyRule::ExtendedKeyUsage => "cert.extended_key_usage",
            PolicyRule::AnchorCa => "anchor.ca",
            PolicyRule::AnchorKeyCertSign => "anchor.key_cert_sign",
            PolicyRule::SigningTimeSkew => "time.signing_time_skew",
            PolicyRule::SigningTimeBeforeDraft => "time.signing_time_before_draft",
        }
    }
}

impl std::fmt::Display for PolicyRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// A refusal by the policy: the rule and what was found.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize, ToSchema)]
#[error("policy rule {rule}: {detail}")]
pub struct PolicyViolation {
    /// The rule violated.
    pub rule: PolicyRule,
    /// What was found, in a sentence.
    pub detail: String,
}

fn violation(rule: PolicyRule, detail: impl Into<String>) -> PolicyViolation {
    PolicyViolation {
        rule,
        detail: detail.into(),
    }
}

/// A digest algorithm the engine can compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum DigestAlgorithm {
    /// SHA-256 (2.16.840.1.101.3.4.2.1).
    #[serde(rename = "SHA-256")]
    Sha256,
    /// SHA-384 (2.16.840.1.101.3.4.2.2).
    #[serde(rename = "SHA-384")]
    Sha384,
    /// SHA-512 (2.16.840.1.101.3.4.2.3).
    #[serde(rename = "SHA-512")]
    Sha512,
    /// SM3 (GM/T 0004, 1.2.156.10197.1.401): with SM2 keys only.
    #[serde(rename = "SM3")]
    Sm3,
}

/// DER contents of the algorithm identifiers the policy speaks about, beyond the ones
/// the CMS reader already names.
mod alg {
    pub const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    pub const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
    /// 1.3.14.3.2.26 (named in refusals only).
    pub const SHA1: &[u8] = &[0x2B, 0x0E, 0x03, 0x02, 0x1A];
    pub const ECDSA_WITH_SHA384: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03];
    pub const ECDSA_WITH_SHA512: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x04];
    pub const SHA384_WITH_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0C];
    pub const SHA512_WITH_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0D];
    /// 1.2.156.10197.1.401 SM3
    pub const SM3: &[u8] = &[0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x83, 0x11];
    /// 1.2.156.10197.1.501 SM2-with-SM3
    pub const SM2_WITH_SM3: &[u8] = &[0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x83, 0x75];
    /// 1.2.156.10197.1.301.1 sm2-1 (GM/T 0006 and GM/T 0010's SM2 signature)
    pub const SM2_SIGN: &[u8] = &[0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D, 0x01];
    /// 1.2.156.10197.1.301 the SM2 curve (some signers put the key's OID here)
    pub const SM2: &[u8] = &[0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D];
}

impl DigestAlgorithm {
    const ALL: [DigestAlgorithm; 4] = [
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Sha384,
        DigestAlgorithm::Sha512,
        DigestAlgorithm::Sm3,
    ];

    /// The algorithm an OID (DER content octets) names, if the engine can compute it.
    pub fn from_oid(oid_content: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.oid() == oid_content)
    }

    /// DER content octets of its OID.
    pub fn oid(self) -> &'static [u8] {
        match self {
            DigestAlgorithm::Sha256 => oid::SHA256,
            DigestAlgorithm::Sha384 => alg::SHA384,
            DigestAlgorithm::Sha512 => alg::SHA512,
            DigestAlgorithm::Sm3 => alg::SM3,
        }
    }

    /// Human name, e.g. `SHA-256`.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Sha384 => "SHA-384",
            DigestAlgorithm::Sha512 => "SHA-512",
            DigestAlgorithm::Sm3 => "SM3",
        }
    }

    /// The OpenSSL digest.
    pub fn message_digest(self) -> MessageDigest {
        match self {
            DigestAlgorithm::Sha256 => MessageDigest::sha256(),
            DigestAlgorithm::Sha384 => MessageDigest::sha384(),
            DigestAlgorithm::Sha512 => MessageDigest::sha512(),
            DigestAlgorithm::Sm3 => MessageDigest::sm3(),
        }
    }

    fn ecdsa_signature_oid(self) -> &'static [u8] {
        match self {
            DigestAlgorithm::Sha256 => oid::ECDSA_WITH_SHA256,
            DigestAlgorithm::Sha384 => alg::ECDSA_WITH_SHA384,
            DigestAlgorithm::Sha512 => alg::ECDSA_WITH_SHA512,
            // No ECDSA with SM3: SM3 goes with SM2 keys only.
            DigestAlgorithm::Sm3 => &[],
        }
    }

    fn rsa_signature_oid(self) -> &'static [u8] {
        match self {
            DigestAlgorithm::Sha256 => oid::SHA256_WITH_RSA,
            DigestAlgorithm::Sha384 => alg::SHA384_WITH_RSA,
            DigestAlgorithm::Sha512 => alg::SHA512_WITH_RSA,
            DigestAlgorithm::Sm3 => &[],
        }
    }
}

/// Human name of an algorithm OID (DER content octets): a known name, else dotted form.
pub fn algorithm_name(oid_content: &[u8]) -> String {
    if let Some(d) = DigestAlgorithm::from_oid(oid_content) {
        return d.name().to_owned();
    }
    let named: [(&[u8], &str); 12] = [
        (alg::SHA1, "SHA-1"),
        (oid::ECDSA_WITH_SHA256, "ecdsa-with-SHA256"),
        (alg::ECDSA_WITH_SHA384, "ecdsa-with-SHA384"),
        (alg::ECDSA_WITH_SHA512, "ecdsa-with-SHA512"),
        (oid::EC_PUBLIC_KEY, "id-ecPublicKey"),
        (oid::RSA_ENCRYPTION, "rsaEncryption"),
        (oid::SHA256_WITH_RSA, "sha256WithRSAEncryption"),
        (alg::SHA384_WITH_RSA, "sha384WithRSAEncryption"),
        (alg::SHA512_WITH_RSA, "sha512WithRSAEncryption"),
        (alg::SM2_WITH_SM3, "SM2-with-SM3"),
        (alg::SM2_SIGN, "sm2-1 (SM2 signature)"),
        (alg::SM2, "SM2"),
    ];
    named
        .iter()
        .find(|(o, _)| *o == oid_content)
        .map(|(_, n)| (*n).to_owned())
        .unwrap_or_else(|| {
            x509_parser::der_parser::oid::Oid::new(std::borrow::Cow::Borrowed(oid_content))
                .to_id_string()
        })
}

/// An elliptic curve the policy may accept for ECDSA keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum EcCurve {
    /// NIST P-256 (prime256v1).
    #[serde(rename = "P-256")]
    P256,
    /// NIST P-384 (secp384r1).
    #[serde(rename = "P-384")]
    P384,
    /// NIST P-521 (secp521r1).
    #[serde(rename = "P-521")]
    P521,
}

impl EcCurve {
    fn from_nid(nid: Nid) -> Option<Self> {
        match nid {
            Nid::X9_62_PRIME256V1 => Some(EcCurve::P256),
            Nid::SECP384R1 => Some(EcCurve::P384),
            Nid::SECP521R1 => Some(EcCurve::P521),
            _ => None,
        }
    }

    /// Human name, e.g. `P-256`.
    pub fn name(self) -> &'static str {
        match self {
            EcCurve::P256 => "P-256",
            EcCurve::P384 => "P-384",
            EcCurve::P521 => "P-521",
        }
    }
}

/// A keyUsage bit that allows a certificate to sign guarantees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum SigningKeyUsage {
    /// digitalSignature.
    DigitalSignature,
    /// nonRepudiation (contentCommitment).
    NonRepudiation,
}

impl SigningKeyUsage {
    fn name(self) -> &'static str {
        match self {
            SigningKeyUsage::DigitalSignature => "digitalSignature",
            SigningKeyUsage::NonRepudiation => "nonRepudiation",
        }
    }
}

/// extendedKeyUsage values (dotted OIDs) and their names, for messages.
const EKU_NAMES: [(&str, &str); 9] = [
    ("2.5.29.37.0", "anyExtendedKeyUsage"),
    ("1.3.6.1.5.5.7.3.1", "serverAuth"),
    ("1.3.6.1.5.5.7.3.2", "clientAuth"),
    ("1.3.6.1.5.5.7.3.3", "codeSigning"),
    ("1.3.6.1.5.5.7.3.4", "emailProtection"),
    ("1.3.6.1.5.5.7.3.8", "timeStamping"),
    ("1.3.6.1.5.5.7.3.9", "OCSPSigning"),
    ("1.3.6.1.5.5.7.3.36", "documentSigning"),
    ("1.3.6.1.4.1.311.10.3.12", "documentSigning (Microsoft)"),
];

fn eku_name(dotted: &str) -> String {
    EKU_NAMES
        .iter()
        .find(|(o, _)| *o == dotted)
        .map(|(_, n)| format!("{n} ({dotted})"))
        .unwrap_or_else(|| dotted.to_owned())
}

/// The signature policy. `Default` is the exchange's policy: SHA-256/384/512 and SM3; RSA
/// of at least 2048 bits, ECDSA on P-256/P-384, or SM2 with SM3; keyUsage digitalSignature or
/// nonRepudiation; no extendedKeyUsage, or one allowing any purpose, document signing or
/// e-mail protection; a claimed signing time within five minutes of the exchange's time
/// at acceptance. A configuration file may override any field; missing fields keep
/// their default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SignaturePolicy {
    /// Name of this policy, printed in every report.
    pub name: String,
    /// Accepted digest algorithms (signer's digest and the `digestAlgorithms` set).
    pub digest_algorithms: Vec<DigestAlgorithm>,
    /// Minimum RSA modulus in bits; `None` refuses RSA keys.
    pub rsa_min_bits: Option<u32>,
    /// Accepted curves for ECDSA keys; empty refuses ECDSA keys.
    pub ec_curves: Vec<EcCurve>,
    /// Whether SM2 keys (GM/T 0003, 国密) are accepted, signing SM2-with-SM3 with the
    /// default distinguishing ID (GM/T 0009) over an SM3 digest.
    pub sm2_keys: bool,
    /// The signer certificate's keyUsage must include one of these.
    pub signer_key_usage: Vec<SigningKeyUsage>,
    /// When the signer certificate has an extendedKeyUsage, it must include one of these
    /// (dotted OIDs); a certificate without the extension is accepted.
    pub extended_key_usages: Vec<String>,
    /// At acceptance, the largest distance in seconds between the signer's claimed
    /// signingTime and the exchange's time.
    pub max_signing_time_skew_seconds: u32,
}

/// Default acceptance tolerance for the claimed signing time: five minutes.
pub const DEFAULT_MAX_SIGNING_TIME_SKEW_SECONDS: u32 = 300;

impl Default for SignaturePolicy {
    fn default() -> Self {
        SignaturePolicy {
            name: "baohan-signature-policy-1".to_owned(),
            digest_algorithms: DigestAlgorithm::ALL.to_vec(),
            rsa_min_bits: Some(2048),
            ec_curves: vec![EcCurve::P256, EcCurve::P384],
            sm2_keys: true,
            signer_key_usage: vec![
                SigningKeyUsage::DigitalSignature,
                SigningKeyUsage::NonRepudiation,
            ],
            extended_key_usages: [
                "2.5.29.37.0",
                "1.3.6.1.5.5.7.3.36",
                "1.3.6.1.4.1.311.10.3.12",
                "1.3.6.1.5.5.7.3.4",
            ]
            .map(str::to_owned)
            .to_vec(),
            max_signing_time_skew_seconds: DEFAULT_MAX_SIGNING_TIME_SKEW_SECONDS,
        }
    }
}

impl std::fmt::Display for SignaturePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |names: Vec<String>| {
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        };
        let rule = PolicyRule::id;
        writeln!(f, "Signature policy {}", self.name)?;
        writeln!(
            f,
            "  Digest algorithms: {} [{}, {}, {}]",
            list(
                self.digest_algorithms
                    .iter()
                    .map(|d| d.name().into())
                    .collect()
            ),
            rule(PolicyRule::DigestAlgorithm),
            rule(PolicyRule::DigestSetSigner),
            rule(PolicyRule::DigestSetUnknown),
        )?;
        writeln!(
            f,
            "  Signature algorithm: ECDSA or RSA PKCS#1 v1.5 matching the key and digest, or SM2-with-SM3 for an SM2 key [{}]",
            rule(PolicyRule::SignatureAlgorithm)
        )?;
        let rsa = match self.rsa_min_bits {
            Some(bits) => format!("RSA of at least {bits} bits"),
            None => "no RSA".to_owned(),
        };
        let ec = if self.ec_curves.is_empty() {
            "no ECDSA".to_owned()
        } else {
            format!(
                "ECDSA on {}",
                list(self.ec_curves.iter().map(|c| c.name().into()).collect())
            )
        };
        let sm2 = if self.sm2_keys {
            "SM2 (GM/T 0003) with SM3"
        } else {
            "no SM2"
        };
        writeln!(
            f,
            "  Keys: {rsa}; {ec}; {sm2}; nothing else [{}, {}, {}]",
            rule(PolicyRule::KeyType),
            rule(PolicyRule::RsaMinBits),
            rule(PolicyRule::EcCurve),
        )?;
        writeln!(
            f,
            "  Signer keyUsage: one of {}, in readable extensions [{}, {}]",
            list(
                self.signer_key_usage
                    .iter()
                    .map(|k| k.name().into())
                    .collect()
            ),
            rule(PolicyRule::KeyUsage),
            rule(PolicyRule::CertificateExtensions)
        )?;
        writeln!(
            f,
            "  Signer extendedKeyUsage: absent, or including one of {} [{}]",
            list(
                self.extended_key_usages
                    .iter()
                    .map(|o| eku_name(o))
                    .collect()
            ),
            rule(PolicyRule::ExtendedKeyUsage)
        )?;
        writeln!(
            f,
            "  Trust anchors: basicConstraints CA:TRUE and keyUsage keyCertSign, keys as above [{}, {}]",
            rule(PolicyRule::AnchorCa),
            rule(PolicyRule::AnchorKeyCertSign)
        )?;
        writeln!(
            f,
            "  Claimed signing time: reported, never trusted; at acceptance within {} seconds of the exchange's time and not before the draft [{}, {}]",
            self.max_signing_time_skew_seconds,
            rule(PolicyRule::SigningTimeSkew),
            rule(PolicyRule::SigningTimeBeforeDraft)
        )
    }
}

/// The key's type, with a key on the SM2 curve named [`Id::SM2`]: OpenSSL 3.0 gives such
/// a key read from a certificate no legacy type (-1), so its SubjectPublicKeyInfo decides.
pub(crate) fn key_type<T: openssl::pkey::HasPublic>(key: &PKeyRef<T>) -> Id {
    match key.id() {
        Id::RSA => Id::RSA,
        _ if is_sm2_key(key) => Id::SM2,
        other => other,
    }
}

/// Whether the key's SubjectPublicKeyInfo is id-ecPublicKey on the SM2 curve.
fn is_sm2_key<T: openssl::pkey::HasPublic>(key: &PKeyRef<T>) -> bool {
    use der::Decode;
    use x509_cert::spki::SubjectPublicKeyInfoRef;
    let Ok(der) = key.public_key_to_der() else {
        return false;
    };
    let Ok(spki) = SubjectPublicKeyInfoRef::from_der(&der) else {
        return false;
    };
    spki.algorithm.oid == crate::pki::gm::oid::EC_PUBLIC_KEY
        && spki
            .algorithm
            .parameters
            .and_then(|p| p.decode_as::<der::oid::ObjectIdentifier>().ok())
            == Some(crate::pki::gm::oid::SM2)
}

fn parse_der(der: &[u8]) -> Result<x509_parser::certificate::X509Certificate<'_>, PolicyViolation> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| {
            violation(
                PolicyRule::CertificateExtensions,
                format!("the certificate cannot be read: {e}"),
            )
        })
}

fn to_der(cert: &X509) -> Result<Vec<u8>, PolicyViolation> {
    cert.to_der().map_err(|e| {
        violation(
            PolicyRule::CertificateExtensions,
            format!("the certificate cannot be encoded: {e}"),
        )
    })
}

impl SignaturePolicy {
    /// Whether a certificate may be registered as an issuer's signing certificate: key
    /// type and size, keyUsage and extendedKeyUsage. Returns the first rule violated.
    pub fn check_certificate(&self, cert: &X509) -> Result<(), PolicyViolation> {
        let key = cert.public_key().map_err(|e| {
            violation(
                PolicyRule::KeyType,
                format!("the public key cannot be read: {e}"),
            )
        })?;
        self.check_key(&key)?;
        self.check_signer_usage(&to_der(cert)?)?;
        Ok(())
    }

    /// Whether a certificate may be registered as a trust anchor: a CA
    /// (basicConstraints CA:TRUE) whose keyUsage allows keyCertSign, with a key the
    /// policy accepts.
    pub fn check_anchor(&self, cert: &X509) -> Result<(), PolicyViolation> {
        let der = to_der(cert)?;
        let parsed = parse_der(&der)?;
        let unreadable = |e: x509_parser::error::X509Error| {
            violation(
                PolicyRule::CertificateExtensions,
                format!("the certificate's extensions cannot be read: {e}"),
            )
        };
        let is_ca = parsed
            .basic_constraints()
            .map_err(unreadable)?
            .is_some_and(|bc| bc.value.ca);
        if !is_ca {
            return Err(violation(
                PolicyRule::AnchorCa,
                "a trust anchor must be a certificate authority (basicConstraints CA:TRUE)",
            ));
        }
        match parsed.key_usage().map_err(unreadable)? {
            Some(ku) if ku.value.key_cert_sign() => {}
            Some(ku) => {
                return Err(violation(
                    PolicyRule::AnchorKeyCertSign,
                    format!(
                        "the CA's keyUsage ({}) does not allow keyCertSign",
                        ku.value
                    ),
                ))
            }
            None => {
                return Err(violation(
                    PolicyRule::AnchorKeyCertSign,
                    "the CA has no keyUsage extension; it must state keyCertSign",
                ))
            }
        }
        let key = cert.public_key().map_err(|e| {
            violation(
                PolicyRule::KeyType,
                format!("the public key cannot be read: {e}"),
            )
        })?;
        self.check_key(&key)?;
        Ok(())
    }

    /// Key type and size; on success a description such as `ECDSA P-256`.
    pub fn check_key(&self, key: &PKeyRef<Public>) -> Result<String, PolicyViolation> {
        match key_type(key) {
            Id::SM2 if self.sm2_keys => Ok("SM2 (GM/T 0003)".to_owned()),
            Id::SM2 => Err(violation(
                PolicyRule::KeyType,
                "SM2 keys are not accepted by this policy",
            )),
            Id::RSA => {
                let bits = key.bits();
                match self.rsa_min_bits {
                    Some(min) if bits >= min => Ok(format!("RSA {bits} bits")),
                    Some(min) => Err(violation(
                        PolicyRule::RsaMinBits,
                        format!("the RSA key has {bits} bits; at least {min} are required"),
                    )),
                    None => Err(violation(
                        PolicyRule::KeyType,
                        "RSA keys are not accepted by this policy",
                    )),
                }
            }
            Id::EC => {
                let nid = key.ec_key().ok().and_then(|ec| ec.group().curve_name());
                let curve = nid.and_then(EcCurve::from_nid);
                match curve {
                    Some(c) if self.ec_curves.contains(&c) => Ok(format!("ECDSA {}", c.name())),
                    _ => {
                        let name = nid
                            .and_then(|n| n.short_name().ok())
                            .unwrap_or("an unnamed curve");
                        let accepted: Vec<&str> = self.ec_curves.iter().map(|c| c.name()).collect();
                        Err(violation(
                            PolicyRule::EcCurve,
                            format!(
                                "the ECDSA key is on {name}; accepted curves: {}",
                                if accepted.is_empty() {
                                    "none".to_owned()
                                } else {
                                    accepted.join(", ")
                                }
                            ),
                        ))
                    }
                }
            }
            _ => Err(violation(
                PolicyRule::KeyType,
                "the key is neither RSA, ECDSA nor SM2",
            )),
        }
    }

    /// keyUsage and extendedKeyUsage of a signer certificate (DER); on success a
    /// description of what allows signing.
    pub(crate) fn check_signer_usage(&self, der: &[u8]) -> Result<String, PolicyViolation> {
        let cert = parse_der(der)?;
        let unreadable = |what: &str, e: x509_parser::error::X509Error| {
            violation(
                PolicyRule::CertificateExtensions,
                format!("the {what} extension is malformed: {e}"),
            )
        };
        let ku = cert
            .key_usage()
            .map_err(|e| unreadable("keyUsage", e))?
            .ok_or_else(|| {
                violation(
                    PolicyRule::KeyUsage,
                    "the certificate has no keyUsage extension; a signing certificate must state digitalSignature or nonRepudiation",
                )
            })?;
        let allows = |k: &SigningKeyUsage| match k {
            SigningKeyUsage::DigitalSignature => ku.value.digital_signature(),
            SigningKeyUsage::NonRepudiation => ku.value.non_repudiation(),
        };
        if !self.signer_key_usage.iter().any(allows) {
            let wanted: Vec<&str> = self.signer_key_usage.iter().map(|k| k.name()).collect();
            return Err(violation(
                PolicyRule::KeyUsage,
                format!(
                    "keyUsage ({}) includes none of {}",
                    ku.value,
                    wanted.join(", ")
                ),
            ));
        }
        let mut description = format!("keyUsage allows signing ({})", ku.value);
        if let Some(eku) = cert
            .extended_key_usage()
            .map_err(|e| unreadable("extendedKeyUsage", e))?
        {
            let e = eku.value;
            let mut listed: Vec<String> = [
                (e.any, "2.5.29.37.0"),
                (e.server_auth, "1.3.6.1.5.5.7.3.1"),
                (e.client_auth, "1.3.6.1.5.5.7.3.2"),
                (e.code_signing, "1.3.6.1.5.5.7.3.3"),
                (e.email_protection, "1.3.6.1.5.5.7.3.4"),
                (e.time_stamping, "1.3.6.1.5.5.7.3.8"),
                (e.ocsp_signing, "1.3.6.1.5.5.7.3.9"),
            ]
            .into_iter()
            .filter(|(set, _)| *set)
            .map(|(_, o)| o.to_owned())
            .collect();
            listed.extend(e.other.iter().map(|o| o.to_id_string()));
            let names: Vec<String> = listed.iter().map(|o| eku_name(o)).collect();
            match listed
                .iter()
                .find(|o| self.extended_key_usages.contains(o))
            {
                Some(allowed) => {
                    description.push_str(&format!(
                        "; extendedKeyUsage includes {}",
                        eku_name(allowed)
                    ));
                }
                None => {
                    return Err(violation(
                        PolicyRule::ExtendedKeyUsage,
                        format!(
                            "extendedKeyUsage limits the certificate to {}, none of which allows signing documents",
                            names.join(", ")
                        ),
                    ))
                }
            }
        }
        Ok(description)
    }

    /// The signer's digest algorithm (OID content octets).
    pub(crate) fn check_digest(
        &self,
        oid_content: &[u8],
    ) -> Result<DigestAlgorithm, PolicyViolation> {
        DigestAlgorithm::from_oid(oid_content)
            .filter(|d| self.digest_algorithms.contains(d))
            .ok_or_else(|| {
                violation(
                    PolicyRule::DigestAlgorithm,
                    format!(
                        "the signer's digest algorithm {} is not accepted",
                        algorithm_name(oid_content)
                    ),
                )
            })
    }

    /// The SignedData `digestAlgorithms` set: it is outside the signature, so nothing
    /// protects it; it must name the signer's digest algorithm and nothing else than
    /// accepted digest algorithms.
    pub(crate) fn check_digest_set(
        &self,
        set: &[&[u8]],
        signer_digest: &[u8],
    ) -> Result<(), PolicyViolation> {
        if let Some(unknown) = set.iter().find(|o| {
            DigestAlgorithm::from_oid(o).is_none_or(|d| !self.digest_algorithms.contains(&d))
        }) {
            return Err(violation(
                PolicyRule::DigestSetUnknown,
                format!(
                    "the SignedData digestAlgorithms set names {}, which is not an accepted digest algorithm",
                    algorithm_name(unknown)
                ),
            ));
        }
        if !set.contains(&signer_digest) {
            return Err(violation(
                PolicyRule::DigestSetSigner,
                format!(
                    "the SignedData digestAlgorithms set does not name the signer's digest algorithm {}",
                    algorithm_name(signer_digest)
                ),
            ));
        }
        Ok(())
    }

    /// The signature algorithm must be ECDSA for an EC key and RSA PKCS#1 v1.5 for an RSA
    /// key, with the signer's digest algorithm (or the bare key algorithm, which some
    /// signers put there and which then means "with the signer's digest").
    pub(crate) fn check_signature_algorithm(
        &self,
        signature_algorithm: &[u8],
        key: Id,
        digest: DigestAlgorithm,
    ) -> Result<(), PolicyViolation> {
        let matches = match key {
            // SM3 goes with SM2 keys only, also under the bare key algorithm.
            Id::EC => {
                digest != DigestAlgorithm::Sm3
                    && (signature_algorithm == digest.ecdsa_signature_oid()
                        || signature_algorithm == oid::EC_PUBLIC_KEY)
            }
            Id::RSA => {
                digest != DigestAlgorithm::Sm3
                    && (signature_algorithm == digest.rsa_signature_oid()
                        || signature_algorithm == oid::RSA_ENCRYPTION)
            }
            Id::SM2 => {
                digest == DigestAlgorithm::Sm3
                    && [alg::SM2_WITH_SM3, alg::SM2_SIGN, alg::SM2].contains(&signature_algorithm)
            }
            _ => false,
        };
        if matches {
            Ok(())
        } else {
            let key_name = match key {
                Id::EC => "an ECDSA key",
                Id::RSA => "an RSA key",
                Id::SM2 => "an SM2 key",
                _ => "a key of another type",
            };
            Err(violation(
                PolicyRule::SignatureAlgorithm,
                format!(
                    "the signature algorithm {} does not match {key_name} with digest {}",
                    algorithm_name(signature_algorithm),
                    digest.name()
                ),
            ))
        }
    }

    /// At acceptance: the signer's claimed signingTime against the exchange's time `now`
    /// and the draft's creation `not_before`. The claim decides nothing else; this only
    /// refuses a signer whose claim is implausible, so that the claim kept in the record
    /// is honest. On success, a description.
    pub(crate) fn check_signing_time(
        &self,
        claimed: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
        not_before: DateTime<Utc>,
    ) -> Result<String, PolicyViolation> {
        let text = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let Some(claimed) = claimed else {
            return Ok(
                "The signature states no signing time; there is no claim to compare.".into(),
            );
        };
        // signingTime has whole seconds: compare with the draft's second, not its instant.
        let draft_second = not_before
            .duration_trunc(chrono::Duration::seconds(1))
            .unwrap_or(not_before);
        if claimed < draft_second {
            return Err(violation(
                PolicyRule::SigningTimeBeforeDraft,
                format!(
                    "the signer claims it signed at {}, before the draft it signs was made ({})",
                    text(claimed),
                    text(draft_second)
                ),
            ));
        }
        let skew = (claimed - now).num_seconds().abs();
        let max = i64::from(self.max_signing_time_skew_seconds);
        if skew > max {
            return Err(violation(
                PolicyRule::SigningTimeSkew,
                format!(
                    "the signer claims it signed at {}, {skew} seconds from the exchange's time {}; at most {max} seconds are accepted",
                    text(claimed),
                    text(now)
                ),
            ));
        }
        Ok(format!(
            "The claimed signing time {} is within {max} seconds of the exchange's time {} and not before the draft ({}).",
            text(claimed),
            text(now),
            text(draft_second)
        ))
    }
}

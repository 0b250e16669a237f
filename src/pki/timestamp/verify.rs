//! Verifying a time-stamp token against the exchange's TSA anchors.
//!
//! On the hot path of bulk verification a token costs one parse, two hashes and one
//! public-key operation: the TSA certificate's chain and extended key usage are checked
//! once and remembered by the certificate's SHA-256 (which the token's signed
//! signingCertificateV2 attribute names), as the engine does for issuer certificates.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use openssl::pkey::{Id, PKey, Public};
use openssl::sign::Verifier;
use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509PurposeId, X509StoreContext, X509};
use serde::Serialize;
use thiserror::Error;

use super::attribute::{signature_value, timestamp_of};
use super::error::TokenError;
use super::token::{decode_tst_info, parse_token};
use super::{check_tsa_certificate, is_oid, oid, Hash};
use crate::pki::certs::{asn1_to_unix, name_to_string, unix_to_rfc3339};
use crate::pki::cms_parse::{EncapsulatingSignedData, SignerId};

/// Trusted TSA certificates remembered at most (the exchange has one or two).
const SIGNER_CACHE_CAPACITY: usize = 16;

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeStampInfo {
    /// genTime: when the TSA saw the message. The trusted time for the signature.
    pub gen_time: DateTime<Utc>,
    /// The token's serial number, lowercase hex.
    pub serial: String,
    /// Subject of the TSA certificate (`C=CN, O=..., CN=...`).
    pub tsa_subject: String,
    /// SHA-256 fingerprint of the TSA certificate, lowercase hex.
    pub tsa_certificate_sha256: String,
    /// The TSA policy, dotted.
    pub policy: String,
}

/// Why TSA trust anchors could not be loaded.
#[derive(Debug, Error)]
pub enum TsaTrustError {
    /// No certificate was given.
    #[error("no TSA trust anchor given")]
    NoAnchor,
    /// OpenSSL refused a certificate or the store.
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// A trusted TSA certificate, checked once.
struct TsaSigner {
    fingerprint: [u8; 32],
    issuer_der: Vec<u8>,
    serial: Vec<u8>,
    key_id: Option<Vec<u8>>,
    public_key: PKey<Public>,
    not_before: i64,
    not_after: i64,
    subject: String,
}

impl TsaSigner {
    fn is(&self, sid: &SignerId<'_>) -> bool {
        match sid {
            SignerId::IssuerSerial { issuer, serial } => {
                *issuer == self.issuer_der && strip_zeros(serial) == self.serial
            }
            SignerId::KeyId(id) => self.key_id.as_deref() == Some(*id),
        }
    }
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    &bytes[skip..]
}

fn matches_sid(cert: &X509, sid: &SignerId<'_>) -> bool {
    match sid {
        SignerId::IssuerSerial { issuer, serial } => {
            cert.issuer_name().to_der().is_ok_and(|d| d == *issuer)
                && cert
                    .serial_number()
                    .to_bn()
                    .is_ok_and(|bn| bn.to_vec() == strip_zeros(serial))
        }
        SignerId::KeyId(id) => cert.subject_key_id().is_some_and(|k| k.as_slice() == *id),
    }
}

/// The exchange's TSA trust anchors, with the TSA certificates already found good.
pub struct TsaTrust {
    store: X509Store,
    signers: RwLock<HashMap<[u8; 32], Arc<TsaSigner>>>,
}

impl std::fmt::Debug for TsaTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsaTrust").finish_non_exhaustive()
    }
}

impl TsaTrust {
    /// Trusts tokens whose signer chains to one of `anchors` (the TSA's own root, kept
    /// apart from the issuers' trust anchors). A TSA certificate may itself be an anchor.
    pub fn new(anchors: Vec<X509>) -> Result<Self, TsaTrustError> {
        if anchors.is_empty() {
            return Err(TsaTrustError::NoAnchor);
        }
        let mut builder = X509StoreBuilder::new()?;
        // Time is judged at genTime by us; the purpose and EKU are checked by us with
        // clearer reasons than OpenSSL's.
        builder.set_flags(X509VerifyFlags::NO_CHECK_TIME | X509VerifyFlags::PARTIAL_CHAIN)?;
        builder.set_purpose(X509PurposeId::ANY)?;
        for anchor in anchors {
            builder.add_cert(anchor)?;
        }
        Ok(TsaTrust {
            store: builder.build(),
            signers: RwLock::new(HashMap::new()),
        })
    }

    /// [`TsaTrust::new`] from one or more PEM certificates.
    pub fn from_pem(pem: &[u8]) -> Result<Self, TsaTrustError> {
        Self::new(X509::stack_from_pem(pem)?)
    }

    /// The trusted TSA certificate that signed `sd`: remembered by its signed
    /// signingCertificateV2 hash, or found among the carried certificates and checked.
    fn signer_of(&self, sd: &EncapsulatingSignedData<'_>) -> Result<Arc<TsaSigner>, TokenError> {
        let sid = &sd.signer.sid;
        if let Some(hash) = sd.signer.signing_certificate_sha256 {
            let known = self
                .signers
                .read()
                .ok()
                .and_then(|m| m.get(hash).cloned())
                .filter(|s| s.is(sid));
            if let Some(signer) = known {
                return Ok(signer);
            }
        }
        let certs = sd
            .certificates
            .iter()
            .map(|der| X509::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| TokenError::Malformed("a carried certificate cannot be read".into()))?;
        let cert = certs.iter().find(|c| matches_sid(c, sid)).ok_or_else(|| {
            TokenError::Malformed("no certificate in the token matches its signer".into())
        })?;
        let chain = self
            .chain(cert, &certs)
            .map_err(|e| TokenError::NotOurs(format!("openssl: {e}")))?
            .map_err(|reason| {
                TokenError::NotOurs(format!(
                    "{} does not chain to a trusted TSA anchor ({reason})",
                    name_to_string(cert.subject_name())
                ))
            })?;
        let der = cert
            .to_der()
            .map_err(|_| TokenError::Malformed("the TSA certificate cannot be encoded".into()))?;
        check_tsa_certificate(&der).map_err(TokenError::NotTimeStamping)?;
        let times = |x: &X509| {
            Some((
                asn1_to_unix(x.not_before()).ok()?,
                asn1_to_unix(x.not_after()).ok()?,
            ))
        };
        let windows = chain.iter().map(times).collect::<Option<Vec<_>>>();
        let windows = windows
            .ok_or_else(|| TokenError::Malformed("a certificate validity cannot be read".into()))?;
        let signer = Arc::new(TsaSigner {
            fingerprint: Hash::Sha256
                .digest(&der)
                .try_into()
                .map_err(|_| TokenError::Malformed("fingerprint".into()))?,
            issuer_der: cert
                .issuer_name()
                .to_der()
                .map_err(|_| TokenError::Malformed("issuer name".into()))?,
            serial: cert
                .serial_number()
                .to_bn()
                .map(|bn| bn.to_vec())
                .map_err(|_| TokenError::Malformed("serial number".into()))?,
            key_id: cert.subject_key_id().map(|k| k.as_slice().to_vec()),
            public_key: cert
                .public_key()
                .map_err(|_| TokenError::Malformed("the TSA public key cannot be read".into()))?,
            not_before: windows.iter().map(|w| w.0).max().unwrap_or(i64::MAX),
            not_after: windows.iter().map(|w| w.1).min().unwrap_or(i64::MIN),
            subject: name_to_string(cert.subject_name()),
        });
        if let Ok(mut map) = self.signers.write() {
            // Only trusted certificates get here, so the bound is a formality.
            if map.len() >= SIGNER_CACHE_CAPACITY {
                map.clear();
            }
            map.insert(signer.fingerprint, signer.clone());
        }
        Ok(signer)
    }

    /// The chain from `cert` to an anchor, leaf first, or OpenSSL's reason.
    fn chain(
        &self,
        cert: &X509,
        carried: &[X509],
    ) -> Result<Result<Vec<X509>, String>, openssl::error::ErrorStack> {
        let mut untrusted = Stack::new()?;
        for c in carried {
            untrusted.push(c.clone())?;
        }
        let mut ctx = X509StoreContext::new()?;
        ctx.init(&self.store, cert, &untrusted, |ctx| {
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
}

/// Verifies that `token` is a time-stamp token issued by the exchange's TSA over
/// `message` (for CAdES-T: the signature value) and returns what it says. Checks, in
/// order: the token's form; that its signer chains to a `trusted` anchor and is a
/// time-stamping certificate (critical extended key usage timeStamping alone) bound by
/// the signed signingCertificateV2 attribute; the message digest and signature over the
/// TSTInfo; the message imprint (SHA-256, -384 or -512) against `message`; genTime
/// within the validity of the TSA certificate and its chain.
pub fn verify_token(
    token: &[u8],
    message: &[u8],
    trusted: &TsaTrust,
) -> Result<TimeStampInfo, TokenError> {
    let sd = parse_token(token)?;
    let signer = trusted.signer_of(&sd)?;
    let info = &sd.signer;
    match info.signing_certificate_sha256 {
        Some(hash) if hash == signer.fingerprint => {}
        Some(_) => {
            return Err(TokenError::Altered(
                "the signingCertificateV2 attribute names another certificate than the signer's"
                    .into(),
            ))
        }
        None => {
            return Err(TokenError::Malformed(
                "no signingCertificateV2 attribute with a SHA-256 certificate hash".into(),
            ))
        }
    }

    let hash = Hash::from_oid(info.digest_algorithm)
        .ok_or_else(|| TokenError::Unsupported("the token's digest algorithm".into()))?;
    check_signature_algorithm(info.signature_algorithm, hash, &signer.public_key)?;
    if hash.digest(sd.content) != info.message_digest {
        return Err(TokenError::Altered(
            "the TSTInfo does not match the signed message digest".into(),
        ));
    }
    let verified = Verifier::new(hash.message_digest(), &signer.public_key)
        .and_then(|mut v| v.verify_oneshot(info.signature, &info.signed_attrs_to_verify()))
        .unwrap_or(false);
    if !verified {
        return Err(TokenError::Altered(
            "the signature does not verify with the TSA's public key".into(),
        ));
    }

    let tst = decode_tst_info(sd.content)?;
    let imprint = &tst.message_imprint;
    let imprint_hash = Hash::from_oid(imprint.hash_algorithm.oid.as_bytes())
        .ok_or_else(|| TokenError::Unsupported("the message imprint algorithm".into()))?;
    if imprint_hash.digest(message) != imprint.hashed_message.as_bytes() {
        return Err(TokenError::ImprintMismatch);
    }

    let secs = i64::try_from(tst.gen_time.to_unix_duration().as_secs())
        .map_err(|_| TokenError::Malformed("genTime out of range".into()))?;
    let gen_time = DateTime::<Utc>::from_timestamp(secs, 0)
        .ok_or_else(|| TokenError::Malformed("genTime out of range".into()))?;
    if secs < signer.not_before || secs > signer.not_after {
        return Err(TokenError::OutsideValidity {
            gen_time: unix_to_rfc3339(secs),
            not_before: unix_to_rfc3339(signer.not_before),
            not_after: unix_to_rfc3339(signer.not_after),
        });
    }
    Ok(TimeStampInfo {
        gen_time,
        serial: hex::encode(strip_zeros(tst.serial_number.as_bytes())),
        tsa_subject: signer.subject.clone(),
        tsa_certificate_sha256: hex::encode(signer.fingerprint),
        policy: tst.policy.to_string(),
    })
}

/// The signature algorithm must be the key's, with the digest algorithm's hash.
fn check_signature_algorithm(alg: &[u8], hash: Hash, key: &PKey<Public>) -> Result<(), TokenError> {
    let named = |o| is_oid(alg, o);
    let ok = match key.id() {
        Id::EC => {
            named(oid::EC_PUBLIC_KEY)
                || match hash {
                    Hash::Sha256 => named(oid::ECDSA_WITH_SHA256),
                    Hash::Sha384 => named(oid::ECDSA_WITH_SHA384),
                    Hash::Sha512 => named(oid::ECDSA_WITH_SHA512),
                }
        }
        Id::RSA => {
            named(oid::RSA_ENCRYPTION)
                || match hash {
                    Hash::Sha256 => named(oid::SHA256_WITH_RSA),
                    Hash::Sha384 => named(oid::SHA384_WITH_RSA),
                    Hash::Sha512 => named(oid::SHA512_WITH_RSA),
                }
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(TokenError::Unsupported(
            "the token's signature algorithm does not match the TSA key and digest".into(),
        ))
    }
}

/// The CAdES-T check in one call: the signature time-stamp of `cms_der`, if it carries
/// one, verified over its signature value. `Ok(None)` when there is none.
pub fn verify_signature_timestamp(
    cms_der: &[u8],
    trusted: &TsaTrust,
) -> Result<Option<TimeStampInfo>, TokenError> {
    let token = timestamp_of(cms_der).map_err(|e| TokenError::Malformed(e.to_string()))?;
    let Some(token) = token else {
        return Ok(None);
    };
    let value = signature_value(cms_der).map_err(|e| TokenError::Malformed(e.0))?;
    verify_token(token, value, trusted).map(Some)
}

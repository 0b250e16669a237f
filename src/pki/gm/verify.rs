//! Verifying a detached SM2 CMS signature against trusted SM2 CAs.
//!
//! The SignedData is read with the zero-copy reader of [`crate::pki::cms_parse`] (the
//! one the OpenSSL path uses), so the signature is checked over the signed attributes
//! exactly as received; certificates are read with `x509-cert`.

use chrono::{DateTime, Utc};
use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage, KeyUsages};

use super::cert::Sm2Certificate;
use super::error::Sm2Error;
use super::key::sm2_verify_raw;
use super::{oid, sm3_digest};
use crate::pki::certs::unix_to_rfc3339;
use crate::pki::cms_parse::{parse_detached_signed_data, SignerId};
use crate::pki::document::{MAX_DOCUMENT_BYTES, MAX_SIGNATURE_BYTES};

/// Certificates between the signer and a trust anchor, at most (a guarantee issuer's CA
/// is a root or one level under it).
const MAX_INTERMEDIATES: usize = 4;

/// A valid signature: who signed and when they said they did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sm2Verified {
    /// The signer certificate, DER.
    pub signer_certificate: Vec<u8>,
    /// Its SHA-256 fingerprint, lowercase hex.
    pub signer_certificate_sha256: String,
    /// Its subject (`C=CN, O=..., organizationIdentifier=NTRCN-..., CN=...`).
    pub signer_subject: String,
    /// The signingTime attribute: the signer's claim, not a proof (a time-stamp is).
    /// `None` when the signer did not include one (our signatures always do).
    pub signing_time: Option<DateTime<Utc>>,
    /// Subjects from the signer to the trust anchor, inclusive.
    pub chain: Vec<String>,
}

/// Verifies `cms_der`, a detached CMS SignedData by one SM2 signer, over `document`:
/// format and algorithms (SM3, SM2; the OIDs of [`crate::pki::gm`]), messageDigest =
/// SM3(document), the signature over the signed attributes with the signer certificate's
/// key and the default distinguishing ID, a chain from the signer (through CA
/// certificates carried in the signature) to one of `trust`, every certificate of the
/// chain valid at `at_time`, and the signer's keyUsage (digitalSignature or
/// nonRepudiation; an extendedKeyUsage, if present, must allow documentSigning,
/// emailProtection or any).
///
/// Revocation is not checked here; the caller (the engine) owns CRLs. Inputs beyond
/// [`MAX_DOCUMENT_BYTES`] and [`MAX_SIGNATURE_BYTES`] are refused unread. Never panics.
pub fn verify_detached(
    document: &[u8],
    cms_der: &[u8],
    trust: &[Sm2Certificate],
    at_time: DateTime<Utc>,
) -> Result<Sm2Verified, Sm2Error> {
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(Sm2Error::TooLarge {
            what: "document",
            len: document.len(),
            max: MAX_DOCUMENT_BYTES,
        });
    }
    if cms_der.len() > MAX_SIGNATURE_BYTES {
        return Err(Sm2Error::TooLarge {
            what: "signature",
            len: cms_der.len(),
            max: MAX_SIGNATURE_BYTES,
        });
    }
    let sd = parse_detached_signed_data(
        cms_der,
        &[oid::SIGNED_DATA.as_bytes(), oid::GM_SIGNED_DATA.as_bytes()],
        &[oid::DATA.as_bytes(), oid::GM_DATA.as_bytes()],
    )
    .map_err(|e| Sm2Error::Malformed(e.0))?;
    let signer = &sd.signer;
    if signer.digest_algorithm != oid::SM3.as_bytes()
        || !sd.digest_algorithms.contains(&oid::SM3.as_bytes())
    {
        return Err(Sm2Error::UnsupportedAlgorithm(
            "the digest algorithm is not SM3".into(),
        ));
    }
    let accepted_signature = [oid::SM2_WITH_SM3, oid::SM2_SIGN, oid::SM2];
    if !accepted_signature
        .iter()
        .any(|o| o.as_bytes() == signer.signature_algorithm)
    {
        return Err(Sm2Error::UnsupportedAlgorithm(
            "the signature algorithm is not SM2".into(),
        ));
    }

    let carried = sd
        .certificates
        .iter()
        .map(|der| Sm2Certificate::from_der(der))
        .collect::<Result<Vec<_>, _>>()?;
    let signer_cert = carried
        .iter()
        .find(|c| matches_sid(c, &signer.sid))
        .ok_or(Sm2Error::SignerNotFound)?;

    if signer.message_digest != sm3_digest(document) {
        return Err(Sm2Error::DigestMismatch);
    }
    let signer_key = signer_cert.public_key()?;
    sm2_verify_raw(
        &signer_key,
        &signer.signed_attrs_to_verify(),
        signer.signature,
    )
    .map_err(|e| match e {
        // A signature value that is not DER (r, s) is a bad signature, not bad CMS.
        Sm2Error::Malformed(_) => Sm2Error::BadSignature,
        other => other,
    })?;

    let chain = chain_to_anchor(signer_cert, &carried, trust)?;
    for cert in &chain {
        if !cert.is_valid_at(at_time) {
            return Err(Sm2Error::NotValidAt {
                subject: cert.subject(),
                at: unix_to_rfc3339(at_time.timestamp()),
                not_before: unix_to_rfc3339(cert.not_before().timestamp()),
                not_after: unix_to_rfc3339(cert.not_after().timestamp()),
            });
        }
    }
    check_signer_usage(signer_cert)?;

    Ok(Sm2Verified {
        signer_certificate: signer_cert.der().to_vec(),
        signer_certificate_sha256: signer_cert.sha256_fingerprint(),
        signer_subject: signer_cert.subject(),
        signing_time: signer.signing_time,
        chain: chain.iter().map(|c| c.subject()).collect(),
    })
}

fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    &bytes[skip..]
}

fn matches_sid(cert: &Sm2Certificate, sid: &SignerId<'_>) -> bool {
    match sid {
        SignerId::IssuerSerial { issuer, serial } => {
            cert.issuer_der() == *issuer
                && cert.certificate().tbs_certificate.serial_number.as_bytes()
                    == strip_zeros(serial)
        }
        SignerId::KeyId(id) => cert.subject_key_id().as_deref() == Some(*id),
    }
}

/// The path from `signer` to a trust anchor, inclusive: each certificate signed by the
/// next, each issuer a CA allowed to sign certificates; intermediates come from the
/// certificates the signature carries.
pub(crate) fn chain_to_anchor<'c>(
    signer: &'c Sm2Certificate,
    carried: &'c [Sm2Certificate],
    trust: &'c [Sm2Certificate],
) -> Result<Vec<&'c Sm2Certificate>, Sm2Error> {
    let mut chain = vec![signer];
    let mut current = signer;
    for _ in 0..=MAX_INTERMEDIATES {
        if let Some(anchor) = trust.iter().find(|a| issued(current, a)) {
            chain.push(anchor);
            return Ok(chain);
        }
        let Some(next) = carried
            .iter()
            .find(|c| !chain.contains(c) && issued(current, c))
        else {
            return Err(Sm2Error::Untrusted(format!(
                "no trusted SM2 CA issued the certificate of {} (issuer {})",
                current.subject(),
                current.issuer()
            )));
        };
        chain.push(next);
        current = next;
    }
    Err(Sm2Error::Untrusted(format!(
        "more than {MAX_INTERMEDIATES} intermediate certificates"
    )))
}

/// Whether `issuer` is a CA (basicConstraints cA, keyCertSign if it has a keyUsage) whose
/// name and SM2 key issued `cert`.
fn issued(cert: &Sm2Certificate, issuer: &Sm2Certificate) -> bool {
    if cert.issuer_der() != issuer.subject_der() || !issuer.is_ca() {
        return false;
    }
    let may_sign_certificates = match issuer.extension::<KeyUsage>() {
        Ok(None) => true,
        Ok(Some(ku)) => ku.key_cert_sign(),
        Err(_) => false,
    };
    may_sign_certificates
        && issuer
            .public_key()
            .is_ok_and(|key| cert.verify_signed_by(&key).is_ok())
}

/// keyUsage digitalSignature or nonRepudiation (as the signature policy's default asks);
/// an extendedKeyUsage, if present, must allow documentSigning, emailProtection or any.
fn check_signer_usage(cert: &Sm2Certificate) -> Result<(), Sm2Error> {
    let unreadable = |e: Sm2Error| Sm2Error::WrongKeyUsage(e.to_string());
    let ku = cert
        .extension::<KeyUsage>()
        .map_err(unreadable)?
        .ok_or_else(|| Sm2Error::WrongKeyUsage("the certificate has no keyUsage".into()))?;
    if !ku.0.contains(KeyUsages::DigitalSignature) && !ku.0.contains(KeyUsages::NonRepudiation) {
        return Err(Sm2Error::WrongKeyUsage(
            "keyUsage has neither digitalSignature nor nonRepudiation".into(),
        ));
    }
    if let Some(eku) = cert.extension::<ExtendedKeyUsage>().map_err(unreadable)? {
        let allowed = [
            oid::DOCUMENT_SIGNING,
            oid::EMAIL_PROTECTION,
            oid::ANY_EXTENDED_KEY_USAGE,
        ];
        if !eku.0.iter().any(|o| allowed.contains(o)) {
            return Err(Sm2Error::WrongKeyUsage(
                "extendedKeyUsage allows neither documentSigning, emailProtection nor any".into(),
            ));
        }
    }
    Ok(())
}

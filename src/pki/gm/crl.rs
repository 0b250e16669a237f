//! SM2 certificate revocation lists: issuing one from an [`Sm2Ca`] (demo and tests) and
//! checking that an SM2 CA signed one. OpenSSL 3.0 reads these CRLs (the engine takes
//! their dates and entries from it) but checks an SM2 signature on a CRL with an empty
//! distinguishing ID, so the signature is checked here, with GM/T 0009's default ID.

use chrono::{DateTime, Utc};
use der::asn1::{BitString, OctetString, Uint};
use der::{Decode, Encode};
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::Version;

use super::cert::{encode_time, extension, Sm2Ca};
use super::error::{Sm2Error, Sm2SignError};
use super::key::{sm2_sign_raw, sm2_verify_raw, Sm2PublicKey};
use super::oid;
use crate::pki::demo::RevokedSerial;

fn sm2_with_sm3() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: oid::SM2_WITH_SM3,
        parameters: None,
    }
}

impl Sm2Ca {
    /// Issues a v2 CRL, DER, listing `revoked`, valid from `this_update` to
    /// `next_update`, with cRLNumber `number` and the CA's key identifier; signed
    /// SM2-with-SM3 with the default distinguishing ID.
    pub fn crl(
        &self,
        revoked: &[RevokedSerial],
        this_update: DateTime<Utc>,
        next_update: DateTime<Utc>,
        number: u64,
    ) -> Result<Vec<u8>, Sm2SignError> {
        let mut entries = Vec::with_capacity(revoked.len());
        for r in revoked {
            let bytes = hex::decode(r.serial_hex.trim_start_matches("0x"))
                .map_err(|_| Sm2SignError::Serial(r.serial_hex.clone()))?;
            entries.push(RevokedCert {
                serial_number: SerialNumber::new(&bytes)?,
                revocation_date: encode_time(r.revoked_at)?,
                crl_entry_extensions: None,
            });
        }
        let mut extensions = vec![extension(
            &CrlNumber(Uint::new(&number.to_be_bytes())?),
            false,
        )?];
        if let Some(key_id) = self.cert.subject_key_id() {
            extensions.push(extension(
                &AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(key_id)?),
                    ..Default::default()
                },
                false,
            )?);
        }
        let tbs = TbsCertList {
            version: Version::V2,
            signature: sm2_with_sm3(),
            issuer: self.cert.certificate().tbs_certificate.subject.clone(),
            this_update: encode_time(this_update)?,
            next_update: Some(encode_time(next_update)?),
            revoked_certificates: (!entries.is_empty()).then_some(entries),
            crl_extensions: Some(extensions),
        };
        let signature = sm2_sign_raw(&self.key, &tbs.to_der()?)?;
        Ok(CertificateList {
            tbs_cert_list: tbs,
            signature_algorithm: sm2_with_sm3(),
            signature: BitString::from_bytes(&signature)?,
        }
        .to_der()?)
    }
}

/// Checks that `issuer_key` signed the DER CRL `crl_der` (SM2-with-SM3, default ID).
/// The bytes must be the CRL's DER encoding, so the signature is checked over exactly
/// the bytes received.
pub fn verify_crl_signed_by(crl_der: &[u8], issuer_key: &Sm2PublicKey) -> Result<(), Sm2Error> {
    let unreadable = |e: der::Error| Sm2Error::Malformed(format!("CRL: {e}"));
    let crl = CertificateList::from_der(crl_der).map_err(unreadable)?;
    if crl.to_der().map_err(unreadable)? != crl_der {
        return Err(Sm2Error::Malformed("CRL is not in DER".into()));
    }
    if crl.signature_algorithm.oid != oid::SM2_WITH_SM3
        || crl.tbs_cert_list.signature.oid != oid::SM2_WITH_SM3
    {
        return Err(Sm2Error::UnsupportedAlgorithm(format!(
            "the CRL is signed with {}, not SM2-with-SM3",
            crl.signature_algorithm.oid
        )));
    }
    let tbs = crl.tbs_cert_list.to_der().map_err(unreadable)?;
    let signature = crl
        .signature
        .as_bytes()
        .ok_or_else(|| Sm2Error::Malformed("CRL signature has unused bits".into()))?;
    sm2_verify_raw(issuer_key, &tbs, signature)
}

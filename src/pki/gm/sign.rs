//! Detached SM2 CMS SignedData (GM/T 0010) over a document.

use chrono::{DateTime, Utc};
use cms::cert::x509::attr::Attribute;
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{OctetString, SetOfVec};
use der::oid::ObjectIdentifier;
use der::{Any, Encode};
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::cert::{encode_time, Sm2Certificate};
use super::error::Sm2SignError;
use super::key::{sm2_sign_raw, Sm2PrivateKey};
use super::{oid, sm3_digest};
use crate::pki::document::MAX_DOCUMENT_BYTES;

fn algorithm(oid: ObjectIdentifier) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid,
        parameters: None,
    }
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, der::Error> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![value])?,
    })
}

/// CAdES's signingCertificateV2 (RFC 5035) naming the signer certificate by its SHA-256,
/// the default hash algorithm, which is therefore left out:
/// `SEQUENCE { certs SEQUENCE OF ESSCertIDv2 { SEQUENCE { certHash OCTET STRING } } }`.
fn signing_certificate_v2(cert_der: &[u8]) -> Result<Any, der::Error> {
    use der::asn1::SequenceOf;
    use sha2::{Digest, Sha256};

    #[derive(der::Sequence)]
    struct EssCertIdV2 {
        cert_hash: OctetString,
    }
    #[derive(der::Sequence)]
    struct SigningCertificateV2 {
        certs: SequenceOf<EssCertIdV2, 1>,
    }
    let mut certs = SequenceOf::new();
    certs.add(EssCertIdV2 {
        cert_hash: OctetString::new(Sha256::digest(cert_der).to_vec())?,
    })?;
    Any::encode_from(&SigningCertificateV2 { certs })
}

/// Signs `document` with a detached CMS SignedData, DER: SM3 digest, SM2-with-SM3
/// signature (default distinguishing ID) over the signed attributes contentType (id-data),
/// messageDigest (SM3 of the document), signingTime and signingCertificateV2 (the
/// signer certificate's SHA-256, as CAdES-BES asks); the signer identified by
/// issuerAndSerialNumber; `signer_cert` and then `extra_certs` (e.g. the CA) in
/// `certificates`. The OIDs are PKCS#7's, as explained in [`crate::pki::gm`].
pub fn sign_detached(
    document: &[u8],
    signer_key: &Sm2PrivateKey,
    signer_cert: &Sm2Certificate,
    extra_certs: &[Sm2Certificate],
    signing_time: DateTime<Utc>,
) -> Result<Vec<u8>, Sm2SignError> {
    let oids = Oids {
        signed_data: oid::SIGNED_DATA,
        data: oid::DATA,
        signature: oid::SM2_WITH_SM3,
    };
    sign_with_oids(
        document,
        signer_key,
        signer_cert,
        extra_certs,
        signing_time,
        oids,
    )
}

/// The identifiers a signer chooses among (tests make the GM/T 0010 variants with it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Oids {
    /// The ContentInfo content type.
    pub signed_data: ObjectIdentifier,
    /// eContentType and the contentType attribute.
    pub data: ObjectIdentifier,
    /// SignerInfo signatureAlgorithm.
    pub signature: ObjectIdentifier,
}

pub(crate) fn sign_with_oids(
    document: &[u8],
    signer_key: &Sm2PrivateKey,
    signer_cert: &Sm2Certificate,
    extra_certs: &[Sm2Certificate],
    signing_time: DateTime<Utc>,
    oids: Oids,
) -> Result<Vec<u8>, Sm2SignError> {
    if document.len() > MAX_DOCUMENT_BYTES {
        return Err(Sm2SignError::TooLarge(document.len()));
    }
    let cert_key = signer_cert
        .public_key()
        .map_err(|e| Sm2SignError::NotSm2Certificate(e.to_string()))?;
    if cert_key != signer_key.public_key() {
        return Err(Sm2SignError::KeyMismatch);
    }

    let signed_attrs = SetOfVec::try_from(vec![
        attribute(oid::CONTENT_TYPE, Any::encode_from(&oids.data)?)?,
        attribute(
            oid::MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(sm3_digest(document))?)?,
        )?,
        attribute(
            oid::SIGNING_TIME,
            Any::encode_from(&encode_time(signing_time)?)?,
        )?,
        attribute(
            oid::SIGNING_CERTIFICATE_V2,
            signing_certificate_v2(signer_cert.der())?,
        )?,
    ])?;
    // RFC 5652 §5.4: the signature covers the DER of the attributes as a SET OF.
    let signature = sm2_sign_raw(signer_key, &signed_attrs.to_der()?)?;

    let tbs = &signer_cert.certificate().tbs_certificate;
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer.clone(),
            serial_number: tbs.serial_number.clone(),
        }),
        digest_alg: algorithm(oid::SM3),
        signed_attrs: Some(signed_attrs),
        signature_algorithm: algorithm(oids.signature),
        signature: OctetString::new(signature)?,
        unsigned_attrs: None,
    };
    let mut certificates = SetOfVec::new();
    for cert in std::iter::once(signer_cert).chain(extra_certs) {
        let choice = CertificateChoices::Certificate(cert.certificate().clone());
        if !certificates.iter().any(|c| *c == choice) {
            certificates.insert(choice)?;
        }
    }
    let signed_data = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![algorithm(oid::SM3)])?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: oids.data,
            econtent: None,
        },
        certificates: Some(CertificateSet(certificates)),
        crls: None,
        signer_infos: SignerInfos::try_from(vec![signer_info])?,
    };
    Ok(ContentInfo {
        content_type: oids.signed_data,
        content: Any::encode_from(&signed_data)?,
    }
    .to_der()?)
}

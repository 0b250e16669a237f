//! Issuing RFC 3161 time-stamp tokens with the exchange's own TSA key.

use chrono::{DateTime, Utc};
use cms::cert::x509::attr::Attribute;
use cms::cert::x509::ext::pkix::name::GeneralName;
use cms::cert::x509::spki::AlgorithmIdentifierOwned;
use cms::cert::x509::Certificate;
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use der::asn1::{GeneralizedTime, Int, OctetString, SetOfVec, Uint};
use der::oid::ObjectIdentifier;
use der::{Any, Decode, Encode, Sequence};
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Private};
use openssl::sign::Signer;
use openssl::x509::X509;
use x509_tsp::{Accuracy, MessageImprint, TspVersion, TstInfo};

use super::attribute::{add_signature_timestamp, signature_value};
use super::error::TimeStampError;
use super::{check_tsa_certificate, oid, Hash};
use crate::pki::certs::asn1_to_unix;

/// SigningCertificateV2 (RFC 5035): binds the token to the TSA certificate.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

/// ESSCertIDv2 with the default hash algorithm (SHA-256, so omitted in DER) and no
/// issuerSerial (optional; the hash alone identifies the certificate).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct EssCertIdV2 {
    cert_hash: OctetString,
}

/// The exchange's time-stamping authority: a key, its certificate (critical extended
/// key usage timeStamping) and the certificates up to the TSA's anchor.
pub struct TimeStampAuthority {
    key: PKey<Private>,
    cert: X509,
    certificates: CertificateSet,
    sid: IssuerAndSerialNumber,
    subject: cms::cert::x509::name::Name,
    signature_algorithm: AlgorithmIdentifierOwned,
    signing_certificate: Attribute,
    policy: ObjectIdentifier,
    not_before: i64,
    not_after: i64,
}

impl std::fmt::Debug for TimeStampAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimeStampAuthority")
            .field(
                "subject",
                &crate::pki::certs::name_to_string(self.cert.subject_name()),
            )
            .field("policy", &self.policy.to_string())
            .finish_non_exhaustive()
    }
}

fn algorithm(oid: ObjectIdentifier, parameters: Option<Any>) -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned { oid, parameters }
}

impl TimeStampAuthority {
    /// A TSA signing with `key` under `cert`; `chain` holds the certificates above it
    /// (intermediates and, optionally, the anchor) to carry in each token. Checks that the
    /// certificate is a time-stamping certificate and the key is its key.
    pub fn new(cert: X509, key: PKey<Private>, chain: Vec<X509>) -> Result<Self, TimeStampError> {
        check_tsa_certificate(&cert.to_der()?)
            .map_err(TimeStampError::NotTimeStampingCertificate)?;
        Self::build(cert, key, chain)
    }

    /// A TSA that issues with whatever certificate it is given, at any time: for tests
    /// of what a verifier makes of tokens the real constructor would never allow.
    #[cfg(test)]
    pub(super) fn unchecked(
        cert: X509,
        key: PKey<Private>,
        chain: Vec<X509>,
    ) -> Result<Self, TimeStampError> {
        let mut tsa = Self::build(cert, key, chain)?;
        tsa.not_before = 0;
        tsa.not_after = i64::MAX;
        Ok(tsa)
    }

    fn build(cert: X509, key: PKey<Private>, chain: Vec<X509>) -> Result<Self, TimeStampError> {
        let der = cert.to_der()?;
        if !cert.public_key()?.public_eq(&key) {
            return Err(TimeStampError::KeyMismatch);
        }
        let signature_algorithm = match key.id() {
            Id::EC if key.bits() == 256 => algorithm(oid::ECDSA_WITH_SHA256, None),
            Id::RSA if key.bits() >= 2048 => algorithm(oid::SHA256_WITH_RSA, Some(Any::null())),
            _ => return Err(TimeStampError::UnsupportedKey),
        };
        let parsed = Certificate::from_der(&der)?;
        let mut carried = vec![CertificateChoices::Certificate(parsed.clone())];
        for c in &chain {
            let c = Certificate::from_der(&c.to_der()?)?;
            if !carried.contains(&CertificateChoices::Certificate(c.clone())) {
                carried.push(CertificateChoices::Certificate(c));
            }
        }
        let ess = SigningCertificateV2 {
            certs: vec![EssCertIdV2 {
                cert_hash: OctetString::new(Hash::Sha256.digest(&der))?,
            }],
        };
        let signing_certificate = Attribute {
            oid: oid::SIGNING_CERTIFICATE_V2,
            values: SetOfVec::try_from(vec![Any::encode_from(&ess)?])?,
        };
        Ok(TimeStampAuthority {
            not_before: asn1_to_unix(cert.not_before())?,
            not_after: asn1_to_unix(cert.not_after())?,
            key,
            cert,
            certificates: CertificateSet::try_from(carried)?,
            sid: IssuerAndSerialNumber {
                issuer: parsed.tbs_certificate.issuer.clone(),
                serial_number: parsed.tbs_certificate.serial_number.clone(),
            },
            subject: parsed.tbs_certificate.subject,
            signature_algorithm,
            signing_certificate,
            policy: oid::EXCHANGE_TSA_POLICY,
        })
    }

    /// Loads a TSA from PEM: `certs_pem` holds the TSA certificate first, then any
    /// certificates above it; `key_pem` its private key (PKCS#8 or traditional).
    pub fn from_pem(certs_pem: &[u8], key_pem: &[u8]) -> Result<Self, TimeStampError> {
        let mut certs = X509::stack_from_pem(certs_pem)?.into_iter();
        let cert = certs.next().ok_or_else(|| {
            TimeStampError::NotTimeStampingCertificate("no certificate in the PEM".into())
        })?;
        let key = PKey::private_key_from_pem(key_pem)?;
        Self::new(cert, key, certs.collect())
    }

    /// Issues tokens under `policy` (dotted form) instead of
    /// [`oid::EXCHANGE_TSA_POLICY`].
    pub fn with_policy(mut self, policy: &str) -> Result<Self, TimeStampError> {
        self.policy = ObjectIdentifier::new(policy)
            .map_err(|_| TimeStampError::BadPolicy(policy.to_owned()))?;
        Ok(self)
    }

    /// The TSA certificate.
    pub fn certificate(&self) -> &X509 {
        &self.cert
    }

    /// The policy written into each token.
    pub fn policy(&self) -> ObjectIdentifier {
        self.policy
    }

    /// Issues a DER TimeStampToken (a ContentInfo holding a SignedData over an
    /// id-ct-TSTInfo) saying that `message` existed at `at`: TSTInfo version 1, this
    /// TSA's policy, the SHA-256 imprint of `message`, `serial` (a random positive
    /// 128-bit number when `None`; the caller keeps serials unique), genTime `at` to the
    /// second with an accuracy of one second, and the TSA's name. Signed with SHA-256,
    /// carrying the TSA certificates and the signingCertificateV2 attribute.
    ///
    /// For CAdES-T, `message` is the signature value ([`signature_value`]).
    pub fn stamp(
        &self,
        message: &[u8],
        at: DateTime<Utc>,
        serial: Option<u128>,
    ) -> Result<Vec<u8>, TimeStampError> {
        let secs = at.timestamp();
        if secs < self.not_before || secs > self.not_after {
            return Err(TimeStampError::OutsideValidity(at));
        }
        let serial = match serial {
            Some(s) => s,
            None => random_serial()?,
        };
        let tst_info = TstInfo {
            version: TspVersion::V1,
            policy: self.policy,
            message_imprint: MessageImprint {
                hash_algorithm: algorithm(oid::SHA256, None),
                hashed_message: OctetString::new(Hash::Sha256.digest(message))?,
            },
            serial_number: Int::from(Uint::new(&serial.to_be_bytes())?),
            gen_time: GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
                u64::try_from(secs).map_err(|_| TimeStampError::OutsideValidity(at))?,
            ))?,
            accuracy: Some(Accuracy {
                seconds: Some(1),
                millis: None,
                micros: None,
            }),
            ordering: false,
            nonce: None,
            tsa: Some(GeneralName::DirectoryName(self.subject.clone())),
            extensions: None,
        }
        .to_der()?;

        // RFC 3161 §2.4.2 and RFC 5035: contentType, messageDigest, signingCertificateV2.
        // No signingTime: genTime is the time, and a second clock would only confuse.
        let attribute = |oid, value: Any| -> Result<Attribute, der::Error> {
            Ok(Attribute {
                oid,
                values: SetOfVec::try_from(vec![value])?,
            })
        };
        let signed_attrs = SetOfVec::try_from(vec![
            attribute(oid::CONTENT_TYPE, Any::encode_from(&oid::TST_INFO)?)?,
            attribute(
                oid::MESSAGE_DIGEST,
                Any::encode_from(&OctetString::new(Hash::Sha256.digest(&tst_info))?)?,
            )?,
            self.signing_certificate.clone(),
        ])?;
        let signature = Signer::new(MessageDigest::sha256(), &self.key)?
            .sign_oneshot_to_vec(&signed_attrs.to_der()?)?;

        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(self.sid.clone()),
            digest_alg: algorithm(oid::SHA256, None),
            signed_attrs: Some(signed_attrs),
            signature_algorithm: self.signature_algorithm.clone(),
            signature: OctetString::new(signature)?,
            unsigned_attrs: None,
        };
        let signed_data = SignedData {
            // v3: the encapsulated content is not id-data (RFC 5652 §5.1).
            version: CmsVersion::V3,
            digest_algorithms: SetOfVec::try_from(vec![algorithm(oid::SHA256, None)])?,
            encap_content_info: EncapsulatedContentInfo {
                econtent_type: oid::TST_INFO,
                econtent: Some(Any::encode_from(&OctetString::new(tst_info)?)?),
            },
            certificates: Some(self.certificates.clone()),
            crls: None,
            signer_infos: SignerInfos::try_from(vec![signer_info])?,
        };
        Ok(ContentInfo {
            content_type: oid::SIGNED_DATA,
            content: Any::encode_from(&signed_data)?,
        }
        .to_der()?)
    }

    /// CAdES-T in one step: stamps the signature value of `signature` (a detached DER
    /// CMS SignedData with one signer) at `at` and returns the signature with the token
    /// added as its signature time-stamp.
    pub fn stamp_signature(
        &self,
        signature: &[u8],
        at: DateTime<Utc>,
        serial: Option<u128>,
    ) -> Result<Vec<u8>, TimeStampError> {
        let token = self.stamp(signature_value(signature)?, at, serial)?;
        add_signature_timestamp(signature, &token)
    }
}

/// A random positive serial number, never zero.
fn random_serial() -> Result<u128, openssl::error::ErrorStack> {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes)?;
    Ok(u128::from_be_bytes(bytes).max(1))
}

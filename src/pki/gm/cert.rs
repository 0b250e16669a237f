//! SM2 certificates (GM/T 0015): reading them, checking who signed them, and a demo CA
//! that issues issuer certificates shaped like [`crate::pki::demo`]'s RSA/ECDSA ones
//! (basicConstraints, critical keyUsage digitalSignature + nonRepudiation, optional
//! extendedKeyUsage documentSigning, key identifiers, the USCC in the subject), signed
//! SM2-with-SM3 with the default distinguishing ID.

use chrono::{DateTime, Datelike, Duration, Utc};
use der::asn1::{
    BitString, GeneralizedTime, OctetString, PrintableStringRef, SetOfVec, UtcTime, Utf8StringRef,
};
use der::oid::{AssociatedOid, ObjectIdentifier};
use der::pem::LineEnding;
use der::{Any, Decode, DecodePem, Encode, Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use super::error::{Sm2Error, Sm2SignError};
use super::key::{sm2_sign_raw, sm2_verify_raw, Sm2PrivateKey, Sm2PublicKey};
use super::oid;
use crate::pki::demo::UsccField;

/// Attribute types of the names we write and print.
const COUNTRY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
const ORGANIZATION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");

/// A DER X.509 certificate, parsed. Accepted only when the bytes are its DER encoding,
/// so signatures are always checked over exactly the bytes received.
#[derive(Clone, Debug)]
pub struct Sm2Certificate {
    der: Vec<u8>,
    cert: Certificate,
}

impl PartialEq for Sm2Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for Sm2Certificate {}

impl Sm2Certificate {
    /// Reads a DER certificate (any key type; [`Sm2Certificate::public_key`] says whether
    /// it is SM2).
    pub fn from_der(der: &[u8]) -> Result<Self, Sm2Error> {
        let unreadable = |e: der::Error| Sm2Error::Malformed(format!("certificate: {e}"));
        let cert = Certificate::from_der(der).map_err(unreadable)?;
        if cert.to_der().map_err(unreadable)? != der {
            return Err(Sm2Error::Malformed("certificate is not in DER".into()));
        }
        Ok(Sm2Certificate {
            der: der.to_vec(),
            cert,
        })
    }

    /// Reads one `-----BEGIN CERTIFICATE-----` PEM.
    pub fn from_pem(pem: &str) -> Result<Self, Sm2Error> {
        let cert = Certificate::from_pem(pem)
            .map_err(|e| Sm2Error::Malformed(format!("certificate PEM: {e}")))?;
        let der = cert
            .to_der()
            .map_err(|e| Sm2Error::Malformed(format!("certificate: {e}")))?;
        Ok(Sm2Certificate { der, cert })
    }

    /// The DER bytes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate as PEM (`CERTIFICATE`, LF line endings).
    pub fn to_pem(&self) -> String {
        // Encoding bytes we hold as base64 cannot fail.
        der::pem::encode_string("CERTIFICATE", LineEnding::LF, &self.der).unwrap_or_default()
    }

    /// The parsed structure.
    pub fn certificate(&self) -> &Certificate {
        &self.cert
    }

    /// Subject as `C=CN, O=..., CN=...` (in encoded order, as [`crate::pki::certs`]
    /// prints OpenSSL names).
    pub fn subject(&self) -> String {
        name_to_string(&self.cert.tbs_certificate.subject)
    }

    /// Issuer, in the same form.
    pub fn issuer(&self) -> String {
        name_to_string(&self.cert.tbs_certificate.issuer)
    }

    /// Serial number, lowercase hex.
    pub fn serial_hex(&self) -> String {
        hex::encode(self.cert.tbs_certificate.serial_number.as_bytes())
    }

    /// Lowercase hex SHA-256 of the DER: the fingerprint used in reports.
    pub fn sha256_fingerprint(&self) -> String {
        crate::pki::sha256_hex(&self.der)
    }

    /// notBefore.
    pub fn not_before(&self) -> DateTime<Utc> {
        to_chrono(self.cert.tbs_certificate.validity.not_before)
    }

    /// notAfter.
    pub fn not_after(&self) -> DateTime<Utc> {
        to_chrono(self.cert.tbs_certificate.validity.not_after)
    }

    /// Whether `at` lies within notBefore..=notAfter.
    pub fn is_valid_at(&self, at: DateTime<Utc>) -> bool {
        self.not_before() <= at && at <= self.not_after()
    }

    /// The SM2 public key; [`Sm2Error::UnsupportedAlgorithm`] for any other key.
    pub fn public_key(&self) -> Result<Sm2PublicKey, Sm2Error> {
        let spki = &self.cert.tbs_certificate.subject_public_key_info;
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
        if spki.algorithm.oid != oid::EC_PUBLIC_KEY || curve != Some(oid::SM2) {
            return Err(Sm2Error::UnsupportedAlgorithm(format!(
                "the key of {} is not an SM2 key (algorithm {})",
                self.subject(),
                spki.algorithm.oid
            )));
        }
        let der = spki
            .to_der()
            .map_err(|e| Sm2Error::Malformed(format!("certificate key: {e}")))?;
        Sm2PublicKey::from_public_key_der(&der)
            .map_err(|e| Sm2Error::Malformed(format!("certificate key: {e}")))
    }

    /// Checks that `issuer_key` signed this certificate (SM2-with-SM3, default ID).
    pub fn verify_signed_by(&self, issuer_key: &Sm2PublicKey) -> Result<(), Sm2Error> {
        let outer = &self.cert.signature_algorithm;
        let inner = &self.cert.tbs_certificate.signature;
        if outer.oid != oid::SM2_WITH_SM3 || inner.oid != oid::SM2_WITH_SM3 {
            return Err(Sm2Error::UnsupportedAlgorithm(format!(
                "{} is signed with {}, not SM2-with-SM3",
                self.subject(),
                outer.oid
            )));
        }
        let tbs = self
            .cert
            .tbs_certificate
            .to_der()
            .map_err(|e| Sm2Error::Malformed(format!("certificate: {e}")))?;
        let signature =
            self.cert.signature.as_bytes().ok_or_else(|| {
                Sm2Error::Malformed("certificate signature has unused bits".into())
            })?;
        sm2_verify_raw(issuer_key, &tbs, signature)
    }

    /// The extension `T`, if present; `Err` when present but unreadable.
    pub fn extension<T: AssociatedOid + for<'a> Decode<'a>>(&self) -> Result<Option<T>, Sm2Error> {
        let Some(ext) = self
            .cert
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == T::OID)
        else {
            return Ok(None);
        };
        T::from_der(ext.extn_value.as_bytes())
            .map(Some)
            .map_err(|e| Sm2Error::Malformed(format!("extension {}: {e}", T::OID)))
    }

    /// Whether basicConstraints says this is a CA certificate.
    pub fn is_ca(&self) -> bool {
        matches!(self.extension::<BasicConstraints>(), Ok(Some(bc)) if bc.ca)
    }

    /// subjectKeyIdentifier, if present and readable.
    pub fn subject_key_id(&self) -> Option<Vec<u8>> {
        match self.extension::<SubjectKeyIdentifier>() {
            Ok(Some(ski)) => Some(ski.0.as_bytes().to_vec()),
            _ => None,
        }
    }

    /// DER of the subject Name.
    pub(crate) fn subject_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate
            .subject
            .to_der()
            .unwrap_or_default()
    }

    /// DER of the issuer Name.
    pub(crate) fn issuer_der(&self) -> Vec<u8> {
        self.cert
            .tbs_certificate
            .issuer
            .to_der()
            .unwrap_or_default()
    }
}

fn to_chrono(time: Time) -> DateTime<Utc> {
    let secs = i64::try_from(time.to_unix_duration().as_secs()).unwrap_or(i64::MAX);
    DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `C=CN, O=..., CN=...` in encoded order; values that are not strings print as `?`.
fn name_to_string(name: &Name) -> String {
    let short = |oid: ObjectIdentifier| match oid {
        COUNTRY => "C".to_owned(),
        ORGANIZATION => "O".to_owned(),
        COMMON_NAME => "CN".to_owned(),
        SERIAL_NUMBER => "serialNumber".to_owned(),
        oid::ORGANIZATION_IDENTIFIER => "organizationIdentifier".to_owned(),
        other => other.to_string(),
    };
    let text = |value: &Any| match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::TeletexString => {
            String::from_utf8_lossy(value.value()).into_owned()
        }
        _ => "?".to_owned(),
    };
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .map(|atv| format!("{}={}", short(atv.oid), text(&atv.value)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// RFC 5280 §4.1.2.5 and RFC 5652 §11.3: UTCTime through 2049, GeneralizedTime after.
pub(crate) fn encode_time(t: DateTime<Utc>) -> Result<Time, Sm2SignError> {
    let secs = u64::try_from(t.timestamp()).map_err(|_| Sm2SignError::Time(t.to_rfc3339()))?;
    let since_epoch = std::time::Duration::from_secs(secs);
    if t.year() < 2050 {
        Ok(Time::UtcTime(UtcTime::from_unix_duration(since_epoch)?))
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_unix_duration(
            since_epoch,
        )?))
    }
}

/// What issuer certificate to make (the SM2 twin of [`crate::pki::demo::IssuerSpec`]).
#[derive(Debug, Clone)]
pub struct Sm2IssuerSpec {
    /// Organization name (O and the base of CN).
    pub name: String,
    /// The issuer's USCC (统一社会信用代码).
    pub uscc: String,
    /// Where the USCC goes in the subject.
    pub uscc_field: UsccField,
    /// notBefore.
    pub not_before: DateTime<Utc>,
    /// notAfter.
    pub not_after: DateTime<Utc>,
    /// keyUsage digitalSignature + nonRepudiation (critical) when true; keyEncipherment
    /// only when false (for key usage tests).
    pub signing_key_usage: bool,
    /// Add extendedKeyUsage documentSigning (RFC 9336).
    pub document_signing_eku: bool,
}

impl Sm2IssuerSpec {
    /// USCC in organizationIdentifier, valid from yesterday for a year.
    pub fn new(name: &str, uscc: &str) -> Self {
        let now = Utc::now();
        Sm2IssuerSpec {
            name: name.to_owned(),
            uscc: uscc.to_owned(),
            uscc_field: UsccField::OrganizationIdentifier,
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(365),
            signing_key_usage: true,
            document_signing_eku: false,
        }
    }
}

/// A certificate with its private key.
#[derive(Debug, Clone)]
pub struct Sm2IssuedCert {
    /// The certificate.
    pub cert: Sm2Certificate,
    /// Its private key.
    pub key: Sm2PrivateKey,
}

/// An SM2 certificate authority (demo and tests; real issuers bring their CA's
/// certificates).
#[derive(Debug, Clone)]
pub struct Sm2Ca {
    /// The CA certificate.
    pub cert: Sm2Certificate,
    /// The CA private key.
    pub key: Sm2PrivateKey,
}

impl Sm2Ca {
    /// A self-signed root CA valid from a year ago for ten years.
    pub fn new(common_name: &str) -> Result<Self, Sm2SignError> {
        let now = Utc::now();
        Self::with_validity(
            common_name,
            now - Duration::days(365),
            now + Duration::days(3650),
        )
    }

    /// A self-signed root CA: basicConstraints cA (critical), keyUsage keyCertSign and
    /// cRLSign (critical), subjectKeyIdentifier.
    pub fn with_validity(
        common_name: &str,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> Result<Self, Sm2SignError> {
        let key = Sm2PrivateKey::generate()?;
        let name = Name::from(vec![
            rdn(COUNTRY, printable("CN")?)?,
            rdn(ORGANIZATION, utf8(common_name)?)?,
            rdn(COMMON_NAME, utf8(common_name)?)?,
        ]);
        let spki = spki_of(&key)?;
        let ski = key_identifier(&spki);
        let extensions = vec![
            extension(
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: None,
                },
                true,
            )?,
            extension(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign), true)?,
            extension(&SubjectKeyIdentifier(OctetString::new(ski)?), false)?,
        ];
        let tbs = tbs(name.clone(), name, spki, not_before, not_after, extensions)?;
        let cert = sign_tbs(tbs, &key)?;
        Ok(Sm2Ca { cert, key })
    }

    /// Loads a CA from its PEM certificate and PKCS#8 PEM private key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, Sm2SignError> {
        let cert = Sm2Certificate::from_pem(cert_pem)
            .map_err(|e| Sm2SignError::NotSm2Certificate(e.to_string()))?;
        let key = Sm2PrivateKey::from_pkcs8_pem(key_pem)?;
        let public = cert
            .public_key()
            .map_err(|e| Sm2SignError::NotSm2Certificate(e.to_string()))?;
        if public != key.public_key() {
            return Err(Sm2SignError::KeyMismatch);
        }
        Ok(Sm2Ca { cert, key })
    }

    /// Issues an issuer (signing) certificate according to `spec`: subject C=CN, O,
    /// organizationIdentifier `NTRCN-<USCC>` or serialNumber `<USCC>`, CN `<name>
    /// 电子保函签章`; basicConstraints (critical, not a CA), keyUsage (critical),
    /// optional extendedKeyUsage documentSigning, subject and authority key identifiers.
    pub fn issue(&self, spec: &Sm2IssuerSpec) -> Result<Sm2IssuedCert, Sm2SignError> {
        let key = Sm2PrivateKey::generate()?;
        let uscc = match spec.uscc_field {
            UsccField::OrganizationIdentifier => rdn(
                oid::ORGANIZATION_IDENTIFIER,
                utf8(&format!("NTRCN-{}", spec.uscc))?,
            )?,
            UsccField::SerialNumber => rdn(SERIAL_NUMBER, printable(&spec.uscc)?)?,
        };
        let subject = Name::from(vec![
            rdn(COUNTRY, printable("CN")?)?,
            rdn(ORGANIZATION, utf8(&spec.name)?)?,
            uscc,
            rdn(COMMON_NAME, utf8(&format!("{} 电子保函签章", spec.name))?)?,
        ]);
        let spki = spki_of(&key)?;
        let usage = if spec.signing_key_usage {
            KeyUsages::DigitalSignature | KeyUsages::NonRepudiation
        } else {
            KeyUsages::KeyEncipherment.into()
        };
        let mut extensions = vec![
            extension(
                &BasicConstraints {
                    ca: false,
                    path_len_constraint: None,
                },
                true,
            )?,
            extension(&KeyUsage(usage), true)?,
        ];
        if spec.document_signing_eku {
            extensions.push(extension(
                &ExtendedKeyUsage(vec![oid::DOCUMENT_SIGNING]),
                false,
            )?);
        }
        extensions.push(extension(
            &SubjectKeyIdentifier(OctetString::new(key_identifier(&spki))?),
            false,
        )?);
        if let Some(ca_key_id) = self.cert.subject_key_id() {
            extensions.push(extension(
                &AuthorityKeyIdentifier {
                    key_identifier: Some(OctetString::new(ca_key_id)?),
                    ..Default::default()
                },
                false,
            )?);
        }
        let tbs = tbs(
            self.cert.certificate().tbs_certificate.subject.clone(),
            subject,
            spki,
            spec.not_before,
            spec.not_after,
            extensions,
        )?;
        Ok(Sm2IssuedCert {
            cert: sign_tbs(tbs, &self.key)?,
            key,
        })
    }
}

fn utf8(s: &str) -> Result<Any, der::Error> {
    Any::encode_from(&Utf8StringRef::new(s)?)
}

fn printable(s: &str) -> Result<Any, der::Error> {
    Any::encode_from(&PrintableStringRef::new(s)?)
}

/// A single-valued RDN.
fn rdn(oid: ObjectIdentifier, value: Any) -> Result<RelativeDistinguishedName, der::Error> {
    Ok(RelativeDistinguishedName(SetOfVec::try_from(vec![
        AttributeTypeAndValue { oid, value },
    ])?))
}

pub(super) fn extension<T: AssociatedOid + Encode>(
    value: &T,
    critical: bool,
) -> Result<Extension, der::Error> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

fn spki_of(key: &Sm2PrivateKey) -> Result<SubjectPublicKeyInfoOwned, Sm2SignError> {
    Ok(SubjectPublicKeyInfoOwned::from_der(
        &key.public_key().to_public_key_der()?,
    )?)
}

/// RFC 7093 §2 method 1: the leftmost 160 bits of the SHA-256 of the subjectPublicKey
/// bits (no SHA-1 needed).
fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(spki.subject_public_key.raw_bytes())[..20].to_vec()
}

fn sm2_with_sm3() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: oid::SM2_WITH_SM3,
        parameters: None,
    }
}

/// A random positive 63-bit serial (as the demo CA makes them).
fn random_serial() -> Result<SerialNumber, der::Error> {
    let value = (rand::random::<u64>() >> 1) | (1 << 62);
    SerialNumber::new(&value.to_be_bytes())
}

fn tbs(
    issuer: Name,
    subject: Name,
    spki: SubjectPublicKeyInfoOwned,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    extensions: Vec<Extension>,
) -> Result<TbsCertificate, Sm2SignError> {
    Ok(TbsCertificate {
        version: Version::V3,
        serial_number: random_serial()?,
        signature: sm2_with_sm3(),
        issuer,
        validity: Validity {
            not_before: encode_time(not_before)?,
            not_after: encode_time(not_after)?,
        },
        subject,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    })
}

fn sign_tbs(tbs: TbsCertificate, key: &Sm2PrivateKey) -> Result<Sm2Certificate, Sm2SignError> {
    let signature = sm2_sign_raw(key, &tbs.to_der()?)?;
    let cert = Certificate {
        tbs_certificate: tbs,
        signature_algorithm: sm2_with_sm3(),
        signature: BitString::from_bytes(&signature)?,
    };
    Ok(Sm2Certificate {
        der: cert.to_der()?,
        cert,
    })
}

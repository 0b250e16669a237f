//! Demo PKI for the `baohan pki` CLI and for tests: a CA, issuer certificates, CRLs.
//!
//! Nothing here is for production issuers (they bring their own certificates); it lets a
//! demo run end to end and lets tests build every broken case (expired, not yet valid,
//! revoked, no signing key usage, stale CRL) without committed keys.

use crate::pki::document::{
    CodeName, DocumentAmount, GuaranteeDocument, IssuerKind, IssuerParty, Party, SCHEMA_V1,
};
use crate::pki::timestamp::{TimeStampAuthority, TimeStampError};
use chrono::{DateTime, Duration, Utc};
use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{
    X509Builder, X509Crl, X509CrlBuilder, X509Extension, X509NameBuilder, X509RevokedBuilder, X509,
};

/// Key algorithm of a demo key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// ECDSA on NIST P-256.
    EcP256,
    /// RSA 2048 bits.
    Rsa2048,
}

impl std::str::FromStr for KeyType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "p256" | "ec" | "ecp256" | "p-256" => Ok(KeyType::EcP256),
            "rsa" | "rsa2048" => Ok(KeyType::Rsa2048),
            other => Err(format!("unknown key type {other:?} (use p256 or rsa2048)")),
        }
    }
}

/// Generates a fresh private key.
pub fn generate_key(key_type: KeyType) -> Result<PKey<Private>, ErrorStack> {
    match key_type {
        KeyType::EcP256 => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
            PKey::from_ec_key(EcKey::generate(&group)?)
        }
        KeyType::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?),
    }
}

/// Where the issuer's USCC goes in the certificate subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsccField {
    /// organizationIdentifier = `NTRCN-<USCC>` (ETSI EN 319 412-1 style).
    OrganizationIdentifier,
    /// serialNumber = `<USCC>`.
    SerialNumber,
}

/// What issuer certificate to make.
#[derive(Debug, Clone)]
pub struct IssuerSpec {
    /// Organization name (O and the base of CN).
    pub name: String,
    /// The issuer's USCC.
    pub uscc: String,
    /// Where the USCC goes.
    pub uscc_field: UsccField,
    /// Key algorithm.
    pub key_type: KeyType,
    /// notBefore.
    pub not_before: DateTime<Utc>,
    /// notAfter.
    pub not_after: DateTime<Utc>,
    /// keyUsage digitalSignature + nonRepudiation (critical) when true; keyEncipherment
    /// only when false (for constraint tests).
    pub signing_key_usage: bool,
    /// Add extendedKeyUsage documentSigning (which the S/MIME purpose check rejects).
    pub document_signing_eku: bool,
    /// A CRL distribution point (full name, a URI) where the CA publishes its CRL.
    pub crl_distribution_point: Option<String>,
    /// An OCSP responder named in Authority Information Access (id-ad-ocsp).
    pub ocsp_url: Option<String>,
}

impl IssuerSpec {
    /// P-256, USCC in organizationIdentifier, valid from yesterday for a year.
    pub fn new(name: &str, uscc: &str) -> Self {
        let now = Utc::now();
        IssuerSpec {
            name: name.to_owned(),
            uscc: uscc.to_owned(),
            uscc_field: UsccField::OrganizationIdentifier,
            key_type: KeyType::EcP256,
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(365),
            signing_key_usage: true,
            document_signing_eku: false,
            crl_distribution_point: None,
            ocsp_url: None,
        }
    }
}

/// What time-stamping authority certificate to make (RFC 3161 §2.3).
#[derive(Debug, Clone)]
pub struct TsaSpec {
    /// Organization running the TSA (O, and the base of CN).
    pub name: String,
    /// Key algorithm.
    pub key_type: KeyType,
    /// notBefore.
    pub not_before: DateTime<Utc>,
    /// notAfter.
    pub not_after: DateTime<Utc>,
    /// Mark the extended key usage critical, as RFC 3161 requires (false only for
    /// tests of a certificate that may not sign tokens).
    pub critical_eku: bool,
    /// Also allow codeSigning (true only for tests: a TSA certificate must have
    /// timeStamping alone).
    pub extra_eku: bool,
}

impl TsaSpec {
    /// P-256, critical extended key usage timeStamping alone, valid from yesterday for
    /// five years.
    pub fn new(name: &str) -> Self {
        let now = Utc::now();
        TsaSpec {
            name: name.to_owned(),
            key_type: KeyType::EcP256,
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(5 * 365),
            critical_eku: true,
            extra_eku: false,
        }
    }
}

/// A certificate with its private key.
pub struct IssuedCert {
    /// The certificate.
    pub cert: X509,
    /// Its private key.
    pub key: PKey<Private>,
}

/// A revoked serial for a CRL.
#[derive(Debug, Clone)]
pub struct RevokedSerial {
    /// Serial number, hex (as shown in reports).
    pub serial_hex: String,
    /// Revocation time.
    pub revoked_at: DateTime<Utc>,
}

/// A demo certificate authority.
pub struct DemoCa {
    /// The CA certificate.
    pub cert: X509,
    /// The CA private key.
    pub key: PKey<Private>,
}

fn asn1_time(t: DateTime<Utc>) -> Result<Asn1Time, ErrorStack> {
    Asn1Time::from_unix(t.timestamp())
}

fn random_serial() -> Result<Asn1Integer, ErrorStack> {
    let mut bn = BigNum::new()?;
    // 63 random bits: positive and never zero-length.
    bn.rand(63, MsbOption::ONE, false)?;
    bn.to_asn1_integer()
}

impl DemoCa {
    /// A self-signed root CA valid from a year ago for ten years.
    pub fn new(common_name: &str, key_type: KeyType) -> Result<Self, ErrorStack> {
        let key = generate_key(key_type)?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_text("C", "CN")?;
        name.append_entry_by_text("O", common_name)?;
        name.append_entry_by_text("CN", common_name)?;
        let name = name.build();
        let now = Utc::now();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        b.set_serial_number(&*random_serial()?)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(&name)?;
        b.set_pubkey(&key)?;
        b.set_not_before(&*asn1_time(now - Duration::days(365))?)?;
        b.set_not_after(&*asn1_time(now + Duration::days(3650))?)?;
        b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
        b.append_extension(ski)?;
        b.sign(&key, MessageDigest::sha256())?;
        Ok(DemoCa {
            cert: b.build(),
            key,
        })
    }

    /// Loads a CA from its PEM certificate and PEM private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, ErrorStack> {
        Ok(DemoCa {
            cert: X509::from_pem(cert_pem)?,
            key: PKey::private_key_from_pem(key_pem)?,
        })
    }

    /// Issues an issuer (signing) certificate according to `spec`.
    pub fn issue(&self, spec: &IssuerSpec) -> Result<IssuedCert, ErrorStack> {
        let key = generate_key(spec.key_type)?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_text("C", "CN")?;
        name.append_entry_by_text("O", &spec.name)?;
        match spec.uscc_field {
            UsccField::OrganizationIdentifier => name
                .append_entry_by_text("organizationIdentifier", &format!("NTRCN-{}", spec.uscc))?,
            UsccField::SerialNumber => name.append_entry_by_text("serialNumber", &spec.uscc)?,
        }
        name.append_entry_by_text("CN", &format!("{} 电子保函签章", spec.name))?;
        let name = name.build();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        b.set_serial_number(&*random_serial()?)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(self.cert.subject_name())?;
        b.set_pubkey(&key)?;
        b.set_not_before(&*asn1_time(spec.not_before)?)?;
        b.set_not_after(&*asn1_time(spec.not_after)?)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        let ku = if spec.signing_key_usage {
            KeyUsage::new()
                .critical()
                .digital_signature()
                .non_repudiation()
                .build()?
        } else {
            KeyUsage::new().critical().key_encipherment().build()?
        };
        b.append_extension(ku)?;
        if spec.document_signing_eku {
            // id-kp-documentSigning (RFC 9336).
            b.append_extension(
                ExtendedKeyUsage::new()
                    .other("1.3.6.1.5.5.7.3.36")
                    .build()?,
            )?;
        }
        if let Some(url) = &spec.crl_distribution_point {
            b.append_extension(crl_distribution_point_extension(url)?)?;
        }
        if let Some(url) = &spec.ocsp_url {
            b.append_extension(ocsp_access_extension(url)?)?;
        }
        Ok(IssuedCert {
            cert: self.sign(b)?,
            key,
        })
    }

    /// Adds the key identifiers (this CA as the authority) and signs the certificate.
    fn sign(&self, mut b: X509Builder) -> Result<X509, ErrorStack> {
        let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(ski)?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(aki)?;
        b.sign(&self.key, MessageDigest::sha256())?;
        Ok(b.build())
    }

    /// Issues a time-stamping authority certificate according to `spec`: not a CA,
    /// keyUsage digitalSignature (critical), extendedKeyUsage timeStamping (critical).
    pub fn issue_tsa(&self, spec: &TsaSpec) -> Result<IssuedCert, ErrorStack> {
        let key = generate_key(spec.key_type)?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_text("C", "CN")?;
        name.append_entry_by_text("O", &spec.name)?;
        name.append_entry_by_text("CN", &format!("{} Time-Stamping Authority", spec.name))?;
        let name = name.build();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        b.set_serial_number(&*random_serial()?)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(self.cert.subject_name())?;
        b.set_pubkey(&key)?;
        b.set_not_before(&*asn1_time(spec.not_before)?)?;
        b.set_not_after(&*asn1_time(spec.not_after)?)?;
        b.append_extension(BasicConstraints::new().critical().build()?)?;
        b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
        let mut eku = ExtendedKeyUsage::new();
        eku.time_stamping();
        if spec.critical_eku {
            eku.critical();
        }
        if spec.extra_eku {
            eku.code_signing();
        }
        b.append_extension(eku.build()?)?;
        Ok(IssuedCert {
            cert: self.sign(b)?,
            key,
        })
    }

    /// Issues a subordinate CA certificate (for chains with an intermediate).
    pub fn issue_ca(&self, common_name: &str, key_type: KeyType) -> Result<DemoCa, ErrorStack> {
        let key = generate_key(key_type)?;
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_text("C", "CN")?;
        name.append_entry_by_text("O", common_name)?;
        name.append_entry_by_text("CN", common_name)?;
        let name = name.build();
        let now = Utc::now();
        let mut b = X509Builder::new()?;
        b.set_version(2)?;
        b.set_serial_number(&*random_serial()?)?;
        b.set_subject_name(&name)?;
        b.set_issuer_name(self.cert.subject_name())?;
        b.set_pubkey(&key)?;
        b.set_not_before(&*asn1_time(now - Duration::days(30))?)?;
        b.set_not_after(&*asn1_time(now + Duration::days(1825))?)?;
        b.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()?,
        )?;
        Ok(DemoCa {
            cert: self.sign(b)?,
            key,
        })
    }

    /// Issues a CRL listing `revoked`, valid from `this_update` to `next_update` (which
    /// may be in the past, for stale-CRL tests), with cRLNumber `number`.
    pub fn crl(
        &self,
        revoked: &[RevokedSerial],
        this_update: DateTime<Utc>,
        next_update: DateTime<Utc>,
        number: u64,
    ) -> Result<X509Crl, ErrorStack> {
        let mut b = X509CrlBuilder::new()?;
        b.set_issuer_name(self.cert.subject_name())?;
        b.set_last_update(&*asn1_time(this_update)?)?;
        b.set_next_update(&*asn1_time(next_update)?)?;
        // authorityKeyIdentifier from the CA's subjectKeyIdentifier; the v3 context needs
        // a certificate builder only to carry the issuer certificate.
        let tmp = X509Builder::new()?;
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&tmp.x509v3_context(Some(&self.cert), None))?;
        b.append_extension(aki)?;
        b.append_extension(crl_number_extension(number)?)?;
        for r in revoked {
            let serial = BigNum::from_hex_str(&r.serial_hex)?.to_asn1_integer()?;
            let mut entry = X509RevokedBuilder::new()?;
            entry.set_serial_number(&serial)?;
            entry.set_revocation_date(&*asn1_time(r.revoked_at)?)?;
            b.add_revoked(entry.build())?;
        }
        b.sort()?;
        b.sign(&self.key, MessageDigest::sha256())?;
        b.build()
    }

    /// A CRL valid from an hour ago for seven days, listing `revoked`.
    pub fn current_crl(
        &self,
        revoked: &[RevokedSerial],
        number: u64,
    ) -> Result<X509Crl, ErrorStack> {
        let now = Utc::now();
        self.crl(
            revoked,
            now - Duration::hours(1),
            now + Duration::days(7),
            number,
        )
    }
}

/// cRLNumber (2.5.29.20) as a non-critical extension holding a DER INTEGER.
fn crl_number_extension(number: u64) -> Result<X509Extension, ErrorStack> {
    let mut content: Vec<u8> = number
        .to_be_bytes()
        .iter()
        .copied()
        .skip_while(|b| *b == 0)
        .collect();
    if content.first().is_none_or(|b| b & 0x80 != 0) {
        content.insert(0, 0);
    }
    let mut der = vec![0x02, content.len() as u8];
    der.extend(content);
    let oid = Asn1Object::from_str("2.5.29.20")?;
    X509Extension::new_from_der(&oid, false, &*Asn1OctetString::new_from_bytes(&der)?)
}

/// DER of a tag, a definite length and the contents.
fn der_tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(contents);
    out
}

/// cRLDistributionPoints (RFC 5280 §4.2.1.13) with one point whose full name is `url`.
fn crl_distribution_point_extension(url: &str) -> Result<X509Extension, ErrorStack> {
    // SEQUENCE OF DistributionPoint { [0] DistributionPointName { [0] fullName
    // GeneralNames { [6] uniformResourceIdentifier } } }
    let uri = der_tlv(0x86, url.as_bytes());
    let full_name = der_tlv(0xa0, &uri);
    let point_name = der_tlv(0xa0, &full_name);
    let der = der_tlv(0x30, &der_tlv(0x30, &point_name));
    let oid = Asn1Object::from_str("2.5.29.31")?;
    X509Extension::new_from_der(&oid, false, &*Asn1OctetString::new_from_bytes(&der)?)
}

/// authorityInfoAccess (RFC 5280 §4.2.2.1) naming `url` as the OCSP responder.
fn ocsp_access_extension(url: &str) -> Result<X509Extension, ErrorStack> {
    // id-ad-ocsp 1.3.6.1.5.5.7.48.1
    const ID_AD_OCSP: [u8; 10] = [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01];
    let mut access = ID_AD_OCSP.to_vec();
    access.extend(der_tlv(0x86, url.as_bytes()));
    let der = der_tlv(0x30, &der_tlv(0x30, &access));
    let oid = Asn1Object::from_str("1.3.6.1.5.5.7.1.1")?;
    X509Extension::new_from_der(&oid, false, &*Asn1OctetString::new_from_bytes(&der)?)
}

/// A ready time-stamping authority under `ca` (demo and tests): a fresh P-256 key and
/// certificate per [`TsaSpec::new`], carrying `ca`'s certificate as its chain.
pub fn time_stamp_authority(ca: &DemoCa, name: &str) -> Result<TimeStampAuthority, TimeStampError> {
    let issued = ca.issue_tsa(&TsaSpec::new(name))?;
    TimeStampAuthority::new(issued.cert, issued.key, vec![ca.cert.clone()])
}

/// Serial number of a certificate in lowercase hex (the form reports and `revoke` use).
pub fn serial_hex(cert: &X509) -> Result<String, ErrorStack> {
    Ok(cert
        .serial_number()
        .to_bn()?
        .to_hex_str()?
        .to_ascii_lowercase())
}

/// A filled-in demo guarantee whose issuer has `issuer_uscc` (demo, tests, benches).
pub fn sample_document(issuer_uscc: &str) -> GuaranteeDocument {
    GuaranteeDocument {
        schema: SCHEMA_V1.to_owned(),
        guarantee_number: "BH20250301ICBC0000174R9W2KK".to_owned(),
        version: 1,
        kind: IssuerKind::Bank,
        purpose: "bid_bond".to_owned(),
        issuer: IssuerParty {
            name: "示例银行股份有限公司".to_owned(),
            uscc: issuer_uscc.to_owned(),
            kind: IssuerKind::Bank,
        },
        applicant: Party {
            name: "示例建设集团有限公司".to_owned(),
            uscc: "91320000134567890X".to_owned(),
        },
        beneficiary: Party {
            name: "示例市城市建设投资有限公司".to_owned(),
            uscc: "91320100MA1XXXXX5K".to_owned(),
        },
        project: CodeName {
            code: "JS-2025-0042".to_owned(),
            name: "示例市滨江大道改造工程".to_owned(),
        },
        section: CodeName {
            code: "JS-2025-0042-01".to_owned(),
            name: "第一标段".to_owned(),
        },
        amount: DocumentAmount {
            currency: "CNY".to_owned(),
            value: "100000.00".to_owned(),
        },
        amount_in_words: "人民币壹拾万元整".to_owned(),
        valid_from: "2025-03-20T09:30:00+08:00".to_owned(),
        valid_until: "2025-07-18T23:59:59+08:00".to_owned(),
        issued_at: "2025-03-10T10:00:00+08:00".to_owned(),
        governing_rules: "URDG 758; the laws of the People's Republic of China".to_owned(),
        claim_conditions: "A written demand stating the bidder's breach, received within validity."
            .to_owned(),
        terms: vec!["This guarantee is irrevocable.".to_owned()],
        verification_url: "https://baohan.example/verify/BH20250301ICBC0000174R9W2KK".to_owned(),
    }
}

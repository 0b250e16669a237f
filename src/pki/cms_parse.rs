//! A small reader for the parts of a DER CMS SignedData (RFC 5652) that verification
//! needs. rust-openssl exposes no getters for signer infos or signed attributes, so we
//! walk the same bytes OpenSSL would, using asn1-rs (via x509-parser) to decode each
//! TLV. Everything borrows from the input: nothing is copied on the warm path.

use chrono::{DateTime, NaiveDate, Utc};
use thiserror::Error;
use x509_parser::asn1_rs::{Any, Class, FromDer};

/// DER contents of the object identifiers we look for (dotted form in the comment).
pub mod oid {
    /// 1.2.840.113549.1.7.1 id-data
    pub const DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01];
    /// 1.2.840.113549.1.7.2 id-signedData
    pub const SIGNED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02];
    /// 1.2.840.113549.1.9.3 contentType
    pub const CONTENT_TYPE: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x03];
    /// 1.2.840.113549.1.9.4 messageDigest
    pub const MESSAGE_DIGEST: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x04];
    /// 1.2.840.113549.1.9.5 signingTime
    pub const SIGNING_TIME: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x05];
    /// 1.2.840.113549.1.9.16.2.47 signingCertificateV2 (CAdES)
    pub const SIGNING_CERTIFICATE_V2: &[u8] = &[
        0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x02, 0x2F,
    ];
    /// 2.16.840.1.101.3.4.2.1 id-sha256
    pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    /// 1.2.840.10045.4.3.2 ecdsa-with-SHA256
    pub const ECDSA_WITH_SHA256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];
    /// 1.2.840.10045.2.1 id-ecPublicKey (some signers put the key OID here)
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
    /// 1.2.840.113549.1.1.1 rsaEncryption (PKCS#1 v1.5)
    pub const RSA_ENCRYPTION: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01];
    /// 1.2.840.113549.1.1.11 sha256WithRSAEncryption
    pub const SHA256_WITH_RSA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B];
    /// 1.2.156.10197.6.1.4.2.1 GM/T 0010 data
    pub const GM_DATA: &[u8] = &[0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x06, 0x01, 0x04, 0x02, 0x01];
    /// 1.2.156.10197.6.1.4.2.2 GM/T 0010 signedData
    pub const GM_SIGNED_DATA: &[u8] = &[0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x06, 0x01, 0x04, 0x02, 0x02];
}

/// Why the signature bytes are not a CMS SignedData we can read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("signature is not a readable DER CMS SignedData: {0}")]
pub struct CmsFormatError(pub String);

fn bad(what: impl Into<String>) -> CmsFormatError {
    CmsFormatError(what.into())
}

/// How the SignerInfo names its certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerId<'a> {
    /// issuerAndSerialNumber: raw DER of the issuer Name and the INTEGER content octets.
    IssuerSerial {
        /// DER of the issuer `Name` (a SEQUENCE).
        issuer: &'a [u8],
        /// Content octets of the serial INTEGER.
        serial: &'a [u8],
    },
    /// subjectKeyIdentifier.
    KeyId(&'a [u8]),
}

/// The single SignerInfo of a detached SignedData, with its signed attributes decoded.
#[derive(Debug, Clone)]
pub struct SignerInfo<'a> {
    /// Raw DER of the `sid` field (part of the verification cache key).
    pub sid_raw: &'a [u8],
    /// Decoded `sid`.
    pub sid: SignerId<'a>,
    /// OID content of the digest algorithm.
    pub digest_algorithm: &'a [u8],
    /// The `[0] IMPLICIT` signed attributes TLV exactly as received.
    pub signed_attrs_raw: &'a [u8],
    /// OID content of the signature algorithm.
    pub signature_algorithm: &'a [u8],
    /// The signature value.
    pub signature: &'a [u8],
    /// The messageDigest attribute value.
    pub message_digest: &'a [u8],
    /// The signingTime attribute, if present.
    pub signing_time: Option<DateTime<Utc>>,
    /// SHA-256 certificate hash from signingCertificateV2, if present with SHA-256.
    pub signing_certificate_sha256: Option<&'a [u8]>,
}

impl SignerInfo<'_> {
    /// The bytes the signature covers: the signed attributes re-tagged as a universal
    /// SET OF (RFC 5652 §5.4), rather than the `[0] IMPLICIT` tag they travel under.
    pub fn signed_attrs_to_verify(&self) -> Vec<u8> {
        let mut bytes = self.signed_attrs_raw.to_vec();
        if let Some(first) = bytes.first_mut() {
            *first = 0x31;
        }
        bytes
    }
}

/// A parsed detached SignedData.
#[derive(Debug, Clone)]
pub struct SignedData<'a> {
    /// OID contents of the `digestAlgorithms` set, in order. Outside the signature: the
    /// signature policy checks it, nothing else relies on it.
    pub digest_algorithms: Vec<&'a [u8]>,
    /// Raw DER of every plain X.509 certificate carried, in order.
    pub certificates: Vec<&'a [u8]>,
    /// The one signer.
    pub signer: SignerInfo<'a>,
}

/// One decoded TLV.
#[derive(Clone, Copy)]
struct Tlv<'a> {
    class: Class,
    constructed: bool,
    tag: u32,
    raw: &'a [u8],
    content: &'a [u8],
}

impl Tlv<'_> {
    fn is(&self, class: Class, tag: u32) -> bool {
        self.class == class && self.tag == tag
    }
    fn is_universal(&self, tag: u32) -> bool {
        self.is(Class::Universal, tag)
    }
}

const SEQUENCE: u32 = 16;
const SET: u32 = 17;
const INTEGER: u32 = 2;
const OCTET_STRING: u32 = 4;
const OBJECT_ID: u32 = 6;
const UTC_TIME: u32 = 23;
const GENERALIZED_TIME: u32 = 24;

/// Iterates the TLVs inside a constructed value.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(content: &'a [u8]) -> Self {
        Reader { rest: content }
    }

    fn next(&mut self) -> Result<Option<Tlv<'a>>, CmsFormatError> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        let input = self.rest;
        let (rem, any) = Any::from_der(input).map_err(|_| bad("malformed DER element"))?;
        let used = input.len() - rem.len();
        self.rest = rem;
        Ok(Some(Tlv {
            class: any.header.class(),
            constructed: any.header.is_constructed(),
            tag: any.header.tag().0,
            raw: &input[..used],
            content: any.data,
        }))
    }

    fn expect(&mut self, what: &str) -> Result<Tlv<'a>, CmsFormatError> {
        self.next()?.ok_or_else(|| bad(format!("{what} missing")))
    }

    fn expect_universal(&mut self, tag: u32, what: &str) -> Result<Tlv<'a>, CmsFormatError> {
        let tlv = self.expect(what)?;
        if !tlv.is_universal(tag) {
            return Err(bad(format!("{what} has the wrong type")));
        }
        Ok(tlv)
    }

    fn peek(&self) -> Result<Option<Tlv<'a>>, CmsFormatError> {
        Reader { rest: self.rest }.next()
    }
}

/// First OID of an AlgorithmIdentifier SEQUENCE.
fn algorithm_oid<'a>(alg: Tlv<'a>, what: &str) -> Result<&'a [u8], CmsFormatError> {
    if !alg.is_universal(SEQUENCE) {
        return Err(bad(format!("{what} is not an AlgorithmIdentifier")));
    }
    Ok(Reader::new(alg.content)
        .expect_universal(OBJECT_ID, what)?
        .content)
}

/// The optional `certificates [0]` (the X.509 ones; other CertificateChoices are tagged
/// and skipped) and `crls [1]` of a SignedData, then its `signerInfos` element.
fn certificates_and_signer_infos<'a>(
    sd: &mut Reader<'a>,
) -> Result<(Vec<&'a [u8]>, Tlv<'a>), CmsFormatError> {
    let mut certificates = Vec::new();
    let mut next = sd.expect("signerInfos")?;
    if next.is(Class::ContextSpecific, 0) {
        let mut certs = Reader::new(next.content);
        while let Some(cert) = certs.next()? {
            if cert.is_universal(SEQUENCE) {
                certificates.push(cert.raw);
            }
        }
        next = sd.expect("signerInfos")?;
    }
    if next.is(Class::ContextSpecific, 1) {
        next = sd.expect("signerInfos")?;
    }
    Ok((certificates, next))
}

/// Parses a DER ContentInfo holding a detached SignedData with exactly one signer.
pub fn parse_signed_data(der: &[u8]) -> Result<SignedData<'_>, CmsFormatError> {
    parse_detached_signed_data(der, &[oid::SIGNED_DATA], &[oid::DATA])
}

/// [`parse_signed_data`] that also reads GM/T 0010's content types (signedData and data),
/// in any combination with PKCS#7's. Whoever accepts these must hold the signer to SM3
/// and SM2: GM/T 0010 defines them for national-cryptography signatures only.
pub fn parse_signed_data_gm(der: &[u8]) -> Result<SignedData<'_>, CmsFormatError> {
    parse_detached_signed_data(
        der,
        &[oid::SIGNED_DATA, oid::GM_SIGNED_DATA],
        &[oid::DATA, oid::GM_DATA],
    )
}

/// [`parse_signed_data`] for other content type OIDs: the ContentInfo's content type must
/// be one of `signed_data_types` and the eContentType one of `data_types` (and the
/// contentType attribute the eContentType). GM/T 0010 signatures use their own OIDs for
/// PKCS#7's id-signedData and id-data (see the `gm` module of `pki`).
pub fn parse_detached_signed_data<'a>(
    der: &'a [u8],
    signed_data_types: &[&[u8]],
    data_types: &[&[u8]],
) -> Result<SignedData<'a>, CmsFormatError> {
    let mut top = Reader::new(der);
    let content_info = top.expect_universal(SEQUENCE, "ContentInfo")?;
    if top.next()?.is_some() {
        return Err(bad("trailing bytes after ContentInfo"));
    }
    let mut ci = Reader::new(content_info.content);
    if !signed_data_types.contains(&ci.expect_universal(OBJECT_ID, "contentType")?.content) {
        return Err(bad("content type is not signedData"));
    }
    let explicit = ci.expect("SignedData")?;
    if !explicit.is(Class::ContextSpecific, 0) || !explicit.constructed {
        return Err(bad("SignedData is not tagged [0]"));
    }
    let mut wrapper = Reader::new(explicit.content);
    let signed_data = wrapper.expect_universal(SEQUENCE, "SignedData")?;
    let mut sd = Reader::new(signed_data.content);
    sd.expect_universal(INTEGER, "SignedData version")?;
    let digest_set = sd.expect_universal(SET, "digestAlgorithms")?;
    let mut digest_algorithms = Vec::new();
    let mut digests = Reader::new(digest_set.content);
    while let Some(alg) = digests.next()? {
        digest_algorithms.push(algorithm_oid(alg, "digestAlgorithms")?);
    }

    let encap = sd.expect_universal(SEQUENCE, "encapContentInfo")?;
    let mut encap_reader = Reader::new(encap.content);
    let econtent_type = encap_reader
        .expect_universal(OBJECT_ID, "eContentType")?
        .content;
    if !data_types.contains(&econtent_type) {
        return Err(bad("encapsulated content type is not id-data"));
    }
    if encap_reader.next()?.is_some() {
        return Err(bad("signature is not detached (it embeds content)"));
    }

    let (certificates, next) = certificates_and_signer_infos(&mut sd)?;
    if !next.is_universal(SET) {
        return Err(bad("signerInfos has the wrong type"));
    }
    if sd.next()?.is_some() {
        return Err(bad("unexpected fields after signerInfos"));
    }
    let mut signers = Reader::new(next.content);
    let signer = signers.expect_universal(SEQUENCE, "SignerInfo")?;
    if signers.next()?.is_some() {
        return Err(bad("more than one signer"));
    }
    Ok(SignedData {
        digest_algorithms,
        certificates,
        signer: parse_signer_info(signer.content, econtent_type)?,
    })
}

/// Parses one SignerInfo whose contentType attribute must name `content_type` (id-data
/// for a guarantee signature, id-ct-TSTInfo for a time-stamp token).
fn parse_signer_info<'a>(
    content: &'a [u8],
    content_type: &[u8],
) -> Result<SignerInfo<'a>, CmsFormatError> {
    let mut si = Reader::new(content);
    si.expect_universal(INTEGER, "SignerInfo version")?;
    let sid_tlv = si.expect("sid")?;
    let sid = if sid_tlv.is_universal(SEQUENCE) {
        let mut ias = Reader::new(sid_tlv.content);
        let issuer = ias.expect_universal(SEQUENCE, "sid issuer")?;
        let serial = ias.expect_universal(INTEGER, "sid serial")?;
        SignerId::IssuerSerial {
            issuer: issuer.raw,
            serial: serial.content,
        }
    } else if sid_tlv.is(Class::ContextSpecific, 0) && !sid_tlv.constructed {
        SignerId::KeyId(sid_tlv.content)
    } else {
        return Err(bad("sid has the wrong type"));
    };
    let digest_algorithm = algorithm_oid(si.expect("digestAlgorithm")?, "digestAlgorithm")?;

    let attrs = match si.peek()? {
        Some(t) if t.is(Class::ContextSpecific, 0) && t.constructed => si.expect("signedAttrs")?,
        _ => return Err(bad("no signed attributes (CAdES needs them)")),
    };
    let signature_algorithm =
        algorithm_oid(si.expect("signatureAlgorithm")?, "signatureAlgorithm")?;
    let signature = si.expect_universal(OCTET_STRING, "signature")?.content;

    let mut message_digest = None;
    let mut content_type_seen = false;
    let mut signing_time = None;
    let mut signing_certificate_sha256 = None;
    let mut seen: Vec<&[u8]> = Vec::new();
    let mut attr_reader = Reader::new(attrs.content);
    while let Some(attr) = attr_reader.next()? {
        if !attr.is_universal(SEQUENCE) {
            return Err(bad("signed attribute is not a SEQUENCE"));
        }
        let mut a = Reader::new(attr.content);
        let attr_type = a.expect_universal(OBJECT_ID, "attribute type")?.content;
        let values = a.expect_universal(SET, "attribute values")?;
        if seen.contains(&attr_type) {
            return Err(bad("a signed attribute appears twice"));
        }
        seen.push(attr_type);
        let mut vals = Reader::new(values.content);
        let value = vals.expect("attribute value")?;
        let single = vals.next()?.is_none();
        match attr_type {
            t if t == oid::CONTENT_TYPE => {
                if !single || !value.is_universal(OBJECT_ID) || value.content != content_type {
                    return Err(bad("contentType attribute does not match the content"));
                }
                content_type_seen = true;
            }
            t if t == oid::MESSAGE_DIGEST => {
                if !single || !value.is_universal(OCTET_STRING) {
                    return Err(bad("messageDigest attribute is malformed"));
                }
                message_digest = Some(value.content);
            }
            t if t == oid::SIGNING_TIME => {
                if !single {
                    return Err(bad("signingTime has several values"));
                }
                signing_time = Some(parse_time(value)?);
            }
            t if t == oid::SIGNING_CERTIFICATE_V2 => {
                signing_certificate_sha256 = parse_signing_certificate_v2(value)?;
            }
            _ => {}
        }
    }
    if !content_type_seen {
        return Err(bad("contentType attribute missing"));
    }
    let message_digest = message_digest.ok_or_else(|| bad("messageDigest attribute missing"))?;
    Ok(SignerInfo {
        sid_raw: sid_tlv.raw,
        sid,
        digest_algorithm,
        signed_attrs_raw: attrs.raw,
        signature_algorithm,
        signature,
        message_digest,
        signing_time,
        signing_certificate_sha256,
    })
}

/// SigningCertificateV2 ::= SEQUENCE { certs SEQUENCE OF ESSCertIDv2, policies OPTIONAL }
/// ESSCertIDv2 ::= SEQUENCE { hashAlgorithm DEFAULT sha256, certHash OCTET STRING, ... }
/// Returns the first certificate's hash when it is SHA-256 (the signer's, per RFC 5035).
fn parse_signing_certificate_v2(value: Tlv<'_>) -> Result<Option<&[u8]>, CmsFormatError> {
    let what = "signingCertificateV2";
    if !value.is_universal(SEQUENCE) {
        return Err(bad(format!("{what} is not a SEQUENCE")));
    }
    let certs = Reader::new(value.content).expect_universal(SEQUENCE, what)?;
    let first = Reader::new(certs.content).expect_universal(SEQUENCE, what)?;
    let mut id = Reader::new(first.content);
    let mut field = id.expect(what)?;
    if field.is_universal(SEQUENCE) {
        if algorithm_oid(field, what)? != oid::SHA256 {
            return Ok(None);
        }
        field = id.expect(what)?;
    }
    if !field.is_universal(OCTET_STRING) {
        return Err(bad(format!("{what} certHash is not an OCTET STRING")));
    }
    Ok(Some(field.content))
}

/// Time ::= UTCTime | GeneralizedTime, both in the DER form `...Z`.
fn parse_time(value: Tlv<'_>) -> Result<DateTime<Utc>, CmsFormatError> {
    let text = std::str::from_utf8(value.content).map_err(|_| bad("signingTime not ASCII"))?;
    let digits = text
        .strip_suffix('Z')
        .filter(|d| d.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| bad("signingTime is not a DER UTC time"))?;
    let (year, rest) = if value.is_universal(UTC_TIME) && digits.len() == 12 {
        let (yy, rest) = digits.split_at(2);
        let yy: i32 = yy.parse().map_err(|_| bad("signingTime year"))?;
        // RFC 5280 §4.1.2.5.1: two-digit years 50..99 are 19xx.
        (if yy >= 50 { 1900 + yy } else { 2000 + yy }, rest)
    } else if value.is_universal(GENERALIZED_TIME) && digits.len() == 14 {
        let (yyyy, rest) = digits.split_at(4);
        (yyyy.parse().map_err(|_| bad("signingTime year"))?, rest)
    } else {
        return Err(bad("signingTime is not a DER UTC or generalized time"));
    };
    let field = |i: usize| -> u32 {
        // Digits were checked above, so this cannot fail.
        rest[i..i + 2].parse().unwrap_or(u32::MAX)
    };
    NaiveDate::from_ymd_opt(year, field(0), field(2))
        .and_then(|d| d.and_hms_opt(field(4), field(6), field(8)))
        .map(|t| t.and_utc())
        .ok_or_else(|| bad("signingTime is not a valid date"))
}

// ---- CAdES-T: unsigned attributes and time-stamp tokens ----

/// Where the single SignerInfo of a SignedData lies in its DER: what an unsigned
/// attribute (the exchange's signature time-stamp) is added to, leaving every other byte
/// as received. In a single-signer SignedData the SignerInfo is the last element of every
/// enclosing structure, so the pieces below and a new unsigned-attributes field are all
/// that is needed to rebuild it.
#[derive(Debug, Clone, Copy)]
pub struct SignerInfoLayout<'a> {
    /// The ContentInfo's contentType element (OID TLV), as received.
    pub content_type: &'a [u8],
    /// The SignedData fields before signerInfos (version through crls), as received.
    pub before_signer_infos: &'a [u8],
    /// The SignerInfo fields from version through the signature value, as received.
    pub signed_part: &'a [u8],
    /// The `[1] IMPLICIT` unsignedAttrs element, if the SignerInfo has one.
    pub unsigned_attrs: Option<&'a [u8]>,
}

/// One attribute of a SET OF Attribute, undecoded.
#[derive(Debug, Clone)]
pub struct RawAttribute<'a> {
    /// The whole Attribute element.
    pub raw: &'a [u8],
    /// Content of the attribute type OID.
    pub attr_type: &'a [u8],
    /// Each value's element, in order.
    pub values: Vec<&'a [u8]>,
}

impl<'a> SignerInfoLayout<'a> {
    /// The unsigned attributes, in order (empty when there are none).
    pub fn unsigned_attributes(&self) -> Result<Vec<RawAttribute<'a>>, CmsFormatError> {
        let Some(raw) = self.unsigned_attrs else {
            return Ok(Vec::new());
        };
        let mut set = Reader::new(raw);
        let tlv = set.expect("unsignedAttrs")?;
        let mut attrs = Vec::new();
        let mut reader = Reader::new(tlv.content);
        while let Some(attr) = reader.next()? {
            if !attr.is_universal(SEQUENCE) {
                return Err(bad("unsigned attribute is not a SEQUENCE"));
            }
            let mut a = Reader::new(attr.content);
            let attr_type = a.expect_universal(OBJECT_ID, "attribute type")?.content;
            let set = a.expect_universal(SET, "attribute values")?;
            if a.next()?.is_some() {
                return Err(bad("unexpected fields in an unsigned attribute"));
            }
            let mut values = Vec::new();
            let mut vals = Reader::new(set.content);
            while let Some(value) = vals.next()? {
                values.push(value.raw);
            }
            attrs.push(RawAttribute {
                raw: attr.raw,
                attr_type,
                values,
            });
        }
        Ok(attrs)
    }
}

/// Splits a DER ContentInfo holding a SignedData with exactly one signer into the
/// pieces of [`SignerInfoLayout`]. Anything that would not survive being rebuilt from
/// those pieces (trailing data, a second signer, fields after unsignedAttrs) is refused.
pub fn signer_info_layout(der: &[u8]) -> Result<SignerInfoLayout<'_>, CmsFormatError> {
    let mut top = Reader::new(der);
    let content_info = top.expect_universal(SEQUENCE, "ContentInfo")?;
    if top.next()?.is_some() {
        return Err(bad("trailing bytes after ContentInfo"));
    }
    let mut ci = Reader::new(content_info.content);
    let content_type = ci.expect_universal(OBJECT_ID, "contentType")?;
    if content_type.content != oid::SIGNED_DATA && content_type.content != oid::GM_SIGNED_DATA {
        return Err(bad("content type is not signedData"));
    }
    let explicit = ci.expect("SignedData")?;
    if !explicit.is(Class::ContextSpecific, 0) || !explicit.constructed || ci.next()?.is_some() {
        return Err(bad("SignedData is not the only [0] field of ContentInfo"));
    }
    let mut wrapper = Reader::new(explicit.content);
    let signed_data = wrapper.expect_universal(SEQUENCE, "SignedData")?;
    if wrapper.next()?.is_some() {
        return Err(bad("trailing bytes after SignedData"));
    }
    // signerInfos is the last field of SignedData.
    let mut sd = Reader::new(signed_data.content);
    let mut last = None;
    while let Some(field) = sd.next()? {
        last = Some(field);
    }
    let signer_infos = last
        .filter(|f| f.is_universal(SET))
        .ok_or_else(|| bad("signerInfos missing"))?;
    let before_signer_infos =
        &signed_data.content[..signed_data.content.len() - signer_infos.raw.len()];
    let mut signers = Reader::new(signer_infos.content);
    let signer = signers.expect_universal(SEQUENCE, "SignerInfo")?;
    if signers.next()?.is_some() {
        return Err(bad("more than one signer"));
    }
    let mut si = Reader::new(signer.content);
    si.expect_universal(INTEGER, "SignerInfo version")?;
    si.expect("sid")?;
    si.expect_universal(SEQUENCE, "digestAlgorithm")?;
    let attrs = si.expect("signedAttrs")?;
    if !attrs.is(Class::ContextSpecific, 0) {
        return Err(bad("no signed attributes (CAdES needs them)"));
    }
    si.expect_universal(SEQUENCE, "signatureAlgorithm")?;
    si.expect_universal(OCTET_STRING, "signature")?;
    let signed_part = &signer.content[..signer.content.len() - si.rest.len()];
    let unsigned_attrs = match si.next()? {
        None => None,
        Some(t) if t.is(Class::ContextSpecific, 1) && t.constructed => Some(t.raw),
        Some(_) => return Err(bad("unexpected field after the signature value")),
    };
    if si.next()?.is_some() {
        return Err(bad("unexpected field after unsignedAttrs"));
    }
    Ok(SignerInfoLayout {
        content_type: content_type.raw,
        before_signer_infos,
        signed_part,
        unsigned_attrs,
    })
}

/// A SignedData that carries its content inside (an RFC 3161 time-stamp token), with
/// exactly one signer.
#[derive(Debug, Clone)]
pub struct EncapsulatingSignedData<'a> {
    /// Content of the eContentType OID.
    pub content_type: &'a [u8],
    /// The eContent octets (for a token, the DER TSTInfo).
    pub content: &'a [u8],
    /// Raw DER of every plain X.509 certificate carried, in order.
    pub certificates: Vec<&'a [u8]>,
    /// The one signer; its contentType attribute matches `content_type`.
    pub signer: SignerInfo<'a>,
}

/// Parses a DER ContentInfo holding a SignedData that embeds its content (eContent
/// present, as a single DER OCTET STRING) and has exactly one signer.
pub fn parse_encapsulating_signed_data(
    der: &[u8],
) -> Result<EncapsulatingSignedData<'_>, CmsFormatError> {
    let mut top = Reader::new(der);
    let content_info = top.expect_universal(SEQUENCE, "ContentInfo")?;
    if top.next()?.is_some() {
        return Err(bad("trailing bytes after ContentInfo"));
    }
    let mut ci = Reader::new(content_info.content);
    if ci.expect_universal(OBJECT_ID, "contentType")?.content != oid::SIGNED_DATA {
        return Err(bad("content type is not signedData"));
    }
    let explicit = ci.expect("SignedData")?;
    if !explicit.is(Class::ContextSpecific, 0) || !explicit.constructed {
        return Err(bad("SignedData is not tagged [0]"));
    }
    let signed_data = Reader::new(explicit.content).expect_universal(SEQUENCE, "SignedData")?;
    let mut sd = Reader::new(signed_data.content);
    sd.expect_universal(INTEGER, "SignedData version")?;
    sd.expect_universal(SET, "digestAlgorithms")?;

    let encap = sd.expect_universal(SEQUENCE, "encapContentInfo")?;
    let mut encap_reader = Reader::new(encap.content);
    let content_type = encap_reader
        .expect_universal(OBJECT_ID, "eContentType")?
        .content;
    let econtent = encap_reader.expect("eContent")?;
    if !econtent.is(Class::ContextSpecific, 0) || !econtent.constructed {
        return Err(bad("eContent is not tagged [0]"));
    }
    let mut octets = Reader::new(econtent.content);
    let content = octets.expect_universal(OCTET_STRING, "eContent")?;
    if content.constructed || octets.next()?.is_some() || encap_reader.next()?.is_some() {
        return Err(bad("eContent is not a single DER OCTET STRING"));
    }

    let (certificates, next) = certificates_and_signer_infos(&mut sd)?;
    if !next.is_universal(SET) || sd.next()?.is_some() {
        return Err(bad("signerInfos is not the last field"));
    }
    let mut signers = Reader::new(next.content);
    let signer = signers.expect_universal(SEQUENCE, "SignerInfo")?;
    if signers.next()?.is_some() {
        return Err(bad("more than one signer"));
    }
    Ok(EncapsulatingSignedData {
        content_type,
        content: content.content,
        certificates,
        signer: parse_signer_info(signer.content, content_type)?,
    })
}

//! The verification engine (DESIGN.md §5).
//!
//! # What is cached, and why it is safe
//!
//! Everything that depends only on *which certificates the signature carries* and *which
//! trust store is used* is computed once and cached under
//! `SHA-256(trust store version, signer identifier, every certificate's DER)`:
//! the signer certificate lookup, its public key and details, keyUsage, the chain to a
//! trust anchor (built with time checks off), the validity windows of the chain, and for
//! every non-anchor certificate the CRLs that validly cover it and whether they list it.
//! Those facts cannot change without the key changing: the certificates are the same
//! bytes and the store is immutable (a reload gives a new version).
//!
//! Everything that depends on the *call* is evaluated every time, on both paths, by the
//! same code: the document hash against messageDigest, the signature value over the
//! signed attributes (one public-key verification with the cached key), validity at
//! this signature's signing time, whether a CRL is current at this validation time,
//! the issuer binding, registration and expectations. So a warm verification costs one
//! public-key operation, two hashes and a DER walk, and the cold and warm paths produce
//! the same report by construction (and a test checks it).
//!
//! Caveat shared with every validator lacking timestamps: the signing time is the
//! signer's claim (signingTime attribute); without an RFC 3161 token it is not proven,
//! and a revoked certificate is reported REVOKED whatever the claimed signing time.
//! Delta CRLs and issuing-distribution-point partitions are not supported: a CRL counts
//! for a certificate when its issuer name matches and the issuing CA's key verifies it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use openssl::sign::Verifier;
use openssl::stack::Stack;
use openssl::x509::{CrlStatus, X509NameRef, X509};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::money::Amount;
use crate::pki::certs::{asn1_to_unix, name_to_string, unix_to_rfc3339};
use crate::pki::cms_parse::{oid, parse_signed_data, SignedData, SignerId};
use crate::pki::document::{GuaranteeDocument, MAX_SIGNATURE_BYTES};
use crate::pki::report::{
    Check, CheckId, CheckResult, SignerDetails, SubIndication, VerificationReport,
};
use crate::pki::trust::TrustStore;

/// Default bound on cached signer entries (a few hundred issuers, a few certs each).
const DEFAULT_CACHE_CAPACITY: usize = 4096;

/// Registration of the guarantee at this exchange, as the caller found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Lowercase hex SHA-256 of the registered document bytes.
    pub document_sha256: String,
    /// Whether the guarantee is in force (issued or accepted).
    pub status_active: bool,
    /// The status name, for the explanation (e.g. `released`).
    pub status: String,
}

/// Whether registry checks run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RegistryCheck {
    /// Offline verification (CLI, third parties): registration and status are skipped.
    #[default]
    Offline,
    /// Check against the exchange's record; `None` means no guarantee was found.
    Online(Option<Registration>),
}

/// What the verifier requires of the guarantee (e.g. a tender agency at bid opening).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectations {
    /// Project code.
    pub project_code: Option<String>,
    /// Section code.
    pub section_code: Option<String>,
    /// Beneficiary (tenderee) USCC.
    pub beneficiary_uscc: Option<String>,
    /// Applicant (bidder) USCC.
    pub applicant_uscc: Option<String>,
    /// Minimum amount, decimal yuan (e.g. `"80000.00"`); compared in fen.
    pub min_amount: Option<String>,
    /// Validity must have started by this time (typically the bid deadline).
    pub valid_from_by: Option<DateTime<FixedOffset>>,
    /// Validity must last through this time (end of the bid validity period).
    pub valid_through: Option<DateTime<FixedOffset>>,
}

impl Expectations {
    fn is_empty(&self) -> bool {
        *self == Expectations::default()
    }
}

/// Per-call inputs besides the two byte strings and the trust store.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Time the validation is made for; `None` means now.
    pub validation_time: Option<DateTime<Utc>>,
    /// SHA-256 fingerprints (hex, any case, colons allowed) of the certificates
    /// registered to the issuer named in the document; `None` skips that part of the
    /// issuer-binding check (the USCC is still compared).
    pub registered_fingerprints: Option<Vec<String>>,
    /// Registry checks.
    pub registry: RegistryCheck,
    /// Verifier's expectations.
    pub expectations: Expectations,
}

/// Validity window of one chain certificate.
struct ChainCert {
    subject: String,
    not_before: i64,
    not_after: i64,
}

/// Revocation facts of one non-anchor chain certificate.
struct CertRevocation {
    subject: String,
    issuer: String,
    /// Set when a validly signed CRL lists the certificate.
    revoked_at: Option<i64>,
    /// (thisUpdate, nextUpdate) of each validly signed CRL covering the certificate.
    crl_windows: Vec<(i64, Option<i64>)>,
}

/// Time-independent facts about the signer, cached per certificates + store version.
struct SignerFacts {
    details: SignerDetails,
    fingerprint: [u8; 32],
    not_before: i64,
    not_after: i64,
    public_key: PKey<Public>,
    key_usage: Result<String, String>,
    chain: Result<Vec<ChainCert>, String>,
    revocation: Vec<CertRevocation>,
}

/// `None` when no carried certificate matches the signer identifier.
type CachedSigner = Option<Arc<SignerFacts>>;

/// The verification engine: stateless apart from a bounded, thread-safe cache.
pub struct VerificationEngine {
    cache: RwLock<HashMap<[u8; 32], CachedSigner>>,
    capacity: usize,
}

impl Default for VerificationEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for VerificationEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationEngine")
            .field("cached", &self.cached_entries())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl VerificationEngine {
    /// An engine with the default cache bound.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CACHE_CAPACITY)
    }

    /// An engine caching at most `capacity` signer entries.
    pub fn with_capacity(capacity: usize) -> Self {
        VerificationEngine {
            cache: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// Number of cached signer entries.
    pub fn cached_entries(&self) -> usize {
        self.cache.read().map(|c| c.len()).unwrap_or(0)
    }

    /// Drops every cached entry (benchmarks of the cold path; not needed on reload,
    /// since entries are keyed by trust-store version).
    pub fn clear_cache(&self) {
        if let Ok(mut c) = self.cache.write() {
            c.clear();
        }
    }

    /// Verifies `signature` (detached DER CMS) over `document` against `trust`.
    /// Never panics on bad input: anything unreadable gives FAILED / FORMAT_FAILURE.
    pub fn verify(
        &self,
        document: &[u8],
        signature: &[u8],
        trust: &TrustStore,
        options: &VerifyOptions,
    ) -> VerificationReport {
        let now = options.validation_time.unwrap_or_else(Utc::now);
        let validation_time = now.to_rfc3339_opts(SecondsFormat::Secs, true);
        let document_sha256: [u8; 32] = Sha256::digest(document).into();
        let doc_hex = hex::encode(document_sha256);

        let (doc, sd) = match parse_inputs(document, signature) {
            Ok(p) => p,
            Err(reason) => {
                let mut report = format_failure_report(reason, now);
                report.document_sha256 = Some(doc_hex);
                return report;
            }
        };
        let signer = self.signer_facts(&sd, trust);
        let mut report = evaluate(&doc, &sd, signer.as_deref(), &document_sha256, now, options);
        report.validation_time = validation_time;
        report.document_sha256 = Some(doc_hex);
        report.guarantee_number = Some(doc.guarantee_number.clone());
        report.signing_time = sd
            .signer
            .signing_time
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        report.signer = signer.map(|s| s.details.clone());
        report
    }

    /// Looks the signer up in the cache, computing and inserting it on a miss.
    fn signer_facts(&self, sd: &SignedData<'_>, trust: &TrustStore) -> CachedSigner {
        let mut key = Sha256::new();
        for part in [trust.version().as_bytes(), sd.signer.sid_raw]
            .into_iter()
            .chain(sd.certificates.iter().copied())
        {
            key.update((part.len() as u64).to_be_bytes());
            key.update(part);
        }
        let key: [u8; 32] = key.finalize().into();
        if let Some(hit) = self.cache.read().ok().and_then(|c| c.get(&key).cloned()) {
            return hit;
        }
        let facts = compute_signer_facts(sd, trust).map(Arc::new);
        if let Ok(mut cache) = self.cache.write() {
            if cache.len() >= self.capacity {
                // Any victim will do: entries are cheap to recompute and the bound only
                // protects memory against a flood of distinct certificates.
                if let Some(victim) = cache.keys().next().copied() {
                    cache.remove(&victim);
                }
            }
            cache.insert(key, facts.clone());
        }
        facts
    }
}

/// A FAILED / FORMAT_FAILURE report for inputs that could not even be read (unreadable
/// or oversized files in the CLI, or unparsable bytes in the engine).
pub fn format_failure_report(reason: String, validation_time: DateTime<Utc>) -> VerificationReport {
    let mut checks = vec![check(
        CheckId::Format,
        CheckResult::Failed,
        Some(SubIndication::FormatFailure),
        reason,
    )];
    checks.extend(all_ids().skip(1).map(|id| {
        check(
            id,
            CheckResult::Skipped,
            None,
            "Not run: the inputs could not be read.".into(),
        )
    }));
    VerificationReport::from_checks(
        checks,
        validation_time.to_rfc3339_opts(SecondsFormat::Secs, true),
        None,
    )
}

fn all_ids() -> impl Iterator<Item = CheckId> {
    [
        CheckId::Format,
        CheckId::Integrity,
        CheckId::SignatureValue,
        CheckId::CertificateChain,
        CheckId::KeyUsage,
        CheckId::CertificateValidity,
        CheckId::Revocation,
        CheckId::IssuerBinding,
        CheckId::Registration,
        CheckId::Status,
        CheckId::Expectations,
    ]
    .into_iter()
}

fn title(id: CheckId) -> &'static str {
    match id {
        CheckId::Format => "Format",
        CheckId::Integrity => "Document integrity",
        CheckId::SignatureValue => "Signature value",
        CheckId::CertificateChain => "Signer certificate and chain",
        CheckId::KeyUsage => "Key usage",
        CheckId::CertificateValidity => "Certificate validity at signing time",
        CheckId::Revocation => "Revocation",
        CheckId::IssuerBinding => "Signer is the named issuer",
        CheckId::Registration => "Registered at the exchange",
        CheckId::Status => "Guarantee status",
        CheckId::Expectations => "Verifier's expectations",
    }
}

fn check(
    id: CheckId,
    result: CheckResult,
    sub_indication: Option<SubIndication>,
    explanation: String,
) -> Check {
    Check {
        id,
        title: title(id).to_owned(),
        result,
        sub_indication,
        explanation,
    }
}

/// The format check: sizes, document schema, CMS structure, supported digest.
fn parse_inputs<'a>(
    document: &[u8],
    signature: &'a [u8],
) -> Result<(GuaranteeDocument, SignedData<'a>), String> {
    if signature.len() > MAX_SIGNATURE_BYTES {
        return Err(format!(
            "The signature is {} bytes, more than the {MAX_SIGNATURE_BYTES}-byte limit.",
            signature.len()
        ));
    }
    let doc = GuaranteeDocument::parse(document)
        .map_err(|e| format!("The document is not a valid guarantee document: {e}."))?;
    let sd = parse_signed_data(signature).map_err(|e| format!("The {e}."))?;
    if sd.signer.digest_algorithm != oid::SHA256 {
        return Err("The signature uses a digest algorithm other than SHA-256.".into());
    }
    Ok((doc, sd))
}

/// NID of organizationIdentifier (2.5.4.97), which rust-openssl does not name; looked up
/// from the OID because NID numbers differ between OpenSSL versions (and an unknown NID
/// makes rust-openssl's entry iterator panic).
fn organization_identifier_nid() -> Option<Nid> {
    use openssl::asn1::Asn1Object;
    Asn1Object::from_str("2.5.4.97")
        .ok()
        .map(|o| o.nid())
        .filter(|n| *n != Nid::UNDEF)
}

/// The USCC in a subject: organizationIdentifier (optionally with an ETSI EN 319 412-1
/// prefix such as `NTRCN-`), else serialNumber.
fn uscc_of(name: &X509NameRef) -> Option<String> {
    let first = |nid: Nid| {
        name.entries_by_nid(nid)
            .next()
            .and_then(|e| e.data().to_string().ok())
    };
    if let Some(value) = organization_identifier_nid().and_then(first) {
        let stripped = match value.split_once('-') {
            Some((prefix, rest))
                if prefix.len() == 5 && prefix.bytes().all(|b| b.is_ascii_uppercase()) =>
            {
                rest.to_owned()
            }
            _ => value,
        };
        return Some(stripped);
    }
    first(Nid::SERIALNUMBER)
}

fn serial_matches(cert: &X509, serial_content: &[u8]) -> bool {
    let Ok(bn) = cert.serial_number().to_bn() else {
        return false;
    };
    // INTEGER content carries a leading 0x00 when the top bit is set; BigNum does not.
    let trimmed = match serial_content {
        [0, rest @ ..] if !rest.is_empty() => rest,
        other => other,
    };
    !bn.is_negative() && bn.to_vec() == trimmed
}

fn find_signer<'c>(certs: &'c [X509], sid: &SignerId<'_>) -> Option<&'c X509> {
    certs.iter().find(|cert| match sid {
        SignerId::IssuerSerial { issuer, serial } => {
            cert.issuer_name().to_der().is_ok_and(|d| d == *issuer) && serial_matches(cert, serial)
        }
        SignerId::KeyId(id) => cert.subject_key_id().is_some_and(|s| s.as_slice() == *id),
    })
}

/// keyUsage must allow digitalSignature or nonRepudiation; an extended key usage, if
/// present, must allow document or e-mail signing (or any).
fn key_usage_of(der: &[u8]) -> Result<String, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("The certificate's extensions cannot be read: {e}."))?;
    let ku = cert
        .key_usage()
        .map_err(|e| format!("The keyUsage extension is malformed: {e}."))?
        .ok_or("The certificate has no keyUsage extension; signing certificates must state digitalSignature or nonRepudiation.")?;
    if !(ku.value.digital_signature() || ku.value.non_repudiation()) {
        return Err(format!(
            "keyUsage ({}) allows neither digitalSignature nor nonRepudiation.",
            ku.value
        ));
    }
    if let Some(eku) = cert
        .extended_key_usage()
        .map_err(|e| format!("The extendedKeyUsage extension is malformed: {e}."))?
    {
        // id-kp-documentSigning (RFC 9336) and Microsoft document signing.
        const DOCUMENT_SIGNING: [&str; 2] = ["1.3.6.1.5.5.7.3.36", "1.3.6.1.4.1.311.10.3.12"];
        let e = eku.value;
        let allowed = e.any
            || e.email_protection
            || e.other
                .iter()
                .any(|o| DOCUMENT_SIGNING.contains(&o.to_id_string().as_str()));
        if !allowed {
            return Err("extendedKeyUsage does not allow document signing.".into());
        }
    }
    Ok(format!("keyUsage allows signing ({}).", ku.value))
}

/// The expensive, time-independent part: runs once per certificates + store version.
/// What a report says about a certificate: names, serial, fingerprint, the USCC in its
/// subject, validity. Also used when an operator registers an issuer certificate.
pub fn certificate_details(cert: &X509) -> Option<SignerDetails> {
    let der = cert.to_der().ok()?;
    Some(SignerDetails {
        subject: name_to_string(cert.subject_name()),
        issuer: name_to_string(cert.issuer_name()),
        serial: cert
            .serial_number()
            .to_bn()
            .ok()
            .and_then(|b| b.to_hex_str().ok().map(|h| h.to_ascii_lowercase()))
            .unwrap_or_default(),
        sha256_fingerprint: hex::encode(Sha256::digest(&der)),
        uscc: uscc_of(cert.subject_name()),
        not_before: unix_to_rfc3339(asn1_to_unix(cert.not_before()).ok()?),
        not_after: unix_to_rfc3339(asn1_to_unix(cert.not_after()).ok()?),
    })
}

fn compute_signer_facts(sd: &SignedData<'_>, trust: &TrustStore) -> Option<SignerFacts> {
    let certs: Vec<X509> = sd
        .certificates
        .iter()
        .filter_map(|der| X509::from_der(der).ok())
        .collect();
    let cert = find_signer(&certs, &sd.signer.sid)?;
    let der = cert.to_der().ok()?;
    let fingerprint: [u8; 32] = Sha256::digest(&der).into();
    let public_key = cert.public_key().ok()?;
    let not_before = asn1_to_unix(cert.not_before()).ok()?;
    let not_after = asn1_to_unix(cert.not_after()).ok()?;
    let details = certificate_details(cert)?;
    let key_usage = key_usage_of(&der);

    let chain = match untrusted_stack(&certs).map(|s| trust.build_chain(cert, &s)) {
        Some(Ok(Ok(chain))) if !chain.is_empty() => Ok(chain),
        Some(Ok(Err(reason))) => Err(reason),
        _ => Err("the chain could not be built".to_owned()),
    };
    let revocation = chain
        .as_ref()
        .map(|c| revocation_facts(c, trust))
        .unwrap_or_default();
    let chain = chain.map(|c| {
        c.iter()
            .map(|x| ChainCert {
                subject: name_to_string(x.subject_name()),
                not_before: asn1_to_unix(x.not_before()).unwrap_or(i64::MAX),
                not_after: asn1_to_unix(x.not_after()).unwrap_or(i64::MIN),
            })
            .collect()
    });
    Some(SignerFacts {
        details,
        fingerprint,
        not_before,
        not_after,
        public_key,
        key_usage,
        chain,
        revocation,
    })
}

fn untrusted_stack(certs: &[X509]) -> Option<Stack<X509>> {
    let mut stack = Stack::new().ok()?;
    for c in certs {
        stack.push(c.clone()).ok()?;
    }
    Some(stack)
}

/// For each certificate below the anchor, the CRLs its issuer validly signed.
fn revocation_facts(chain: &[X509], trust: &TrustStore) -> Vec<CertRevocation> {
    chain
        .windows(2)
        .map(|pair| {
            let (cert, issuer) = (&pair[0], &pair[1]);
            let issuer_key = issuer.public_key().ok();
            let mut facts = CertRevocation {
                subject: name_to_string(cert.subject_name()),
                issuer: name_to_string(issuer.subject_name()),
                revoked_at: None,
                crl_windows: Vec::new(),
            };
            for stored in trust.crls_named(cert.issuer_name()) {
                let valid = issuer_key
                    .as_ref()
                    .is_some_and(|k| stored.crl.verify(k).unwrap_or(false));
                if !valid {
                    continue;
                }
                facts
                    .crl_windows
                    .push((stored.this_update, stored.next_update));
                if let CrlStatus::Revoked(entry) = stored.crl.get_by_cert(cert) {
                    let at = asn1_to_unix(entry.revocation_date()).unwrap_or(stored.this_update);
                    facts.revoked_at = Some(facts.revoked_at.map_or(at, |p: i64| p.min(at)));
                }
            }
            facts
        })
        .collect()
}

/// The per-call part: identical for cached and fresh signer facts.
fn evaluate(
    doc: &GuaranteeDocument,
    sd: &SignedData<'_>,
    signer: Option<&SignerFacts>,
    document_sha256: &[u8; 32],
    now: DateTime<Utc>,
    options: &VerifyOptions,
) -> VerificationReport {
    use CheckResult::{Failed, Indeterminate, Passed, Skipped};
    use SubIndication as S;
    let mut checks = Vec::with_capacity(11);
    let info = &sd.signer;
    checks.push(check(
        CheckId::Format,
        Passed,
        None,
        "The document is a baohan/guarantee/v1 document and the signature is a detached DER CMS SignedData using SHA-256.".into(),
    ));

    checks.push(if info.message_digest == document_sha256 {
        check(CheckId::Integrity, Passed, None, "The signed message digest equals the SHA-256 of the document bytes.".into())
    } else {
        check(CheckId::Integrity, Failed, Some(S::HashFailure), "The signed message digest differs from the SHA-256 of the document: the document was changed after signing, or the signature belongs to another document.".into())
    });

    let no_signer = "No certificate in the signature matches the signer identifier.";
    checks.push(match signer {
        None => check(CheckId::SignatureValue, Indeterminate, Some(S::NoSigningCertificateFound), format!("{no_signer} The signature value cannot be checked without it.")),
        Some(s) => match verify_signature_value(s, info) {
            Ok(()) => check(CheckId::SignatureValue, Passed, None, "The signature value verifies over the signed attributes with the signer's public key.".into()),
            Err(why) => check(CheckId::SignatureValue, Failed, Some(S::SigCryptoFailure), why),
        },
    });

    checks.push(match signer {
        None => check(CheckId::CertificateChain, Indeterminate, Some(S::NoSigningCertificateFound), no_signer.into()),
        Some(s) => match (&s.chain, info.signing_certificate_sha256) {
            (_, Some(h)) if h != s.fingerprint => check(CheckId::CertificateChain, Indeterminate, Some(S::NoSigningCertificateFound), "The certificate carried does not match the signed signingCertificateV2 attribute.".into()),
            (Err(reason), _) => check(CheckId::CertificateChain, Indeterminate, Some(S::NoCertificateChainFound), format!("The signer certificate does not chain to a trusted certificate authority ({reason}).")),
            (Ok(chain), bound) => {
                let anchor = chain.last().map(|c| c.subject.as_str()).unwrap_or("?");
                let binding = if bound.is_some() { " It is bound by the signingCertificateV2 attribute." } else { " (The signature has no signingCertificateV2 attribute.)" };
                check(CheckId::CertificateChain, Passed, None, format!("The signer certificate chains to the trust anchor {anchor}.{binding}"))
            }
        },
    });

    checks.push(match signer {
        None => check(
            CheckId::KeyUsage,
            Skipped,
            None,
            "Not run: no signer certificate.".into(),
        ),
        Some(s) => match &s.key_usage {
            Ok(why) => check(CheckId::KeyUsage, Passed, None, why.clone()),
            Err(why) => check(
                CheckId::KeyUsage,
                Indeterminate,
                Some(S::ChainConstraintsFailure),
                why.clone(),
            ),
        },
    });

    let signing_time = info.signing_time.unwrap_or(now);
    let time_source = if info.signing_time.is_some() {
        "signing time"
    } else {
        "validation time (the signature states no signing time)"
    };
    checks.push(match signer {
        None => check(
            CheckId::CertificateValidity,
            Skipped,
            None,
            "Not run: no signer certificate.".into(),
        ),
        Some(s) => validity_check(s, signing_time.timestamp(), time_source),
    });

    checks.push(match signer {
        None => check(
            CheckId::Revocation,
            Skipped,
            None,
            "Not run: no signer certificate.".into(),
        ),
        Some(s) if s.chain.is_err() => check(
            CheckId::Revocation,
            Skipped,
            None,
            "Not run: revocation needs a chain to a trusted certificate authority.".into(),
        ),
        Some(s) => revocation_check(s, now.timestamp()),
    });

    checks.push(match signer {
        None => check(
            CheckId::IssuerBinding,
            Skipped,
            None,
            "Not run: no signer certificate.".into(),
        ),
        Some(s) => issuer_binding_check(s, doc, options.registered_fingerprints.as_deref()),
    });

    let doc_hex = hex::encode(document_sha256);
    match &options.registry {
        RegistryCheck::Offline => {
            let why = "Skipped: offline verification does not consult the exchange's register.";
            checks.push(check(CheckId::Registration, Skipped, None, why.into()));
            checks.push(check(CheckId::Status, Skipped, None, why.into()));
        }
        RegistryCheck::Online(None) => {
            checks.push(check(
                CheckId::Registration,
                Failed,
                Some(S::NotRegistered),
                format!(
                    "The exchange has no guarantee {} on record.",
                    doc.guarantee_number
                ),
            ));
            checks.push(check(
                CheckId::Status,
                Skipped,
                None,
                "Not run: not registered.".into(),
            ));
        }
        RegistryCheck::Online(Some(reg)) if !reg.document_sha256.eq_ignore_ascii_case(&doc_hex) => {
            checks.push(check(CheckId::Registration, Failed, Some(S::NotRegistered), format!("The exchange registered guarantee {} with a different document (SHA-256 {}); this document is not the registered one.", doc.guarantee_number, reg.document_sha256)));
            checks.push(check(
                CheckId::Status,
                Skipped,
                None,
                "Not run: this document is not the registered one.".into(),
            ));
        }
        RegistryCheck::Online(Some(reg)) => {
            checks.push(check(
                CheckId::Registration,
                Passed,
                None,
                "The exchange registered this exact document.".into(),
            ));
            checks.push(if reg.status_active {
                check(
                    CheckId::Status,
                    Passed,
                    None,
                    format!("The guarantee is in force (status {}).", reg.status),
                )
            } else {
                check(
                    CheckId::Status,
                    Failed,
                    Some(S::NotActive),
                    format!(
                        "The guarantee is no longer in force (status {}).",
                        reg.status
                    ),
                )
            });
        }
    }

    checks.push(expectations_check(doc, &options.expectations));
    VerificationReport::from_checks(checks, String::new(), None)
}

fn verify_signature_value(
    s: &SignerFacts,
    info: &crate::pki::cms_parse::SignerInfo<'_>,
) -> Result<(), String> {
    let alg = info.signature_algorithm;
    let matches_key = match s.public_key.id() {
        Id::EC => alg == oid::ECDSA_WITH_SHA256 || alg == oid::EC_PUBLIC_KEY,
        Id::RSA => alg == oid::SHA256_WITH_RSA || alg == oid::RSA_ENCRYPTION,
        _ => false,
    };
    if !matches_key {
        return Err("The signature algorithm is not ECDSA or RSA PKCS#1 v1.5 with SHA-256 matching the signer's key.".into());
    }
    let attrs = info.signed_attrs_to_verify();
    let ok = Verifier::new(MessageDigest::sha256(), &s.public_key)
        .and_then(|mut v| v.verify_oneshot(info.signature, &attrs))
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err("The signature value does not verify with the signer's public key: the signature or its signed attributes were altered.".into())
    }
}

fn validity_check(s: &SignerFacts, at: i64, time_source: &str) -> Check {
    use SubIndication as S;
    // Without a chain, judge the signer certificate alone.
    let alone;
    let certs: &[ChainCert] = match &s.chain {
        Ok(c) => c,
        Err(_) => {
            alone = [ChainCert {
                subject: s.details.subject.clone(),
                not_before: s.not_before,
                not_after: s.not_after,
            }];
            &alone
        }
    };
    let when = unix_to_rfc3339(at);
    for c in certs {
        if at > c.not_after {
            return check(
                CheckId::CertificateValidity,
                CheckResult::Failed,
                Some(S::Expired),
                format!(
                    "Certificate {} expired on {} and the {time_source} is {when}.",
                    c.subject,
                    unix_to_rfc3339(c.not_after)
                ),
            );
        }
        if at < c.not_before {
            return check(
                CheckId::CertificateValidity,
                CheckResult::Failed,
                Some(S::NotYetValid),
                format!(
                    "Certificate {} is valid only from {} and the {time_source} is {when}.",
                    c.subject,
                    unix_to_rfc3339(c.not_before)
                ),
            );
        }
    }
    check(
        CheckId::CertificateValidity,
        CheckResult::Passed,
        None,
        format!("The certificates were valid at the {time_source} {when}."),
    )
}

fn revocation_check(s: &SignerFacts, now: i64) -> Check {
    use SubIndication as S;
    for r in &s.revocation {
        if let Some(at) = r.revoked_at {
            return check(
                CheckId::Revocation,
                CheckResult::Failed,
                Some(S::Revoked),
                format!(
                    "Certificate {} was revoked on {} according to the CRL of {}.",
                    r.subject,
                    unix_to_rfc3339(at),
                    r.issuer
                ),
            );
        }
    }
    for r in &s.revocation {
        let current = r
            .crl_windows
            .iter()
            .any(|(this, next)| *this <= now && next.is_some_and(|n| now < n));
        if !current {
            let latest = r.crl_windows.iter().filter_map(|(_, n)| *n).max();
            let detail = match latest {
                Some(n) => format!("its latest CRL expired on {}", unix_to_rfc3339(n)),
                None => "no CRL from it is loaded".to_owned(),
            };
            return check(CheckId::Revocation, CheckResult::Indeterminate, Some(S::TryLater), format!("The revocation status of {} is unknown: {} has no current CRL ({detail}). Try again when a fresh CRL is loaded.", r.subject, r.issuer));
        }
    }
    check(
        CheckId::Revocation,
        CheckResult::Passed,
        None,
        "No certificate in the chain is revoked according to current CRLs.".into(),
    )
}

fn normalize_fingerprint(f: &str) -> String {
    f.chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase()
}

fn issuer_binding_check(
    s: &SignerFacts,
    doc: &GuaranteeDocument,
    registered: Option<&[String]>,
) -> Check {
    use SubIndication as S;
    let wanted = doc.issuer.uscc.trim();
    let failed = |why: String| {
        check(
            CheckId::IssuerBinding,
            CheckResult::Failed,
            Some(S::SignerNotIssuer),
            why,
        )
    };
    match &s.details.uscc {
        None => return failed(format!("The signer certificate carries no USCC (organizationIdentifier or serialNumber), so it cannot be bound to issuer {} ({wanted}).", doc.issuer.name)),
        Some(got) if !got.trim().eq_ignore_ascii_case(wanted) => return failed(format!("The signer's USCC {got} is not the USCC {wanted} of the issuer {} named in the document.", doc.issuer.name)),
        Some(_) => {}
    }
    if let Some(list) = registered {
        let fp = &s.details.sha256_fingerprint;
        if !list.iter().any(|f| normalize_fingerprint(f) == *fp) {
            return failed(format!(
                "The signer certificate ({fp}) is not one registered to issuer {}.",
                doc.issuer.name
            ));
        }
        return check(
            CheckId::IssuerBinding,
            CheckResult::Passed,
            None,
            format!(
                "The signer certificate is registered to issuer {} and carries its USCC {wanted}.",
                doc.issuer.name
            ),
        );
    }
    check(
        CheckId::IssuerBinding,
        CheckResult::Passed,
        None,
        format!(
            "The signer certificate carries the USCC {wanted} of issuer {}.",
            doc.issuer.name
        ),
    )
}

fn expectations_check(doc: &GuaranteeDocument, e: &Expectations) -> Check {
    if e.is_empty() {
        return check(
            CheckId::Expectations,
            CheckResult::Skipped,
            None,
            "No expectations were given.".into(),
        );
    }
    let mut mismatches = Vec::new();
    let mut compare = |what: &str, expected: &Option<String>, actual: &str| {
        if let Some(x) = expected {
            if x.trim() != actual {
                mismatches.push(format!("{what} is {actual}, expected {}", x.trim()));
            }
        }
    };
    compare("project code", &e.project_code, &doc.project.code);
    compare("section code", &e.section_code, &doc.section.code);
    compare(
        "beneficiary USCC",
        &e.beneficiary_uscc,
        &doc.beneficiary.uscc,
    );
    compare("applicant USCC", &e.applicant_uscc, &doc.applicant.uscc);
    if let Some(min) = &e.min_amount {
        match (Amount::parse(min.trim()).map(Amount::fen), doc.amount_fen()) {
            (Ok(min_fen), Ok(fen)) if fen < min_fen => mismatches.push(format!(
                "amount is {} {}, less than the required {}",
                doc.amount.value,
                doc.amount.currency,
                min.trim()
            )),
            (Ok(_), Ok(_)) => {}
            (Err(err), _) => {
                mismatches.push(format!("the required amount cannot be compared ({err})"))
            }
            (_, Err(err)) => {
                mismatches.push(format!("the document amount cannot be compared ({err})"))
            }
        }
    }
    if e.valid_from_by.is_some() || e.valid_through.is_some() {
        match doc.validity() {
            Ok((from, until)) => {
                if let Some(t) = e.valid_from_by {
                    if from > t {
                        mismatches.push(format!(
                            "validity starts {}, after the required {}",
                            doc.valid_from,
                            t.to_rfc3339()
                        ));
                    }
                }
                if let Some(t) = e.valid_through {
                    if until < t {
                        mismatches.push(format!(
                            "validity ends {}, before the required {}",
                            doc.valid_until,
                            t.to_rfc3339()
                        ));
                    }
                }
            }
            Err(err) => mismatches.push(format!("the validity cannot be compared ({err})")),
        }
    }
    if mismatches.is_empty() {
        check(
            CheckId::Expectations,
            CheckResult::Passed,
            None,
            "The guarantee meets every expectation given.".into(),
        )
    } else {
        check(
            CheckId::Expectations,
            CheckResult::Failed,
            Some(SubIndication::ExpectationMismatch),
            format!("Mismatch: {}.", mismatches.join("; ")),
        )
    }
}

//! The verification engine (DESIGN.md §5).
//!
//! # The exchange is the clock
//!
//! The signer's `signingTime` attribute is a claim. It is reported, and when the exchange
//! accepts an upload it must be plausible (within the policy's skew of the exchange's
//! time, not before the draft), but it never decides validity. Certificates are judged
//! at the *trusted time*, ETSI EN 319 102-1's best-signature-time: the proof of existence
//! the caller gives (the genTime of the exchange's own RFC 3161 token, or the time the
//! exchange recorded the signature) when it is earlier than the validation time,
//! otherwise the validation time itself. A certificate that expired or was revoked after
//! the trusted time leaves the signature valid, and the report says why; one revoked
//! before it is REVOKED.
//!
//! # What is cached, and why it is safe
//!
//! Everything that depends only on *which certificates the signature carries*, *which
//! trust store is used* and *the engine's signature policy* is computed once and cached
//! under `SHA-256(trust store version, signer identifier, every certificate's DER)`:
//! the signer certificate lookup, its public key and details, the policy's verdict on the
//! keys and on keyUsage / extendedKeyUsage, the chain to a trust anchor (built with time
//! checks off), the validity windows of the chain, and for every non-anchor certificate
//! the CRLs that validly cover it and the OCSP answer the store holds about it (verified
//! against the store when it was fetched), the revocation dates they give and where each
//! came from (a CRL uploaded by the operator or fetched from a distribution point at a
//! time; an OCSP responder and the answer's producedAt). Those facts cannot change
//! without the key changing: the certificates are the same bytes, the store is immutable
//! (a reload gives a new version, and each CRL's source and each OCSP answer are part of
//! it) and the policy is fixed for the engine's lifetime (another policy means another
//! engine). Whether a CRL or an OCSP answer is current is never cached: its
//! thisUpdate..nextUpdate window is compared with each call's trusted time, so an answer
//! counts only until its nextUpdate.
//!
//! Everything time-dependent is evaluated per call, and so is everything else the call
//! brings, on both paths, by the same code: the document digest against messageDigest,
//! the signature value over the signed attributes (one public-key verification with the
//! cached key), the digest and signature algorithms and the unsigned `digestAlgorithms`
//! set (not part of the cache key), the claimed signing time at acceptance, validity
//! windows and revocation dates against this call's trusted time, whether a CRL covers
//! that time, the issuer binding, registration and expectations. So a warm verification
//! costs one public-key operation, two hashes and a DER walk, and the cold and warm paths
//! produce the same report by construction (and a test checks it).
//!
//! # SM2 (国密)
//!
//! An SM2 signature (SM3 digest, SM2-with-SM3, GM/T 0010) goes through the same steps and
//! the same cache; only three primitives differ, because OpenSSL 3.0 applies an empty
//! distinguishing ID to SM2 where GM/T 0009 says `1234567812345678`: the signature value
//! is checked by [`crate::pki::gm`], the chain is built by it against the store's SM2
//! anchors ([`TrustStore`] picks the builder by the certificate's signature algorithm),
//! and an SM2 CA's CRLs are checked by it too. The policy names SM3 and SM2 like any
//! other algorithm and key. GM/T 0010's own content-type OIDs are read when the digest
//! is SM3.
//!
//! Caveats. Without a proof of existence the trusted time is the validation time: a
//! certificate that has expired or been revoked by then fails, even if the signature was
//! made while it was valid (ETSI EN 319 102-1 would call that INDETERMINATE /
//! OUT_OF_BOUNDS_NO_POE or REVOKED_NO_POE; DESIGN.md §5 keeps FAILED). Delta CRLs and
//! issuing-distribution-point partitions are not supported: a CRL counts for a
//! certificate when its issuer name matches and the issuing CA's key verifies it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::sign::Verifier;
use openssl::stack::Stack;
use openssl::x509::{CrlStatus, X509NameRef, X509};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::money::Amount;
use crate::pki::certs::{asn1_to_unix, name_to_string, unix_to_rfc3339};
use crate::pki::cms_parse::{
    parse_signed_data, parse_signed_data_gm, SignedData, SignerId, SignerInfo,
};
use crate::pki::document::{GuaranteeDocument, MAX_SIGNATURE_BYTES};
use crate::pki::gm::{self, Sm2Certificate, Sm2PublicKey};
use crate::pki::policy::{
    algorithm_name, key_type, DigestAlgorithm, PolicyRule, PolicyViolation, SignaturePolicy,
};
use crate::pki::report::{
    Check, CheckId, CheckResult, SignatureTimeStamp, SignerDetails, SubIndication,
    VerificationReport,
};
use crate::pki::timestamp::{verify_signature_timestamp, TsaTrust};
use crate::pki::trust::{crl_signed_by, TrustStore};

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
    /// When these bytes are an earlier version that a later one replaced.
    #[serde(default)]
    pub superseded: Option<Supersession>,
}

/// How a registered earlier version was replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supersession {
    /// The version these bytes are.
    pub version: u32,
    /// The version that replaced it (the next one).
    pub by_version: u32,
    /// When the replacing version was signed, RFC 3339.
    pub on: String,
    /// The version in force now.
    pub current_version: u32,
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
    /// The guarantee must have been issued by this time (the bid deadline: a bid bond
    /// is in force when bids close); its validity must not start before its issue.
    #[serde(default)]
    pub issued_by: Option<DateTime<FixedOffset>>,
}

impl Expectations {
    fn is_empty(&self) -> bool {
        *self == Expectations::default()
    }
}

/// Per-call inputs besides the two byte strings and the trust store.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Time the validation is made for (the exchange's "now"); `None` means the system
    /// time. Certificates are judged at it unless [`TimeOptions::proof_of_existence`]
    /// is earlier.
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
    /// Set when a validly signed CRL lists the certificate: the earliest revocation date
    /// and the source of the CRL that gave it.
    revoked_at: Option<(i64, String)>,
    /// Each validly signed CRL covering the certificate.
    crl_windows: Vec<CrlWindow>,
}

/// When one CRL speaks for a certificate, and where it came from (reported).
struct CrlWindow {
    this_update: i64,
    next_update: Option<i64>,
    source: String,
}

impl CrlWindow {
    /// A CRL tells the status at `at` when it was current then, or when it was issued
    /// after it (it would list any earlier revocation).
    fn covers(&self, at: i64) -> bool {
        self.this_update >= at || self.next_update.is_some_and(|n| at < n)
    }
}

/// The exchange is accepting an upload: the signer's claimed signing time must be
/// plausible (DESIGN.md §9, "the exchange is the clock").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acceptance {
    /// When the exchange made the draft being signed: no honest signature over it is
    /// older. The tolerance around the exchange's time is the policy's
    /// `max_signing_time_skew_seconds`.
    pub not_before: DateTime<Utc>,
}

/// Per-call inputs about time, besides [`VerifyOptions::validation_time`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeOptions {
    /// A proven time at which the signature existed: the genTime of the exchange's own
    /// RFC 3161 time-stamp token over it, or the time the exchange recorded it. When
    /// earlier than the validation time, certificates and revocation are judged at it.
    /// Never the signer's own signingTime.
    pub proof_of_existence: Option<DateTime<Utc>>,
    /// Set when the exchange is accepting the signature now.
    pub acceptance: Option<Acceptance>,
}

/// Time-independent facts about the signer, cached per certificates + store version
/// (and the engine's policy).
struct SignerFacts {
    details: SignerDetails,
    fingerprint: [u8; 32],
    not_before: i64,
    not_after: i64,
    public_key: PKey<Public>,
    /// Its type ([`key_type`]: SM2 keys named as such).
    key_type: openssl::pkey::Id,
    /// The same key read as SM2 when it is one: its signatures are checked with GM/T
    /// 0009's default distinguishing ID, which OpenSSL 3.0 does not apply.
    sm2_key: Option<Sm2PublicKey>,
    /// The policy's verdict on the signer's key and any intermediate CA's key.
    keys: Result<String, PolicyViolation>,
    /// The policy's verdict on keyUsage / extendedKeyUsage.
    key_usage: Result<String, PolicyViolation>,
    chain: Result<Vec<ChainCert>, String>,
    revocation: Vec<CertRevocation>,
}

/// `None` when no carried certificate matches the signer identifier.
type CachedSigner = Option<Arc<SignerFacts>>;

/// The verification engine: its signature policy and a bounded, thread-safe cache.
pub struct VerificationEngine {
    policy: SignaturePolicy,
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
            .field("policy", &self.policy.name)
            .field("cached", &self.cached_entries())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl VerificationEngine {
    /// An engine with the default policy and cache bound.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CACHE_CAPACITY)
    }

    /// An engine caching at most `capacity` signer entries, with the default policy.
    pub fn with_capacity(capacity: usize) -> Self {
        VerificationEngine {
            policy: SignaturePolicy::default(),
            cache: RwLock::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// An engine applying `policy`, with the default cache bound.
    pub fn with_policy(policy: SignaturePolicy) -> Self {
        VerificationEngine {
            policy,
            ..Self::new()
        }
    }

    /// The signature policy this engine applies (for the API and `baohan verify --policy`).
    pub fn policy(&self) -> &SignaturePolicy {
        &self.policy
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

    /// Verifies `signature` (detached DER CMS) over `document` against `trust`, with no
    /// proof of existence and outside acceptance: certificates are judged at the
    /// validation time. Never panics on bad input: anything unreadable gives FAILED /
    /// FORMAT_FAILURE.
    pub fn verify(
        &self,
        document: &[u8],
        signature: &[u8],
        trust: &TrustStore,
        options: &VerifyOptions,
    ) -> VerificationReport {
        self.verify_with_time(document, signature, trust, options, &TimeOptions::default())
    }

    /// [`verify`](Self::verify) with a proof of existence and/or acceptance rules.
    /// Verifies a CAdES signature that may carry a signature time-stamp token (CAdES-T).
    /// A token of the exchange's own time-stamping authority (`tsa`) over this signature
    /// value lends its genTime as the proof of existence; any other token lends nothing:
    /// the report says why and the signature is judged at the validation time. (The
    /// token is an unsigned attribute: anyone can add or strip one, so a bad one is no
    /// reason to fail the signature itself.)
    pub fn verify_cades(
        &self,
        document: &[u8],
        signature: &[u8],
        trust: &TrustStore,
        tsa: Option<&TsaTrust>,
        options: &VerifyOptions,
        acceptance: Option<Acceptance>,
    ) -> VerificationReport {
        let stamp = tsa.map(|tsa| verify_signature_timestamp(signature, tsa));
        let (proof_of_existence, note) = match stamp {
            Some(Ok(Some(info))) => (
                Some(info.gen_time),
                Some(SignatureTimeStamp {
                    used: true,
                    gen_time: Some(rfc3339(info.gen_time)),
                    tsa: Some(info.tsa_subject),
                    reason: None,
                }),
            ),
            Some(Ok(None)) | None => (None, None),
            Some(Err(e)) => (
                None,
                Some(SignatureTimeStamp {
                    used: false,
                    gen_time: None,
                    tsa: None,
                    reason: Some(e.to_string()),
                }),
            ),
        };
        let mut report = self.verify_with_time(
            document,
            signature,
            trust,
            options,
            &TimeOptions {
                proof_of_existence,
                acceptance,
            },
        );
        report.signature_time_stamp = note;
        report
    }

    pub fn verify_with_time(
        &self,
        document: &[u8],
        signature: &[u8],
        trust: &TrustStore,
        options: &VerifyOptions,
        time: &TimeOptions,
    ) -> VerificationReport {
        let now = options.validation_time.unwrap_or_else(Utc::now);
        let document_sha256: [u8; 32] = Sha256::digest(document).into();
        let doc_hex = hex::encode(document_sha256);
        let policy_name = Some(self.policy.name.clone());
        let proof_of_existence = time.proof_of_existence.map(rfc3339);

        let (doc, sd) = match parse_inputs(document, signature) {
            Ok(p) => p,
            Err(reason) => {
                let mut report = format_failure_report(reason, now);
                report.document_sha256 = Some(doc_hex);
                report.proof_of_existence = proof_of_existence;
                report.signature_policy = policy_name;
                return report;
            }
        };
        let signer = self.signer_facts(&sd, trust);
        let call = Call {
            document,
            document_sha256: &document_sha256,
            doc: &doc,
            sd: &sd,
            signer: signer.as_deref(),
            now,
            options,
            time,
            policy: &self.policy,
        };
        let mut report = evaluate(&call);
        report.validation_time = rfc3339(now);
        report.document_sha256 = Some(doc_hex);
        report.guarantee_number = Some(doc.guarantee_number.clone());
        report.signing_time = sd.signer.signing_time.map(rfc3339);
        report.proof_of_existence = proof_of_existence;
        report.signature_policy = policy_name;
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
        let facts = compute_signer_facts(sd, trust, &self.policy).map(Arc::new);
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

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
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
    VerificationReport::from_checks(checks, rfc3339(validation_time), None)
}

fn all_ids() -> impl Iterator<Item = CheckId> {
    [
        CheckId::Format,
        CheckId::Integrity,
        CheckId::SignatureValue,
        CheckId::CertificateChain,
        CheckId::KeyUsage,
        CheckId::SignaturePolicy,
        CheckId::SigningTime,
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
        CheckId::SignaturePolicy => "Signature policy",
        CheckId::SigningTime => "Claimed signing time",
        CheckId::CertificateValidity => "Certificate validity at the trusted time",
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
        violated_rules: Vec::new(),
    }
}

/// A check refused by the signature policy: every violated rule named, by id in
/// `violated_rules` and in the explanation.
fn policy_refusal(
    id: CheckId,
    sub_indication: SubIndication,
    policy: &SignaturePolicy,
    violations: &[PolicyViolation],
) -> Check {
    let reasons: Vec<String> = violations
        .iter()
        .map(|v| format!("rule {}: {}", v.rule, v.detail))
        .collect();
    let mut c = check(
        id,
        CheckResult::Indeterminate,
        Some(sub_indication),
        format!(
            "Refused by signature policy {}, {}.",
            policy.name,
            reasons.join("; ")
        ),
    );
    c.violated_rules = violations.iter().map(|v| v.rule).collect();
    c
}

/// The format check: sizes, document schema, CMS structure. Algorithms are the
/// signature policy's business, not the format's.
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
    let sd = match parse_signed_data(signature) {
        Ok(sd) => sd,
        // GM/T 0010's content types, for SM3 with SM2 only.
        Err(e) => match parse_signed_data_gm(signature) {
            Ok(sd) if sd.signer.digest_algorithm == gm::oid::SM3.as_bytes() => sd,
            Ok(_) => {
                return Err("The signature uses GM/T 0010's content types with a digest algorithm other than SM3.".into())
            }
            Err(_) => return Err(format!("The {e}.")),
        },
    };
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

/// The expensive, time-independent part: runs once per certificates + store version.
fn compute_signer_facts(
    sd: &SignedData<'_>,
    trust: &TrustStore,
    policy: &SignaturePolicy,
) -> Option<SignerFacts> {
    let certs: Vec<X509> = sd
        .certificates
        .iter()
        .filter_map(|der| X509::from_der(der).ok())
        .collect();
    let cert = find_signer(&certs, &sd.signer.sid)?;
    let der = cert.to_der().ok()?;
    let fingerprint: [u8; 32] = Sha256::digest(&der).into();
    let public_key = cert.public_key().ok()?;
    let key_kind = key_type(&public_key);
    let sm2_key = (key_kind == openssl::pkey::Id::SM2)
        .then(|| Sm2Certificate::from_der(&der).ok()?.public_key().ok())
        .flatten();
    let not_before = asn1_to_unix(cert.not_before()).ok()?;
    let not_after = asn1_to_unix(cert.not_after()).ok()?;
    let details = certificate_details(cert)?;
    let key_usage = policy.check_signer_usage(&der);

    let chain = match untrusted_stack(&certs).map(|s| trust.build_chain(cert, &s)) {
        Some(Ok(Ok(chain))) if !chain.is_empty() => Ok(chain),
        Some(Ok(Err(reason))) => Err(reason),
        _ => Err("the chain could not be built".to_owned()),
    };
    let keys = policy.check_key(&public_key).and_then(|signer_key| {
        // Intermediate CAs sent with the signature are held to the same key rules; the
        // anchor was checked when it was registered.
        let intermediates = match &chain {
            Ok(c) if c.len() > 2 => &c[1..c.len() - 1],
            _ => &[],
        };
        for ca in intermediates {
            let ca_key = ca.public_key().map_err(|e| PolicyViolation {
                rule: PolicyRule::KeyType,
                detail: format!(
                    "the key of {} cannot be read: {e}",
                    name_to_string(ca.subject_name())
                ),
            })?;
            policy.check_key(&ca_key).map_err(|v| PolicyViolation {
                detail: format!(
                    "certificate authority {}: {}",
                    name_to_string(ca.subject_name()),
                    v.detail
                ),
                ..v
            })?;
        }
        Ok(signer_key)
    });
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
        key_type: key_kind,
        sm2_key,
        keys,
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

/// For each certificate below the anchor, the CRLs its issuer validly signed and the
/// OCSP answer about it.
fn revocation_facts(chain: &[X509], trust: &TrustStore) -> Vec<CertRevocation> {
    chain
        .windows(2)
        .map(|pair| {
            let (cert, issuer) = (&pair[0], &pair[1]);
            let mut facts = CertRevocation {
                subject: name_to_string(cert.subject_name()),
                issuer: name_to_string(issuer.subject_name()),
                revoked_at: None,
                crl_windows: Vec::new(),
            };
            for stored in trust.crls_named(cert.issuer_name()) {
                if !crl_signed_by(&stored.crl, issuer) {
                    continue;
                }
                let source = stored.source.to_string();
                if let CrlStatus::Revoked(entry) = stored.crl.get_by_cert(cert) {
                    let at = asn1_to_unix(entry.revocation_date()).unwrap_or(stored.this_update);
                    if facts.revoked_at.as_ref().is_none_or(|(p, _)| at < *p) {
                        facts.revoked_at = Some((at, source.clone()));
                    }
                }
                facts.crl_windows.push(CrlWindow {
                    this_update: stored.this_update,
                    next_update: stored.next_update,
                    source,
                });
            }
            // An OCSP answer was verified against the store when it was fetched; it
            // speaks for its window like a CRL.
            let answer = cert
                .to_der()
                .ok()
                .and_then(|der| trust.ocsp_answer(&Sha256::digest(der).into()));
            if let Some(answer) = answer {
                let source = answer.source();
                if let Some(at) = answer.revoked_at {
                    if facts.revoked_at.as_ref().is_none_or(|(p, _)| at < *p) {
                        facts.revoked_at = Some((at, source.clone()));
                    }
                }
                facts.crl_windows.push(CrlWindow {
                    this_update: answer.this_update,
                    next_update: answer.next_update,
                    source,
                });
            }
            facts
        })
        .collect()
}

/// One call's inputs, once parsed.
struct Call<'a> {
    document: &'a [u8],
    document_sha256: &'a [u8; 32],
    doc: &'a GuaranteeDocument,
    sd: &'a SignedData<'a>,
    signer: Option<&'a SignerFacts>,
    now: DateTime<Utc>,
    options: &'a VerifyOptions,
    time: &'a TimeOptions,
    policy: &'a SignaturePolicy,
}

/// The time certificates are judged at (ETSI's best-signature-time) and how to name it.
struct TrustedTime {
    at: i64,
    /// Whether a proof of existence earlier than the validation time set it.
    proven: bool,
    /// e.g. "proof of existence 2026-03-01T10:00:00Z".
    name: String,
}

impl TrustedTime {
    fn of(now: DateTime<Utc>, proof: Option<DateTime<Utc>>) -> Self {
        match proof {
            Some(p) if p < now => TrustedTime {
                at: p.timestamp(),
                proven: true,
                name: format!("proof of existence {}", rfc3339(p)),
            },
            Some(p) => TrustedTime {
                at: now.timestamp(),
                proven: false,
                name: format!(
                    "validation time {} (the proof of existence {} is not earlier)",
                    rfc3339(now),
                    rfc3339(p)
                ),
            },
            None => TrustedTime {
                at: now.timestamp(),
                proven: false,
                name: format!("validation time {} (no proof of existence)", rfc3339(now)),
            },
        }
    }
}

/// The per-call part: identical for cached and fresh signer facts.
fn evaluate(call: &Call<'_>) -> VerificationReport {
    use CheckResult::{Failed, Indeterminate, Passed, Skipped};
    use SubIndication as S;
    let Call { signer, policy, .. } = *call;
    let mut checks = Vec::with_capacity(13);
    let info = &call.sd.signer;
    let digest = DigestAlgorithm::from_oid(info.digest_algorithm);
    let digest_name = algorithm_name(info.digest_algorithm);
    let trusted = TrustedTime::of(call.now, call.time.proof_of_existence);
    checks.push(check(
        CheckId::Format,
        Passed,
        None,
        "The document is a baohan/guarantee/v1 document and the signature is a detached DER CMS SignedData.".into(),
    ));

    checks.push(match digest {
        None => check(CheckId::Integrity, Skipped, None, format!("Not run: the digest algorithm {digest_name} is not one this engine computes (see the signature policy).")),
        Some(d) => {
            let computed = match d {
                DigestAlgorithm::Sha256 => call.document_sha256.to_vec(),
                other => openssl::hash::hash(other.message_digest(), call.document).map(|h| h.to_vec()).unwrap_or_default(),
            };
            if info.message_digest == computed.as_slice() {
                check(CheckId::Integrity, Passed, None, format!("The signed message digest equals the {} of the document bytes.", d.name()))
            } else {
                check(CheckId::Integrity, Failed, Some(S::HashFailure), format!("The signed message digest differs from the {} of the document: the document was changed after signing, or the signature belongs to another document.", d.name()))
            }
        }
    });

    let no_signer = "No certificate in the signature matches the signer identifier.";
    checks.push(match (signer, digest) {
        (None, _) => check(CheckId::SignatureValue, Indeterminate, Some(S::NoSigningCertificateFound), format!("{no_signer} The signature value cannot be checked without it.")),
        (Some(_), None) => check(CheckId::SignatureValue, Skipped, None, format!("Not run: the digest algorithm {digest_name} is not one this engine computes (see the signature policy).")),
        (Some(s), Some(d)) => match policy.check_signature_algorithm(info.signature_algorithm, s.key_type, d) {
            Err(_) => check(CheckId::SignatureValue, Skipped, None, format!("Not run: the signature algorithm {} does not match the signer's key (see the signature policy).", algorithm_name(info.signature_algorithm))),
            Ok(()) => match verify_signature_value(s, info, d) {
                Ok(()) => check(CheckId::SignatureValue, Passed, None, "The signature value verifies over the signed attributes with the signer's public key.".into()),
                Err(why) => check(CheckId::SignatureValue, Failed, Some(S::SigCryptoFailure), why),
            },
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
            Ok(why) => check(
                CheckId::KeyUsage,
                Passed,
                None,
                format!("The certificate's {why}."),
            ),
            Err(v) => policy_refusal(
                CheckId::KeyUsage,
                S::ChainConstraintsFailure,
                policy,
                std::slice::from_ref(v),
            ),
        },
    });

    checks.push(signature_policy_check(call, digest));
    checks.push(signing_time_check(call, &trusted));

    checks.push(match signer {
        None => check(
            CheckId::CertificateValidity,
            Skipped,
            None,
            "Not run: no signer certificate.".into(),
        ),
        Some(s) => validity_check(s, &trusted, call.now.timestamp(), info.signing_time),
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
        Some(s) => revocation_check(s, &trusted),
    });

    let doc = call.doc;
    let options = call.options;
    checks.push(match signer {
        None => check(
            CheckId::IssuerBinding,
            Skipped,
            None,
            "Not run: no signer certificate.".into(),
        ),
        Some(s) => issuer_binding_check(s, doc, options.registered_fingerprints.as_deref()),
    });

    let doc_hex = hex::encode(call.document_sha256);
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
                    "The exchange has no record of this document: no guarantee {} was \
                     registered with exactly these bytes.",
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
            checks.push(check(
                CheckId::Registration,
                Failed,
                Some(S::NotRegistered),
                format!(
                    "The exchange's record of guarantee {} is another document; this one is \
                     not the registered one.",
                    doc.guarantee_number
                ),
            ));
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
            checks.push(if let Some(s) = &reg.superseded {
                // Genuine but replaced: the terms in force are another version's, which
                // this document cannot show; it is no forgery, so not FAILED.
                check(
                    CheckId::Status,
                    Indeterminate,
                    Some(S::Superseded),
                    format!(
                        "This is version {} of guarantee {}, superseded by version {} on {}; \
                         the version in force is {} (status {}). Verify that version for \
                         the terms in force.",
                        s.version,
                        doc.guarantee_number,
                        s.by_version,
                        s.on,
                        s.current_version,
                        reg.status
                    ),
                )
            } else if reg.status_active {
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

/// Digest algorithm, the unsigned `digestAlgorithms` set, signature algorithm against
/// the key, and the keys themselves: every violation is named.
fn signature_policy_check(call: &Call<'_>, digest: Option<DigestAlgorithm>) -> Check {
    let Call {
        sd, signer, policy, ..
    } = *call;
    let info = &sd.signer;
    let mut violations = Vec::new();
    if let Err(v) = policy.check_digest(info.digest_algorithm) {
        violations.push(v);
    }
    if let Err(v) = policy.check_digest_set(&sd.digest_algorithms, info.digest_algorithm) {
        violations.push(v);
    }
    let mut key = None;
    if let Some(s) = signer {
        if let Some(d) = digest {
            if let Err(v) =
                policy.check_signature_algorithm(info.signature_algorithm, s.key_type, d)
            {
                violations.push(v);
            }
        }
        match &s.keys {
            Ok(k) => key = Some(k.as_str()),
            Err(v) => violations.push(v.clone()),
        }
    }
    if !violations.is_empty() {
        return policy_refusal(
            CheckId::SignaturePolicy,
            SubIndication::CryptoConstraintsFailure,
            policy,
            &violations,
        );
    }
    let algorithms = format!(
        "digest {} (named in the digestAlgorithms set), signature algorithm {}",
        algorithm_name(info.digest_algorithm),
        algorithm_name(info.signature_algorithm)
    );
    match key {
        Some(k) => check(
            CheckId::SignaturePolicy,
            CheckResult::Passed,
            None,
            format!(
                "Signature policy {} is met: {algorithms}, signer key {k}.",
                policy.name
            ),
        ),
        None => check(
            CheckId::SignaturePolicy,
            CheckResult::Skipped,
            None,
            format!("The algorithms meet signature policy {} ({algorithms}); the keys are not checked without a signer certificate.", policy.name),
        ),
    }
}

/// The signer's claimed signing time: judged only at acceptance, otherwise reported.
fn signing_time_check(call: &Call<'_>, trusted: &TrustedTime) -> Check {
    let claimed = call.sd.signer.signing_time;
    match call.time.acceptance {
        Some(acceptance) => {
            match call
                .policy
                .check_signing_time(claimed, call.now, acceptance.not_before)
            {
                Ok(why) => check(CheckId::SigningTime, CheckResult::Passed, None, why),
                Err(v) => policy_refusal(
                    CheckId::SigningTime,
                    SubIndication::SigConstraintsFailure,
                    call.policy,
                    &[v],
                ),
            }
        }
        None => {
            let why = match claimed {
                Some(t) => format!(
                    "Reported, not trusted: the signer claims it signed at {}. Certificates are judged at the {} instead.",
                    rfc3339(t),
                    trusted.name
                ),
                None => "The signature states no signing time.".to_owned(),
            };
            check(CheckId::SigningTime, CheckResult::Skipped, None, why)
        }
    }
}

fn verify_signature_value(
    s: &SignerFacts,
    info: &SignerInfo<'_>,
    digest: DigestAlgorithm,
) -> Result<(), String> {
    let attrs = info.signed_attrs_to_verify();
    let ok = if let Some(key) = &s.sm2_key {
        gm::sm2_verify_raw(key, &attrs, info.signature).is_ok()
    } else {
        Verifier::new(digest.message_digest(), &s.public_key)
            .and_then(|mut v| v.verify_oneshot(info.signature, &attrs))
            .unwrap_or(false)
    };
    if ok {
        Ok(())
    } else {
        Err("The signature value does not verify with the signer's public key: the signature or its signed attributes were altered.".into())
    }
}

fn validity_check(
    s: &SignerFacts,
    trusted: &TrustedTime,
    now: i64,
    claimed: Option<DateTime<Utc>>,
) -> Check {
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
    let claim = match claimed {
        Some(t) => format!(
            " The signer's claimed signing time {} is not proof and does not change this.",
            rfc3339(t)
        ),
        None => String::new(),
    };
    let at = trusted.at;
    for c in certs {
        if at > c.not_after {
            return check(
                CheckId::CertificateValidity,
                CheckResult::Failed,
                Some(S::Expired),
                format!(
                    "Certificate {} expired on {}, before the {}.{claim}",
                    c.subject,
                    unix_to_rfc3339(c.not_after),
                    trusted.name
                ),
            );
        }
        if at < c.not_before {
            return check(
                CheckId::CertificateValidity,
                CheckResult::Failed,
                Some(S::NotYetValid),
                format!(
                    "Certificate {} is valid only from {}, after the {}.{claim}",
                    c.subject,
                    unix_to_rfc3339(c.not_before),
                    trusted.name
                ),
            );
        }
    }
    let expired_since: Vec<String> = certs
        .iter()
        .filter(|c| now > c.not_after)
        .map(|c| format!("{} expired on {}", c.subject, unix_to_rfc3339(c.not_after)))
        .collect();
    let explanation = if expired_since.is_empty() {
        format!("The certificates were valid at the {}.", trusted.name)
    } else {
        format!(
            "The certificates were valid at the {} (the best-signature-time). Certificate {}, after that time. Past signature validation (ETSI EN 319 102-1) keeps the signature valid: it is proven to have existed while the certificates were valid.",
            trusted.name,
            expired_since.join("; certificate ")
        )
    };
    check(
        CheckId::CertificateValidity,
        CheckResult::Passed,
        None,
        explanation,
    )
}

fn revocation_check(s: &SignerFacts, trusted: &TrustedTime) -> Check {
    use SubIndication as S;
    let at = trusted.at;
    for r in &s.revocation {
        if let Some((revoked, source)) = r.revoked_at.as_ref().filter(|(t, _)| *t <= at) {
            return check(
                CheckId::Revocation,
                CheckResult::Failed,
                Some(S::Revoked),
                format!(
                    "Certificate {} was revoked on {} according to its issuer {}, before the {}. Source: {source}.",
                    r.subject,
                    unix_to_rfc3339(*revoked),
                    r.issuer,
                    trusted.name
                ),
            );
        }
    }
    for r in &s.revocation {
        if !r.crl_windows.iter().any(|w| w.covers(at)) {
            let latest = r.crl_windows.iter().filter_map(|w| w.next_update).max();
            let detail = match latest {
                Some(n) => format!("its latest CRL expired on {}", unix_to_rfc3339(n)),
                None => "no CRL from it is loaded".to_owned(),
            };
            return check(CheckId::Revocation, CheckResult::Indeterminate, Some(S::TryLater), format!("The revocation status of {} at the {} is unknown: {} has no CRL or OCSP answer current then or issued since ({detail}). Try again when a fresh CRL is loaded.", r.subject, trusted.name, r.issuer));
        }
    }
    // Which sources answered: the CRLs covering the trusted time, once each.
    let mut sources: Vec<&str> = Vec::new();
    for w in s.revocation.iter().flat_map(|r| &r.crl_windows) {
        if w.covers(at) && !sources.contains(&w.source.as_str()) {
            sources.push(&w.source);
        }
    }
    let revoked_since: Vec<String> = s
        .revocation
        .iter()
        .filter_map(|r| {
            r.revoked_at.as_ref().map(|(t, source)| {
                format!(
                    "{} was revoked on {} according to its issuer {} ({source})",
                    r.subject,
                    unix_to_rfc3339(*t),
                    r.issuer
                )
            })
        })
        .collect();
    let explanation = if revoked_since.is_empty() {
        format!(
            "No certificate in the chain is revoked according to the CRLs covering the {}.",
            trusted.name
        )
    } else {
        let why = if trusted.proven {
            "Past signature validation (ETSI EN 319 102-1) keeps the signature valid: it is proven to have existed before the revocation."
        } else {
            "A revocation after the validation time does not affect a validation made for that time."
        };
        format!(
            "No certificate was revoked at the {} (the best-signature-time). Certificate {}, after that time. {why}",
            trusted.name,
            revoked_since.join("; certificate ")
        )
    };
    let explanation = if sources.is_empty() {
        explanation
    } else {
        format!("{explanation} Source: {}.", sources.join("; "))
    };
    check(CheckId::Revocation, CheckResult::Passed, None, explanation)
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
    if let Some(t) = e.issued_by {
        match (doc.issued_time(), doc.validity()) {
            (Ok(issued), Ok((from, _))) => {
                if issued > t {
                    mismatches.push(format!(
                        "issued {}, after the bid deadline {}: a bid bond must be issued \
                         before bids close",
                        doc.issued_at,
                        t.to_rfc3339()
                    ));
                }
                if from < issued {
                    mismatches.push(format!(
                        "validity starts {}, before the guarantee was issued {}",
                        doc.valid_from, doc.issued_at
                    ));
                }
            }
            (Err(err), _) | (_, Err(err)) => {
                mismatches.push(format!("the issue time cannot be compared ({err})"))
            }
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

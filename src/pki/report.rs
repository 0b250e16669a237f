//! The verification report, in the ETSI EN 319 102-1 vocabulary (DESIGN.md §5).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::pki::policy::PolicyRule;

/// Overall outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Indication {
    /// Every check passed.
    Passed,
    /// A check proved the signature or document unacceptable.
    Failed,
    /// Acceptability could not be established (e.g. no chain, no current CRL).
    Indeterminate,
}

/// Why the indication is not PASSED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubIndication {
    /// Document or signature cannot be read.
    FormatFailure,
    /// The signed message digest differs from the document's hash.
    HashFailure,
    /// The signature value does not verify over the signed attributes.
    SigCryptoFailure,
    /// No certificate matching the signer identifier.
    NoSigningCertificateFound,
    /// The signer certificate does not chain to a trust anchor.
    NoCertificateChainFound,
    /// The certificate may not be used for signing.
    ChainConstraintsFailure,
    /// An algorithm or key is below what the signature policy accepts.
    CryptoConstraintsFailure,
    /// A signature attribute does not meet the validation constraints (at acceptance,
    /// an implausible claimed signing time).
    SigConstraintsFailure,
    /// A certificate had expired at the trusted time (proof of existence, else the
    /// validation time).
    Expired,
    /// A certificate was not yet valid at the trusted time.
    NotYetValid,
    /// A certificate was revoked before the trusted time.
    Revoked,
    /// Revocation status unknown now (no current CRL); retry later.
    TryLater,
    /// The signer is not the issuer named in the document.
    SignerNotIssuer,
    /// The exchange has no guarantee with this number and hash.
    NotRegistered,
    /// The guarantee is no longer in force.
    NotActive,
    /// A genuine, registered earlier version of a guarantee that a later signed
    /// version (an amendment) has replaced: not a forgery, but not the terms in force.
    Superseded,
    /// The guarantee does not meet what the verifier expects.
    ExpectationMismatch,
}

/// Identifies a check; the order of the variants is the order checks run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    /// Document and signature parse.
    Format,
    /// messageDigest equals SHA-256 of the document.
    Integrity,
    /// Signature value over the signed attributes.
    SignatureValue,
    /// Signer certificate present and chained to a trust anchor.
    CertificateChain,
    /// keyUsage and extendedKeyUsage allow signing.
    KeyUsage,
    /// Algorithms and keys meet the signature policy.
    SignaturePolicy,
    /// The signer's claimed signing time: reported, judged only at acceptance.
    SigningTime,
    /// Certificates valid at the trusted time (proof of existence, else validation time).
    CertificateValidity,
    /// Not revoked before the trusted time, according to CRLs covering it.
    Revocation,
    /// Signer bound to the issuer named in the document.
    IssuerBinding,
    /// Registered at this exchange with the same hash.
    Registration,
    /// Guarantee status is active.
    Status,
    /// Verifier's expectations are met.
    Expectations,
}

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckResult {
    /// The check passed.
    Passed,
    /// The check failed.
    Failed,
    /// The check could not reach a conclusion.
    Indeterminate,
    /// The check was not run (offline mode, or an earlier check made it meaningless).
    Skipped,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Check {
    /// Which check.
    pub id: CheckId,
    /// Short human title.
    pub title: String,
    /// Outcome.
    pub result: CheckResult,
    /// Sub-indication when the result is failed or indeterminate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_indication: Option<SubIndication>,
    /// Plain-English explanation of the outcome.
    pub explanation: String,
    /// Signature-policy rules this check found violated (stable ids such as
    /// `key.rsa_min_bits`); also named in the explanation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violated_rules: Vec<PolicyRule>,
}

/// Who signed, from the signer certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignerDetails {
    /// Subject distinguished name (RFC 4514 style).
    pub subject: String,
    /// Issuer distinguished name.
    pub issuer: String,
    /// Serial number, hex.
    pub serial: String,
    /// SHA-256 of the certificate DER, lowercase hex.
    pub sha256_fingerprint: String,
    /// USCC from organizationIdentifier or serialNumber in the subject.
    pub uscc: Option<String>,
    /// Start of validity, RFC 3339.
    pub not_before: String,
    /// End of validity, RFC 3339.
    pub not_after: String,
}

/// What became of a signature time-stamp token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignatureTimeStamp {
    /// Whether the token's time was used as the proof of existence.
    pub used: bool,
    /// The token's genTime, RFC 3339, when it verified.
    pub gen_time: Option<String>,
    /// The time-stamping authority, when the token verified.
    pub tsa: Option<String>,
    /// Why the token lent no time (not the exchange's, over another signature value,
    /// altered, unreadable).
    pub reason: Option<String>,
}

/// The whole report: serialized as the API's and CLI's JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VerificationReport {
    /// Overall indication.
    pub indication: Indication,
    /// Sub-indication of the deciding check.
    pub sub_indication: Option<SubIndication>,
    /// Guarantee number, when the document parsed.
    pub guarantee_number: Option<String>,
    /// Lowercase hex SHA-256 of the document bytes as received.
    pub document_sha256: Option<String>,
    /// Claimed signing time (signingTime attribute), RFC 3339: the signer's claim,
    /// reported and never used to judge validity or revocation.
    pub signing_time: Option<String>,
    /// Proven time the signature existed at (the exchange's time-stamp), RFC 3339, when
    /// the caller had one; certificates are judged at it instead of the validation time.
    #[serde(default)]
    pub proof_of_existence: Option<String>,
    /// Time the validation was made for, RFC 3339.
    pub validation_time: String,
    /// Name of the signature policy applied.
    #[serde(default)]
    pub signature_policy: Option<String>,
    /// The signature time-stamp token (CAdES-T) the signature carried, and whether it
    /// lent its time: only a valid token of the exchange's own TSA over this signature
    /// value does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_time_stamp: Option<SignatureTimeStamp>,
    /// Signer certificate details, when found.
    pub signer: Option<SignerDetails>,
    /// All checks, in order.
    pub checks: Vec<Check>,
}

impl VerificationReport {
    /// Derives the overall indication from the checks: the first failed check decides
    /// (a proven defect outweighs a missing proof); otherwise the first indeterminate one;
    /// otherwise PASSED.
    pub(crate) fn from_checks(
        checks: Vec<Check>,
        validation_time: String,
        document_sha256: Option<String>,
    ) -> Self {
        let decide = |wanted: CheckResult| {
            checks
                .iter()
                .find(|c| c.result == wanted)
                .map(|c| c.sub_indication)
        };
        let (indication, sub_indication) = if let Some(sub) = decide(CheckResult::Failed) {
            (Indication::Failed, sub)
        } else if let Some(sub) = decide(CheckResult::Indeterminate) {
            (Indication::Indeterminate, sub)
        } else {
            (Indication::Passed, None)
        };
        VerificationReport {
            indication,
            sub_indication,
            guarantee_number: None,
            document_sha256,
            signing_time: None,
            proof_of_existence: None,
            validation_time,
            signature_policy: None,
            signature_time_stamp: None,
            signer: None,
            checks,
        }
    }

    /// `INDICATION / SUB_INDICATION` in the report's own vocabulary, e.g.
    /// `FAILED / HASH_FAILURE`, for messages.
    pub fn summary(&self) -> String {
        let name = |v: serde_json::Result<serde_json::Value>| {
            v.ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        let indication = name(serde_json::to_value(self.indication));
        match self.sub_indication {
            Some(sub) => format!("{indication} / {}", name(serde_json::to_value(sub))),
            None => indication,
        }
    }

    /// The CLI exit code: 0 PASSED, 1 FAILED, 2 INDETERMINATE.
    pub fn exit_code(&self) -> i32 {
        match self.indication {
            Indication::Passed => 0,
            Indication::Failed => 1,
            Indication::Indeterminate => 2,
        }
    }

    /// The check with `id`, if present.
    pub fn check(&self, id: CheckId) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// A plain-text rendering for terminals and logs.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let sub = self
            .sub_indication
            .map(|s| format!(" / {}", screaming(&s)))
            .unwrap_or_default();
        let _ = writeln!(out, "Result: {}{}", screaming(&self.indication), sub);
        if let Some(n) = &self.guarantee_number {
            let _ = writeln!(out, "Guarantee: {n}");
        }
        if let Some(h) = &self.document_sha256 {
            let _ = writeln!(out, "Document SHA-256: {h}");
        }
        if let Some(s) = &self.signer {
            let _ = writeln!(out, "Signer: {}", s.subject);
            let _ = writeln!(out, "  issued by {}, serial {}", s.issuer, s.serial);
            let _ = writeln!(out, "  valid {} .. {}", s.not_before, s.not_after);
            let _ = writeln!(out, "  SHA-256 {}", s.sha256_fingerprint);
        }
        if let Some(t) = &self.signing_time {
            let _ = writeln!(
                out,
                "Claimed signing time: {t} (the signer's claim, not trusted)"
            );
        }
        if let Some(t) = &self.proof_of_existence {
            let _ = writeln!(out, "Proof of existence: {t}");
        }
        match &self.signature_time_stamp {
            Some(SignatureTimeStamp {
                used: true,
                gen_time,
                tsa,
                ..
            }) => {
                let _ = writeln!(
                    out,
                    "Signature time-stamp: {} by {} (the exchange's; its time is the proof)",
                    gen_time.as_deref().unwrap_or("?"),
                    tsa.as_deref().unwrap_or("?")
                );
            }
            Some(SignatureTimeStamp { reason, .. }) => {
                let _ = writeln!(
                    out,
                    "Signature time-stamp: not used ({})",
                    reason.as_deref().unwrap_or("unknown reason")
                );
            }
            None => {}
        }
        let _ = writeln!(out, "Validation time: {}", self.validation_time);
        if let Some(p) = &self.signature_policy {
            let _ = writeln!(out, "Signature policy: {p}");
        }
        for c in &self.checks {
            let mark = match c.result {
                CheckResult::Passed => "ok  ",
                CheckResult::Failed => "FAIL",
                CheckResult::Indeterminate => "??  ",
                CheckResult::Skipped => "skip",
            };
            let _ = writeln!(out, "[{mark}] {}: {}", c.title, c.explanation);
        }
        out
    }
}

/// The serde name of an enum value (e.g. `SIG_CRYPTO_FAILURE`).
fn screaming<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

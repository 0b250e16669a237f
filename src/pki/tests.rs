//! Tests of the verification table (DESIGN.md §5), one per row, plus interop with the
//! stock `openssl cms` tool, the cache, bad input and the CLI. All keys, certificates and
//! CRLs are generated here; nothing private is committed.

use chrono::{Duration, Timelike, Utc};
use openssl::x509::{X509Crl, X509};

use crate::pki::demo::sample_document;
use crate::pki::demo::{
    serial_hex, DemoCa, IssuedCert, IssuerSpec, KeyType, RevokedSerial, UsccField,
};
use crate::pki::policy::{PolicyRule, SignaturePolicy};
use crate::pki::report::{CheckId, CheckResult, Indication, SubIndication, VerificationReport};
use crate::pki::sign::sign_detached;
use crate::pki::trust::{CrlSource, TrustStore, TrustStoreBuilder};
use crate::pki::verify::{
    Acceptance, Expectations, Registration, RegistryCheck, TimeOptions, VerificationEngine,
    VerifyOptions,
};
use crate::pki::{sha256_hex, GuaranteeDocument};

const ISSUER_USCC: &str = "91110000100000000R";

struct Fixture {
    ca: DemoCa,
    issuer: IssuedCert,
    doc: Vec<u8>,
    sig: Vec<u8>,
    trust: TrustStore,
}

fn store(ca: &X509, crls: &[X509Crl]) -> TrustStore {
    let mut b = TrustStoreBuilder::new();
    b.add_certificates(&ca.to_pem().expect("pem")).expect("ca");
    for crl in crls {
        b.add_crls(&crl.to_der().expect("der")).expect("crl");
    }
    b.build().expect("store")
}

fn fixture_with(key_type: KeyType, adjust: impl FnOnce(&mut IssuerSpec)) -> Fixture {
    let ca = DemoCa::new("Baohan Test Root CA", key_type).expect("ca");
    let mut spec = IssuerSpec::new("示例银行股份有限公司", ISSUER_USCC);
    spec.key_type = key_type;
    adjust(&mut spec);
    let issuer = ca.issue(&spec).expect("issuer");
    let doc = sample_document(ISSUER_USCC)
        .to_canonical_bytes()
        .expect("doc");
    let sig = sign_detached(&doc, &issuer.cert, &issuer.key, &[]).expect("sign");
    let trust = store(&ca.cert, &[ca.current_crl(&[], 1).expect("crl")]);
    Fixture {
        ca,
        issuer,
        doc,
        sig,
        trust,
    }
}

fn fixture(key_type: KeyType) -> Fixture {
    fixture_with(key_type, |_| {})
}

fn verify(fx: &Fixture, options: &VerifyOptions) -> VerificationReport {
    VerificationEngine::new().verify(&fx.doc, &fx.sig, &fx.trust, options)
}

fn fingerprint(cert: &X509) -> String {
    sha256_hex(&cert.to_der().expect("der"))
}

/// Asserts the indication, the sub-indication and which check decided it.
pub(super) fn assert_outcome(
    report: &VerificationReport,
    indication: Indication,
    sub: Option<SubIndication>,
    decided_by: CheckId,
) {
    assert_eq!(report.indication, indication, "{}", report.to_text());
    assert_eq!(report.sub_indication, sub, "{}", report.to_text());
    if let Some(sub) = sub {
        let check = report.check(decided_by).expect("check present");
        assert_eq!(check.sub_indication, Some(sub), "{}", report.to_text());
    }
}

/// Asserts that check `id` names `rule`, as a violated rule and in its explanation.
pub(super) fn assert_refused_by(report: &VerificationReport, id: CheckId, rule: PolicyRule) {
    let check = report.check(id).expect("check present");
    assert!(
        check.violated_rules.contains(&rule) && check.explanation.contains(rule.id()),
        "{rule} not named by {id:?}:\n{}",
        report.to_text()
    );
}

fn full_options(fx: &Fixture) -> VerifyOptions {
    VerifyOptions {
        validation_time: None,
        registered_fingerprints: Some(vec![fingerprint(&fx.issuer.cert).to_uppercase()]),
        registry: RegistryCheck::Online(Some(Registration {
            document_sha256: sha256_hex(&fx.doc),
            status_active: true,
            status: "issued".into(),
            superseded: None,
        })),
        expectations: Expectations {
            project_code: Some("JS-2025-0042".into()),
            section_code: Some("JS-2025-0042-01".into()),
            beneficiary_uscc: Some("91320100MA1XXXXX5K".into()),
            applicant_uscc: Some("91320000134567890X".into()),
            min_amount: Some("100000".into()),
            valid_from_by: Some("2025-03-20T09:30:00+08:00".parse().expect("time")),
            valid_through: Some("2025-07-18T00:00:00+08:00".parse().expect("time")),
            issued_by: Some("2025-03-20T09:30:00+08:00".parse().expect("time")),
        },
    }
}

/// The exchange accepting an upload of a draft made ten minutes ago.
fn accepting() -> TimeOptions {
    TimeOptions {
        proof_of_existence: None,
        acceptance: Some(Acceptance {
            not_before: Utc::now() - Duration::minutes(10),
        }),
    }
}

#[test]
fn passes_p256_with_every_check() {
    // Every check runs only at acceptance: elsewhere the claimed signing time is reported
    // and its check skipped.
    let fx = fixture(KeyType::EcP256);
    let report = VerificationEngine::new().verify_with_time(
        &fx.doc,
        &fx.sig,
        &fx.trust,
        &full_options(&fx),
        &accepting(),
    );
    assert_outcome(&report, Indication::Passed, None, CheckId::Format);
    assert!(
        report
            .checks
            .iter()
            .all(|c| c.result == CheckResult::Passed),
        "{}",
        report.to_text()
    );
    let signer = report.signer.as_ref().expect("signer");
    assert_eq!(signer.uscc.as_deref(), Some(ISSUER_USCC));
    assert_eq!(signer.sha256_fingerprint, fingerprint(&fx.issuer.cert));
    assert_eq!(signer.serial, serial_hex(&fx.issuer.cert).expect("serial"));
    assert_eq!(
        report.document_sha256.as_deref(),
        Some(sha256_hex(&fx.doc).as_str())
    );
    assert!(report.signing_time.is_some());
    assert_eq!(
        report.guarantee_number.as_deref(),
        Some("BH20250301ICBC0000174R9W2KK")
    );
    assert_eq!(
        report.signature_policy.as_deref(),
        Some(SignaturePolicy::default().name.as_str())
    );
    assert_eq!(report.exit_code(), 0);

    // Outside acceptance the claim is reported, not judged.
    let report = verify(&fx, &full_options(&fx));
    assert_outcome(&report, Indication::Passed, None, CheckId::Format);
    let claim = report.check(CheckId::SigningTime).expect("check");
    assert_eq!(claim.result, CheckResult::Skipped);
    assert!(
        claim.explanation.contains("not trusted"),
        "{}",
        claim.explanation
    );
}

#[test]
fn passes_rsa2048_offline_and_skips_registry() {
    let fx = fixture(KeyType::Rsa2048);
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(&report, Indication::Passed, None, CheckId::Format);
    for id in [
        CheckId::Registration,
        CheckId::Status,
        CheckId::Expectations,
    ] {
        assert_eq!(
            report.check(id).map(|c| c.result),
            Some(CheckResult::Skipped)
        );
    }
    assert!(report
        .check(CheckId::Registration)
        .expect("check")
        .explanation
        .contains("offline"));
}

#[test]
fn passes_with_uscc_in_serial_number_and_document_signing_eku() {
    // The EKU case is the DESIGN.md §11 pitfall: S/MIME purpose would reject it.
    let fx = fixture_with(KeyType::EcP256, |s| {
        s.uscc_field = UsccField::SerialNumber;
        s.document_signing_eku = true;
    });
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(&report, Indication::Passed, None, CheckId::Format);
    assert_eq!(
        report.signer.and_then(|s| s.uscc).as_deref(),
        Some(ISSUER_USCC)
    );
}

#[test]
fn tampered_document_is_hash_failure() {
    let mut fx = fixture(KeyType::EcP256);
    let text = String::from_utf8(fx.doc.clone())
        .expect("utf8")
        .replace("100000.00", "900000.00");
    fx.doc = text.into_bytes();
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::HashFailure),
        CheckId::Integrity,
    );
    // The signature over the attributes is still intact: only the document changed.
    assert_eq!(
        report.check(CheckId::SignatureValue).map(|c| c.result),
        Some(CheckResult::Passed)
    );
}

/// Offset of the signature value inside the DER.
fn signature_value_offset(sig: &[u8]) -> usize {
    let sd = crate::pki::cms_parse::parse_signed_data(sig).expect("parse");
    let value = sd.signer.signature;
    value.as_ptr() as usize - sig.as_ptr() as usize
}

#[test]
fn altered_signature_value_is_sig_crypto_failure() {
    for key_type in [KeyType::EcP256, KeyType::Rsa2048] {
        let mut fx = fixture(key_type);
        let len = crate::pki::cms_parse::parse_signed_data(&fx.sig)
            .expect("parse")
            .signer
            .signature
            .len();
        let at = signature_value_offset(&fx.sig) + len - 1;
        fx.sig[at] ^= 0x01;
        let report = verify(&fx, &VerifyOptions::default());
        assert_outcome(
            &report,
            Indication::Failed,
            Some(SubIndication::SigCryptoFailure),
            CheckId::SignatureValue,
        );
    }
}

#[test]
fn altered_signed_attribute_is_sig_crypto_failure() {
    let mut fx = fixture(KeyType::EcP256);
    // Change the signingTime's last digit before 'Z' (still a valid time).
    let sd = crate::pki::cms_parse::parse_signed_data(&fx.sig).expect("parse");
    let attrs_at = sd.signer.signed_attrs_raw.as_ptr() as usize - fx.sig.as_ptr() as usize;
    let attrs_len = sd.signer.signed_attrs_raw.len();
    let z = fx.sig[attrs_at..attrs_at + attrs_len]
        .windows(2)
        .position(|w| w[0].is_ascii_digit() && w[1] == b'Z')
        .expect("time in attributes");
    let digit = &mut fx.sig[attrs_at + z];
    *digit = if *digit == b'0' { b'1' } else { b'0' };
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::SigCryptoFailure),
        CheckId::SignatureValue,
    );
}

#[test]
fn unknown_ca_is_no_chain() {
    let mut fx = fixture(KeyType::EcP256);
    let other = DemoCa::new("Some Other CA", KeyType::EcP256).expect("ca");
    fx.trust = store(&other.cert, &[other.current_crl(&[], 1).expect("crl")]);
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::NoCertificateChainFound),
        CheckId::CertificateChain,
    );
    assert_eq!(
        report.check(CheckId::Revocation).map(|c| c.result),
        Some(CheckResult::Skipped)
    );
    assert_eq!(report.exit_code(), 2);
}

#[test]
fn missing_signer_certificate_is_no_signing_certificate() {
    use openssl::cms::{CMSOptions, CmsContentInfo};
    let mut fx = fixture(KeyType::EcP256);
    let flags = CMSOptions::DETACHED | CMSOptions::BINARY | CMSOptions::CMS_NOCERTS;
    fx.sig = CmsContentInfo::sign(
        Some(&fx.issuer.cert),
        Some(&fx.issuer.key),
        None,
        Some(&fx.doc),
        flags,
    )
    .and_then(|c| c.to_der())
    .expect("sign");
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::NoSigningCertificateFound),
        CheckId::SignatureValue,
    );
    assert!(report.signer.is_none());
}

#[test]
fn expired_certificate_is_expired() {
    let fx = fixture_with(KeyType::EcP256, |s| {
        s.not_before = Utc::now() - Duration::days(400);
        s.not_after = Utc::now() - Duration::days(1);
    });
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::Expired),
        CheckId::CertificateValidity,
    );
    // Chain building ignores time (it is judged at the signing time instead).
    assert_eq!(
        report.check(CheckId::CertificateChain).map(|c| c.result),
        Some(CheckResult::Passed)
    );
}

#[test]
fn not_yet_valid_certificate_is_not_yet_valid() {
    let fx = fixture_with(KeyType::EcP256, |s| {
        s.not_before = Utc::now() + Duration::days(1);
        s.not_after = Utc::now() + Duration::days(30);
    });
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::NotYetValid),
        CheckId::CertificateValidity,
    );
}

#[test]
fn revoked_certificate_is_revoked() {
    let mut fx = fixture(KeyType::EcP256);
    let revoked = RevokedSerial {
        serial_hex: serial_hex(&fx.issuer.cert).expect("serial"),
        revoked_at: Utc::now() - Duration::minutes(1),
    };
    fx.trust = store(
        &fx.ca.cert,
        &[fx.ca.current_crl(&[revoked], 2).expect("crl")],
    );
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::Revoked),
        CheckId::Revocation,
    );
}

#[test]
fn no_current_crl_is_try_later_never_failed() {
    let mut fx = fixture(KeyType::EcP256);
    let now = Utc::now();
    let stale = fx
        .ca
        .crl(&[], now - Duration::days(10), now - Duration::days(3), 1)
        .expect("crl");
    fx.trust = store(&fx.ca.cert, &[stale]);
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::TryLater),
        CheckId::Revocation,
    );

    fx.trust = store(&fx.ca.cert, &[]);
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::TryLater),
        CheckId::Revocation,
    );
    assert_eq!(
        fx.trust.crl_status(now).first().map(|s| s.has_current_crl),
        Some(false)
    );
}

#[test]
fn crl_signed_by_another_key_is_ignored() {
    let mut fx = fixture(KeyType::EcP256);
    // Same subject name, different key: its CRL must not count as the CA's.
    let impostor = DemoCa::new("Baohan Test Root CA", KeyType::EcP256).expect("ca");
    fx.trust = store(&fx.ca.cert, &[impostor.current_crl(&[], 1).expect("crl")]);
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::TryLater),
        CheckId::Revocation,
    );
}

#[test]
fn the_revocation_check_names_the_crl_source() {
    let mut fx = fixture(KeyType::EcP256);
    let check = |report: &VerificationReport| {
        report
            .checks
            .iter()
            .find(|c| c.id == CheckId::Revocation)
            .expect("revocation check")
            .explanation
            .clone()
    };
    let explanation = check(&verify(&fx, &VerifyOptions::default()));
    assert!(
        explanation.ends_with("Source: crl (uploaded by the operator)."),
        "{explanation}"
    );

    let revoked = RevokedSerial {
        serial_hex: serial_hex(&fx.issuer.cert).expect("serial"),
        revoked_at: Utc::now() - Duration::minutes(1),
    };
    let crl = fx.ca.current_crl(&[revoked], 2).expect("crl");
    let fetched_at = Utc::now().timestamp();
    let mut b = TrustStoreBuilder::new();
    b.add_certificates(&fx.ca.cert.to_pem().expect("pem"))
        .expect("ca");
    b.add_crls_from(
        &crl.to_der().expect("der"),
        CrlSource::Fetched {
            url: "http://crl.example/ca.crl".into(),
            at: fetched_at,
        },
    )
    .expect("crl");
    let fetched = b.build().expect("store");
    // The same CRL from another source is another store version.
    assert_ne!(
        fetched.version(),
        store(&fx.ca.cert, std::slice::from_ref(&crl)).version()
    );
    fx.trust = fetched;
    let report = verify(&fx, &VerifyOptions::default());
    assert_eq!(report.sub_indication, Some(SubIndication::Revoked));
    let explanation = check(&report);
    assert!(
        explanation.contains(&format!(
            "Source: crl (fetched from http://crl.example/ca.crl at {})",
            crate::pki::certs::unix_to_rfc3339(fetched_at)
        )),
        "{explanation}"
    );
}

#[test]
fn a_crl_signer_is_a_trust_anchor_with_the_crls_issuer_name_and_key() {
    let fx = fixture(KeyType::EcP256);
    let own = fx.ca.current_crl(&[], 1).expect("crl");
    assert!(fx.trust.crl_signer(&own).is_some());
    let impostor = DemoCa::new("Baohan Test Root CA", KeyType::EcP256).expect("ca");
    let forged = impostor.current_crl(&[], 1).expect("crl");
    assert!(fx.trust.crl_signer(&forged).is_none());
    let stranger = DemoCa::new("Another CA", KeyType::EcP256).expect("ca");
    assert!(fx
        .trust
        .crl_signer(&stranger.current_crl(&[], 1).expect("crl"))
        .is_none());
}

#[test]
fn distribution_point_and_ocsp_responder_round_trip() {
    let fx = fixture_with(KeyType::EcP256, |spec| {
        spec.crl_distribution_point = Some("http://crl.example/a-long-path/ca.crl".into());
        spec.ocsp_url = Some("http://ocsp.example:8080/".into());
    });
    let cert = &fx.issuer.cert;
    assert_eq!(
        crate::pki::certs::crl_distribution_urls(cert),
        ["http://crl.example/a-long-path/ca.crl"]
    );
    assert_eq!(
        crate::pki::certs::ocsp_responder_urls(cert),
        ["http://ocsp.example:8080/"]
    );
    assert_eq!(
        verify(&fx, &VerifyOptions::default()).indication,
        Indication::Passed
    );
    // A long URL needs a long-form DER length.
    let long = format!("http://crl.example/{}", "x".repeat(300));
    let fx = fixture_with(KeyType::EcP256, |spec| {
        spec.crl_distribution_point = Some(long.clone());
    });
    assert_eq!(
        crate::pki::certs::crl_distribution_urls(&fx.issuer.cert),
        [long]
    );
    // Neither extension by default.
    assert!(
        crate::pki::certs::crl_distribution_urls(&fixture(KeyType::EcP256).issuer.cert).is_empty()
    );
}

#[test]
fn missing_signing_key_usage_is_chain_constraints_failure() {
    // keyUsage keyEncipherment only: neither digitalSignature nor nonRepudiation.
    let fx = fixture_with(KeyType::EcP256, |s| s.signing_key_usage = false);
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::ChainConstraintsFailure),
        CheckId::KeyUsage,
    );
    assert_refused_by(&report, CheckId::KeyUsage, PolicyRule::KeyUsage);
}

#[test]
fn signer_not_named_issuer_is_signer_not_issuer() {
    // The certificate carries another USCC than the document's issuer.
    let fx = fixture_with(KeyType::EcP256, |s| s.uscc = "91440300708461136T".into());
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::SignerNotIssuer),
        CheckId::IssuerBinding,
    );

    // Right USCC but a certificate not registered to the issuer.
    let fx = fixture(KeyType::EcP256);
    let options = VerifyOptions {
        registered_fingerprints: Some(vec!["00".repeat(32)]),
        ..VerifyOptions::default()
    };
    let report = verify(&fx, &options);
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::SignerNotIssuer),
        CheckId::IssuerBinding,
    );
}

#[test]
fn registry_rows() {
    let fx = fixture(KeyType::EcP256);
    let online = |registration| VerifyOptions {
        registry: RegistryCheck::Online(registration),
        ..VerifyOptions::default()
    };
    let report = verify(&fx, &online(None));
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::NotRegistered),
        CheckId::Registration,
    );

    let other_hash = Registration {
        document_sha256: "ab".repeat(32),
        status_active: true,
        status: "issued".into(),
        superseded: None,
    };
    let report = verify(&fx, &online(Some(other_hash)));
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::NotRegistered),
        CheckId::Registration,
    );

    let released = Registration {
        document_sha256: sha256_hex(&fx.doc),
        status_active: false,
        status: "released".into(),
        superseded: None,
    };
    let report = verify(&fx, &online(Some(released)));
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::NotActive),
        CheckId::Status,
    );
    assert!(report
        .check(CheckId::Status)
        .expect("check")
        .explanation
        .contains("released"));

    // A genuine earlier version: not a forgery, not the terms in force.
    let superseded = Registration {
        document_sha256: sha256_hex(&fx.doc),
        status_active: true,
        status: "issued".into(),
        superseded: Some(crate::pki::Supersession {
            version: 1,
            by_version: 2,
            on: "2025-03-15T10:00:00+08:00".into(),
            current_version: 3,
        }),
    };
    let report = verify(&fx, &online(Some(superseded)));
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::Superseded),
        CheckId::Status,
    );
    let why = &report.check(CheckId::Status).expect("check").explanation;
    assert!(
        why.contains("version 1") && why.contains("superseded by version 2 on 2025-03-15"),
        "{why}"
    );
    assert!(why.contains("in force is 3"), "{why}");
}

/// A bid bond is issued before bids close and is never valid before its own issue: with
/// `issued_by` (the bid deadline) given, a document issued later, or whose validity starts
/// before its stated issue time, is an expectation mismatch naming why.
#[test]
fn a_bond_issued_late_or_valid_before_its_issue_fails_the_opening_expectations() {
    let fx = fixture(KeyType::Rsa2048);
    let mut doc = sample_document(ISSUER_USCC);
    // Issued 2025-03-21, after its validity began on 2025-03-20 (and after the deadline).
    doc.issued_at = "2025-03-21T10:00:00+08:00".into();
    let bytes = doc.to_canonical_bytes().expect("doc");
    let sig = sign_detached(&bytes, &fx.issuer.cert, &fx.issuer.key, &[]).expect("sign");
    let options = VerifyOptions {
        expectations: Expectations {
            issued_by: Some("2025-03-20T09:30:00+08:00".parse().expect("t")),
            ..Expectations::default()
        },
        ..VerifyOptions::default()
    };
    let report = VerificationEngine::new().verify(&bytes, &sig, &fx.trust, &options);
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::ExpectationMismatch),
        CheckId::Expectations,
    );
    let why = &report
        .check(CheckId::Expectations)
        .expect("check")
        .explanation;
    assert!(why.contains("after the bid deadline"), "{why}");
    assert!(why.contains("before the guarantee was issued"), "{why}");

    // The sample, issued before that time and valid from after it, meets it.
    let report = verify(&fx, &options);
    assert_eq!(
        report.check(CheckId::Expectations).expect("check").result,
        CheckResult::Passed,
        "{report:?}"
    );
}

#[test]
fn each_expectation_mismatch_is_named() {
    let fx = fixture(KeyType::Rsa2048);
    let base = full_options(&fx).expectations;
    let cases: Vec<(&str, Expectations)> = vec![
        (
            "project code",
            Expectations {
                project_code: Some("JS-2025-9999".into()),
                ..base.clone()
            },
        ),
        (
            "section code",
            Expectations {
                section_code: Some("JS-2025-0042-02".into()),
                ..base.clone()
            },
        ),
        (
            "beneficiary USCC",
            Expectations {
                beneficiary_uscc: Some("91320100MA1YYYYY5K".into()),
                ..base.clone()
            },
        ),
        (
            "applicant USCC",
            Expectations {
                applicant_uscc: Some("913200001345678911".into()),
                ..base.clone()
            },
        ),
        (
            "amount",
            Expectations {
                min_amount: Some("100000.01".into()),
                ..base.clone()
            },
        ),
        (
            "validity ends",
            Expectations {
                valid_through: Some("2025-07-19T00:00:00+08:00".parse().expect("t")),
                ..base.clone()
            },
        ),
        (
            "validity starts",
            Expectations {
                valid_from_by: Some("2025-03-20T09:00:00+08:00".parse().expect("t")),
                ..base.clone()
            },
        ),
        (
            "after the bid deadline",
            Expectations {
                issued_by: Some("2025-03-10T09:59:59+08:00".parse().expect("t")),
                ..base.clone()
            },
        ),
    ];
    let engine = VerificationEngine::new();
    for (name, expectations) in cases {
        let options = VerifyOptions {
            expectations,
            ..VerifyOptions::default()
        };
        let report = engine.verify(&fx.doc, &fx.sig, &fx.trust, &options);
        assert_outcome(
            &report,
            Indication::Failed,
            Some(SubIndication::ExpectationMismatch),
            CheckId::Expectations,
        );
        let explanation = &report
            .check(CheckId::Expectations)
            .expect("check")
            .explanation;
        assert!(explanation.contains(name), "{name}: {explanation}");
    }
    // Two at once are both named.
    let options = VerifyOptions {
        expectations: Expectations {
            project_code: Some("X".into()),
            min_amount: Some("200000".into()),
            ..Expectations::default()
        },
        ..VerifyOptions::default()
    };
    let report = engine.verify(&fx.doc, &fx.sig, &fx.trust, &options);
    let explanation = &report
        .check(CheckId::Expectations)
        .expect("check")
        .explanation;
    assert!(
        explanation.contains("project code") && explanation.contains("amount"),
        "{explanation}"
    );
}

#[test]
fn cached_and_cold_reports_are_identical() {
    for key_type in [KeyType::EcP256, KeyType::Rsa2048] {
        let fx = fixture(key_type);
        let mut options = full_options(&fx);
        options.validation_time = Some(Utc::now());
        let engine = VerificationEngine::new();
        let cold = engine.verify(&fx.doc, &fx.sig, &fx.trust, &options);
        assert_eq!(engine.cached_entries(), 1);
        let warm = engine.verify(&fx.doc, &fx.sig, &fx.trust, &options);
        assert_eq!(engine.cached_entries(), 1);
        assert_eq!(
            serde_json::to_string(&cold).ok(),
            serde_json::to_string(&warm).ok()
        );
        assert_eq!(cold.indication, Indication::Passed);

        // Failures are identical too: a tampered document on the warm path.
        let mut bad = fx.doc.clone();
        let last = bad.len() - 2;
        bad[last] = b'X';
        let warm_bad = engine.verify(&bad, &fx.sig, &fx.trust, &options);
        let cold_bad = VerificationEngine::new().verify(&bad, &fx.sig, &fx.trust, &options);
        assert_eq!(
            serde_json::to_string(&cold_bad).ok(),
            serde_json::to_string(&warm_bad).ok()
        );
    }
}

#[test]
fn cache_re_evaluates_time_and_keys_on_store_version() {
    let fx = fixture(KeyType::EcP256);
    let engine = VerificationEngine::new();
    let at = |t| VerifyOptions {
        validation_time: Some(t),
        ..VerifyOptions::default()
    };
    let now = Utc::now();
    assert_eq!(
        engine
            .verify(&fx.doc, &fx.sig, &fx.trust, &at(now))
            .indication,
        Indication::Passed
    );
    // Same cached entry, later validation time: the 7-day CRL is no longer current.
    let later = engine.verify(&fx.doc, &fx.sig, &fx.trust, &at(now + Duration::days(8)));
    assert_outcome(
        &later,
        Indication::Indeterminate,
        Some(SubIndication::TryLater),
        CheckId::Revocation,
    );
    assert_eq!(engine.cached_entries(), 1);

    // A reloaded store (now revoking the signer) has a new version: no stale hit.
    let revoked = RevokedSerial {
        serial_hex: serial_hex(&fx.issuer.cert).expect("serial"),
        revoked_at: now,
    };
    let reloaded = store(
        &fx.ca.cert,
        &[fx.ca.current_crl(&[revoked], 2).expect("crl")],
    );
    assert_ne!(reloaded.version(), fx.trust.version());
    let report = engine.verify(&fx.doc, &fx.sig, &reloaded, &at(now));
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::Revoked),
        CheckId::Revocation,
    );
    assert_eq!(engine.cached_entries(), 2);

    // Bounded.
    let small = VerificationEngine::with_capacity(1);
    small.verify(&fx.doc, &fx.sig, &fx.trust, &at(now));
    small.verify(&fx.doc, &fx.sig, &reloaded, &at(now));
    assert_eq!(small.cached_entries(), 1);
}

#[test]
fn store_version_ignores_order() {
    let fx = fixture(KeyType::EcP256);
    let crl = fx.ca.current_crl(&[], 1).expect("crl");
    let other = DemoCa::new("Second CA", KeyType::EcP256).expect("ca");
    let mut a = TrustStoreBuilder::new();
    a.add_certificates(&fx.ca.cert.to_pem().expect("pem"))
        .expect("add");
    a.add_certificates(&other.cert.to_der().expect("der"))
        .expect("add");
    a.add_crls(&crl.to_pem().expect("pem")).expect("add");
    let mut b = TrustStoreBuilder::new();
    b.add_crls(&crl.to_der().expect("der")).expect("add");
    b.add_certificates(&other.cert.to_pem().expect("pem"))
        .expect("add");
    b.add_certificates(&fx.ca.cert.to_pem().expect("pem"))
        .expect("add");
    assert_eq!(
        a.build().expect("a").version(),
        b.build().expect("b").version()
    );
}

#[test]
fn engine_is_shared_across_threads() {
    let fx = fixture(KeyType::EcP256);
    let engine = VerificationEngine::new();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..20 {
                    let r = engine.verify(&fx.doc, &fx.sig, &fx.trust, &VerifyOptions::default());
                    assert_eq!(r.indication, Indication::Passed);
                }
            });
        }
    });
}

fn assert_format_failure(report: &VerificationReport) {
    assert_outcome(
        report,
        Indication::Failed,
        Some(SubIndication::FormatFailure),
        CheckId::Format,
    );
}

#[test]
fn garbage_truncated_empty_and_oversized_are_format_failures() {
    let fx = fixture(KeyType::EcP256);
    let engine = VerificationEngine::new();
    let opts = VerifyOptions::default();
    assert_format_failure(&engine.verify(&fx.doc, b"", &fx.trust, &opts));
    assert_format_failure(&engine.verify(b"", &fx.sig, &fx.trust, &opts));
    assert_format_failure(&engine.verify(&fx.doc, b"\x30\x80garbage", &fx.trust, &opts));
    assert_format_failure(&engine.verify(&fx.doc, &vec![0x30; 70_000], &fx.trust, &opts));
    assert_format_failure(&engine.verify(&vec![b' '; 70_000], &fx.sig, &fx.trust, &opts));
    assert_format_failure(&engine.verify(b"{\"schema\":1}", &fx.sig, &fx.trust, &opts));
    // A PEM signature is not DER.
    let pem = openssl::base64::encode_block(&fx.sig);
    assert_format_failure(&engine.verify(&fx.doc, pem.as_bytes(), &fx.trust, &opts));
    for len in 0..fx.sig.len() {
        assert_format_failure(&engine.verify(&fx.doc, &fx.sig[..len], &fx.trust, &opts));
    }
    for len in 0..fx.doc.len() {
        assert_format_failure(&engine.verify(&fx.doc[..len], &fx.sig, &fx.trust, &opts));
    }
    // Trailing bytes after the ContentInfo are refused too.
    let mut trailing = fx.sig.clone();
    trailing.push(0);
    assert_format_failure(&engine.verify(&fx.doc, &trailing, &fx.trust, &opts));
}

#[test]
fn single_byte_corruptions_never_panic_and_protected_bytes_never_pass() {
    let fx = fixture(KeyType::EcP256);
    let engine = VerificationEngine::new();
    let opts = VerifyOptions::default();
    let sd = crate::pki::cms_parse::parse_signed_data(&fx.sig).expect("parse");
    let offset = |s: &[u8]| s.as_ptr() as usize - fx.sig.as_ptr() as usize;
    // Certificates (signed by the CA), signed attributes and the signature value are
    // protected; framing such as the SignedData version number is not (as in any CMS).
    let mut protected: Vec<std::ops::Range<usize>> = sd
        .certificates
        .iter()
        .map(|c| offset(c)..offset(c) + c.len())
        .collect();
    let attrs = sd.signer.signed_attrs_raw;
    protected.push(offset(attrs)..offset(attrs) + attrs.len());
    let value = sd.signer.signature;
    protected.push(offset(value)..offset(value) + value.len());
    let mut checked = 0;
    for i in 0..fx.sig.len() {
        let mut sig = fx.sig.clone();
        sig[i] ^= 0x55;
        let report = engine.verify(&fx.doc, &sig, &fx.trust, &opts);
        if protected.iter().any(|r| r.contains(&i)) {
            checked += 1;
            assert_ne!(
                report.indication,
                Indication::Passed,
                "byte {i} flipped still passed"
            );
        }
    }
    assert!(checked > fx.sig.len() / 2);
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn arbitrary_bytes_never_panic(doc in proptest::collection::vec(any::<u8>(), 0..512),
                                       sig in proptest::collection::vec(any::<u8>(), 0..512)) {
            let trust = TrustStoreBuilder::new().build().expect("store");
            let report = VerificationEngine::new().verify(&doc, &sig, &trust, &VerifyOptions::default());
            prop_assert_eq!(report.indication, Indication::Failed);
            prop_assert_eq!(report.sub_indication, Some(SubIndication::FormatFailure));
        }
    }
}

// ---- interop with the stock openssl tool ----

fn openssl_available() -> bool {
    std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn openssl_cms_verify(dir: &std::path::Path) -> bool {
    openssl_cms_verify_output(dir, &[]).status.success()
}

/// `openssl cms -verify` of `NO.p7s` over `NO.json` against `ca.pem`, with `extra` options.
fn openssl_cms_verify_output(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    std::process::Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            "NO.p7s",
            "-content",
            "NO.json",
            "-CAfile",
            "ca.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ])
        .args(extra)
        .current_dir(dir)
        .output()
        .expect("run openssl")
}

#[test]
fn stock_openssl_verifies_our_signature() {
    if !openssl_available() {
        eprintln!("openssl CLI not found; interop test not run");
        return;
    }
    for key_type in [KeyType::EcP256, KeyType::Rsa2048] {
        let fx = fixture_with(key_type, |s| s.document_signing_eku = true);
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("NO.json"), &fx.doc).expect("write");
        std::fs::write(dir.path().join("NO.p7s"), &fx.sig).expect("write");
        std::fs::write(dir.path().join("ca.pem"), fx.ca.cert.to_pem().expect("pem"))
            .expect("write");
        assert!(
            openssl_cms_verify(dir.path()),
            "openssl cms -verify refused our {key_type:?} signature"
        );

        let mut changed = fx.doc.clone();
        changed[10] ^= 0x01;
        std::fs::write(dir.path().join("NO.json"), &changed).expect("write");
        assert!(
            !openssl_cms_verify(dir.path()),
            "openssl accepted a changed document"
        );
    }
}

#[test]
fn our_engine_passes_a_stock_openssl_signature() {
    if !openssl_available() {
        eprintln!("openssl CLI not found; interop test not run");
        return;
    }
    for key_type in [KeyType::EcP256, KeyType::Rsa2048] {
        let fx = fixture(key_type);
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |name: &str| dir.path().join(name);
        std::fs::write(p("NO.json"), &fx.doc).expect("write");
        std::fs::write(p("issuer.pem"), fx.issuer.cert.to_pem().expect("pem")).expect("write");
        std::fs::write(
            p("issuer.key"),
            fx.issuer.key.private_key_to_pem_pkcs8().expect("pem"),
        )
        .expect("write");
        let status = std::process::Command::new("openssl")
            .args([
                "cms",
                "-sign",
                "-binary",
                "-outform",
                "DER",
                "-md",
                "sha256",
                "-cades",
                "-in",
                "NO.json",
                "-signer",
                "issuer.pem",
                "-inkey",
                "issuer.key",
                "-out",
                "NO.p7s",
            ])
            .current_dir(dir.path())
            .status()
            .expect("run openssl");
        assert!(status.success());
        let sig = std::fs::read(p("NO.p7s")).expect("read");
        let report =
            VerificationEngine::new().verify(&fx.doc, &sig, &fx.trust, &VerifyOptions::default());
        assert_outcome(&report, Indication::Passed, None, CheckId::Format);
        assert!(report
            .check(CheckId::CertificateChain)
            .expect("check")
            .explanation
            .contains("signingCertificateV2 attribute."));
    }
}

#[test]
fn signature_carries_cades_attributes_and_chain() {
    let fx = fixture(KeyType::EcP256);
    let sig = sign_detached(
        &fx.doc,
        &fx.issuer.cert,
        &fx.issuer.key,
        std::slice::from_ref(&fx.ca.cert),
    )
    .expect("sign");
    let sd = crate::pki::cms_parse::parse_signed_data(&sig).expect("parse");
    assert_eq!(sd.certificates.len(), 2);
    assert!(sd.signer.signing_time.is_some());
    assert_eq!(
        sd.signer.signing_certificate_sha256.map(hex::encode),
        Some(fingerprint(&fx.issuer.cert))
    );
    assert!(sign_detached(&vec![b'a'; 70_000], &fx.issuer.cert, &fx.issuer.key, &[]).is_err());
}

#[test]
fn intermediate_ca_chain_and_its_crls() {
    // Root -> intermediate (sent in the signature) -> issuer.
    let root = DemoCa::new("Root", KeyType::EcP256).expect("root");
    let inter = root
        .issue_ca("Baohan Issuing CA", KeyType::EcP256)
        .expect("intermediate");
    let issuer = inter
        .issue(&IssuerSpec::new("示例银行股份有限公司", ISSUER_USCC))
        .expect("issuer");
    let doc = sample_document(ISSUER_USCC)
        .to_canonical_bytes()
        .expect("doc");
    let sig = sign_detached(
        &doc,
        &issuer.cert,
        &issuer.key,
        std::slice::from_ref(&inter.cert),
    )
    .expect("sign");
    let engine = VerificationEngine::new();
    let opts = VerifyOptions::default();

    let both = store(
        &root.cert,
        &[
            root.current_crl(&[], 1).expect("crl"),
            inter.current_crl(&[], 1).expect("crl"),
        ],
    );
    assert_eq!(
        engine.verify(&doc, &sig, &both, &opts).indication,
        Indication::Passed
    );

    // Without the intermediate's CRL the issuer's status is unknown.
    let root_only = store(&root.cert, &[root.current_crl(&[], 1).expect("crl")]);
    let report = engine.verify(&doc, &sig, &root_only, &opts);
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::TryLater),
        CheckId::Revocation,
    );

    // The root revoking the intermediate revokes the signature.
    let gone = RevokedSerial {
        serial_hex: serial_hex(&inter.cert).expect("serial"),
        revoked_at: Utc::now(),
    };
    let revoked = store(
        &root.cert,
        &[
            root.current_crl(&[gone], 2).expect("crl"),
            inter.current_crl(&[], 1).expect("crl"),
        ],
    );
    let report = engine.verify(&doc, &sig, &revoked, &opts);
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::Revoked),
        CheckId::Revocation,
    );
}

#[test]
fn document_round_trips_through_sign_and_parse() {
    let fx = fixture(KeyType::EcP256);
    let parsed = GuaranteeDocument::parse(&fx.doc).expect("parse");
    assert_eq!(parsed.to_canonical_bytes().expect("bytes"), fx.doc);
}

// ---- CLI ----

#[test]
fn cli_demo_pki_and_offline_verify() {
    use crate::pki::cli::{CaArgs, IssuerArgs, RevokeArgs};
    use crate::pki::{run_pki_cli, run_verify_cli, PkiCommand, VerifyArgs};
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_dir = dir.path().join("ca");
    let issuer_dir = dir.path().join("issuer");
    let mut out = Vec::new();
    assert_eq!(
        run_pki_cli(
            PkiCommand::Ca(CaArgs {
                dir: ca_dir.clone(),
                name: "Demo CA".into(),
                key_type: crate::pki::KeyAlgorithm::OpenSsl(KeyType::EcP256)
            }),
            &mut out
        ),
        0
    );
    let issuer = IssuerArgs {
        ca_dir: ca_dir.clone(),
        out_dir: issuer_dir.clone(),
        name: "示例银行股份有限公司".into(),
        uscc: ISSUER_USCC.into(),
        key_type: Some(crate::pki::KeyAlgorithm::OpenSsl(KeyType::Rsa2048)),
        days: 30,
    };
    assert_eq!(run_pki_cli(PkiCommand::Issuer(issuer), &mut out), 0);
    let cert =
        X509::from_pem(&std::fs::read(issuer_dir.join("issuer.pem")).expect("read")).expect("cert");
    let key = openssl::pkey::PKey::private_key_from_pem(
        &std::fs::read(issuer_dir.join("issuer.key.pem")).expect("read"),
    )
    .expect("key");
    let doc = sample_document(ISSUER_USCC)
        .to_canonical_bytes()
        .expect("doc");
    std::fs::write(dir.path().join("NO.json"), &doc).expect("write");
    std::fs::write(
        dir.path().join("NO.p7s"),
        sign_detached(&doc, &cert, &key, &[]).expect("sign"),
    )
    .expect("write");

    let args = VerifyArgs {
        document: dir.path().join("NO.json"),
        signature: dir.path().join("NO.p7s"),
        ca: vec![ca_dir.clone()],
        project: Some("JS-2025-0042".into()),
        min_amount: Some("50000".into()),
        ..VerifyArgs::default()
    };
    let mut text = Vec::new();
    assert_eq!(
        run_verify_cli(args.clone(), &mut text),
        0,
        "{}",
        String::from_utf8_lossy(&text)
    );
    assert!(String::from_utf8_lossy(&text).starts_with("Result: PASSED"));

    let mut json = Vec::new();
    let failing = VerifyArgs {
        min_amount: Some("200000".into()),
        json: true,
        ..args.clone()
    };
    assert_eq!(run_verify_cli(failing, &mut json), 1);
    let value: serde_json::Value = serde_json::from_slice(&json).expect("json");
    assert_eq!(value["sub_indication"], "EXPECTATION_MISMATCH");

    let missing = VerifyArgs {
        signature: dir.path().join("nope.p7s"),
        ..args.clone()
    };
    let mut text = Vec::new();
    // A missing file is an unusable argument, not a verdict on a guarantee.
    assert_eq!(run_verify_cli(missing, &mut text), crate::pki::EXIT_USAGE);
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("--signature") && text.contains("nope.p7s"),
        "{text}"
    );
    assert!(!text.contains("FAILED"), "{text}");

    std::fs::write(dir.path().join("big.json"), vec![b' '; 70_000]).expect("write");
    let big = VerifyArgs {
        document: dir.path().join("big.json"),
        ..args.clone()
    };
    assert_eq!(run_verify_cli(big, &mut Vec::new()), 1);

    let bad_arg = VerifyArgs {
        min_amount: Some("lots".into()),
        ..args.clone()
    };
    assert_eq!(
        run_verify_cli(bad_arg, &mut Vec::new()),
        crate::pki::cli::EXIT_USAGE
    );

    let revoke = RevokeArgs {
        ca_dir: ca_dir.clone(),
        serial: serial_hex(&cert).expect("serial"),
        days: 7,
    };
    assert_eq!(run_pki_cli(PkiCommand::Revoke(revoke), &mut out), 0);
    let mut text = Vec::new();
    assert_eq!(run_verify_cli(args.clone(), &mut text), 1);
    assert!(
        String::from_utf8_lossy(&text).contains("REVOKED"),
        "{}",
        String::from_utf8_lossy(&text)
    );

    // Without any CRL: INDETERMINATE, exit 2.
    std::fs::remove_file(ca_dir.join("crl.pem")).expect("rm");
    assert_eq!(run_verify_cli(args, &mut Vec::new()), 2);
}

// ---- crafting signatures as a hostile signer would ----

/// A DER element, decoded as deep as its constructed tags go: enough to edit a CMS
/// SignedData and encode it again byte for byte (single-byte tags only).
#[derive(Debug, Clone, PartialEq)]
struct Der {
    tag: u8,
    /// Content octets of a primitive element.
    content: Vec<u8>,
    /// Children of a constructed element.
    children: Vec<Der>,
}

impl Der {
    fn primitive(tag: u8, content: &[u8]) -> Der {
        Der {
            tag,
            content: content.to_vec(),
            children: Vec::new(),
        }
    }

    fn constructed(tag: u8, children: Vec<Der>) -> Der {
        Der {
            tag,
            content: Vec::new(),
            children,
        }
    }

    /// AlgorithmIdentifier with no parameters.
    fn algorithm(oid: &[u8]) -> Der {
        Der::constructed(0x30, vec![Der::primitive(0x06, oid)])
    }

    fn parse_all(mut bytes: &[u8]) -> Vec<Der> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let tag = bytes[0];
            assert_ne!(tag & 0x1f, 0x1f, "multi-byte tags are not needed here");
            let (len, header) = match bytes[1] {
                short if short < 0x80 => (usize::from(short), 2),
                long => {
                    let n = usize::from(long & 0x7f);
                    let len = bytes[2..2 + n]
                        .iter()
                        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                    (len, 2 + n)
                }
            };
            let content = &bytes[header..header + len];
            out.push(if tag & 0x20 != 0 {
                Der::constructed(tag, Der::parse_all(content))
            } else {
                Der::primitive(tag, content)
            });
            bytes = &bytes[header + len..];
        }
        out
    }

    fn parse(bytes: &[u8]) -> Der {
        let mut all = Der::parse_all(bytes);
        assert_eq!(all.len(), 1);
        all.remove(0)
    }

    fn encode(&self) -> Vec<u8> {
        let content = if self.tag & 0x20 != 0 {
            self.children.iter().flat_map(Der::encode).collect()
        } else {
            self.content.clone()
        };
        let mut out = vec![self.tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            let len = content.len().to_be_bytes();
            let significant: Vec<u8> = len.iter().copied().skip_while(|b| *b == 0).collect();
            out.push(0x80 | significant.len() as u8);
            out.extend(significant);
        }
        out.extend(content);
        out
    }

    /// SignedData's fields: version, digestAlgorithms, encapContentInfo, [0]
    /// certificates, signerInfos.
    fn signed_data(&mut self) -> &mut Vec<Der> {
        &mut self.children[1].children[0].children
    }

    /// SignerInfo's fields: version, sid, digestAlgorithm, [0] signedAttrs,
    /// signatureAlgorithm, signature.
    fn signer_info(&mut self) -> &mut Vec<Der> {
        let signer_infos = self.signed_data().last_mut().expect("signerInfos");
        &mut signer_infos.children[0].children
    }

    /// The value of the signed attribute `oid`.
    fn signed_attribute(&mut self, oid: &[u8]) -> &mut Der {
        let attrs = &mut self.signer_info()[3];
        assert_eq!(attrs.tag, 0xA0);
        let attr = attrs
            .children
            .iter_mut()
            .find(|a| a.children[0].content == oid)
            .expect("attribute present");
        &mut attr.children[1].children[0]
    }
}

/// Edits a signature and signs its signed attributes again with `key` and `digest`, as a
/// signer controlling its own software can: the result is a well-formed signature whose
/// attributes say whatever the signer chose.
fn forge(
    signature: &[u8],
    key: &openssl::pkey::PKeyRef<openssl::pkey::Private>,
    digest: openssl::hash::MessageDigest,
    edit: impl FnOnce(&mut Der),
) -> Vec<u8> {
    let mut cms = Der::parse(signature);
    assert_eq!(cms.encode(), signature, "DER re-encodes byte for byte");
    edit(&mut cms);
    let info = cms.signer_info();
    // DER orders a SET OF by encoding; signers sign the sorted set.
    info[3].children.sort_by_key(Der::encode);
    let mut to_sign = info[3].clone();
    to_sign.tag = 0x31;
    let mut signer = openssl::sign::Signer::new(digest, key).expect("signer");
    let value = signer.sign_oneshot_to_vec(&to_sign.encode()).expect("sign");
    info[5] = Der::primitive(0x04, &value);
    cms.encode()
}

fn utc_time(t: chrono::DateTime<Utc>) -> Der {
    Der::primitive(0x17, t.format("%y%m%d%H%M%SZ").to_string().as_bytes())
}

/// The fixture's signature with the signingTime the signer chose.
fn with_signing_time(fx: &Fixture, t: chrono::DateTime<Utc>) -> Vec<u8> {
    use crate::pki::cms_parse::oid;
    forge(
        &fx.sig,
        &fx.issuer.key,
        openssl::hash::MessageDigest::sha256(),
        |cms| *cms.signed_attribute(oid::SIGNING_TIME) = utc_time(t),
    )
}

fn verify_sig(fx: &Fixture, sig: &[u8], time: &TimeOptions) -> VerificationReport {
    VerificationEngine::new().verify_with_time(
        &fx.doc,
        sig,
        &fx.trust,
        &VerifyOptions::default(),
        time,
    )
}

fn assert_explains(report: &VerificationReport, id: CheckId, words: &[&str]) {
    let explanation = &report.check(id).expect("check present").explanation;
    for w in words {
        assert!(explanation.contains(w), "{w:?} missing from {explanation}");
    }
}

// ---- the exchange is the clock ----

#[test]
fn expired_certificate_with_backdated_signing_time_is_expired() {
    let now = Utc::now();
    let fx = fixture_with(KeyType::EcP256, |s| {
        s.not_before = now - Duration::days(400);
        s.not_after = now - Duration::days(1);
    });
    // The issuer claims it signed two days ago, while its certificate was valid.
    let sig = with_signing_time(&fx, now - Duration::days(2));
    let claimed = crate::pki::cms_parse::parse_signed_data(&sig)
        .expect("parse")
        .signer
        .signing_time
        .expect("signingTime");
    assert!(claimed < now - Duration::days(1));
    let report = verify_sig(&fx, &sig, &TimeOptions::default());
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::Expired),
        CheckId::CertificateValidity,
    );
    assert_explains(
        &report,
        CheckId::CertificateValidity,
        &["no proof of existence", "claimed signing time", "not proof"],
    );
    // The forged signature is otherwise perfect, and the claim is reported.
    assert_eq!(
        report.check(CheckId::SignatureValue).map(|c| c.result),
        Some(CheckResult::Passed)
    );
    assert_eq!(
        report.signing_time.as_deref(),
        Some(
            claimed
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .as_str()
        )
    );

    // Stock OpenSSL agrees: it judges the certificate now, not at the claimed time.
    if !openssl_available() {
        eprintln!("openssl CLI not found; interop part not run");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("NO.json"), &fx.doc).expect("write");
    std::fs::write(dir.path().join("NO.p7s"), &sig).expect("write");
    std::fs::write(dir.path().join("ca.pem"), fx.ca.cert.to_pem().expect("pem")).expect("write");
    let out = openssl_cms_verify_output(dir.path(), &[]);
    assert!(
        !out.status.success(),
        "openssl accepted an expired certificate"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("expired"), "{stderr}");

    // And the signature verifies for OpenSSL at a time the certificate was valid: the
    // only thing wrong is the time.
    let at = (now - Duration::days(2)).timestamp().to_string();
    let out = openssl_cms_verify_output(dir.path(), &["-attime", &at]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn not_yet_valid_certificate_with_future_signing_time_is_not_yet_valid() {
    let now = Utc::now();
    let fx = fixture_with(KeyType::EcP256, |s| {
        s.not_before = now + Duration::days(1);
        s.not_after = now + Duration::days(30);
    });
    let sig = with_signing_time(&fx, now + Duration::days(2));
    let report = verify_sig(&fx, &sig, &TimeOptions::default());
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::NotYetValid),
        CheckId::CertificateValidity,
    );
}

#[test]
fn expired_after_the_proof_of_existence_passes_and_says_why() {
    let now = Utc::now();
    let fx = fixture_with(KeyType::EcP256, |s| {
        s.not_before = now - Duration::days(400);
        s.not_after = now - Duration::days(1);
    });
    let sig = with_signing_time(&fx, now - Duration::days(3));
    let proven = TimeOptions {
        proof_of_existence: Some(now - Duration::days(2)),
        acceptance: None,
    };
    let report = verify_sig(&fx, &sig, &proven);
    assert_outcome(&report, Indication::Passed, None, CheckId::Format);
    assert_explains(
        &report,
        CheckId::CertificateValidity,
        &[
            "proof of existence",
            "expired on",
            "Past signature validation",
        ],
    );
    assert!(report.proof_of_existence.is_some());

    // A proof of existence after the expiry does not help.
    let late = TimeOptions {
        proof_of_existence: Some(now - Duration::hours(1)),
        acceptance: None,
    };
    assert_outcome(
        &verify_sig(&fx, &sig, &late),
        Indication::Failed,
        Some(SubIndication::Expired),
        CheckId::CertificateValidity,
    );
}

#[test]
fn revocation_is_judged_at_the_proof_of_existence() {
    let now = Utc::now();
    let mut fx = fixture(KeyType::EcP256);
    let revoke_at = |at| {
        let revoked = RevokedSerial {
            serial_hex: serial_hex(&fx.issuer.cert).expect("serial"),
            revoked_at: at,
        };
        store(
            &fx.ca.cert,
            &[fx.ca.current_crl(&[revoked], 2).expect("crl")],
        )
    };
    let proof = TimeOptions {
        proof_of_existence: Some(now - Duration::hours(3)),
        acceptance: None,
    };

    // Revoked two hours ago; the signature is proven three hours old.
    fx.trust = revoke_at(now - Duration::hours(2));
    let report = verify_sig(&fx, &fx.sig, &proof);
    assert_outcome(&report, Indication::Passed, None, CheckId::Format);
    assert_explains(
        &report,
        CheckId::Revocation,
        &[
            "was revoked on",
            "Past signature validation",
            "proof of existence",
        ],
    );
    // Without the proof, the same signature is revoked.
    assert_outcome(
        &verify_sig(&fx, &fx.sig, &TimeOptions::default()),
        Indication::Failed,
        Some(SubIndication::Revoked),
        CheckId::Revocation,
    );

    // Revoked four hours ago: before the proof of existence.
    fx.trust = revoke_at(now - Duration::hours(4));
    let report = verify_sig(&fx, &fx.sig, &proof);
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::Revoked),
        CheckId::Revocation,
    );
    assert_explains(
        &report,
        CheckId::Revocation,
        &["before the proof of existence"],
    );
}

#[test]
fn stale_crl_issued_after_the_proof_of_existence_still_answers_for_it() {
    let now = Utc::now();
    let mut fx = fixture(KeyType::EcP256);
    let crl = fx
        .ca
        .crl(&[], now - Duration::hours(20), now - Duration::hours(2), 1)
        .expect("crl");
    fx.trust = store(&fx.ca.cert, &[crl]);
    // Issued after the proof: it would list any revocation before it.
    let proven = TimeOptions {
        proof_of_existence: Some(now - Duration::hours(22)),
        acceptance: None,
    };
    assert_outcome(
        &verify_sig(&fx, &fx.sig, &proven),
        Indication::Passed,
        None,
        CheckId::Format,
    );
    // Without a proof it is stale.
    assert_outcome(
        &verify_sig(&fx, &fx.sig, &TimeOptions::default()),
        Indication::Indeterminate,
        Some(SubIndication::TryLater),
        CheckId::Revocation,
    );
}

#[test]
fn acceptance_refuses_a_signing_time_an_hour_off() {
    let fx = fixture(KeyType::EcP256);
    let now = Utc::now();
    let draft_made = TimeOptions {
        proof_of_existence: None,
        acceptance: Some(Acceptance {
            not_before: now - Duration::hours(2),
        }),
    };
    for claimed in [now - Duration::hours(1), now + Duration::hours(1)] {
        let report = verify_sig(&fx, &with_signing_time(&fx, claimed), &draft_made);
        assert_outcome(
            &report,
            Indication::Indeterminate,
            Some(SubIndication::SigConstraintsFailure),
            CheckId::SigningTime,
        );
        assert_refused_by(&report, CheckId::SigningTime, PolicyRule::SigningTimeSkew);
    }
    // A fresh claim is accepted.
    let report = verify_sig(&fx, &with_signing_time(&fx, now), &draft_made);
    assert_outcome(&report, Indication::Passed, None, CheckId::Format);
    assert_eq!(
        report.check(CheckId::SigningTime).map(|c| c.result),
        Some(CheckResult::Passed)
    );
}

#[test]
fn acceptance_refuses_a_signing_time_before_the_draft() {
    let fx = fixture(KeyType::EcP256);
    let now = Utc::now();
    let draft_made = TimeOptions {
        proof_of_existence: None,
        acceptance: Some(Acceptance {
            not_before: now - Duration::minutes(1),
        }),
    };
    // Within the five-minute skew, but older than the draft it signs.
    let report = verify_sig(
        &fx,
        &with_signing_time(&fx, now - Duration::minutes(3)),
        &draft_made,
    );
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::SigConstraintsFailure),
        CheckId::SigningTime,
    );
    assert_refused_by(
        &report,
        CheckId::SigningTime,
        PolicyRule::SigningTimeBeforeDraft,
    );
    // The draft's sub-second part does not refuse a signature made in the same second.
    let same_second = TimeOptions {
        proof_of_existence: None,
        acceptance: Some(Acceptance {
            not_before: now.with_nanosecond(999_000_000).unwrap_or(now),
        }),
    };
    let report = verify_sig(&fx, &with_signing_time(&fx, now), &same_second);
    assert_eq!(
        report.check(CheckId::SigningTime).map(|c| c.result),
        Some(CheckResult::Passed),
        "{}",
        report.to_text()
    );
}

#[test]
fn a_wider_skew_is_configurable() {
    let fx = fixture(KeyType::EcP256);
    let now = Utc::now();
    let policy = SignaturePolicy {
        max_signing_time_skew_seconds: 2 * 3600,
        ..SignaturePolicy::default()
    };
    let time = TimeOptions {
        proof_of_existence: None,
        acceptance: Some(Acceptance {
            not_before: now - Duration::hours(3),
        }),
    };
    let report = VerificationEngine::with_policy(policy).verify_with_time(
        &fx.doc,
        &with_signing_time(&fx, now - Duration::hours(1)),
        &fx.trust,
        &VerifyOptions::default(),
        &time,
    );
    assert_outcome(&report, Indication::Passed, None, CheckId::Format);
}

#[test]
fn cached_and_cold_reports_are_identical_with_time_and_refusals() {
    let now = Utc::now();
    let fx = fixture_with(KeyType::EcP256, |s| {
        s.not_before = now - Duration::days(400);
        s.not_after = now - Duration::days(1);
    });
    let options = VerifyOptions {
        validation_time: Some(now),
        ..VerifyOptions::default()
    };
    let engine = VerificationEngine::new();
    for poe in [None, Some(now - Duration::days(2))] {
        let time = TimeOptions {
            proof_of_existence: poe,
            acceptance: Some(Acceptance {
                not_before: now - Duration::hours(2),
            }),
        };
        let sig = with_signing_time(&fx, now - Duration::hours(1));
        let warm = engine.verify_with_time(&fx.doc, &sig, &fx.trust, &options, &time);
        let cold =
            VerificationEngine::new().verify_with_time(&fx.doc, &sig, &fx.trust, &options, &time);
        assert_eq!(warm, cold);
        assert_ne!(warm.indication, Indication::Passed);
    }
    assert_eq!(engine.cached_entries(), 1);
}

// ---- signature policy ----

/// A certificate made here with any key and extensions (the demo CA only makes
/// well-formed issuers).
struct CustomCert {
    key: openssl::pkey::PKey<openssl::pkey::Private>,
    key_usage: Option<openssl::x509::X509Extension>,
    extended_key_usage: Option<openssl::x509::X509Extension>,
    ca: bool,
}

fn signing_key_usage() -> Option<openssl::x509::X509Extension> {
    Some(
        openssl::x509::extension::KeyUsage::new()
            .critical()
            .digital_signature()
            .non_repudiation()
            .build()
            .expect("ku"),
    )
}

fn rsa_key(bits: u32) -> openssl::pkey::PKey<openssl::pkey::Private> {
    openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(bits).expect("rsa")).expect("key")
}

fn ec_key(curve: openssl::nid::Nid) -> openssl::pkey::PKey<openssl::pkey::Private> {
    let group = openssl::ec::EcGroup::from_curve_name(curve).expect("curve");
    openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("ec"))
        .expect("key")
}

fn eku(oids: &[&str]) -> Option<openssl::x509::X509Extension> {
    let mut b = openssl::x509::extension::ExtendedKeyUsage::new();
    for o in oids {
        b.other(o);
    }
    Some(b.build().expect("eku"))
}

/// Issues `spec` from `ca` (self-signed when `ca` is `None`), named like an issuer.
fn issue_custom(ca: Option<&DemoCa>, spec: CustomCert) -> X509 {
    use openssl::x509::extension::{
        AuthorityKeyIdentifier, BasicConstraints, SubjectKeyIdentifier,
    };
    let mut name = openssl::x509::X509NameBuilder::new().expect("name");
    name.append_entry_by_text("C", "CN").expect("c");
    name.append_entry_by_text("O", "示例银行股份有限公司")
        .expect("o");
    name.append_entry_by_text("organizationIdentifier", &format!("NTRCN-{ISSUER_USCC}"))
        .expect("oi");
    name.append_entry_by_text("CN", "Custom test certificate")
        .expect("cn");
    let name = name.build();
    let mut b = openssl::x509::X509Builder::new().expect("builder");
    b.set_version(2).expect("version");
    let serial = openssl::bn::BigNum::from_u32(rand_u32())
        .and_then(|n| n.to_asn1_integer())
        .expect("serial");
    b.set_serial_number(&serial).expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(ca.map_or(&*name, |c| c.cert.subject_name()))
        .expect("issuer");
    b.set_pubkey(&spec.key).expect("pubkey");
    let now = Utc::now();
    b.set_not_before(
        &openssl::asn1::Asn1Time::from_unix((now - Duration::days(1)).timestamp()).expect("t"),
    )
    .expect("nb");
    b.set_not_after(
        &openssl::asn1::Asn1Time::from_unix((now + Duration::days(365)).timestamp()).expect("t"),
    )
    .expect("na");
    let mut bc = BasicConstraints::new();
    bc.critical();
    if spec.ca {
        bc.ca();
    }
    b.append_extension(bc.build().expect("bc")).expect("bc");
    if let Some(ku) = spec.key_usage {
        b.append_extension(ku).expect("ku");
    }
    if let Some(e) = spec.extended_key_usage {
        b.append_extension(e).expect("eku");
    }
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(ca.map(|c| &*c.cert), None))
        .expect("ski");
    b.append_extension(ski).expect("ski");
    if let Some(c) = ca {
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&c.cert), None))
            .expect("aki");
        b.append_extension(aki).expect("aki");
    }
    let signing_key = ca.map_or(&spec.key, |c| &c.key);
    b.sign(signing_key, openssl::hash::MessageDigest::sha256())
        .expect("sign");
    b.build()
}

fn rand_u32() -> u32 {
    let mut bytes = [0u8; 4];
    openssl::rand::rand_bytes(&mut bytes).expect("rand");
    u32::from_be_bytes(bytes) | 1
}

/// Signs with OpenSSL's defaults for the key (P-521 signs with SHA-512, which our own
/// signing function refuses to produce).
fn sign_any(
    doc: &[u8],
    cert: &X509,
    key: &openssl::pkey::PKey<openssl::pkey::Private>,
    chain: &[X509],
) -> Vec<u8> {
    use openssl::cms::{CMSOptions, CmsContentInfo};
    let mut extra = openssl::stack::Stack::new().expect("stack");
    for c in chain {
        extra.push(c.clone()).expect("push");
    }
    let flags = CMSOptions::DETACHED
        | CMSOptions::BINARY
        | CMSOptions::NOSMIMECAP
        | CMSOptions::from_bits_retain(0x10_0000);
    CmsContentInfo::sign(Some(cert), Some(key), Some(&extra), Some(doc), flags)
        .and_then(|c| c.to_der())
        .expect("sign")
}

/// A fixture whose issuer certificate is `spec`, issued by a fresh P-256 CA.
fn custom_fixture(spec: CustomCert) -> Fixture {
    let ca = DemoCa::new("Baohan Test Root CA", KeyType::EcP256).expect("ca");
    let key = spec.key.clone();
    let cert = issue_custom(Some(&ca), spec);
    let doc = sample_document(ISSUER_USCC)
        .to_canonical_bytes()
        .expect("doc");
    let sig = sign_any(&doc, &cert, &key, &[]);
    let trust = store(&ca.cert, &[ca.current_crl(&[], 1).expect("crl")]);
    Fixture {
        ca,
        issuer: IssuedCert { cert, key },
        doc,
        sig,
        trust,
    }
}

fn signer_spec(key: openssl::pkey::PKey<openssl::pkey::Private>) -> CustomCert {
    CustomCert {
        key,
        key_usage: signing_key_usage(),
        extended_key_usage: None,
        ca: false,
    }
}

#[test]
fn custom_certificates_pass_when_the_policy_allows_them() {
    // The crafted certificates differ from the demo issuer only where a test says so.
    for key in [
        ec_key(openssl::nid::Nid::X9_62_PRIME256V1),
        ec_key(openssl::nid::Nid::SECP384R1),
        rsa_key(3072),
    ] {
        let fx = custom_fixture(signer_spec(key));
        let report = verify(&fx, &VerifyOptions::default());
        assert_outcome(&report, Indication::Passed, None, CheckId::Format);
    }
}

#[test]
fn rsa_1024_is_refused_naming_the_rule() {
    let fx = custom_fixture(signer_spec(rsa_key(1024)));
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::CryptoConstraintsFailure),
        CheckId::SignaturePolicy,
    );
    assert_refused_by(&report, CheckId::SignaturePolicy, PolicyRule::RsaMinBits);
    // The signature itself is sound: only the policy refuses it.
    assert_eq!(
        report.check(CheckId::SignatureValue).map(|c| c.result),
        Some(CheckResult::Passed)
    );
    let violation = SignaturePolicy::default()
        .check_certificate(&fx.issuer.cert)
        .expect_err("refused");
    assert_eq!(violation.rule, PolicyRule::RsaMinBits);
    assert!(
        violation.to_string().contains("key.rsa_min_bits"),
        "{violation}"
    );
}

#[test]
fn ecdsa_on_p521_or_secp256k1_is_refused() {
    for curve in [openssl::nid::Nid::SECP521R1, openssl::nid::Nid::SECP256K1] {
        let fx = custom_fixture(signer_spec(ec_key(curve)));
        let report = verify(&fx, &VerifyOptions::default());
        assert_outcome(
            &report,
            Indication::Indeterminate,
            Some(SubIndication::CryptoConstraintsFailure),
            CheckId::SignaturePolicy,
        );
        assert_refused_by(&report, CheckId::SignaturePolicy, PolicyRule::EcCurve);
    }
}

#[test]
fn an_intermediate_ca_with_a_weak_key_is_refused() {
    let root = DemoCa::new("Root", KeyType::EcP256).expect("root");
    let weak_key = rsa_key(1024);
    let weak = issue_custom(
        Some(&root),
        CustomCert {
            key: weak_key.clone(),
            key_usage: Some(
                openssl::x509::extension::KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .expect("ku"),
            ),
            extended_key_usage: None,
            ca: true,
        },
    );
    let inter = DemoCa {
        cert: weak,
        key: weak_key,
    };
    let issuer = inter
        .issue(&IssuerSpec::new("示例银行股份有限公司", ISSUER_USCC))
        .expect("issuer");
    let doc = sample_document(ISSUER_USCC)
        .to_canonical_bytes()
        .expect("doc");
    let sig = sign_detached(
        &doc,
        &issuer.cert,
        &issuer.key,
        std::slice::from_ref(&inter.cert),
    )
    .expect("sign");
    let trust = store(
        &root.cert,
        &[
            root.current_crl(&[], 1).expect("crl"),
            inter.current_crl(&[], 1).expect("crl"),
        ],
    );
    let report = VerificationEngine::new().verify(&doc, &sig, &trust, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::CryptoConstraintsFailure),
        CheckId::SignaturePolicy,
    );
    assert_refused_by(&report, CheckId::SignaturePolicy, PolicyRule::RsaMinBits);
    assert_explains(
        &report,
        CheckId::SignaturePolicy,
        &["certificate authority"],
    );
}

#[test]
fn extended_key_usage_limited_to_other_purposes_is_refused() {
    for purposes in [
        &["1.3.6.1.5.5.7.3.1"][..],
        &["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"][..],
        &["1.3.6.1.5.5.7.3.3"][..],
    ] {
        let mut spec = signer_spec(ec_key(openssl::nid::Nid::X9_62_PRIME256V1));
        spec.extended_key_usage = eku(purposes);
        let fx = custom_fixture(spec);
        let report = verify(&fx, &VerifyOptions::default());
        assert_outcome(
            &report,
            Indication::Indeterminate,
            Some(SubIndication::ChainConstraintsFailure),
            CheckId::KeyUsage,
        );
        assert_refused_by(&report, CheckId::KeyUsage, PolicyRule::ExtendedKeyUsage);
        assert_eq!(
            SignaturePolicy::default()
                .check_certificate(&fx.issuer.cert)
                .map_err(|v| v.rule),
            Err(PolicyRule::ExtendedKeyUsage)
        );
    }
}

#[test]
fn document_signing_email_protection_and_any_purpose_are_accepted() {
    for purposes in [
        &["1.3.6.1.5.5.7.3.36"][..],
        &["1.3.6.1.4.1.311.10.3.12"][..],
        &["1.3.6.1.5.5.7.3.4"][..],
        &["2.5.29.37.0"][..],
        // One allowed purpose among others is enough: not *limited* to other purposes.
        &["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.36"][..],
    ] {
        let mut spec = signer_spec(ec_key(openssl::nid::Nid::X9_62_PRIME256V1));
        spec.extended_key_usage = eku(purposes);
        let fx = custom_fixture(spec);
        let report = verify(&fx, &VerifyOptions::default());
        assert_outcome(&report, Indication::Passed, None, CheckId::Format);
        assert_eq!(
            SignaturePolicy::default().check_certificate(&fx.issuer.cert),
            Ok(())
        );
    }
}

#[test]
fn key_usage_without_a_signing_bit_or_at_all_is_refused() {
    let mut no_signing = signer_spec(ec_key(openssl::nid::Nid::X9_62_PRIME256V1));
    no_signing.key_usage = Some(
        openssl::x509::extension::KeyUsage::new()
            .key_agreement()
            .build()
            .expect("ku"),
    );
    let mut absent = signer_spec(ec_key(openssl::nid::Nid::X9_62_PRIME256V1));
    absent.key_usage = None;
    for spec in [no_signing, absent] {
        let fx = custom_fixture(spec);
        let report = verify(&fx, &VerifyOptions::default());
        assert_outcome(
            &report,
            Indication::Indeterminate,
            Some(SubIndication::ChainConstraintsFailure),
            CheckId::KeyUsage,
        );
        assert_refused_by(&report, CheckId::KeyUsage, PolicyRule::KeyUsage);
    }
}

#[test]
fn an_unknown_algorithm_in_the_digest_algorithms_set_is_refused() {
    let fx = fixture(KeyType::EcP256);
    let mut cms = Der::parse(&fx.sig);
    // 1.2.3.4: no digest algorithm at all. The set is outside the signature.
    cms.signed_data()[1]
        .children
        .push(Der::algorithm(&[0x2A, 0x03, 0x04]));
    let sig = cms.encode();
    assert_ne!(sig, fx.sig);
    let report = verify_sig(&fx, &sig, &TimeOptions::default());
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::CryptoConstraintsFailure),
        CheckId::SignaturePolicy,
    );
    assert_refused_by(
        &report,
        CheckId::SignaturePolicy,
        PolicyRule::DigestSetUnknown,
    );
    assert_explains(&report, CheckId::SignaturePolicy, &["1.2.3.4"]);
    assert_eq!(
        report.check(CheckId::SignatureValue).map(|c| c.result),
        Some(CheckResult::Passed),
        "the edit leaves the signature valid"
    );

    // A set that does not name the signer's digest is refused too.
    let mut cms = Der::parse(&fx.sig);
    cms.signed_data()[1].children = vec![Der::algorithm(
        crate::pki::policy::DigestAlgorithm::Sha384.oid(),
    )];
    let report = verify_sig(&fx, &cms.encode(), &TimeOptions::default());
    assert_refused_by(
        &report,
        CheckId::SignaturePolicy,
        PolicyRule::DigestSetSigner,
    );
}

/// The fixture's signature made again with another digest algorithm, the way a signer's
/// own software could make it.
fn with_digest(
    fx: &Fixture,
    digest_oid: &[u8],
    digest: openssl::hash::MessageDigest,
    signature_algorithm: Option<&[u8]>,
) -> Vec<u8> {
    use crate::pki::cms_parse::oid;
    let hash = openssl::hash::hash(digest, &fx.doc).expect("hash");
    forge(&fx.sig, &fx.issuer.key, digest, |cms| {
        cms.signed_data()[1].children = vec![Der::algorithm(digest_oid)];
        *cms.signed_attribute(oid::MESSAGE_DIGEST) = Der::primitive(0x04, &hash);
        let info = cms.signer_info();
        info[2] = Der::algorithm(digest_oid);
        if let Some(alg) = signature_algorithm {
            info[4] = Der::algorithm(alg);
        }
    })
}

#[test]
fn a_sha1_signer_digest_is_refused() {
    let fx = fixture(KeyType::Rsa2048);
    const SHA1: &[u8] = &[0x2B, 0x0E, 0x03, 0x02, 0x1A];
    let sig = with_digest(&fx, SHA1, openssl::hash::MessageDigest::sha1(), None);
    let report = verify_sig(&fx, &sig, &TimeOptions::default());
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::CryptoConstraintsFailure),
        CheckId::SignaturePolicy,
    );
    assert_refused_by(
        &report,
        CheckId::SignaturePolicy,
        PolicyRule::DigestAlgorithm,
    );
    assert_explains(&report, CheckId::SignaturePolicy, &["SHA-1"]);
}

#[test]
fn sha384_and_sha512_signer_digests_pass() {
    use crate::pki::policy::DigestAlgorithm;
    const ECDSA_WITH_SHA384: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03];
    const ECDSA_WITH_SHA512: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x04];
    let fx = fixture(KeyType::EcP256);
    for (digest, alg) in [
        (DigestAlgorithm::Sha384, ECDSA_WITH_SHA384),
        (DigestAlgorithm::Sha512, ECDSA_WITH_SHA512),
    ] {
        let sig = with_digest(&fx, digest.oid(), digest.message_digest(), Some(alg));
        let report = verify_sig(&fx, &sig, &TimeOptions::default());
        assert_outcome(&report, Indication::Passed, None, CheckId::Format);
        assert_explains(&report, CheckId::Integrity, &[digest.name()]);

        // Claiming the SHA-256 signature algorithm over a SHA-384 digest is refused.
        let mismatched = with_digest(
            &fx,
            digest.oid(),
            digest.message_digest(),
            Some(crate::pki::cms_parse::oid::ECDSA_WITH_SHA256),
        );
        let report = verify_sig(&fx, &mismatched, &TimeOptions::default());
        assert_refused_by(
            &report,
            CheckId::SignaturePolicy,
            PolicyRule::SignatureAlgorithm,
        );
    }
}

#[test]
fn a_signature_algorithm_for_another_key_type_is_refused() {
    let fx = fixture(KeyType::EcP256);
    let sig = forge(
        &fx.sig,
        &fx.issuer.key,
        openssl::hash::MessageDigest::sha256(),
        |cms| cms.signer_info()[4] = Der::algorithm(crate::pki::cms_parse::oid::SHA256_WITH_RSA),
    );
    let report = verify_sig(&fx, &sig, &TimeOptions::default());
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::CryptoConstraintsFailure),
        CheckId::SignaturePolicy,
    );
    assert_refused_by(
        &report,
        CheckId::SignaturePolicy,
        PolicyRule::SignatureAlgorithm,
    );
}

#[test]
fn check_anchor_wants_a_ca_that_signs_certificates() {
    let policy = SignaturePolicy::default();
    let fx = fixture(KeyType::EcP256);
    assert_eq!(policy.check_anchor(&fx.ca.cert), Ok(()));
    assert_eq!(
        policy.check_anchor(&fx.issuer.cert).map_err(|v| v.rule),
        Err(PolicyRule::AnchorCa)
    );
    let ca_without_cert_sign = issue_custom(
        None,
        CustomCert {
            key: ec_key(openssl::nid::Nid::X9_62_PRIME256V1),
            key_usage: Some(
                openssl::x509::extension::KeyUsage::new()
                    .critical()
                    .crl_sign()
                    .digital_signature()
                    .build()
                    .expect("ku"),
            ),
            extended_key_usage: None,
            ca: true,
        },
    );
    assert_eq!(
        policy
            .check_anchor(&ca_without_cert_sign)
            .map_err(|v| v.rule),
        Err(PolicyRule::AnchorKeyCertSign)
    );
    let weak_root = issue_custom(
        None,
        CustomCert {
            key: rsa_key(1024),
            key_usage: Some(
                openssl::x509::extension::KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .build()
                    .expect("ku"),
            ),
            extended_key_usage: None,
            ca: true,
        },
    );
    assert_eq!(
        policy.check_anchor(&weak_root).map_err(|v| v.rule),
        Err(PolicyRule::RsaMinBits)
    );
    // An issuer certificate registers fine.
    assert_eq!(policy.check_certificate(&fx.issuer.cert), Ok(()));
}

#[test]
fn the_policy_serializes_describes_itself_and_takes_partial_configuration() {
    let policy = SignaturePolicy::default();
    let json = serde_json::to_value(&policy).expect("json");
    assert_eq!(json["rsa_min_bits"], 2048);
    assert_eq!(json["ec_curves"], serde_json::json!(["P-256", "P-384"]));
    assert_eq!(
        json["digest_algorithms"],
        serde_json::json!(["SHA-256", "SHA-384", "SHA-512", "SM3"])
    );
    assert_eq!(json["sm2_keys"], true);
    let back: SignaturePolicy = serde_json::from_value(json).expect("back");
    assert_eq!(back, policy);

    let stricter: SignaturePolicy =
        serde_json::from_str(r#"{"rsa_min_bits": 3072, "ec_curves": ["P-384"]}"#).expect("partial");
    assert_eq!(stricter.rsa_min_bits, Some(3072));
    assert_eq!(stricter.digest_algorithms, policy.digest_algorithms);
    assert!(serde_json::from_str::<SignaturePolicy>(r#"{"rsa_min_bit": 1}"#).is_err());

    // A stricter policy is the engine's: P-256 is now refused.
    let fx = fixture(KeyType::EcP256);
    let report = VerificationEngine::with_policy(stricter).verify(
        &fx.doc,
        &fx.sig,
        &fx.trust,
        &VerifyOptions::default(),
    );
    assert_refused_by(&report, CheckId::SignaturePolicy, PolicyRule::EcCurve);

    let text = policy.to_string();
    for rule in PolicyRule::ALL {
        assert!(text.contains(rule.id()), "{rule} missing from:\n{text}");
        assert_eq!(
            serde_json::to_value(rule).expect("json"),
            serde_json::json!(rule.id())
        );
    }
    assert!(
        text.contains("2048")
            && text.contains("P-256")
            && text.contains("SM2 (GM/T 0003) with SM3"),
        "{text}"
    );
    let no_sm2: SignaturePolicy = serde_json::from_str(r#"{"sm2_keys": false}"#).expect("partial");
    assert!(no_sm2.to_string().contains("no SM2"));
}

#[test]
fn cli_prints_the_policy_in_force() {
    use crate::pki::{run_verify_cli, VerifyArgs};
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Verify {
        #[command(flatten)]
        args: VerifyArgs,
    }
    let parsed = Verify::try_parse_from(["verify", "--policy"]).expect("--policy alone");
    let mut text = Vec::new();
    assert_eq!(run_verify_cli(parsed.args.clone(), &mut text), 0);
    let text = String::from_utf8(text).expect("utf8");
    assert_eq!(text, SignaturePolicy::default().to_string());

    let json_args = VerifyArgs {
        json: true,
        ..parsed.args
    };
    let mut json = Vec::new();
    assert_eq!(run_verify_cli(json_args, &mut json), 0);
    let printed: SignaturePolicy = serde_json::from_slice(&json).expect("json policy");
    assert_eq!(printed, SignaturePolicy::default());

    // Without --policy the document and signature are still required.
    assert!(Verify::try_parse_from(["verify"]).is_err());
    assert!(Verify::try_parse_from(["verify", "--document", "NO.json"]).is_err());
    assert!(
        Verify::try_parse_from(["verify", "--document", "NO.json", "--signature", "NO.p7s"])
            .is_ok()
    );
}

/// A free loopback port for a server the test starts.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

/// The stock `openssl ocsp` responder for `ca`, answering from `index` (an OpenSSL CA
/// database) on `port`; stopped when dropped.
struct OcspResponder {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl OcspResponder {
    fn start(ca: &DemoCa, port: u16, index: &str) -> OcspResponder {
        let dir = tempfile::tempdir().expect("dir");
        let write = |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes);
        write("ca.pem", &ca.cert.to_pem().expect("pem")).expect("ca");
        write(
            "ca.key.pem",
            &ca.key.private_key_to_pem_pkcs8().expect("key"),
        )
        .expect("key");
        write("index.txt", index.as_bytes()).expect("index");
        write("index.txt.attr", b"unique_subject = no\n").expect("attr");
        let mut child = std::process::Command::new("openssl")
            .args(["ocsp", "-index", "index.txt", "-port"])
            .arg(port.to_string())
            .args(["-CA", "ca.pem", "-rsigner", "ca.pem", "-rkey", "ca.key.pem"])
            .args(["-nmin", "60"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("openssl ocsp");
        wait_until_listening(&mut child);
        OcspResponder { child, _dir: dir }
    }
}

impl Drop for OcspResponder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the `openssl ocsp` child says it accepts connections, then keeps
/// draining its stderr (a closed pipe would kill it). Probing the port with an empty
/// connection instead would hang the tool's single-threaded responder.
fn wait_until_listening(child: &mut std::process::Child) {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("stderr");
    let (ready, listening) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("waiting for OCSP client connections") {
                let _ = ready.send(());
            }
        }
    });
    listening
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("openssl ocsp listening");
}

/// One line of an OpenSSL CA database: valid, or revoked at `revoked_at`.
fn index_line(cert: &X509, revoked_at: Option<chrono::DateTime<Utc>>) -> String {
    let time = |t: chrono::DateTime<Utc>| t.format("%y%m%d%H%M%SZ").to_string();
    let not_after = crate::pki::certs::asn1_to_unix(cert.not_after()).expect("notAfter");
    let expiry = time(chrono::DateTime::from_timestamp(not_after, 0).expect("time"));
    let mut serial = serial_hex(cert).expect("serial").to_ascii_uppercase();
    if serial.len() % 2 == 1 {
        serial.insert(0, '0');
    }
    match revoked_at {
        None => format!("V\t{expiry}\t\t{serial}\tunknown\t/CN=good\n"),
        Some(t) => format!("R\t{expiry}\t{}\t{serial}\tunknown\t/CN=revoked\n", time(t)),
    }
}

fn ocsp_post(url: &str, request: &[u8]) -> Vec<u8> {
    let response = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .post(url)
        .set("Content-Type", "application/ocsp-request")
        .send_bytes(request)
        .expect("OCSP POST");
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut body).expect("body");
    body
}

#[test]
fn ocsp_answers_of_the_stock_responder_decide_revocation_and_are_named() {
    use sha2::Digest;
    if !openssl_available() {
        eprintln!("skipped: no openssl tool");
        return;
    }
    let ca = DemoCa::new("Baohan OCSP Test CA", KeyType::EcP256).expect("ca");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let issue = || {
        let mut spec = IssuerSpec::new("示例银行股份有限公司", ISSUER_USCC);
        spec.ocsp_url = Some(url.clone());
        ca.issue(&spec).expect("issuer")
    };
    let (good, revoked) = (issue(), issue());
    let revoked_at = Utc::now() - Duration::hours(2);
    let _responder = OcspResponder::start(
        &ca,
        port,
        &(index_line(&good.cert, None) + &index_line(&revoked.cert, Some(revoked_at))),
    );
    assert_eq!(
        crate::pki::certs::ocsp_responder_urls(&good.cert),
        std::slice::from_ref(&url)
    );

    // No CRL at all: the OCSP answers alone give the status.
    let bare = store(&ca.cert, &[]);
    let ask = |cert: &IssuedCert, trust: &TrustStore| {
        let request = crate::pki::ocsp::request(&cert.cert, &ca.cert).expect("request");
        crate::pki::ocsp::read_response(
            &ocsp_post(&url, &request),
            &cert.cert,
            &ca.cert,
            trust,
            &url,
        )
    };
    let good_answer = ask(&good, &bare).expect("good answer");
    assert_eq!(good_answer.revoked_at, None);
    assert!(good_answer.next_update.is_some());
    let revoked_answer = ask(&revoked, &bare).expect("revoked answer");
    assert_eq!(revoked_answer.revoked_at, Some(revoked_at.timestamp()));
    // An answer is only as good as the store that checks it: signed by a CA the store
    // does not trust, it is refused.
    let other = DemoCa::new("Baohan OCSP Test CA", KeyType::EcP256).expect("ca");
    assert!(ask(&good, &store(&other.cert, &[])).is_err());

    let doc = sample_document(ISSUER_USCC)
        .to_canonical_bytes()
        .expect("doc");
    let mut b = TrustStoreBuilder::new();
    b.add_certificates(&ca.cert.to_pem().expect("pem"))
        .expect("ca");
    for (cert, answer) in [(&good, &good_answer), (&revoked, &revoked_answer)] {
        let fingerprint = sha2::Sha256::digest(cert.cert.to_der().expect("der"));
        b.add_ocsp_answer(fingerprint.into(), answer.clone());
    }
    let trust = b.build().expect("store");
    let engine = VerificationEngine::new();
    let run = |cert: &IssuedCert| {
        let sig = sign_detached(&doc, &cert.cert, &cert.key, &[]).expect("sign");
        engine.verify(&doc, &sig, &trust, &VerifyOptions::default())
    };
    let source = format!(
        "ocsp ({url}, produced at {})",
        crate::pki::certs::unix_to_rfc3339(good_answer.produced_at)
    );
    let report = run(&good);
    assert_eq!(report.indication, Indication::Passed, "{report:?}");
    let revocation = report
        .checks
        .iter()
        .find(|c| c.id == CheckId::Revocation)
        .expect("check");
    assert!(revocation.explanation.contains(&source), "{revocation:?}");
    let report = run(&revoked);
    assert_eq!(
        report.sub_indication,
        Some(SubIndication::Revoked),
        "{report:?}"
    );
    let revocation = report
        .checks
        .iter()
        .find(|c| c.id == CheckId::Revocation)
        .expect("check");
    assert!(revocation.explanation.contains("ocsp ("), "{revocation:?}");
}

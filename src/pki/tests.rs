//! Tests of the verification table (DESIGN.md §5), one per row, plus interop with the
//! stock `openssl cms` tool, the cache, bad input and the CLI. All keys, certificates and
//! CRLs are generated here; nothing private is committed.

use chrono::{Duration, Utc};
use openssl::x509::{X509Crl, X509};

use crate::pki::demo::sample_document;
use crate::pki::demo::{
    serial_hex, DemoCa, IssuedCert, IssuerSpec, KeyType, RevokedSerial, UsccField,
};
use crate::pki::policy::{PolicyRule, SignaturePolicy};
use crate::pki::report::{CheckId, CheckResult, Indication, SubIndication, VerificationReport};
use crate::pki::sign::sign_detached;
use crate::pki::trust::{TrustStore, TrustStoreBuilder};
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
fn assert_outcome(
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
fn assert_refused_by(report: &VerificationReport, id: CheckId, rule: PolicyRule) {
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
        })),
        expectations: Expectations {
            project_code: Some("JS-2025-0042".into()),
            section_code: Some("JS-2025-0042-01".into()),
            beneficiary_uscc: Some("91320100MA1XXXXX5K".into()),
            applicant_uscc: Some("91320000134567890X".into()),
            min_amount: Some("100000".into()),
            valid_from_by: Some("2025-03-20T09:30:00+08:00".parse().expect("time")),
            valid_through: Some("2025-07-18T00:00:00+08:00".parse().expect("time")),
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
        Some("BH20250301ICBC0000017K")
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
        .current_dir(dir)
        .output()
        .is_ok_and(|o| o.status.success())
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
                key_type: KeyType::EcP256
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
        key_type: KeyType::Rsa2048,
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
    assert_eq!(run_verify_cli(missing, &mut text), 1);
    assert!(String::from_utf8_lossy(&text).contains("FORMAT_FAILURE"));

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

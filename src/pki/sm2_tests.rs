//! The verification table (DESIGN.md §5) for SM2 signatures with SM3 (国密): the rows the
//! RSA/ECDSA tests of `tests.rs` cover, through the same engine, policy, trust store and
//! cache, with certificates and CRLs made by [`crate::pki::gm`] and hosted keys read by
//! OpenSSL as the exchange stores them.

use chrono::{DateTime, Duration, Utc};
use openssl::x509::{X509Crl, X509};

use crate::pki::demo::{sample_document, DemoCa, KeyType, RevokedSerial, TsaSpec};
use crate::pki::gm::{self, Sm2Ca, Sm2IssuedCert, Sm2IssuerSpec};
use crate::pki::policy::{DigestAlgorithm, PolicyRule, SignaturePolicy};
use crate::pki::report::{CheckId, CheckResult, Indication, SubIndication, VerificationReport};
use crate::pki::tests::{assert_outcome, assert_refused_by};
use crate::pki::timestamp::{TimeStampAuthority, TsaTrust};
use crate::pki::trust::{TrustStore, TrustStoreBuilder};
use crate::pki::verify::{
    Acceptance, Expectations, Registration, RegistryCheck, TimeOptions, VerificationEngine,
    VerifyOptions,
};
use crate::pki::{sha256_hex, sign_detached};

const ISSUER_USCC: &str = "91110000100000000R";

struct Sm2Fixture {
    ca: Sm2Ca,
    issuer: Sm2IssuedCert,
    doc: Vec<u8>,
    sig: Vec<u8>,
    trust: TrustStore,
}

fn crl(ca: &Sm2Ca, revoked: &[RevokedSerial], number: u64) -> Vec<u8> {
    let now = Utc::now();
    ca.crl(
        revoked,
        now - Duration::hours(1),
        now + Duration::days(7),
        number,
    )
    .expect("crl")
}

fn store(anchor: &gm::Sm2Certificate, crls: &[Vec<u8>]) -> TrustStore {
    let mut b = TrustStoreBuilder::new();
    b.add_certificates(anchor.to_pem().as_bytes()).expect("ca");
    for crl in crls {
        b.add_crls(crl).expect("crl");
    }
    b.build().expect("store")
}

fn fixture_with(adjust: impl FnOnce(&mut Sm2IssuerSpec)) -> Sm2Fixture {
    let ca = Sm2Ca::new("Baohan SM2 Test Root CA").expect("ca");
    let mut spec = Sm2IssuerSpec::new("示例银行股份有限公司", ISSUER_USCC);
    adjust(&mut spec);
    let issuer = ca.issue(&spec).expect("issuer");
    let doc = sample_document(ISSUER_USCC)
        .to_canonical_bytes()
        .expect("doc");
    let sig = gm::sign_detached(&doc, &issuer.key, &issuer.cert, &[], Utc::now()).expect("sign");
    let trust = store(&ca.cert, &[crl(&ca, &[], 1)]);
    Sm2Fixture {
        ca,
        issuer,
        doc,
        sig,
        trust,
    }
}

fn fixture() -> Sm2Fixture {
    fixture_with(|_| {})
}

fn verify(fx: &Sm2Fixture, options: &VerifyOptions) -> VerificationReport {
    VerificationEngine::new().verify(&fx.doc, &fx.sig, &fx.trust, options)
}

fn full_options(fx: &Sm2Fixture) -> VerifyOptions {
    VerifyOptions {
        validation_time: None,
        registered_fingerprints: Some(vec![fx.issuer.cert.sha256_fingerprint()]),
        registry: RegistryCheck::Online(Some(Registration {
            document_sha256: sha256_hex(&fx.doc),
            status_active: true,
            status: "issued".into(),
            superseded: None,
        })),
        expectations: Expectations {
            project_code: Some("JS-2025-0042".into()),
            beneficiary_uscc: Some("91320100MA1XXXXX5K".into()),
            min_amount: Some("100000".into()),
            ..Expectations::default()
        },
    }
}

fn accepting() -> TimeOptions {
    TimeOptions {
        proof_of_existence: None,
        acceptance: Some(Acceptance {
            not_before: Utc::now() - Duration::minutes(10),
        }),
    }
}

#[test]
fn the_policys_sm_oids_are_the_gm_modules() {
    use crate::pki::cms_parse::oid as cms;
    assert_eq!(DigestAlgorithm::Sm3.oid(), gm::oid::SM3.as_bytes());
    assert_eq!(cms::GM_DATA, gm::oid::GM_DATA.as_bytes());
    assert_eq!(cms::GM_SIGNED_DATA, gm::oid::GM_SIGNED_DATA.as_bytes());
    for (oid, name) in [
        (gm::oid::SM2_WITH_SM3, "SM2-with-SM3"),
        (gm::oid::SM2_SIGN, "sm2-1 (SM2 signature)"),
        (gm::oid::SM2, "SM2"),
        (gm::oid::SM3, "SM3"),
    ] {
        assert_eq!(crate::pki::policy::algorithm_name(oid.as_bytes()), name);
    }
}

#[test]
fn sm2_passes_every_check_with_the_same_report_as_ecdsa() {
    let fx = fixture();
    let report = VerificationEngine::new().verify_with_time(
        &fx.doc,
        &fx.sig,
        &fx.trust,
        &full_options(&fx),
        &accepting(),
    );
    assert_outcome(&report, Indication::Passed, None, CheckId::Format);
    for check in &report.checks {
        assert_eq!(check.result, CheckResult::Passed, "{}", report.to_text());
    }
    let policy = report.check(CheckId::SignaturePolicy).expect("policy");
    assert!(
        policy.explanation.contains("digest SM3")
            && policy.explanation.contains("SM2-with-SM3")
            && policy.explanation.contains("SM2 (GM/T 0003)"),
        "{}",
        policy.explanation
    );
    let chain = report.check(CheckId::CertificateChain).expect("chain");
    assert!(
        chain.explanation.contains("Baohan SM2 Test Root CA")
            && chain.explanation.contains("signingCertificateV2"),
        "{}",
        chain.explanation
    );
    let signer = report.signer.as_ref().expect("signer");
    assert_eq!(signer.uscc.as_deref(), Some(ISSUER_USCC));
    assert_eq!(
        signer.sha256_fingerprint,
        fx.issuer.cert.sha256_fingerprint()
    );
    assert_eq!(signer.serial, fx.issuer.cert.serial_hex());
    // The revocation answer came from the SM2 CA's own CRL.
    let revocation = report.check(CheckId::Revocation).expect("revocation");
    assert!(
        revocation.explanation.contains("uploaded by the operator"),
        "{}",
        revocation.explanation
    );
}

#[test]
fn sm2_tampered_document_is_hash_failure() {
    let mut fx = fixture();
    fx.doc = String::from_utf8(fx.doc.clone())
        .expect("utf8")
        .replace("100000.00", "900000.00")
        .into_bytes();
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::HashFailure),
        CheckId::Integrity,
    );
    assert_eq!(
        report.check(CheckId::SignatureValue).map(|c| c.result),
        Some(CheckResult::Passed)
    );
}

#[test]
fn sm2_altered_signature_value_or_signed_attribute_is_sig_crypto_failure() {
    let fx = fixture();
    let sd = crate::pki::cms_parse::parse_signed_data(&fx.sig).expect("parse");
    let value_at = sd.signer.signature.as_ptr() as usize - fx.sig.as_ptr() as usize;
    let value_len = sd.signer.signature.len();
    let attrs_at = sd.signer.signed_attrs_raw.as_ptr() as usize - fx.sig.as_ptr() as usize;
    let attrs_len = sd.signer.signed_attrs_raw.len();

    let mut value = fixture_like(&fx);
    // The last byte of s: still DER, no longer the signature.
    value.sig[value_at + value_len - 1] ^= 0x01;
    let report = verify(&value, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::SigCryptoFailure),
        CheckId::SignatureValue,
    );

    let mut attribute = fixture_like(&fx);
    let z = fx.sig[attrs_at..attrs_at + attrs_len]
        .windows(2)
        .position(|w| w[0].is_ascii_digit() && w[1] == b'Z')
        .expect("time in attributes");
    let digit = &mut attribute.sig[attrs_at + z];
    *digit = if *digit == b'0' { b'1' } else { b'0' };
    let report = verify(&attribute, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::SigCryptoFailure),
        CheckId::SignatureValue,
    );
}

/// The same signature and store, to alter one copy.
fn fixture_like(fx: &Sm2Fixture) -> Sm2Fixture {
    Sm2Fixture {
        ca: fx.ca.clone(),
        issuer: fx.issuer.clone(),
        doc: fx.doc.clone(),
        sig: fx.sig.clone(),
        trust: store(&fx.ca.cert, &[crl(&fx.ca, &[], 1)]),
    }
}

#[test]
fn sm2_signer_under_another_ca_of_the_same_name_has_no_chain() {
    let mut fx = fixture();
    let impostor = Sm2Ca::new("Baohan SM2 Test Root CA").expect("ca");
    fx.trust = store(&impostor.cert, &[crl(&impostor, &[], 1)]);
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::NoCertificateChainFound),
        CheckId::CertificateChain,
    );

    // Nor does a P-256 store with no SM2 anchor: no mixed chains.
    let p256 = DemoCa::new("Baohan SM2 Test Root CA", KeyType::EcP256).expect("ca");
    let mut b = TrustStoreBuilder::new();
    b.add_certificates(&p256.cert.to_pem().expect("pem"))
        .expect("ca");
    fx.trust = b.build().expect("store");
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::NoCertificateChainFound),
        CheckId::CertificateChain,
    );
}

#[test]
fn sm2_expired_and_not_yet_valid_certificates() {
    let now = Utc::now();
    let expired = fixture_with(|s| {
        s.not_before = now - Duration::days(30);
        s.not_after = now - Duration::days(1);
    });
    assert_outcome(
        &verify(&expired, &VerifyOptions::default()),
        Indication::Failed,
        Some(SubIndication::Expired),
        CheckId::CertificateValidity,
    );
    let early = fixture_with(|s| {
        s.not_before = now + Duration::days(1);
        s.not_after = now + Duration::days(30);
    });
    assert_outcome(
        &verify(&early, &VerifyOptions::default()),
        Indication::Failed,
        Some(SubIndication::NotYetValid),
        CheckId::CertificateValidity,
    );
}

#[test]
fn sm2_revoked_certificate_is_revoked_by_the_sm2_crl() {
    let mut fx = fixture();
    let revoked = RevokedSerial {
        serial_hex: fx.issuer.cert.serial_hex(),
        revoked_at: Utc::now() - Duration::minutes(1),
    };
    fx.trust = store(&fx.ca.cert, &[crl(&fx.ca, &[revoked], 2)]);
    let report = verify(&fx, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::Revoked),
        CheckId::Revocation,
    );
    // The store reads the CRL's entries with OpenSSL; its signature with GM/T 0009's ID.
    let status = fx.trust.crl_status(Utc::now());
    assert_eq!(status.len(), 1);
    assert!(status[0].has_current_crl, "{status:?}");
}

#[test]
fn sm2_crl_missing_stale_or_signed_by_another_key_is_try_later() {
    let mut fx = fixture();
    let now = Utc::now();
    let stale = fx
        .ca
        .crl(&[], now - Duration::days(10), now - Duration::days(3), 1)
        .expect("crl");
    let impostor = Sm2Ca::new("Baohan SM2 Test Root CA").expect("ca");
    // The impostor's CRL lists the issuer: were its signature not checked, this would
    // say REVOKED.
    let forged = crl(
        &impostor,
        &[RevokedSerial {
            serial_hex: fx.issuer.cert.serial_hex(),
            revoked_at: now - Duration::minutes(1),
        }],
        9,
    );
    for crls in [vec![], vec![stale], vec![forged]] {
        fx.trust = store(&fx.ca.cert, &crls);
        let report = verify(&fx, &VerifyOptions::default());
        assert_outcome(
            &report,
            Indication::Indeterminate,
            Some(SubIndication::TryLater),
            CheckId::Revocation,
        );
        assert!(!fx.trust.crl_status(now)[0].has_current_crl);
    }
}

#[test]
fn sm2_signer_not_registered_or_not_the_named_issuer_is_signer_not_issuer() {
    let fx = fixture();
    let mut options = full_options(&fx);
    options.registered_fingerprints = Some(vec!["00".repeat(32)]);
    let report = verify(&fx, &options);
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::SignerNotIssuer),
        CheckId::IssuerBinding,
    );

    // A certificate of another USCC signing a document naming this issuer.
    let other = fixture_with(|s| s.uscc = "91310000MA1FL0000X".into());
    let report = verify(&other, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Failed,
        Some(SubIndication::SignerNotIssuer),
        CheckId::IssuerBinding,
    );
}

#[test]
fn sm2_registry_rows_not_registered_and_not_active() {
    let fx = fixture();
    let mut options = full_options(&fx);
    options.registry = RegistryCheck::Online(None);
    assert_outcome(
        &verify(&fx, &options),
        Indication::Failed,
        Some(SubIndication::NotRegistered),
        CheckId::Registration,
    );
    options.registry = RegistryCheck::Online(Some(Registration {
        document_sha256: sha256_hex(&fx.doc),
        status_active: false,
        status: "released".into(),
        superseded: None,
    }));
    assert_outcome(
        &verify(&fx, &options),
        Indication::Failed,
        Some(SubIndication::NotActive),
        CheckId::Status,
    );
}

#[test]
fn sm2_policy_refusals_name_their_rule() {
    let fx = fixture();
    let no_sm2 = SignaturePolicy {
        sm2_keys: false,
        ..SignaturePolicy::default()
    };
    let report = VerificationEngine::with_policy(no_sm2).verify(
        &fx.doc,
        &fx.sig,
        &fx.trust,
        &VerifyOptions::default(),
    );
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::CryptoConstraintsFailure),
        CheckId::SignaturePolicy,
    );
    assert_refused_by(&report, CheckId::SignaturePolicy, PolicyRule::KeyType);

    let no_sm3 = SignaturePolicy {
        digest_algorithms: vec![DigestAlgorithm::Sha256],
        ..SignaturePolicy::default()
    };
    let report = VerificationEngine::with_policy(no_sm3).verify(
        &fx.doc,
        &fx.sig,
        &fx.trust,
        &VerifyOptions::default(),
    );
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

    // The unsigned signatureAlgorithm field says ECDSA with SHA-256 (same length as
    // SM2-with-SM3's OID): an SM2 key with SM3 does not match it.
    let mut relabelled = fixture_like(&fx);
    let sd = crate::pki::cms_parse::parse_signed_data(&fx.sig).expect("parse");
    let at = sd.signer.signature_algorithm.as_ptr() as usize - fx.sig.as_ptr() as usize;
    assert_eq!(
        sd.signer.signature_algorithm,
        gm::oid::SM2_WITH_SM3.as_bytes()
    );
    relabelled.sig[at..at + 8].copy_from_slice(crate::pki::cms_parse::oid::ECDSA_WITH_SHA256);
    let report = verify(&relabelled, &VerifyOptions::default());
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

    // keyUsage without a signing bit.
    let encipher_only = fixture_with(|s| s.signing_key_usage = false);
    let report = verify(&encipher_only, &VerifyOptions::default());
    assert_outcome(
        &report,
        Indication::Indeterminate,
        Some(SubIndication::ChainConstraintsFailure),
        CheckId::KeyUsage,
    );
    assert_refused_by(&report, CheckId::KeyUsage, PolicyRule::KeyUsage);
}

#[test]
fn sm3_goes_with_sm2_keys_only() {
    let policy = SignaturePolicy::default();
    let ecdsa_sha256 = crate::pki::cms_parse::oid::ECDSA_WITH_SHA256;
    let sm2_with_sm3 = gm::oid::SM2_WITH_SM3.as_bytes();
    // Controls: each pair the policy accepts.
    assert!(policy
        .check_signature_algorithm(ecdsa_sha256, openssl::pkey::Id::EC, DigestAlgorithm::Sha256)
        .is_ok());
    for accepted in [
        sm2_with_sm3,
        gm::oid::SM2_SIGN.as_bytes(),
        gm::oid::SM2.as_bytes(),
    ] {
        assert!(policy
            .check_signature_algorithm(accepted, openssl::pkey::Id::SM2, DigestAlgorithm::Sm3)
            .is_ok());
    }
    // SM3 with an ECDSA or RSA key, SHA-256 with an SM2 key, SM2 with an ECDSA key.
    for (algorithm, key, digest) in [
        (ecdsa_sha256, openssl::pkey::Id::EC, DigestAlgorithm::Sm3),
        (
            crate::pki::cms_parse::oid::RSA_ENCRYPTION,
            openssl::pkey::Id::RSA,
            DigestAlgorithm::Sm3,
        ),
        (
            sm2_with_sm3,
            openssl::pkey::Id::SM2,
            DigestAlgorithm::Sha256,
        ),
        (sm2_with_sm3, openssl::pkey::Id::EC, DigestAlgorithm::Sm3),
    ] {
        let refused = policy
            .check_signature_algorithm(algorithm, key, digest)
            .expect_err("refused");
        assert_eq!(refused.rule, PolicyRule::SignatureAlgorithm);
    }
}

#[test]
fn gm_t_0010_content_types_verify_like_pkcs7_ones() {
    let fx = fixture();
    let oids = gm::sign::Oids {
        signed_data: gm::oid::GM_SIGNED_DATA,
        data: gm::oid::GM_DATA,
        signature: gm::oid::SM2_SIGN,
    };
    let sig = gm::sign::sign_with_oids(
        &fx.doc,
        &fx.issuer.key,
        &fx.issuer.cert,
        &[],
        Utc::now(),
        oids,
    )
    .expect("sign");
    let report =
        VerificationEngine::new().verify(&fx.doc, &sig, &fx.trust, &VerifyOptions::default());
    assert_eq!(
        report.indication,
        Indication::Passed,
        "{}",
        report.to_text()
    );
    // The exchange's time-stamp attaches to it as to any other.
    let (tsa, trust) = tsa();
    let stamped = tsa
        .stamp_signature(&sig, Utc::now() - Duration::minutes(1), None)
        .expect("stamp");
    let report = VerificationEngine::new().verify_cades(
        &fx.doc,
        &stamped,
        &fx.trust,
        Some(&trust),
        &VerifyOptions::default(),
        None,
    );
    assert_eq!(
        report.indication,
        Indication::Passed,
        "{}",
        report.to_text()
    );
    assert!(report.signature_time_stamp.as_ref().is_some_and(|t| t.used));
}

fn tsa() -> (TimeStampAuthority, TsaTrust) {
    let root = DemoCa::new("Baohan TSA Root", KeyType::EcP256).expect("root");
    let issued = root
        .issue_tsa(&TsaSpec::new("Baohan Exchange"))
        .expect("tsa certificate");
    let tsa =
        TimeStampAuthority::new(issued.cert, issued.key, vec![root.cert.clone()]).expect("tsa");
    (tsa, TsaTrust::new(vec![root.cert]).expect("trust"))
}

#[test]
fn a_time_stamp_keeps_an_sm2_signature_valid_after_its_certificate_is_revoked() {
    let mut fx = fixture();
    let (tsa, tsa_trust) = tsa();
    let stamped_at: DateTime<Utc> =
        DateTime::from_timestamp(Utc::now().timestamp() - 3600, 0).expect("time");
    let stamped = tsa
        .stamp_signature(&fx.sig, stamped_at, None)
        .expect("stamp");
    let revoked = RevokedSerial {
        serial_hex: fx.issuer.cert.serial_hex(),
        revoked_at: Utc::now() - Duration::minutes(10),
    };
    fx.trust = store(&fx.ca.cert, &[crl(&fx.ca, &[revoked], 2)]);
    let engine = VerificationEngine::new();
    let report = engine.verify_cades(
        &fx.doc,
        &stamped,
        &fx.trust,
        Some(&tsa_trust),
        &VerifyOptions::default(),
        None,
    );
    assert_eq!(
        report.indication,
        Indication::Passed,
        "{}",
        report.to_text()
    );
    assert!(report
        .check(CheckId::Revocation)
        .is_some_and(|c| c.explanation.contains("revoked on")));
    // Without the token the same signature is REVOKED.
    assert_outcome(
        &engine.verify(&fx.doc, &fx.sig, &fx.trust, &VerifyOptions::default()),
        Indication::Failed,
        Some(SubIndication::Revoked),
        CheckId::Revocation,
    );
}

#[test]
fn sm2_cold_and_cached_reports_are_identical() {
    let fx = fixture();
    let engine = VerificationEngine::new();
    let options = full_options(&fx);
    let cold = engine.verify(&fx.doc, &fx.sig, &fx.trust, &options);
    assert_eq!(engine.cached_entries(), 1);
    let warm = engine.verify(&fx.doc, &fx.sig, &fx.trust, &options);
    let strip = |mut r: VerificationReport| {
        r.validation_time = String::new();
        serde_json::to_value(r).expect("json")
    };
    assert_eq!(strip(cold.clone()), strip(warm));
    assert_eq!(cold.indication, Indication::Passed, "{}", cold.to_text());

    // A revocation needs a new store, hence a new cache key: the cache never answers
    // for the old one.
    let revoked = RevokedSerial {
        serial_hex: fx.issuer.cert.serial_hex(),
        revoked_at: Utc::now() - Duration::minutes(1),
    };
    let revoked_store = store(&fx.ca.cert, &[crl(&fx.ca, &[revoked], 2)]);
    let report = engine.verify(&fx.doc, &fx.sig, &revoked_store, &options);
    assert_eq!(report.sub_indication, Some(SubIndication::Revoked));
    assert_eq!(engine.cached_entries(), 2);
}

#[test]
fn hosted_sm2_keys_read_by_openssl_sign_through_pki_sign_detached() {
    // The exchange stores hosted keys as OpenSSL reads them (PKCS#8); signing with such a
    // key must take the SM2 path and give a signature the engine and gm both verify.
    let fx = fixture();
    let key = openssl::pkey::PKey::private_key_from_pem(
        fx.issuer.key.to_pkcs8_pem().expect("pem").as_bytes(),
    )
    .expect("openssl reads the SM2 key");
    let cert = X509::from_der(fx.issuer.cert.der()).expect("cert");
    let ca = X509::from_der(fx.ca.cert.der()).expect("ca");
    let sig = sign_detached(&fx.doc, &cert, &key, &[ca]).expect("sign");
    let report = VerificationEngine::new().verify(&fx.doc, &sig, &fx.trust, &full_options(&fx));
    assert_eq!(
        report.indication,
        Indication::Passed,
        "{}",
        report.to_text()
    );
    let verified =
        gm::verify_detached(&fx.doc, &sig, std::slice::from_ref(&fx.ca.cert), Utc::now())
            .expect("gm verifies it");
    assert_eq!(verified.signer_subject, fx.issuer.cert.subject());

    // Another issuer's certificate with this key: refused, not a bad signature.
    let other = Sm2Ca::new("Other")
        .expect("ca")
        .issue(&Sm2IssuerSpec::new("Other", ISSUER_USCC))
        .expect("issue");
    let other_cert = X509::from_der(other.cert.der()).expect("cert");
    assert!(sign_detached(&fx.doc, &other_cert, &key, &[]).is_err());
}

#[test]
fn the_store_registers_sm2_issuers_only_with_a_current_sm2_crl() {
    let fx = fixture();
    let cert = X509::from_der(fx.issuer.cert.der()).expect("cert");
    fx.trust
        .check_registrable(&cert, Utc::now())
        .expect("registrable");
    let bare = store(&fx.ca.cert, &[]);
    let why = bare
        .check_registrable(&cert, Utc::now())
        .expect_err("no CRL");
    assert!(why.contains("no current CRL"), "{why}");
    let crl = X509Crl::from_der(&crl(&fx.ca, &[], 3)).expect("openssl reads the SM2 CRL");
    assert!(fx.trust.crl_signer(&crl).is_some());
    let impostor = Sm2Ca::new("Baohan SM2 Test Root CA").expect("ca");
    let forged = X509Crl::from_der(&self::crl(&impostor, &[], 3)).expect("crl");
    assert!(fx.trust.crl_signer(&forged).is_none());
}

#[test]
fn cli_makes_an_sm2_pki_and_verifies_offline_with_exit_codes() {
    use crate::pki::cli::{CaArgs, IssuerArgs, KeyAlgorithm, RevokeArgs, TsaArgs};
    use crate::pki::{run_pki_cli, run_verify_cli, PkiCommand, VerifyArgs};
    let dir = tempfile::tempdir().expect("tempdir");
    let ca_dir = dir.path().join("ca");
    let issuer_dir = dir.path().join("issuer");
    let mut out = Vec::new();
    let ca = CaArgs {
        dir: ca_dir.clone(),
        name: "国密演示根CA".into(),
        key_type: "sm2".parse().expect("key type"),
    };
    assert_eq!(ca.key_type, KeyAlgorithm::Sm2);
    assert_eq!(run_pki_cli(PkiCommand::Ca(ca), &mut out), 0);
    let issuer = |key_type: Option<KeyAlgorithm>| IssuerArgs {
        ca_dir: ca_dir.clone(),
        out_dir: issuer_dir.clone(),
        name: "示例银行股份有限公司".into(),
        uscc: ISSUER_USCC.into(),
        key_type,
        days: 30,
    };
    // An SM2 CA issues SM2 keys only; nor does it certify a time-stamping authority.
    let mut refused = Vec::new();
    assert_eq!(
        run_pki_cli(
            PkiCommand::Issuer(issuer(Some(KeyAlgorithm::OpenSsl(KeyType::EcP256)))),
            &mut refused
        ),
        1
    );
    assert!(String::from_utf8_lossy(&refused).contains("SM2 keys only"));
    let tsa = TsaArgs {
        ca_dir: ca_dir.clone(),
        out_dir: dir.path().join("tsa"),
        name: "Baohan Exchange".into(),
        key_type: KeyType::EcP256,
        days: 30,
    };
    assert_eq!(run_pki_cli(PkiCommand::Tsa(tsa), &mut Vec::new()), 1);
    assert_eq!(run_pki_cli(PkiCommand::Issuer(issuer(None)), &mut out), 0);

    // The files are what OpenSSL and gm read: sign as a bank would, with the key file.
    let key_pem = std::fs::read_to_string(issuer_dir.join("issuer.key.pem")).expect("key");
    let cert_pem = std::fs::read_to_string(issuer_dir.join("issuer.pem")).expect("cert");
    let key = gm::Sm2PrivateKey::from_pkcs8_pem(&key_pem).expect("sm2 key");
    let cert = gm::Sm2Certificate::from_pem(&cert_pem).expect("sm2 cert");
    let doc = sample_document(ISSUER_USCC)
        .to_canonical_bytes()
        .expect("doc");
    std::fs::write(dir.path().join("NO.json"), &doc).expect("write");
    std::fs::write(
        dir.path().join("NO.p7s"),
        gm::sign_detached(&doc, &key, &cert, &[], Utc::now()).expect("sign"),
    )
    .expect("write");
    let args = VerifyArgs {
        document: dir.path().join("NO.json"),
        signature: dir.path().join("NO.p7s"),
        ca: vec![ca_dir.clone()],
        project: Some("JS-2025-0042".into()),
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

    // 1: a changed document.
    std::fs::write(
        dir.path().join("changed.json"),
        String::from_utf8(doc.clone())
            .expect("utf8")
            .replace("100000.00", "900000.00"),
    )
    .expect("write");
    let changed = VerifyArgs {
        document: dir.path().join("changed.json"),
        json: true,
        ..args.clone()
    };
    let mut json = Vec::new();
    assert_eq!(run_verify_cli(changed, &mut json), 1);
    let value: serde_json::Value = serde_json::from_slice(&json).expect("json");
    assert_eq!(value["sub_indication"], "HASH_FAILURE");

    // 2: another CA's directory gives no chain.
    let other_dir = dir.path().join("other-ca");
    let other = CaArgs {
        dir: other_dir.clone(),
        name: "国密演示根CA".into(),
        key_type: KeyAlgorithm::Sm2,
    };
    assert_eq!(run_pki_cli(PkiCommand::Ca(other), &mut out), 0);
    let untrusted = VerifyArgs {
        ca: vec![other_dir],
        json: true,
        ..args.clone()
    };
    let mut json = Vec::new();
    assert_eq!(run_verify_cli(untrusted, &mut json), 2);
    let value: serde_json::Value = serde_json::from_slice(&json).expect("json");
    assert_eq!(value["sub_indication"], "NO_CERTIFICATE_CHAIN_FOUND");

    // 1 after `pki revoke`: the new SM2 CRL lists it.
    let revoke = RevokeArgs {
        ca_dir: ca_dir.clone(),
        serial: cert.serial_hex(),
        days: 7,
    };
    assert_eq!(run_pki_cli(PkiCommand::Revoke(revoke), &mut out), 0);
    let mut text = Vec::new();
    assert_eq!(run_verify_cli(args, &mut text), 1);
    assert!(
        String::from_utf8_lossy(&text).contains("REVOKED"),
        "{}",
        String::from_utf8_lossy(&text)
    );
}

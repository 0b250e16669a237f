//! Trust the exchange can defend: certificates are checked when they are registered,
//! an issuer's claimed signing time is bounded by the exchange's clock, and the
//! exchange's own time-stamp keeps a bond valid when its certificate later expires or
//! is revoked, but not when it was revoked before.

use baohan::pki::demo::{serial_hex, IssuedCert, RevokedSerial};
use chrono::{Duration, Utc};

use crate::fixtures::{
    crl_pem, issuer_certificate, key_pem, pem, register_hosted_key, DemoCa, IssuedBond, IssuerSpec,
    KeyType, NewTender, TestPki,
};
use crate::helpers::{demo_uscc, TestApp};
use crate::on_both_backends;

on_both_backends!(
    registration_refuses_certificates_the_exchange_would_not_accept,
    a_claimed_signing_time_far_from_the_exchanges_is_refused,
    an_expired_certificate_with_a_backdated_signing_time_is_refused,
    the_time_stamp_keeps_a_bond_valid_after_its_certificate_expires,
    revoked_after_the_time_stamp_stays_valid_revoked_before_is_refused,
);

const GUARANTOR: &str = "鲁信融资担保";

/// Registers a hosted key for the guarantor whose certificate is valid for `valid_for`,
/// and issues a bond with it on a new tender `code`.
async fn guarantor_bond(
    app: &TestApp,
    pki: &TestPki,
    valid_for: Duration,
    code: &str,
) -> (IssuedCert, IssuedBond) {
    let mut spec = IssuerSpec::new(GUARANTOR, &demo_uscc("guarantor"));
    spec.not_after = Utc::now() + valid_for;
    let cert = register_hosted_key(app, &pki.ca, "guarantor", &spec).await;
    let bond = app
        .bond_on_new_tender("enterprise1", "guarantor", code)
        .await;
    (cert, bond)
}

async fn registration_refuses_certificates_the_exchange_would_not_accept(app: TestApp) {
    let pki = TestPki::set_up(&app).await;
    let operator = app.as_operator().await;
    let guarantor = operator
        .organization_with_uscc(&demo_uscc("guarantor"))
        .await;
    let spec = || IssuerSpec::new(GUARANTOR, &demo_uscc("guarantor"));

    let mut expired = spec();
    expired.not_before = Utc::now() - Duration::days(30);
    expired.not_after = Utc::now() - Duration::days(1);
    let mut not_yet = spec();
    not_yet.not_before = Utc::now() + Duration::days(1);
    not_yet.not_after = Utc::now() + Duration::days(30);
    let mut no_signing_usage = spec();
    no_signing_usage.signing_key_usage = false;
    let rogue = DemoCa::new("Rogue CA", KeyType::EcP256).expect("CA");
    let cases = [
        (pki.ca.issue(&expired).expect("cert"), "not valid now"),
        (pki.ca.issue(&not_yet).expect("cert"), "not valid now"),
        (
            pki.ca.issue(&no_signing_usage).expect("cert"),
            "cert.key_usage",
        ),
        (rogue.issue(&spec()).expect("cert"), "does not chain"),
    ];
    for (cert, reason) in cases {
        let error = operator
            .issuer_certificate(&guarantor, &pem(&cert.cert), Some(&key_pem(&cert.key)))
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some("certificate_pem"));
        assert!(error.message.contains(reason), "{reason}: {error:?}");
    }

    // A CA the exchange trusts but whose revocation status it cannot know (no CRL).
    let silent = DemoCa::new("Silent CA", KeyType::EcP256).expect("CA");
    operator.trust_anchor("silent CA", &pem(&silent.cert)).await;
    let cert = silent.issue(&spec()).expect("cert");
    let error = operator
        .issuer_certificate(&guarantor, &pem(&cert.cert), None)
        .fails(422, "validation_failed")
        .await;
    assert!(error.message.contains("revocation status"), "{error:?}");

    // A signing certificate is no trust anchor: an anchor must be a CA.
    let leaf = issuer_certificate(&pki.ca, "guarantor", GUARANTOR, Duration::days(30));
    let error = operator
        .trust_anchor("a leaf", &pem(&leaf.cert))
        .fails(422, "validation_failed")
        .await;
    assert!(error.message.contains("anchor.ca"), "{error:?}");
    // The good one is still accepted.
    operator
        .issuer_certificate(&guarantor, &pem(&leaf.cert), Some(&key_pem(&leaf.key)))
        .await;
}

async fn a_claimed_signing_time_far_from_the_exchanges_is_refused(app: TestApp) {
    let pki = TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-TRUST-1", 3))
        .await;
    let application = app
        .paid_application("enterprise1", "insurer", &tender.sections[0])
        .await;
    let insurer = app.as_issuer("insurer").await;
    let draft = insurer.draft(&application).await;
    let signature = pki.sign(&draft.bytes, "insurer");
    // The signature reaches the exchange an hour after the time it claims.
    app.advance_clock(Duration::hours(1));
    let insurer = app.as_issuer("insurer").await;
    let error = insurer
        .upload_signature(&application, signature)
        .fails(422, "signature_rejected")
        .await;
    assert_eq!(error.sub_indication(), Some("SIG_CONSTRAINTS_FAILURE"));
    let rules = error.violated_rules();
    assert!(
        rules.iter().any(|r| r == "time.signing_time_skew"),
        "{rules:?}"
    );

    // A signature claiming a time before its draft existed is refused too.
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-TRUST-1B", 3))
        .await;
    let application = app
        .paid_application("enterprise1", "insurer", &tender.sections[0])
        .await;
    let draft = insurer.draft(&application).await;
    let signature = pki.sign(&draft.bytes, "insurer");
    let error = insurer
        .upload_signature(&application, signature)
        .fails(422, "signature_rejected")
        .await;
    let rules = error.violated_rules();
    assert!(
        rules.iter().any(|r| r == "time.signing_time_before_draft"),
        "{rules:?}"
    );
}

async fn the_time_stamp_keeps_a_bond_valid_after_its_certificate_expires(app: TestApp) {
    let pki = TestPki::set_up(&app).await;
    // The guarantor's hosted key has a certificate valid for 20 more days.
    let (_, bond) = guarantor_bond(&app, &pki, Duration::days(20), "BZ-TRUST-2").await;
    let report = app.verify(&bond, &bond.code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");

    // 25 days on the certificate has expired; the bond's signature was proven to exist
    // while it was valid, so the bond still verifies.
    app.advance_clock(Duration::days(25));
    let operator = app.as_operator().await;
    operator.crl(&crl_pem(&pki.ca, Duration::days(90))).await;
    let report = app.verify(&bond, &bond.code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
    assert!(report.proof_of_existence.is_some(), "{report:?}");
    assert!(report.signature_time_stamp.as_ref().is_some_and(|t| t.used));
    // A new signature with that certificate is refused now.
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-TRUST-2B", 30))
        .await;
    let later = app
        .paid_application("enterprise2", "guarantor", &tender.sections[0])
        .await;
    let error = app
        .as_issuer("guarantor")
        .await
        .issue(&later)
        .fails(409, "conflict")
        .await;
    assert!(error.message.contains("hosted"), "{error:?}");
}

async fn revoked_after_the_time_stamp_stays_valid_revoked_before_is_refused(app: TestApp) {
    let pki = TestPki::set_up(&app).await;
    let (cert, bond) = guarantor_bond(&app, &pki, Duration::days(365), "BZ-TRUST-3").await;
    let operator = app.as_operator().await;

    // The CA revokes the key a few seconds after the bond was time-stamped.
    let revoked_at = Utc::now() + Duration::seconds(5);
    let crl = pki
        .ca
        .crl(
            &[RevokedSerial {
                serial_hex: serial_hex(&cert.cert).expect("serial"),
                revoked_at,
            }],
            Utc::now(),
            Utc::now() + Duration::days(30),
            2,
        )
        .expect("CRL");
    operator
        .crl(&String::from_utf8(crl.to_pem().expect("pem")).expect("utf-8"))
        .await;
    app.advance_clock(Duration::hours(1));

    let report = app.verify(&bond, &bond.code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
    assert!(report.signature_time_stamp.as_ref().is_some_and(|t| t.used));
    // Signing with the revoked key now is refused: revoked before any time-stamp.
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-TRUST-3B", 3))
        .await;
    let later = app
        .paid_application("enterprise2", "guarantor", &tender.sections[0])
        .await;
    let error = app
        .as_issuer("guarantor")
        .await
        .issue(&later)
        .fails(422, "signature_rejected")
        .await;
    assert_eq!(error.sub_indication(), Some("REVOKED"), "{error:?}");
}

async fn an_expired_certificate_with_a_backdated_signing_time_is_refused(app: TestApp) {
    // The insurer's registered certificate runs for a year; 400 days on by the
    // exchange's clock it has expired, while the insurer's own system still claims a
    // signing time inside its validity (its clock is 400 days behind).
    let pki = TestPki::set_up(&app).await;
    app.advance_clock(Duration::days(400));
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-TRUST-4", 403))
        .await;
    let application = app
        .paid_application("enterprise1", "insurer", &tender.sections[0])
        .await;
    let insurer = app.as_issuer("insurer").await;
    let draft = insurer.draft(&application).await;
    let signature = pki.sign(&draft.bytes, "insurer");
    let error = insurer
        .upload_signature(&application, signature)
        .fails(422, "signature_rejected")
        .await;
    // Judged at the exchange's time: expired, whatever the signer claims; and the
    // claimed time itself breaks the signing-time rules (it lies before the draft).
    assert_eq!(error.sub_indication(), Some("EXPIRED"), "{error:?}");
    let rules = error.violated_rules();
    assert!(
        rules.iter().any(|r| r.starts_with("time.signing_time")),
        "{rules:?}"
    );
}

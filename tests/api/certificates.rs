//! Issuer certificates that run out: the operator sees which to renew, and each issuer
//! is mailed once, 30 days ahead.

use chrono::Duration;

use crate::fixtures::{issuer_certificate, pem, ExpiringCertificate, MailView, Operator, TestPki};
use crate::helpers::{demo_uscc, TestApp};
use crate::on_both_backends;

on_both_backends!(
    a_certificate_running_out_is_listed_and_its_issuer_mailed_once,
    only_the_operator_sees_the_certificates_to_renew,
);

/// How many "certificate expiring" mails went to `to`.
fn expiry_mails(mails: &[MailView], to: &str) -> usize {
    mails
        .iter()
        .filter(|m| m.to == to && m.subject.contains("Signing certificate expiring"))
        .count()
}

fn issuers(list: &[ExpiringCertificate]) -> Vec<&str> {
    list.iter().map(|c| c.organization_id.as_str()).collect()
}

async fn a_certificate_running_out_is_listed_and_its_issuer_mailed_once(app: TestApp) {
    // The bank's and the insurer's certificates run for a year; the guarantor's for 20
    // days.
    let pki = TestPki::set_up(&app).await;
    let operator = app.as_operator().await;
    let guarantor = operator
        .organization_with_uscc(&demo_uscc("guarantor"))
        .await;
    let bank = operator.organization_with_uscc(&demo_uscc("bank")).await;
    let insurer = operator.organization_with_uscc(&demo_uscc("insurer")).await;
    let short = issuer_certificate(&pki.ca, "guarantor", "鲁信融资担保", Duration::days(20));
    operator
        .issuer_certificate(&guarantor, &pem(&short.cert), None)
        .await;

    let to_renew = operator.expiring_certificates(None).await;
    assert_eq!(issuers(&to_renew), [guarantor.id.as_str()], "{to_renew:?}");
    assert!((19..=20).contains(&to_renew[0].days_left), "{to_renew:?}");
    assert_eq!(to_renew[0].notified_at, None);
    assert!(to_renew[0].not_after.ends_with("+08:00"), "{to_renew:?}");
    // Looking further ahead finds the others too, soonest first.
    let year = operator.expiring_certificates(Some(366)).await;
    assert_eq!(
        year.first().map(|c| c.organization_id.as_str()),
        Some(guarantor.id.as_str())
    );
    for org in [&bank.id, &insurer.id] {
        assert!(issuers(&year).contains(&org.as_str()), "{year:?}");
    }

    // The issuer is told once, however often the job runs.
    assert_eq!(app.send_certificate_expiry_notices().await, 1);
    assert_eq!(app.send_certificate_expiry_notices().await, 0);
    assert_eq!(
        expiry_mails(
            &operator.mails(None).await,
            "guarantor@demo.baohan.localhost"
        ),
        1
    );
    assert_eq!(
        expiry_mails(&operator.mails(None).await, "bank@demo.baohan.localhost"),
        0
    );
    let listed = operator.expiring_certificates(None).await;
    assert!(listed[0].notified_at.is_some(), "{listed:?}");

    // 340 days on, the year-long certificates are due; the guarantor's has run out
    // (still listed, with negative days, but not mailed again).
    app.advance_clock(Duration::days(340));
    let operator = app.as_operator().await;
    let later = operator.expiring_certificates(None).await;
    assert_eq!(later[0].organization_id, guarantor.id);
    assert!(later[0].days_left < 0, "{later:?}");
    for org in [&bank.id, &insurer.id] {
        assert!(issuers(&later).contains(&org.as_str()), "{later:?}");
    }
    assert_eq!(app.send_certificate_expiry_notices().await, 2);
    assert_eq!(
        expiry_mails(
            &operator.mails(None).await,
            "guarantor@demo.baohan.localhost"
        ),
        1
    );
    assert_eq!(
        expiry_mails(&operator.mails(None).await, "bank@demo.baohan.localhost"),
        1
    );
    assert_eq!(
        expiry_mails(&operator.mails(None).await, "insurer@demo.baohan.localhost"),
        1
    );
}

async fn only_the_operator_sees_the_certificates_to_renew(app: TestApp) {
    let agency = app.as_agency().await;
    agency
        .acting_as::<Operator>()
        .expiring_certificates(None)
        .fails(403, "forbidden")
        .await;
    let operator = app.as_operator().await;
    for days in [0, 367] {
        let error = operator
            .expiring_certificates(Some(days))
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some("within_days"));
    }
    operator
        .expiring_certificates(Some(-1))
        .fails(400, "bad_request")
        .await;
}

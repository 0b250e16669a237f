//! Applying and withdrawing in a loop: the enterprise's applications are limited (per
//! day, and waiting at once, both settings), and the issuer hears of new applications
//! in one digest, which leaves out what was withdrawn before it went.

use chrono::TimeDelta;
use serde_json::{json, Value};

use baohan::mail::outbox::{MailStatus, OutboxMail};

use crate::fixtures::NewTender;
use crate::helpers::{TestApp, TestBackend};

const RECEIVED: &str = "收到保函申请 New applications: ";

/// The outbox rows of the issuers' digests, in any state.
async fn digests(app: &TestApp) -> Vec<OutboxMail> {
    app.db(|c| {
        let mut all = Vec::new();
        for status in [MailStatus::Pending, MailStatus::Sent, MailStatus::Failed] {
            all.extend(baohan::mail::outbox::list(c, status).expect("outbox"));
        }
        all.retain(|m| m.subject.starts_with(RECEIVED));
        all
    })
    .await
}

async fn received_mails(app: &TestApp) -> usize {
    app.as_operator()
        .await
        .mails(None)
        .await
        .iter()
        .filter(|m| m.subject.starts_with(RECEIVED))
        .count()
}

async fn apply_and_withdraw_in_a_loop_is_limited_and_mails_no_one(backend: TestBackend) {
    let app = backend
        .spawn_with(|s| s.application_limit_per_day = 12)
        .await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-LOOP", 3))
        .await;
    let section = &tender.sections[0];
    let enterprise = app.as_enterprise("enterprise1").await;
    let bank = app.as_issuer("bank").await;
    for _ in 0..12 {
        let application = enterprise.apply(section, &bank).await;
        let _: Value = enterprise
            .post(
                &format!("/api/v1/applications/{}/withdraw", application.id),
                &json!({}),
                200,
            )
            .await;
    }
    let refused = enterprise
        .apply(section, &bank)
        .fails(409, "conflict")
        .await;
    assert!(
        refused.message.contains("12 applications today"),
        "{refused:?}"
    );
    // Every mail announced an application withdrawn before it went: none is left.
    assert_eq!(received_mails(&app).await, 0);

    // The next day the enterprise may apply again, and the issuer hears of it.
    app.advance_clock(TimeDelta::days(1));
    let enterprise = app.as_enterprise("enterprise1").await;
    enterprise.apply(section, &bank).await;
    assert_eq!(received_mails(&app).await, 1);
}

async fn only_so_many_applications_wait_at_once(backend: TestBackend) {
    let app = backend
        .spawn_with(|s| s.application_limit_waiting = 5)
        .await;
    let agency = app.as_agency().await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let bank = app.as_issuer("bank").await;
    let mut sections = Vec::new();
    for i in 0..3 {
        let tender = agency
            .create_project(&NewTender::two_sections(&format!("BZ-OPEN-{i}"), 3))
            .await;
        sections.extend(tender.sections);
    }
    let mut first = None;
    for section in &sections[..5] {
        let application = enterprise.apply(section, &bank).await;
        first.get_or_insert(application);
    }
    let refused = enterprise
        .apply(&sections[5], &bank)
        .fails(409, "conflict")
        .await;
    assert!(
        refused.message.contains("5 applications waiting"),
        "{refused:?}"
    );
    // One declined frees a place.
    let first = first.expect("an application");
    let _: Value = bank
        .post(
            &format!("/api/v1/applications/{}/decline", first.id),
            &json!({ "reason": "资料不全" }),
            200,
        )
        .await;
    enterprise.apply(&sections[5], &bank).await;
}

/// Applications from several enterprises reach the issuer as one mail listing each,
/// rewritten as they come and go; once the worker has taken it, the next application
/// starts another.
async fn an_issuer_hears_of_a_burst_of_applications_in_one_mail(app: TestApp) {
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-DIGEST", 3))
        .await;
    let bank = app.as_issuer("bank").await;
    let mut applications = Vec::new();
    for (enterprise, section) in [
        ("enterprise1", &tender.sections[0]),
        ("enterprise2", &tender.sections[0]),
        ("enterprise1", &tender.sections[1]),
    ] {
        let enterprise = app.as_enterprise(enterprise).await;
        applications.push((enterprise.apply(section, &bank).await, enterprise));
    }
    let withdrawn = &applications[1];
    let _: Value = withdrawn
        .1
        .post(
            &format!("/api/v1/applications/{}/withdraw", withdrawn.0.id),
            &json!({}),
            200,
        )
        .await;

    let digest = digests(&app).await;
    assert_eq!(digest.len(), 1, "one mail for the burst: {digest:?}");
    let digest = &digest[0];
    assert_eq!(digest.subject, format!("{RECEIVED}2"));
    assert!(
        digest.to_address.starts_with("bank@"),
        "{}",
        digest.to_address
    );
    for (application, _) in [&applications[0], &applications[2]] {
        assert!(
            digest.text_body.contains(&application.id),
            "{}",
            digest.text_body
        );
        assert!(digest.html_body.contains(&application.id));
    }
    assert!(
        !digest.text_body.contains(&withdrawn.0.id),
        "the withdrawn one is left out"
    );

    // The worker takes the digest: it is closed, and a new application starts another.
    let claimed = {
        let id = digest.id.clone();
        app.db(move |c| {
            let now = baohan::clock::Clock::default().now();
            baohan::mail::outbox::claim(c, &id, now, now + chrono::Duration::seconds(30))
        })
        .await
        .expect("claim")
    };
    assert!(claimed.is_some());
    let enterprise2 = app.as_enterprise("enterprise2").await;
    let late = enterprise2.apply(&tender.sections[1], &bank).await;
    let digest = digests(&app).await;
    assert_eq!(digest.len(), 2, "{digest:?}");
    let newest = digest
        .iter()
        .find(|m| m.digest_key.is_some())
        .expect("an open digest");
    assert_eq!(newest.subject, format!("{RECEIVED}1"));
    assert!(newest.text_body.contains(&late.id));
}

crate::on_both_backends!(an_issuer_hears_of_a_burst_of_applications_in_one_mail);

mod configured {
    use super::*;
    crate::on_both_backends!(configured:
        apply_and_withdraw_in_a_loop_is_limited_and_mails_no_one,
        only_so_many_applications_wait_at_once,
    );
}

//! Applying and withdrawing in a loop: the enterprise's applications are limited (per
//! day, and waiting at once), and the issuer is not mailed about an application that
//! was withdrawn before its mail went.

use chrono::TimeDelta;
use serde_json::{json, Value};

use crate::fixtures::NewTender;
use crate::helpers::TestApp;

const RECEIVED: &str = "收到保函申请 Application received: ";

async fn received_mails(app: &TestApp) -> usize {
    app.as_operator()
        .await
        .mails(None)
        .await
        .iter()
        .filter(|m| m.subject.starts_with(RECEIVED))
        .count()
}

async fn apply_and_withdraw_in_a_loop_is_limited_and_mails_no_one(app: TestApp) {
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-LOOP", 3))
        .await;
    let section = &tender.sections[0];
    let enterprise = app.as_enterprise("enterprise1").await;
    let bank = app.as_issuer("bank").await;
    for _ in 0..50 {
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
    assert!(refused.message.contains("today"), "{refused:?}");
    // Every mail announced an application withdrawn before it went: none is left.
    assert_eq!(received_mails(&app).await, 0);

    // The next day the enterprise may apply again, and the issuer hears of it.
    app.advance_clock(TimeDelta::days(1));
    let enterprise = app.as_enterprise("enterprise1").await;
    enterprise.apply(section, &bank).await;
    assert_eq!(received_mails(&app).await, 1);
}

async fn at_most_twenty_applications_wait_at_once(app: TestApp) {
    let agency = app.as_agency().await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let bank = app.as_issuer("bank").await;
    let mut sections = Vec::new();
    for i in 0..11 {
        let tender = agency
            .create_project(&NewTender::two_sections(&format!("BZ-OPEN-{i}"), 3))
            .await;
        sections.extend(tender.sections);
    }
    let mut first = None;
    for section in &sections[..20] {
        let application = enterprise.apply(section, &bank).await;
        first.get_or_insert(application);
    }
    let refused = enterprise
        .apply(&sections[20], &bank)
        .fails(409, "conflict")
        .await;
    assert!(refused.message.contains("waiting"), "{refused:?}");
    // One declined frees a place.
    let first = first.expect("an application");
    let _: Value = bank
        .post(
            &format!("/api/v1/applications/{}/decline", first.id),
            &json!({ "reason": "资料不全" }),
            200,
        )
        .await;
    enterprise.apply(&sections[20], &bank).await;
}

crate::on_both_backends!(
    apply_and_withdraw_in_a_loop_is_limited_and_mails_no_one,
    at_most_twenty_applications_wait_at_once,
);

//! Changes a party must know of are mailed: a postponement (to each bidder), an
//! amendment to sign (to the issuer), an amendment signed and a revocation (to the
//! bidder).

use chrono::{TimeDelta, Utc};
use serde_json::{json, Value};

use crate::fixtures::{NewTender, TestPki};
use crate::helpers::TestApp;

/// The subjects of the mails queued so far, with their recipients.
async fn mails(app: &TestApp) -> Vec<(String, String)> {
    app.as_operator()
        .await
        .mails(None)
        .await
        .into_iter()
        .map(|m| (m.to, m.subject))
        .collect()
}

fn count(mails: &[(String, String)], subject: &str) -> usize {
    mails.iter().filter(|(_, s)| s == subject).count()
}

async fn postponement_amendments_and_revocation_are_mailed(app: TestApp) {
    TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let bank = app.as_issuer("bank").await;
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-MAILS", 3))
        .await;
    let paid = app
        .paid_application("enterprise1", "bank", &tender.sections[0])
        .await;
    let bond = bank.issue(&paid).await;
    let waiting = app
        .as_enterprise("enterprise2")
        .await
        .apply(&tender.sections[0], &bank)
        .await;

    let later = (Utc::now() + TimeDelta::days(10)).to_rfc3339();
    agency.postpone(&tender, &later).await;
    let queued = mails(&app).await;
    let to_sign = format!("保函待修改 Amendment to sign: {}", bond.number);
    let postponed_bond = format!("项目延期 Bid deadline postponed: {}", bond.number);
    let postponed_application = format!("项目延期 Bid deadline postponed: {}", waiting.id);
    assert_eq!(count(&queued, &to_sign), 1, "{queued:?}");
    assert_eq!(count(&queued, &postponed_bond), 1, "{queued:?}");
    assert_eq!(count(&queued, &postponed_application), 1, "{queued:?}");

    // The issuer signs the amendment: the bidder is told.
    bank.issue(&paid).await;
    let signed = format!("保函已修改 Amendment signed: {}", bond.number);
    assert_eq!(count(&mails(&app).await, &signed), 1);

    // The issuer revokes it: the bidder is told, with the reason.
    let _: Value = bank
        .post(
            &format!("/api/v1/guarantees/{}/revoke", bond.number),
            &json!({ "reason": "issued in error" }),
            200,
        )
        .await;
    let revoked = format!("保函已撤销 Guarantee revoked: {}", bond.number);
    assert_eq!(count(&mails(&app).await, &revoked), 1);
}

crate::on_both_backends!(postponement_amendments_and_revocation_are_mailed);

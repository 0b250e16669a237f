//! What a bond's life allows: the issue window closes at the bid deadline, the opening
//! check refuses a bond issued after it, and the agency accepts only a bond that passes.

use chrono::{TimeDelta, Utc};

use crate::fixtures::{NewTender, TestPki};
use crate::helpers::TestApp;

/// After the bid deadline nothing adds a bond to a section: no application, approval,
/// payment, draft or issue (each would make a bond that did not exist when bids closed,
/// with a validity starting before its own issue). Declining still works.
async fn no_application_payment_or_issue_after_the_bid_deadline(app: TestApp) {
    TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-WINDOW", 1))
        .await;
    let (a, b) = (&tender.sections[0], &tender.sections[1]);
    let bank = app.as_issuer("bank").await;
    let enterprise1 = app.as_enterprise("enterprise1").await;
    let submitted = enterprise1.apply(a, &bank).await;
    let approved = enterprise1.apply(b, &bank).await;
    bank.approve(&approved, "960.00").await;
    let paid = app.paid_application("enterprise2", "bank", a).await;

    app.advance_clock(TimeDelta::days(1) + TimeDelta::minutes(1));
    // Sessions do not last that long: sign in again.
    let bank = app.as_issuer("bank").await;
    let enterprise2 = app.as_enterprise("enterprise2").await;
    let refused = bank
        .approve(&submitted, "960.00")
        .fails(409, "conflict")
        .await;
    assert!(refused.message.contains("bid deadline"), "{refused:?}");
    bank.confirm_payment(&approved).fails(409, "conflict").await;
    let refused = bank.issue(&paid).fails(409, "conflict").await;
    assert!(refused.message.contains("bid deadline"), "{refused:?}");
    let path = format!("/api/v1/applications/{}/draft", paid.id);
    bank.get::<serde_json::Value>(&path)
        .fails(409, "conflict")
        .await;
    enterprise2
        .apply(b, &bank)
        .fails(422, "validation_failed")
        .await;
    // Nothing moved.
    assert_eq!(bank.application(&submitted).await.status, "submitted");
    assert_eq!(bank.application(&approved).await.status, "approved");
    assert_eq!(bank.application(&paid).await.status, "paid");
    // Declining adds no bond and stays open.
    bank.post::<serde_json::Value>(
        &format!("/api/v1/applications/{}/decline", submitted.id),
        &serde_json::json!({ "reason": "投标截止" }),
        200,
    )
    .await;
}

/// A bond whose signed issue time is after the bid deadline fails the bid-opening
/// check with a reason naming it (here the record is moved behind the application's
/// back, as a bond issued late by earlier code would be).
async fn the_opening_check_refuses_a_bond_issued_after_the_deadline(app: TestApp) {
    TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-LATE", 1))
        .await;
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;
    app.execute_sql(format!(
        "UPDATE projects SET bid_deadline = '2000-01-01 00:00:00', \
         bid_opening_at = '2000-01-01 00:00:00' WHERE id = '{}'",
        tender.id
    ))
    .await;
    let bonds = agency.bonds(&tender).await;
    let report = &bonds["bonds"][0]["report"];
    assert_eq!(report["indication"], "FAILED", "{bonds}");
    assert_eq!(report["sub_indication"], "EXPECTATION_MISMATCH", "{bonds}");
    let expectations = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["id"] == "expectations")
        .expect("expectations check");
    let why = expectations["explanation"].as_str().expect("text");
    assert!(why.contains("after the bid deadline"), "{why}");
    assert_eq!(bonds["passed"], 0);
    // And it cannot be accepted.
    agency.accept(&bond).fails(409, "conflict").await;
}

/// The agency cannot accept a bond that fails the opening check: after a postponement
/// the bond whose amendment was never signed no longer covers the bid validity period;
/// the one whose issuer signed is accepted.
async fn a_bond_failing_the_opening_check_cannot_be_accepted(app: TestApp) {
    TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-ACCEPT", 1))
        .await;
    let bank = app.as_issuer("bank").await;
    let unsigned_app = app
        .paid_application("enterprise1", "bank", &tender.sections[0])
        .await;
    let unsigned = bank.issue(&unsigned_app).await;
    let signed_app = app
        .paid_application("enterprise2", "bank", &tender.sections[1])
        .await;
    let signed = bank.issue(&signed_app).await;
    let new_deadline = (Utc::now() + TimeDelta::days(3)).to_rfc3339();
    agency.postpone(&tender, &new_deadline).await;
    bank.issue(&signed_app).await;

    app.advance_clock(TimeDelta::days(3) + TimeDelta::hours(1));
    let agency = app.as_agency().await;
    // The opening report shows the amendment its issuer never signed.
    let bonds = agency.bonds(&tender).await;
    let listed = bonds["bonds"].as_array().expect("bonds");
    let unsigned_row = listed
        .iter()
        .find(|b| b["guarantee"]["number"] == unsigned.number.as_str())
        .expect("listed");
    assert_eq!(unsigned_row["guarantee"]["pending_amendment"]["version"], 2);
    assert_eq!(unsigned_row["report"]["indication"], "FAILED", "{bonds}");
    let signed_row = listed
        .iter()
        .find(|b| b["guarantee"]["number"] == signed.number.as_str())
        .expect("listed");
    assert!(signed_row["guarantee"]["pending_amendment"].is_null());
    let refused = agency.accept(&unsigned).fails(409, "conflict").await;
    assert!(
        refused.message.contains("EXPECTATION_MISMATCH"),
        "{refused:?}"
    );
    assert_eq!(agency.guarantee(&unsigned).await.status, "issued");
    let accepted = agency.accept(&signed).await;
    assert_eq!(accepted.status, "accepted");
}

/// The opening report keeps ended bonds apart: a bond cancelled by its bidder and one
/// revoked by its issuer are listed with their state under `ended`, not verified and
/// not counted among the bonds that failed.
async fn the_opening_report_keeps_ended_bonds_apart(app: TestApp) {
    TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-ENDED", 1))
        .await;
    let (a, b) = (&tender.sections[0], &tender.sections[1]);
    let cancelled = app.issued_bond("enterprise1", a).await;
    let live = app.issued_bond("enterprise2", a).await;
    let revoked = app.issued_bond("enterprise2", b).await;
    let enterprise1 = app.as_enterprise("enterprise1").await;
    enterprise1
        .post::<serde_json::Value>(
            &format!("/api/v1/guarantees/{}/cancel", cancelled.number),
            &serde_json::json!({}),
            200,
        )
        .await;
    app.as_issuer("bank")
        .await
        .post::<serde_json::Value>(
            &format!("/api/v1/guarantees/{}/revoke", revoked.number),
            &serde_json::json!({ "reason": "开立错误" }),
            200,
        )
        .await;

    app.advance_clock(TimeDelta::days(1) + TimeDelta::minutes(1));
    let agency = app.as_agency().await;
    for bonds in [
        agency.bonds(&tender).await,
        agency
            .post::<serde_json::Value>(
                "/api/v1/verify/bulk",
                &serde_json::json!({ "project_id": tender.id }),
                200,
            )
            .await,
    ] {
        assert_eq!(bonds["count"], 1, "{bonds}");
        assert_eq!(bonds["passed"], 1, "{bonds}");
        let listed = bonds["bonds"].as_array().expect("bonds");
        assert_eq!(listed.len(), 1, "{bonds}");
        assert_eq!(listed[0]["guarantee"]["number"], live.number.as_str());
        let mut ended: Vec<(String, String)> = bonds["ended"]
            .as_array()
            .expect("ended")
            .iter()
            .map(|g| {
                (
                    g["number"].as_str().expect("number").to_owned(),
                    g["status"].as_str().expect("status").to_owned(),
                )
            })
            .collect();
        ended.sort();
        let mut expected = vec![
            (cancelled.number.clone(), "cancelled".to_owned()),
            (revoked.number.clone(), "revoked".to_owned()),
        ];
        expected.sort();
        assert_eq!(ended, expected, "{bonds}");
    }
}

crate::on_both_backends!(
    the_opening_report_keeps_ended_bonds_apart,
    no_application_payment_or_issue_after_the_bid_deadline,
    the_opening_check_refuses_a_bond_issued_after_the_deadline,
    a_bond_failing_the_opening_check_cannot_be_accepted
);

//! Amendments (延标): a postponed deadline, and the amendment each issuer signs.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use crate::fixtures::{Expectations, NewTender, TestPki};
use crate::helpers::TestApp;

/// 延标: the agency postpones the deadline; bonds no longer cover the new bid validity
/// period until each issuer signs an amendment (hosted and external alike), which then
/// verifies against the new expectations.
async fn a_postponed_deadline_is_covered_by_signed_amendments(app: TestApp) {
    let pki = TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-POSTPONE", 3))
        .await;
    let (bank, insurer) = (app.as_issuer("bank").await, app.as_issuer("insurer").await);
    let hosted_app = app
        .paid_application("enterprise1", "bank", &tender.sections[0])
        .await;
    let hosted = bank.issue(&hosted_app).await;
    let external_app = app
        .paid_application("enterprise2", "insurer", &tender.sections[1])
        .await;
    let draft = insurer.draft(&external_app).await;
    let _external = insurer
        .upload_signature(&external_app, pki.sign(&draft.bytes, "insurer"))
        .await;

    // Editing: the name may change; a bond may be lowered (every bond bought still
    // covers it), never raised.
    agency
        .edit_project(&tender, &json!({ "name": "滨州港疏港路改建工程（二期）" }))
        .await;
    agency
        .edit_project(&tender, &json!({ "bond_amounts": { "A": "70000.00" } }))
        .await;
    let raised = agency
        .edit_project(&tender, &json!({ "bond_amounts": { "A": "75000.00" } }))
        .fails(422, "validation_failed")
        .await;
    assert_eq!(raised.field(), Some("bond_amounts.A"));

    // Postpone by a week.
    let new_deadline = (Utc::now() + TimeDelta::days(10)).to_rfc3339();
    let postponed = agency.postpone(&tender, &new_deadline).await;
    assert_eq!(postponed.amendments, "offered_to_bonds_in_force");
    let new_end = DateTime::parse_from_rfc3339(&postponed.project.bid_deadline).expect("time")
        + TimeDelta::days(60);
    let new_period = Expectations {
        valid_through: Some(new_end.to_rfc3339()),
    };

    // Version 1 does not cover the new period.
    let report = app
        .verify_expecting(&hosted, &hosted.code, &new_period)
        .await;
    assert_eq!(
        report.sub_indication.as_deref(),
        Some("EXPECTATION_MISMATCH"),
        "{report:?}"
    );

    // The bank signs its amendment with the hosted key; the insurer fetches version 2
    // of the draft and signs it in its own system.
    let amended = bank.issue(&hosted_app).await;
    assert_eq!(amended.guarantee.version, 2);
    assert_eq!(amended.code, hosted.code, "the code stays");
    let draft2 = insurer.draft(&external_app).await;
    assert_eq!(draft2.version, "2");
    let signature2 = pki.sign(&draft2.bytes, "insurer");
    let amended = insurer.upload_signature(&external_app, signature2).await;
    assert_eq!(amended.guarantee.version, 2);

    let report = app
        .verify_expecting(&hosted, &hosted.code, &new_period)
        .await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
    // Nothing is left to sign.
    bank.issue(&hosted_app)
        .fails(409, "invalid_transition")
        .await;
}

/// A genuine earlier version of an amended guarantee verifies as superseded (naming the
/// version that replaced it and when), never as a forgery; the current version passes.
async fn an_earlier_version_verifies_as_superseded_not_forged(app: TestApp) {
    TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-SUPERSEDED", 3))
        .await;
    let bank = app.as_issuer("bank").await;
    let application = app
        .paid_application("enterprise1", "bank", &tender.sections[0])
        .await;
    let bond = bank.issue(&application).await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let document1 = enterprise.download(&bond, "document").await;
    let signature1 = enterprise.download(&bond, "signature").await;
    let before = app.verify_documents(&document1, &signature1).await;
    assert_eq!(before.indication, "PASSED", "{before:?}");

    let new_deadline = (Utc::now() + TimeDelta::days(10)).to_rfc3339();
    agency.postpone(&tender, &new_deadline).await;
    let amended = bank.issue(&application).await;
    assert_eq!(amended.guarantee.version, 2);

    let report = app.verify_documents(&document1, &signature1).await;
    assert_eq!(report.indication, "INDETERMINATE", "{report:?}");
    assert_eq!(
        report.sub_indication.as_deref(),
        Some("SUPERSEDED"),
        "{report:?}"
    );
    assert!(
        report
            .check("registration")
            .explanation
            .contains("registered this exact"),
        "{report:?}"
    );
    let why = &report.check("status").explanation;
    assert!(
        why.contains("version 1") && why.contains("superseded by version 2 on 20"),
        "{why}"
    );
    assert!(!why.contains("not the registered"), "{why}");

    let document2 = enterprise.download(&bond, "document").await;
    let signature2 = enterprise.download(&bond, "signature").await;
    let current = app.verify_documents(&document2, &signature2).await;
    assert_eq!(current.indication, "PASSED", "{current:?}");
}

/// After a postponement the issued application shows the validity that is signed, and
/// the amendment waiting for a signature beside it; once signed, the new validity.
async fn views_show_what_is_signed_and_a_pending_amendment(app: TestApp) {
    TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let tender = agency
        .create_project(&NewTender::two_sections("BZ-PENDING", 3))
        .await;
    let bank = app.as_issuer("bank").await;
    let application = app
        .paid_application("enterprise1", "bank", &tender.sections[0])
        .await;
    let bond = bank.issue(&application).await;
    let path = format!("/api/v1/applications/{}", application.id);
    let guarantee_path = format!("/api/v1/guarantees/{}", bond.number);
    let issued: serde_json::Value = bank.get(&path).await;
    assert!(issued["pending_amendment"].is_null(), "{issued}");
    let signed_until = issued["valid_until"].clone();

    let new_deadline = (Utc::now() + TimeDelta::days(10)).to_rfc3339();
    agency.postpone(&tender, &new_deadline).await;
    let enterprise = app.as_enterprise("enterprise1").await;
    for view in [
        bank.get::<serde_json::Value>(&path).await,
        enterprise.get::<serde_json::Value>(&path).await,
    ] {
        assert_eq!(view["valid_until"], signed_until, "what is signed: {view}");
        let pending = &view["pending_amendment"];
        assert_eq!(pending["version"], 2, "{view}");
        assert_ne!(pending["valid_until"], signed_until, "{view}");
    }
    // The guarantee itself: version 1 and its validity, the amendment beside them.
    let guarantee: serde_json::Value = enterprise.get(&guarantee_path).await;
    assert_eq!(guarantee["version"], 1, "{guarantee}");
    assert_eq!(guarantee["valid_until"], signed_until, "{guarantee}");
    assert_eq!(guarantee["pending_amendment"]["version"], 2, "{guarantee}");
    let pending_until =
        bank.get::<serde_json::Value>(&path).await["pending_amendment"]["valid_until"].clone();

    bank.issue(&application).await;
    let amended: serde_json::Value = bank.get(&path).await;
    assert!(amended["pending_amendment"].is_null(), "{amended}");
    assert_eq!(amended["valid_until"], pending_until, "{amended}");
    let guarantee: serde_json::Value = enterprise.get(&guarantee_path).await;
    assert_eq!(guarantee["version"], 2, "{guarantee}");
    assert!(guarantee["pending_amendment"].is_null(), "{guarantee}");
}

crate::on_both_backends!(
    views_show_what_is_signed_and_a_pending_amendment,
    a_postponed_deadline_is_covered_by_signed_amendments,
    an_earlier_version_verifies_as_superseded_not_forged
);

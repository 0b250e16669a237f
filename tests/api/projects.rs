//! Tender projects: the agency creates them with their sections; amounts and parties
//! are checked; other agencies do not see them.

use chrono::{TimeDelta, Utc};
use serde_json::json;

use crate::fixtures::{Agency, NewOrg, NewSection, NewTender, NewUser, Tender};
use crate::helpers::{demo_uscc, uscc, TestApp};

/// A water works project with bids closing at 09:00 China time in ten days, and two
/// sections: `01` with this bond (and estimated price), `02` with a bond of 5000.5.
fn project(code: &str, bond: &str, price: Option<&str>) -> NewTender {
    let deadline = (Utc::now() + TimeDelta::days(10))
        .format("%Y-%m-%dT09:00:00+08:00")
        .to_string();
    NewTender {
        code: code.into(),
        name: "滨州市第二水厂扩建工程".into(),
        tenderee_uscc: demo_uscc("tenderee"),
        bid_deadline: deadline.clone(),
        bid_opening_at: deadline,
        bid_validity_days: 90,
        sections: vec![
            NewSection::new("01", "土建", bond, price),
            NewSection::new("02", "设备", "5000.5", None),
        ],
    }
}

fn codes(projects: Vec<Tender>) -> Vec<String> {
    projects.into_iter().map(|p| p.code).collect()
}

async fn the_agency_creates_a_project_with_sections(app: TestApp) {
    let agency = app.as_agency().await;
    let created = agency
        .create_project(&project("BZ-2026-W2", "100000", Some("5000000.00")))
        .await;
    assert_eq!(created.sections[0].bond_amount, "100000.00");
    assert_eq!(created.sections[0].bond_amount_in_words, "人民币壹拾万元整");
    assert_eq!(created.sections[1].bond_amount, "5000.50");
    assert!(created.bid_deadline.ends_with("+08:00"));
    agency.project(&created).await;

    // Another agency does not see it.
    let operator = app.as_operator().await;
    let other_org = operator
        .register_org(&NewOrg::new(
            "agency",
            "Other agency",
            &uscc("91371600AG0000099"),
        ))
        .await;
    let password = "another long password";
    operator
        .add_user(
            &NewUser::new(&other_org.id, "other.agency", "Other", "agency").password(password),
        )
        .await;
    let other = app.as_user::<Agency>("other.agency", password).await;
    other.project(&created).fails(404, "not_found").await;
    assert_eq!(other.projects().await.len(), 0);
}

async fn bad_amounts_are_refused_naming_the_field(app: TestApp) {
    let agency = app.as_agency().await;
    // A project of its own, so that the list compared below is not empty.
    agency
        .create_project(&project("BZ-GOOD", "1000.00", None))
        .await;
    let before = codes(agency.projects().await);
    assert!(before.iter().any(|c| c == "BZ-GOOD"), "{before:?}");
    for (bond, field) in [
        ("-100.00", "sections[0].bond_amount"),
        ("1e5", "sections[0].bond_amount"),
        ("100.001", "sections[0].bond_amount"),
        ("abc", "sections[0].bond_amount"),
        ("0", "sections[0].bond_amount"),
    ] {
        let error = agency
            .create_project(&project("BZ-BAD", bond, None))
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some(field), "{bond}: {error:?}");
    }
    // A bond above 2% of the estimated price breaks the legal cap.
    let error = agency
        .create_project(&project("BZ-CAP", "100000.01", Some("5000000.00")))
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("sections[0].bond_amount"));
    // Without an estimated price the CNY 800,000 ceiling still applies: the bond of
    // CNY 10,000,000,000,000 an attacker set is refused, and so is one a fen above.
    for bond in ["10000000000000.00", "800000.01"] {
        let error = agency
            .create_project(&project("BZ-CEIL", bond, None))
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some("sections[0].bond_amount"), "{bond}");
    }
    // A number instead of a decimal string is a type error.
    let mut p = serde_json::to_value(project("BZ-NUM", "100.00", None)).expect("json");
    p["sections"][0]["bond_amount"] = json!(100.5);
    agency.create_project(&p).fails(400, "invalid_json").await;
    // Nothing was created by any of them.
    assert_eq!(codes(agency.projects().await), before);
}

async fn the_tenderee_must_be_a_registered_tenderee(app: TestApp) {
    let agency = app.as_agency().await;
    let mut p = project("BZ-T1", "1000.00", None);
    p.tenderee_uscc = "91371600TE000000".into();
    let error = agency
        .create_project(&p)
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("tenderee_uscc"));
    p.tenderee_uscc = demo_uscc("enterprise1");
    let error = agency
        .create_project(&p)
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("tenderee_uscc"));
}

async fn only_agencies_create_projects(app: TestApp) {
    let enterprise = app.as_enterprise("enterprise1").await;
    enterprise
        .acting_as::<Agency>()
        .create_project(&project("BZ-E1", "1000.00", None))
        .fails(403, "forbidden")
        .await;
}

crate::on_both_backends!(
    the_agency_creates_a_project_with_sections,
    bad_amounts_are_refused_naming_the_field,
    the_tenderee_must_be_a_registered_tenderee,
    only_agencies_create_projects,
);

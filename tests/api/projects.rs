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

/// An enterprise finds what it can still bid on: projects whose deadline is ahead,
/// narrowed by code or name, tenderee and deadline day; never a project whose bids
/// have closed, and nothing about who applied. It also finds the issuers that can
/// issue today (those with a signing certificate in force).
async fn an_enterprise_lists_open_projects_and_active_issuers(app: TestApp) {
    let _pki = crate::fixtures::TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let soon = agency
        .create_project(&NewTender::two_sections("BZ-OPEN-SOON", 2))
        .await;
    let mut later = project("BZ-OPEN-LATER", "1000.00", None);
    later.name = "黄河大桥维修".into();
    let later = agency.create_project(&later).await;
    let enterprise = app.as_enterprise("enterprise1").await;
    // (The demo tender is open too; these tests look at their own.)
    let ours = |listed: Vec<Tender>| -> Vec<String> {
        codes(listed)
            .into_iter()
            .filter(|c| c.starts_with("BZ-OPEN"))
            .collect()
    };
    let listed: Vec<Tender> = enterprise.get("/api/v1/projects").await;
    assert_eq!(ours(listed), ["BZ-OPEN-SOON", "BZ-OPEN-LATER"]);

    // By part of the code (case ignored) or of the name.
    let found: Vec<Tender> = enterprise.get("/api/v1/projects?q=open-l").await;
    assert_eq!(codes(found), ["BZ-OPEN-LATER"]);
    let found: Vec<Tender> = enterprise
        .get("/api/v1/projects?q=%E5%A4%A7%E6%A1%A5")
        .await;
    assert_eq!(codes(found), ["BZ-OPEN-LATER"]);
    // A `%` typed is a percent sign, not "anything".
    let found: Vec<Tender> = enterprise.get("/api/v1/projects?q=%25").await;
    assert!(found.is_empty());
    // By tenderee name and deadline day (China dates, both ends included).
    let found: Vec<Tender> = enterprise
        .get(&format!(
            "/api/v1/projects?tenderee={}",
            urlencode("城市建设")
        ))
        .await;
    assert_eq!(ours(found), ["BZ-OPEN-SOON", "BZ-OPEN-LATER"]);
    let found: Vec<Tender> = enterprise
        .get("/api/v1/projects?tenderee=nobody-at-all")
        .await;
    assert!(found.is_empty());
    let soon_day = &soon.bid_deadline[..10];
    let later_day = &later.bid_deadline[..10];
    let found: Vec<Tender> = enterprise
        .get(&format!(
            "/api/v1/projects?deadline_from={later_day}&deadline_to={later_day}"
        ))
        .await;
    assert_eq!(ours(found), ["BZ-OPEN-LATER"]);
    let found: Vec<Tender> = enterprise
        .get(&format!("/api/v1/projects?deadline_to={soon_day}"))
        .await;
    assert_eq!(ours(found), ["BZ-OPEN-SOON"]);
    let error = enterprise
        .get::<Vec<Tender>>("/api/v1/projects?deadline_from=yesterday")
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("deadline_from"));

    // The issuers that can issue: both of the test PKI's, by kind.
    let issuers: Vec<serde_json::Value> = enterprise.get("/api/v1/issuers").await;
    let kinds: Vec<(&str, &str)> = issuers
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap_or(""),
                i["kind"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(kinds.contains(&("滨州城市商业银行", "bank")), "{issuers:?}");
    assert!(kinds
        .iter()
        .all(|(_, k)| ["bank", "insurer", "guarantor"].contains(k)));
    // Names, kinds and published premium terms only: nothing of who applies to them.
    assert!(issuers.iter().all(|i| i.as_object().is_some_and(|o| {
        o.keys()
            .all(|k| ["id", "name", "kind", "premium_terms"].contains(&k.as_str()))
    })));

    // Once the first deadline passes, that project is no longer offered.
    app.advance_clock(TimeDelta::days(3));
    // (Sessions do not last that long: sign in again.)
    let enterprise = app.as_enterprise("enterprise1").await;
    let agency = app.as_agency().await;
    let listed: Vec<Tender> = enterprise.get("/api/v1/projects").await;
    assert_eq!(ours(listed), ["BZ-OPEN-LATER"]);
    // The agency still sees both of its own.
    let own = agency.projects().await;
    assert_eq!(ours(own), ["BZ-OPEN-SOON", "BZ-OPEN-LATER"]);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

crate::on_both_backends!(
    an_enterprise_lists_open_projects_and_active_issuers,
    the_agency_creates_a_project_with_sections,
    bad_amounts_are_refused_naming_the_field,
    the_tenderee_must_be_a_registered_tenderee,
    only_agencies_create_projects,
);

//! Projects from an agency's trading platform (交易平台): the platform sends the whole
//! project under its own code with `PUT /projects/by-code/{code}`, again whenever it
//! changes, and retries; a re-sent project is the same project. Enterprises find a
//! tender by that code.

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};

use crate::fixtures::{all_at_once, Agency, ApiToken, NewSection, NewTender, Session, TestPki};
use crate::helpers::{demo_uscc, TestApp};

/// The road project under `code`, bids closing in `days`, sections A and B.
fn tender(code: &str, days: i64) -> NewTender {
    NewTender::two_sections(code, days)
}

/// The same instant as `time`, written in UTC instead of China time.
fn in_utc(time: &str) -> String {
    DateTime::parse_from_rfc3339(time)
        .expect("RFC 3339")
        .with_timezone(&Utc)
        .to_rfc3339()
}

/// The project as the agency sees it, every field.
async fn snapshot(agency: &Session<'_, Agency>, code: &str) -> Value {
    agency
        .get(&format!("/api/v1/projects/by-code/{code}"))
        .await
}

/// How many audit entries of `action` are about the project `id`.
async fn audited(app: &TestApp, action: &'static str, id: &str) -> usize {
    app.audited(action)
        .await
        .iter()
        .filter(|entity| *entity == id)
        .count()
}

/// How many projects have `code`, and how many sections they have, in the database.
async fn stored(app: &TestApp, code: &str) -> (i64, i64) {
    use baohan::db::schema::{projects, sections};
    let code = code.to_owned();
    app.db(move |c| {
        let projects: i64 = projects::table
            .filter(projects::code.eq(&code))
            .count()
            .get_result(c)
            .expect("count");
        let sections: i64 = sections::table
            .inner_join(projects::table)
            .filter(projects::code.eq(&code))
            .count()
            .get_result(c)
            .expect("count");
        (projects, sections)
    })
    .await
}

async fn a_resent_project_is_the_same_project(app: TestApp) {
    let agency = app.as_agency().await;
    let sent = tender("PF-2026-001", 5);
    let created = agency.put_new_project(&sent.code, &sent).await;
    assert_eq!(created.outcome, "created");
    assert_eq!(created.project.code, "PF-2026-001");
    assert_eq!(created.project.sections.len(), 2);
    let before = snapshot(&agency, &sent.code).await;

    // Sent again as it was; without the code in the body; with the times in UTC.
    let again = agency.put_project(&sent.code, &sent).await;
    assert_eq!(again.outcome, "unchanged");
    assert_eq!(again.project.id, created.project.id);
    let mut body = serde_json::to_value(&sent).expect("json");
    body.as_object_mut().expect("object").remove("code");
    body["bid_deadline"] = json!(in_utc(&sent.bid_deadline));
    body["bid_opening_at"] = json!(in_utc(&sent.bid_opening_at));
    let again = agency.put_project(&sent.code, &body).await;
    assert_eq!(again.outcome, "unchanged");

    // One project, as it was, created once and never updated.
    assert_eq!(stored(&app, &sent.code).await, (1, 2));
    assert_eq!(snapshot(&agency, &sent.code).await, before);
    assert_eq!(
        audited(&app, "create_project", &created.project.id).await,
        1
    );
    assert_eq!(
        audited(&app, "update_project", &created.project.id).await,
        0
    );

    // A code in the body that is not the path's is refused.
    let mut other = sent.clone();
    other.code = "PF-2026-002".into();
    let error = agency
        .put_project("PF-2026-001", &other)
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("code"));
    assert_eq!(stored(&app, "PF-2026-002").await, (0, 0));
}

async fn a_resent_project_changes_names_lowers_bonds_and_adds_sections(app: TestApp) {
    let agency = app.as_agency().await;
    let mut sent = tender("PF-2026-010", 5);
    let created = agency.put_new_project(&sent.code, &sent).await;

    sent.name = "滨州港疏港路改建工程（二期）".into();
    sent.sections[0].name = "路基及排水".into();
    sent.sections[0].bond_amount = "70000.00".into();
    sent.sections.push(NewSection::new(
        "C",
        "交通设施",
        "20000.00",
        Some("1000000.00"),
    ));
    let updated = agency.put_project(&sent.code, &sent).await;
    assert_eq!(updated.outcome, "updated");
    assert_eq!(updated.project.id, created.project.id);

    let seen: Value = agency
        .get(&format!("/api/v1/projects/{}", created.project.id))
        .await;
    assert_eq!(seen["name"], "滨州港疏港路改建工程（二期）");
    let sections: Vec<(&str, &str, &str)> = seen["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|s| {
            (
                s["code"].as_str().unwrap_or_default(),
                s["name"].as_str().unwrap_or_default(),
                s["bond_amount"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        sections,
        [
            ("A", "路基及排水", "70000.00"),
            ("B", "桥梁", "50000.00"),
            ("C", "交通设施", "20000.00"),
        ]
    );
    // The sections kept their ids: bonds bought for them still name them.
    for old in &created.project.sections {
        assert!(
            updated.project.sections.iter().any(|s| s.id == old.id),
            "{old:?}"
        );
    }
    assert_eq!(
        audited(&app, "update_project", &created.project.id).await,
        1
    );
    // The same again changes nothing more.
    let again = agency.put_project(&sent.code, &sent).await;
    assert_eq!(again.outcome, "unchanged");
    assert_eq!(
        audited(&app, "update_project", &created.project.id).await,
        1
    );

    // An estimated price may change where the bond stays within 2% of it.
    sent.sections[0].estimated_price = Some("3500000.00".into());
    let priced = agency.put_project(&sent.code, &sent).await;
    assert_eq!(priced.outcome, "updated");
    sent.sections[0].estimated_price = Some("3000000.00".into());
    let error = agency
        .put_project(&sent.code, &sent)
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("sections[0].bond_amount"));
}

/// Each refused re-send leaves the project exactly as it was, and audits nothing.
async fn a_refused_resend_changes_nothing(app: TestApp) {
    let agency = app.as_agency().await;
    let sent = tender("PF-2026-020", 5);
    let created = agency.put_new_project(&sent.code, &sent).await;
    let id = created.project.id.clone();
    let before = snapshot(&agency, &sent.code).await;
    let earlier = (Utc::now() + TimeDelta::days(4)).to_rfc3339();
    let later = (Utc::now() + TimeDelta::days(9)).to_rfc3339();

    type Change = fn(&mut NewTender, &str, &str);
    let refusals: [(&str, Change, &str); 8] = [
        (
            "a raised bond",
            |t, _, _| t.sections[1].bond_amount = "50000.01".into(),
            "sections[1].bond_amount",
        ),
        (
            "a lowered bond beside a raised one",
            |t, _, _| {
                t.sections[0].bond_amount = "1000.00".into();
                t.sections[1].bond_amount = "60000.00".into();
            },
            "sections[1].bond_amount",
        ),
        (
            "a section left out, with a new name",
            |t, _, _| {
                t.name = "改名".into();
                t.sections.remove(1);
            },
            "sections",
        ),
        (
            "another tenderee",
            |t, _, _| t.tenderee_uscc = demo_uscc("enterprise1"),
            "tenderee_uscc",
        ),
        (
            "another bid validity period",
            |t, _, _| t.bid_validity_days = 90,
            "bid_validity_days",
        ),
        (
            "an earlier deadline",
            |t, earlier, _| {
                t.bid_deadline = earlier.into();
                t.bid_opening_at = earlier.into();
            },
            "bid_deadline",
        ),
        (
            "the opening moved alone",
            |t, _, later| t.bid_opening_at = later.into(),
            "bid_opening_at",
        ),
        (
            "a later deadline with bids opening before it",
            |t, _, later| t.bid_deadline = later.into(),
            "bid_opening_at",
        ),
    ];
    for (what, change, field) in refusals {
        let mut changed = sent.clone();
        change(&mut changed, &earlier, &later);
        let error = agency
            .put_project(&sent.code, &changed)
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some(field), "{what}: {error:?}");
        assert_eq!(snapshot(&agency, &sent.code).await, before, "{what}");
    }
    assert!(agency
        .put_project(&sent.code, &{
            let mut t = sent.clone();
            t.sections.remove(0);
            t
        })
        .fails(422, "validation_failed")
        .await
        .message
        .contains("cannot be withdrawn"));
    assert_eq!(stored(&app, &sent.code).await, (1, 2));
    for action in ["update_project", "postpone"] {
        assert_eq!(audited(&app, action, &id).await, 0, "{action}");
    }
}

/// A later deadline is a postponement (延标): the bond in force is offered an
/// amendment. Once bids have closed, only the same project may be sent again.
async fn a_later_deadline_postpones_and_offers_amendments(app: TestApp) {
    TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let mut sent = tender("PF-2026-030", 3);
    let created = agency.put_new_project(&sent.code, &sent).await;
    let bond = app
        .issued_bond("enterprise1", &created.project.sections[0])
        .await;

    let later = (Utc::now() + TimeDelta::days(10)).to_rfc3339();
    sent.bid_deadline = later.clone();
    sent.bid_opening_at = later.clone();
    let postponed = agency.put_project(&sent.code, &sent).await;
    assert_eq!(postponed.outcome, "updated");
    let moved = DateTime::parse_from_rfc3339(&postponed.project.bid_deadline).expect("time");
    assert_eq!(
        moved.timestamp(),
        DateTime::parse_from_rfc3339(&later)
            .expect("time")
            .timestamp()
    );
    assert_eq!(audited(&app, "postpone", &created.project.id).await, 1);
    assert_eq!(
        audited(&app, "update_project", &created.project.id).await,
        0
    );
    let guarantee: Value = app
        .as_enterprise("enterprise1")
        .await
        .get(&format!("/api/v1/guarantees/{}", bond.number))
        .await;
    assert_eq!(guarantee["version"], 1, "{guarantee}");
    assert_eq!(guarantee["pending_amendment"]["version"], 2, "{guarantee}");
    // Sent again: postponed once.
    let again = agency.put_project(&sent.code, &sent).await;
    assert_eq!(again.outcome, "unchanged");
    assert_eq!(audited(&app, "postpone", &created.project.id).await, 1);

    // Bids have closed: the same project is still accepted, a change is not.
    app.advance_clock(TimeDelta::days(11));
    let agency = app.as_agency().await;
    let before = snapshot(&agency, &sent.code).await;
    let again = agency.put_project(&sent.code, &sent).await;
    assert_eq!(again.outcome, "unchanged");
    let mut renamed = sent.clone();
    renamed.name = "过了截止时间".into();
    agency
        .put_project(&sent.code, &renamed)
        .fails(409, "conflict")
        .await;
    assert_eq!(snapshot(&agency, &sent.code).await, before);
}

async fn another_agency_cannot_take_a_code(app: TestApp) {
    let agency = app.as_agency().await;
    let sent = tender("PF-2026-040", 5);
    let created = agency.put_new_project(&sent.code, &sent).await;
    let before = snapshot(&agency, &sent.code).await;

    let other = app.new_agency(2).await;
    let mut theirs = sent.clone();
    theirs.name = "另一家代理的项目".into();
    for body in [&sent, &theirs] {
        let error = other
            .put_project(&sent.code, body)
            .fails(409, "conflict")
            .await;
        assert!(
            error.message.contains("belongs to another agency"),
            "{error:?}"
        );
    }
    assert_eq!(snapshot(&agency, &sent.code).await, before);
    assert_eq!(
        audited(&app, "update_project", &created.project.id).await,
        0
    );
    // Nor may anyone but an agency send projects.
    app.as_enterprise("enterprise1")
        .await
        .acting_as::<Agency>()
        .put_project(&sent.code, &sent)
        .fails(403, "forbidden")
        .await;
}

/// Thirty copies of a new project at once (a platform retrying): one project with its
/// sections, created once; every answer a success. Then thirty again, half of them the
/// plain `POST /projects` a person sends: still one project.
async fn thirty_puts_at_once_make_one_project(app: TestApp) {
    let agency = app.as_agency().await;
    let sent = tender("PF-2026-050", 5);
    let path = format!("/api/v1/projects/by-code/{}", sent.code);
    let answers =
        all_at_once((0..30).map(|_| agency.request(Method::PUT, &path).json(&sent))).await;
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(created, 1, "{answers:?}");
    assert!(
        answers.iter().all(|(s, _)| [200, 201].contains(s)),
        "{answers:?}"
    );
    let ids: std::collections::BTreeSet<&str> = answers
        .iter()
        .map(|(_, body)| body["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert!(answers
        .iter()
        .all(|(s, body)| body["outcome"] == if *s == 201 { "created" } else { "unchanged" }));
    assert_eq!(stored(&app, &sent.code).await, (1, 2));
    let id = ids.into_iter().next().unwrap_or_default().to_owned();
    assert_eq!(audited(&app, "create_project", &id).await, 1);
    assert_eq!(audited(&app, "update_project", &id).await, 0);

    let sent = tender("PF-2026-051", 5);
    let path = format!("/api/v1/projects/by-code/{}", sent.code);
    let answers = all_at_once((0..30).map(|n| {
        if n % 2 == 0 {
            agency.request(Method::PUT, &path).json(&sent)
        } else {
            agency.request(Method::POST, "/api/v1/projects").json(&sent)
        }
    }))
    .await;
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 201).count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|(s, body)| match s {
            200 => body["outcome"] == "unchanged",
            201 => true,
            // Only the plain POST refuses a code that exists.
            409 => body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("already exists") || m.contains("meanwhile")),
            _ => false,
        }),
        "{answers:?}"
    );
    assert_eq!(stored(&app, &sent.code).await, (1, 2));
}

/// Enterprises and issuers find a tender by the platform's code; another agency, like
/// anyone asking for a code nobody uses, finds nothing, in the same words.
async fn a_project_is_found_by_its_code(app: TestApp) {
    let agency = app.as_agency().await;
    let sent = tender("PF-2026-060", 5);
    let created = agency.put_new_project(&sent.code, &sent).await;
    for found in [
        app.as_enterprise("enterprise1")
            .await
            .project_by_code(&sent.code)
            .await,
        app.as_issuer("bank")
            .await
            .project_by_code(&sent.code)
            .await,
        agency.project_by_code(&sent.code).await,
    ] {
        assert_eq!(found.id, created.project.id);
        assert_eq!(found.sections.len(), 2);
    }

    let other = app.new_agency(3).await;
    let hidden = other
        .project_by_code(&sent.code)
        .fails(404, "not_found")
        .await;
    let missing = other
        .project_by_code("PF-NOBODY")
        .fails(404, "not_found")
        .await;
    assert_eq!(
        (&hidden.message, hidden.field()),
        (&missing.message, missing.field())
    );
    app.signed_out()
        .project_by_code(&sent.code)
        .fails(401, "unauthenticated")
        .await;
}

/// The platform is a machine client: an API token of an agency user.
async fn a_platform_sends_projects_with_an_api_token(app: TestApp) {
    let agency = app.as_agency().await;
    let made: ApiToken = agency
        .post("/api/v1/auth/tokens", &json!({ "name": "交易平台" }), 201)
        .await;
    let platform = app.with_token(&made.token).acting_as::<Agency>();
    let mut sent = tender("PF-2026-070", 5);
    let created = platform.put_new_project(&sent.code, &sent).await;
    assert_eq!(created.outcome, "created");
    sent.sections[1].bond_amount = "40000.00".into();
    let updated = platform.put_project(&sent.code, &sent).await;
    assert_eq!(updated.outcome, "updated");
    // The project is the agency's: its people see it.
    let seen = agency.project(&created.project).await;
    assert_eq!(seen.sections[1].bond_amount, "40000.00");
}

async fn malformed_platform_bodies_are_refused(app: TestApp) {
    let agency = app.as_agency().await;
    let sent = tender("PF-2026-080", 5);
    let path = format!("/api/v1/projects/by-code/{}", sent.code);
    let mut unknown = serde_json::to_value(&sent).expect("json");
    unknown["sections"][0]["bond"] = json!("1.00");
    let mut bad_time = serde_json::to_value(&sent).expect("json");
    bad_time["bid_deadline"] = json!("2026-02-30T09:00:00+08:00");
    let mut number = serde_json::to_value(&sent).expect("json");
    number["bid_validity_days"] = json!("sixty");
    let mut no_offset = serde_json::to_value(&sent).expect("json");
    no_offset["bid_opening_at"] = json!("2030-01-01T09:00:00");
    for (body, status, code, field) in [
        (unknown, 400, "invalid_json", None),
        (number, 400, "invalid_json", None),
        (bad_time, 422, "validation_failed", Some("bid_deadline")),
        (no_offset, 422, "validation_failed", Some("bid_opening_at")),
    ] {
        let error = agency
            .send(Method::PUT, &path, Some(&body))
            .fails(status, code)
            .await;
        if field.is_some() {
            assert_eq!(error.field(), field, "{error:?}");
        }
    }
    // A code that is no code (a space in it, percent-encoded in the path).
    let mut spaced = sent.clone();
    spaced.code = "PF SPACE".into();
    let error = agency
        .put_project("PF%20SPACE", &spaced)
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("code"));
    assert_eq!(stored(&app, &sent.code).await, (0, 0));
}

crate::on_both_backends!(
    a_resent_project_is_the_same_project,
    a_resent_project_changes_names_lowers_bonds_and_adds_sections,
    a_refused_resend_changes_nothing,
    a_later_deadline_postpones_and_offers_amendments,
    another_agency_cannot_take_a_code,
    thirty_puts_at_once_make_one_project,
    a_project_is_found_by_its_code,
    a_platform_sends_projects_with_an_api_token,
    malformed_platform_bodies_are_refused,
);

//! Invariants the database holds: one live application per enterprise and section
//! (an application whose guarantee ended no longer counts), and guarantee numbers from
//! a counter row, never reused, under parallel requests.

use std::collections::HashSet;

use chrono::{TimeDelta, Utc};
use serde_json::{json, Value};

use crate::fixtures::{all_at_once, NewClaim, NewOrg, NewTender, Party, TestPki};
use crate::helpers::{uscc, TestApp};

/// A bond the bidder cancelled (退保) before the deadline, or one the issuer revoked,
/// no longer holds the bidder's place: it may apply again for the section; while the
/// bond is in force it may not.
async fn an_ended_bond_frees_the_section_for_a_new_application(app: TestApp) {
    TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-LIVE", 3))
        .await;
    let section = &tender.sections[0];
    let enterprise = app.as_enterprise("enterprise1").await;
    let bank = app.as_issuer("bank").await;

    let bond = app.issued_bond("enterprise1", section).await;
    let refused = enterprise
        .apply(section, &bank)
        .fails(409, "conflict")
        .await;
    assert!(
        refused.message.contains("already have an application"),
        "{refused:?}"
    );

    // Cancelled by the bidder before the deadline.
    let _: Value = enterprise
        .post(
            &format!("/api/v1/guarantees/{}/cancel", bond.number),
            &json!({}),
            200,
        )
        .await;
    let again = enterprise.apply(section, &bank).await;
    assert_eq!(again.status, "submitted");

    // Revoked by the issuer: the bidder may apply once more.
    bank.approve(&again, "960.00").await;
    bank.confirm_payment(&again).await;
    let second = bank.issue(&again).await;
    enterprise
        .apply(section, &bank)
        .fails(409, "conflict")
        .await;
    let _: Value = bank
        .post(
            &format!("/api/v1/guarantees/{}/revoke", second.number),
            &json!({ "reason": "issued in error" }),
            200,
        )
        .await;
    let third = enterprise.apply(section, &bank).await;
    assert_eq!(third.status, "submitted");

    // The new application holds the place again.
    enterprise
        .apply(section, &bank)
        .fails(409, "conflict")
        .await;
}

/// Thirty parallel applications by one enterprise for one section: exactly one is
/// created, the others are refused with a 409 that names no database object.
async fn thirty_parallel_applications_create_exactly_one(app: TestApp) {
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-APPLY-RACE", 3))
        .await;
    let section_id = tender.sections[0].id.clone();
    let enterprise = app.as_enterprise("enterprise1").await;
    let bank = app.as_issuer("bank").await;
    let body = json!({ "section_id": section_id, "issuer_id": bank.org_id() });

    let answers = all_at_once((0..30).map(|_| {
        reqwest::Client::new()
            .post(app.url("/api/v1/applications"))
            .bearer_auth(&enterprise.token)
            .json(&body)
    }))
    .await;
    let mut created = 0;
    for (status, body) in answers {
        match status {
            201 => created += 1,
            409 => {
                assert_eq!(body["error"]["code"], "conflict", "{body}");
                let message = body["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("already have an application"), "{body}");
                assert!(!message.contains("applications_"), "{body}");
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created, 1, "exactly one application is created");
    let mine: Vec<Value> = enterprise.get("/api/v1/applications").await;
    let for_section = mine
        .iter()
        .filter(|a| a["section"]["id"] == section_id.as_str())
        .count();
    assert_eq!(for_section, 1, "{mine:?}");
}

/// The database itself refuses a second live application for one enterprise and
/// section (the partial unique index), whatever the service checks; a row that is not
/// live is no obstacle.
async fn the_database_refuses_a_second_live_application(app: TestApp) {
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-INDEX", 3))
        .await;
    let bank = app.as_issuer("bank").await;
    let application = app
        .as_enterprise("enterprise1")
        .await
        .apply(&tender.sections[0], &bank)
        .await;
    let refused = app.copy_application(&application.id, true).await;
    assert!(
        matches!(
            refused,
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        ),
        "{refused:?}"
    );
    assert_eq!(
        app.copy_application(&application.id, false).await.ok(),
        Some(1)
    );
}

/// A database from before the rule, where the old race left an enterprise two live
/// applications for one section, upgrades: one stays live (the one furthest along),
/// the other no longer counts, and the index holds from then on.
async fn an_upgrade_over_duplicate_live_applications_keeps_one_live(app: TestApp) {
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-UPGRADE", 3))
        .await;
    let bank = app.as_issuer("bank").await;
    let application = app
        .as_enterprise("enterprise1")
        .await
        .apply(&tender.sections[0], &bank)
        .await;
    let _: Value = bank
        .post(
            &format!("/api/v1/applications/{}/approve", application.id),
            &json!({ "premium": "800.00" }),
            200,
        )
        .await;
    app.revert_migrations_from("2026-12-04-000020").await;
    // The duplicate the race made: newer, but only submitted.
    app.execute_sql(format!(
        "INSERT INTO applications (id, enterprise_id, section_id, issuer_id, kind, amount_fen, \
         valid_from, valid_until, status, premium_fen, decline_reason, created_by, created_at, \
         updated_at) SELECT id || '-race', enterprise_id, section_id, issuer_id, kind, \
         amount_fen, valid_from, valid_until, 'submitted', NULL, NULL, created_by, updated_at, \
         updated_at FROM applications WHERE id = '{}'",
        application.id
    ))
    .await;
    app.migrate()
        .await
        .expect("the upgrade runs over the duplicate");

    let live = app
        .db(|c| {
            use baohan::db::schema::applications;
            use diesel::prelude::*;
            applications::table
                .filter(applications::live.eq(true))
                .select(applications::id)
                .load::<String>(c)
                .expect("applications")
        })
        .await;
    assert_eq!(
        live,
        std::slice::from_ref(&application.id),
        "the approved one stays live"
    );
    let refused = app.copy_application(&application.id, true).await;
    assert!(refused.is_err(), "the index holds after the upgrade");
}

/// Thirty paid applications issued in parallel by one issuer: every issue succeeds
/// (no 409 naming a constraint for a valid request) and the thirty numbers carry
/// thirty distinct sequence numbers.
async fn thirty_parallel_issues_by_one_issuer_get_distinct_numbers(app: TestApp) {
    TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let bank = app.as_issuer("bank").await;
    let mut paid = Vec::new();
    for i in 0..15 {
        let tender = agency
            .create_project(&NewTender::two_sections(&format!("BZ-NUM-{i}"), 3))
            .await;
        // Two bidders: an enterprise may have at most 20 applications waiting.
        for (section, bidder) in tender.sections.iter().zip(["enterprise1", "enterprise2"]) {
            paid.push(app.paid_application(bidder, "bank", section).await);
        }
    }
    assert_eq!(paid.len(), 30);

    let answers = all_at_once(paid.iter().map(|application| {
        reqwest::Client::new()
            .post(app.url(&format!("/api/v1/applications/{}/issue", application.id)))
            .bearer_auth(&bank.token)
            .json(&json!({}))
    }))
    .await;
    let mut numbers = HashSet::new();
    for (status, body) in answers {
        assert_eq!(status, 201, "{body}");
        numbers.insert(sequence(
            body["guarantee"]["number"].as_str().expect("number"),
        ));
    }
    assert_eq!(
        numbers.len(),
        30,
        "thirty distinct sequence numbers: {numbers:?}"
    );
}

/// The sequence (6 digits) of a guarantee number: after `BH`, the date and the issuer
/// code.
fn sequence(number: &str) -> String {
    number[14..20].to_owned()
}

/// A postponement deletes the drafts of open applications. The next number must not
/// be one already given: with numbers counted from today's drafts, every issue by the
/// issuer failed for the rest of the day.
async fn numbers_are_not_reused_after_a_postponement_deletes_drafts(app: TestApp) {
    TestPki::set_up(&app).await;
    let agency = app.as_agency().await;
    let bank = app.as_issuer("bank").await;
    let first = agency
        .create_project(&NewTender::two_sections("BZ-POSTPONE-A", 3))
        .await;
    let second = agency
        .create_project(&NewTender::two_sections("BZ-POSTPONE-B", 3))
        .await;
    // A draft (number 1) on the first tender, a bond (number 2) on the second.
    let drafted = app
        .paid_application("enterprise1", "bank", &first.sections[0])
        .await;
    bank.draft(&drafted).await;
    let issued = app
        .paid_application("enterprise1", "bank", &second.sections[0])
        .await;
    let bond = bank.issue(&issued).await;
    // Postponing the first tender deletes the draft.
    let later = (Utc::now() + TimeDelta::days(10)).to_rfc3339();
    agency.postpone(&first, &later).await;

    let mut seen = HashSet::from([sequence(&bond.number)]);
    for section in [&second.sections[1], &first.sections[1]] {
        let application = app.paid_application("enterprise1", "bank", section).await;
        let bond = bank.issue(&application).await;
        assert!(
            seen.insert(sequence(&bond.number)),
            "{} reused",
            bond.number
        );
    }
    let redrafted = bank.issue(&drafted).await;
    assert!(
        seen.insert(sequence(&redrafted.number)),
        "{} reused",
        redrafted.number
    );
}

/// Thirty parallel registrations of one credit code: one is made, the others are
/// refused with a 409 whose message names no constraint, table or column, whichever
/// of the service's check or the database's unique index stops them.
async fn a_lost_race_names_no_database_object(app: TestApp) {
    let operator = app.as_operator().await;
    let code = uscc("91371600MA3CQ0777");
    let body = serde_json::to_value(NewOrg::new("enterprise", "滨州并发建工有限公司", &code))
        .expect("json");
    let answers = all_at_once((0..30).map(|_| {
        reqwest::Client::new()
            .post(app.url("/api/v1/organizations"))
            .bearer_auth(&operator.token)
            .json(&body)
    }))
    .await;
    let mut created = 0;
    for (status, body) in answers {
        match status {
            201 => created += 1,
            409 => {
                let text = body.to_string().to_lowercase();
                for secret in ["constraint", "organizations", "_key", "unique", "duplicate"] {
                    assert!(!text.contains(secret), "{secret}: {body}");
                }
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created, 1);
}

/// The winner's bond is under claim when the agency records the contract: the contract
/// is refused (it used to answer `released: []`, leaving the bond unreleasable once the
/// claim was rejected); after the rejection it releases the bond, and it is audited.
async fn no_contract_while_the_winners_bond_is_under_claim(app: TestApp) {
    TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-CONTRACT", 2))
        .await;
    let section = &tender.sections[0];
    let bond = app.issued_bond("enterprise1", section).await;
    app.advance_clock(TimeDelta::days(2) + TimeDelta::hours(1));
    let agency = app.as_agency().await;
    let enterprise = app.as_enterprise("enterprise1").await;
    agency.accept(&bond).await;
    agency.award(&tender, section, &enterprise).await;
    let claim = agency
        .claim(
            &bond,
            &NewClaim::new("refused_to_sign_contract", "中标后拒签合同", "1000.00"),
        )
        .await;

    let refused = agency
        .contract_signed(&tender, section)
        .fails(409, "conflict")
        .await;
    assert!(refused.message.contains("under claim"), "{refused:?}");
    assert!(app.audited("contract_signed").await.is_empty());

    let decided: crate::fixtures::Claim = app
        .as_issuer("bank")
        .await
        .post(
            &format!("/api/v1/claims/{}/decision", claim.id),
            &json!({ "decision": "reject", "reason": "合同已签订" }),
            200,
        )
        .await;
    assert_eq!(decided.status, "rejected");
    let contract = agency.contract_signed(&tender, section).await;
    assert_eq!(contract.released, std::slice::from_ref(&bond.number));
    assert_eq!(agency.guarantee(&bond).await.status, "released");
    assert_eq!(
        app.audited("contract_signed").await,
        vec![section.id.clone()]
    );
}

crate::on_both_backends!(
    an_ended_bond_frees_the_section_for_a_new_application,
    thirty_parallel_applications_create_exactly_one,
    the_database_refuses_a_second_live_application,
    an_upgrade_over_duplicate_live_applications_keeps_one_live,
    thirty_parallel_issues_by_one_issuer_get_distinct_numbers,
    numbers_are_not_reused_after_a_postponement_deletes_drafts,
    a_lost_race_names_no_database_object,
    no_contract_while_the_winners_bond_is_under_claim,
);

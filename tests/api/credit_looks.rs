//! Who looked at my credit (PIPL), attacked: the credit office's reads and an
//! underwriting issuer's read each appear in the subject's list with the organization
//! and the purpose, the subject's own reads never; another issuer, the agency, the
//! operator, the applicant itself and the issuer of an application it no longer
//! underwrites see no credit and log nothing; the issuer sees a negative record with its
//! points and the level move both ways; thirty first looks at once make one archive and
//! thirty looks; the list carries no user id, and a look by resident ID stores no
//! resident ID.

use reqwest::Method;
use serde_json::json;

use crate::fixtures::credit::NewCreditRecord;
use crate::fixtures::library::resident_id;
use crate::fixtures::{all_at_once, NewTender, Party};
use crate::helpers::{demo_uscc, TestApp};
use crate::pages_ei::Visitor;

fn category_points(code: &str) -> i32 {
    baohan::domain::catalogue::seed_categories(baohan::domain::catalogue::RECORD_CATEGORIES_TOML)
        .expect("categories")
        .into_iter()
        .find(|(c, _)| c == code)
        .map(|(_, c)| c.points)
        .expect(code)
}

fn base_score() -> i32 {
    baohan::domain::credit::LevelsConfig::shipped()
        .expect("levels")
        .base_score
}

/// enterprise1's application to `issuer` for the first section of a new tender.
async fn application_to(app: &TestApp, issuer: &str, code: &str) -> String {
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections(code, 3))
        .await;
    let issuer = app.as_issuer(issuer).await;
    app.as_enterprise("enterprise1")
        .await
        .apply(&tender.sections[0], &issuer)
        .await
        .id
}

async fn the_office_and_the_underwriting_issuer_are_listed_and_the_subjects_own_reads_are_not(
    app: TestApp,
) {
    let office = app.as_operator().await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let penalty =
        NewCreditRecord::enterprise(&demo_uscc("enterprise1"), "administrative_penalty", "L-1");
    let subject = office.post_record(&penalty).await.subject.id;

    // The subject reads its own archive: no look.
    enterprise.credit_me().await;
    enterprise.credit_me().await;
    assert!(enterprise.credit_looks().await.is_empty());
    assert_eq!(
        app.credit_look_rows().await,
        0,
        "a record posted is no look"
    );

    // The credit office reads it twice, by id and by number.
    office.credit_subject(&subject).await;
    office
        .credit_lookup("enterprise", &demo_uscc("enterprise1"))
        .await;
    // The bank underwrites an application made to it, by the API and on its page.
    let application = application_to(&app, "bank", "BZ-LOOK-1").await;
    let bank = app.as_issuer("bank").await;
    let seen = bank
        .underwriting(&application)
        .await
        .applicant_credit
        .expect("the issuer sees it");
    assert_eq!(seen.level, "B");
    let page = Visitor::signed_in(&app, "bank")
        .await
        .ok(&format!("/applications/{application}"))
        .await;
    assert!(page.contains("申请人信用"), "{page}");
    let name = &seen.lowering_records[0].category_name_zh;
    assert!(page.contains(name.as_str()), "{name} in {page}");

    let looks = enterprise.credit_looks().await;
    let office_name = app.organization_name(office.org_id()).await;
    let bank_name = app.organization_name(bank.org_id()).await;
    let listed: Vec<(&str, &str, Option<&str>)> = looks
        .iter()
        .map(|l| {
            (
                l.organization.as_str(),
                l.purpose.as_str(),
                l.application_id.as_deref(),
            )
        })
        .collect();
    let underwriting = (
        bank_name.as_str(),
        "underwriting",
        Some(application.as_str()),
    );
    let by_office = (office_name.as_str(), "credit_office", None);
    assert_eq!(
        listed,
        [underwriting, underwriting, by_office, by_office],
        "newest first"
    );
    assert!(looks.windows(2).all(|w| w[0].looked_at >= w[1].looked_at));
    enterprise.credit_me().await;
    assert_eq!(app.credit_look_rows().await, 4, "still no look of its own");

    // Paged like the other lists.
    let page2 = enterprise
        .get::<serde_json::Value>("/api/v1/credit/me/looks?page=2&per_page=3")
        .response()
        .await;
    assert_eq!(page2.headers()["x-total-count"], "4");
    let rows: serde_json::Value = page2.json().await.expect("json");
    assert_eq!(rows.as_array().map(Vec::len), Some(1));
    enterprise
        .get::<serde_json::Value>("/api/v1/credit/me/looks?per_page=0")
        .fails(422, "validation_failed")
        .await;

    // Never an officer's user id.
    let raw = enterprise.credit_looks_json().await.to_string();
    for who in [office.me().await, bank.me().await] {
        assert!(!raw.contains(&who.user_id), "{raw}");
    }
    assert!(!raw.contains("user"), "{raw}");
}

async fn another_issuer_the_agency_and_the_applicant_see_no_credit_and_log_nothing(app: TestApp) {
    let application = application_to(&app, "bank", "BZ-LOOK-2").await;
    for issuer in ["insurer", "guarantor"] {
        app.as_issuer(issuer)
            .await
            .underwriting(&application)
            .fails(404, "not_found")
            .await;
        let (status, _) = Visitor::signed_in(&app, issuer)
            .await
            .page(&format!("/applications/{application}"))
            .await;
        assert_eq!(status, 404, "{issuer}'s page");
    }
    app.as_agency()
        .await
        .underwriting(&application)
        .fails(404, "not_found")
        .await;
    for reader in [
        app.as_operator().await.underwriting(&application).await,
        app.as_enterprise("enterprise1")
            .await
            .underwriting(&application)
            .await,
    ] {
        assert!(reader.applicant_credit.is_none(), "{reader:?}");
    }
    assert_eq!(app.credit_look_rows().await, 0);

    // Declined: the bank no longer underwrites it, and reads it without the credit.
    let bank = app.as_issuer("bank").await;
    bank.post::<serde_json::Value>(
        &format!("/api/v1/applications/{application}/decline"),
        &json!({ "reason": "资料不全" }),
        200,
    )
    .await;
    let declined = bank.underwriting(&application).await;
    assert_eq!(declined.status, "declined");
    assert!(declined.applicant_credit.is_none());
    assert_eq!(app.credit_look_rows().await, 0, "nothing logged");
    assert!(app
        .as_enterprise("enterprise1")
        .await
        .credit_looks()
        .await
        .is_empty());
}

async fn the_issuer_sees_a_negative_record_with_its_points_and_the_level_move(app: TestApp) {
    let application = application_to(&app, "bank", "BZ-LOOK-3").await;
    let bank = app.as_issuer("bank").await;
    let office = app.as_operator().await;
    let uscc = demo_uscc("enterprise1");

    // No archive yet: the base standing, no records.
    let before = bank.underwriting(&application).await;
    let credit = before.applicant_credit.expect("credit");
    assert_eq!((credit.level.as_str(), credit.score), ("A", base_score()));
    assert!(credit.lowering_records.is_empty());

    // A penalty lowers it.
    let penalty = office
        .post_record(&NewCreditRecord::enterprise(
            &uscc,
            "administrative_penalty",
            "滨市监罚〔2026〕7号",
        ))
        .await;
    let after = bank
        .underwriting(&application)
        .await
        .applicant_credit
        .expect("credit");
    assert_eq!(after.level, penalty.subject.level);
    assert_ne!(after.level, "A", "the level moved");
    assert_eq!(after.score, penalty.subject.score);
    assert_eq!(after.lowering_records.len(), 1, "{after:?}");
    let shown = &after.lowering_records[0];
    assert_eq!(shown.category, "administrative_penalty");
    assert_eq!(shown.points, category_points("administrative_penalty"));
    assert!(!shown.category_name_zh.is_empty());
    assert!(!shown.occurred_at.is_empty());
    // A good record is not among those that lower the score.
    office
        .post_record(&NewCreditRecord::enterprise(&uscc, "tax_grade_a", "SW-1"))
        .await;
    let with_good = bank
        .underwriting(&application)
        .await
        .applicant_credit
        .expect("credit");
    assert_eq!(with_good.lowering_records.len(), 1, "{with_good:?}");
    assert_eq!(
        with_good.score,
        after.score + category_points("tax_grade_a"),
        "the good record counts in the score"
    );

    // Cancelled: back up, nothing lowering.
    office
        .cancel_record(&penalty.record.id, "correction", "GZ-1")
        .await;
    let restored = bank
        .underwriting(&application)
        .await
        .applicant_credit
        .expect("credit");
    assert!(restored.lowering_records.is_empty());
    assert_eq!(
        restored.score,
        base_score() + category_points("tax_grade_a")
    );

    // Approved and paid, the bank still underwrites; each read is one look.
    bank.approve(&application, "960.00").await;
    bank.confirm_payment(&application).await;
    assert!(bank
        .underwriting(&application)
        .await
        .applicant_credit
        .is_some());
    let looks = app.as_enterprise("enterprise1").await.credit_looks().await;
    assert_eq!(looks.len(), 5);
    assert!(looks.iter().all(|l| l.purpose == "underwriting"));
}

async fn thirty_first_looks_at_once_make_one_archive_and_thirty_looks(app: TestApp) {
    let application = application_to(&app, "bank", "BZ-LOOK-4").await;
    let bank = app.as_issuer("bank").await;
    let path = format!("/api/v1/applications/{application}");
    let answers = all_at_once((0..30).map(|_| bank.request(Method::GET, &path))).await;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["applicant_credit"]["level"], "A", "{body}");
    }
    let [subjects, _, _] = app.credit_rows().await;
    assert_eq!(subjects, 1, "one archive for the enterprise");
    assert_eq!(app.credit_look_rows().await, 30, "every read logged");
    let enterprise = app.as_enterprise("enterprise1").await;
    assert_eq!(enterprise.credit_looks().await.len(), 30);
    assert_eq!(enterprise.credit_me().await.records.len(), 0);
}

async fn a_look_by_resident_id_stores_no_resident_id(app: TestApp) {
    let office = app.as_operator().await;
    let id = resident_id("37160219850615432");
    office
        .post_record(&NewCreditRecord::person(&id, "blood_donation", "XX-1"))
        .await;
    let found = office.credit_lookup("person", &id).await;
    assert!(found.subject.id.is_some());
    assert_eq!(app.credit_look_rows().await, 1, "the look is logged");
    assert!(
        !app.database_contains(&id).await,
        "the resident ID is stored"
    );
    // Nobody found, nothing read, nothing logged.
    office
        .credit_lookup("person", &resident_id("37160219850615441"))
        .fails(404, "not_found")
        .await;
    assert_eq!(app.credit_look_rows().await, 1);
}

/// The issuer's own rules by level: the applicant's level picks its discount and whether
/// it reviews by hand; without a review the exchange approves at the published quote
/// less the discount, with one the page suggests that premium, and a lower level picks
/// another rule. Only an issuer sets rules, each level
/// once, 0 to 50 percent.
async fn the_issuers_rules_by_level_set_the_discount_and_the_review(app: TestApp) {
    let bank = app.as_issuer("bank").await;
    let rules = json!([
        { "level": "AA", "discount_percent": 20, "manual_review": false },
        { "level": "A", "discount_percent": 10, "manual_review": false },
        { "level": "B", "discount_percent": 5, "manual_review": true },
    ]);
    let set: serde_json::Value = bank
        .send(Method::PUT, "/api/v1/issuer/credit-rules", Some(&rules))
        .await;
    assert_eq!(set.as_array().map(Vec::len), Some(5), "every level: {set}");
    assert_eq!(
        set[4],
        json!({ "level": "D", "discount_percent": 0, "manual_review": true })
    );
    for (bad, field) in [
        (
            json!([{ "level": "A", "discount_percent": 51, "manual_review": false }]),
            "discount_percent",
        ),
        (
            json!([
                { "level": "A", "discount_percent": 5, "manual_review": false },
                { "level": "A", "discount_percent": 6, "manual_review": true },
            ]),
            "level",
        ),
    ] {
        let error = bank
            .send(Method::PUT, "/api/v1/issuer/credit-rules", Some(&bad))
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some(field));
    }
    app.as_enterprise("enterprise1")
        .await
        .send(Method::PUT, "/api/v1/issuer/credit-rules", Some(&rules))
        .fails(403, "forbidden")
        .await;
    // No premium terms yet: even at a level without manual review the application
    // waits for the bank (the exchange has no quote to approve it at).
    let waiting = application_to(&app, "bank", "BZ-RULE-0").await;
    assert_eq!(bank.underwriting(&waiting).await.status, "submitted");

    bank.send(
        Method::PUT,
        "/api/v1/issuers/me/premium-terms",
        Some(&json!({
            "rate_bp": 15,
            "minimum_premium": "500.00",
            "maximum_bond": "1000000.00",
            "turnaround_days": 3,
        })),
    )
    .await;
    // The quote is 0.15 % of the bond, at least 500.00; the discount off it in whole
    // fen, rounded half up.
    let discounted = |amount: &str, percent: i64| {
        let bond: i64 = amount.replace('.', "").parse().expect("fen");
        let quote = ((bond * 15 + 5_000) / 10_000).max(50_000);
        let fen = (quote * (100 - percent) + 50) / 100;
        format!("{}.{:02}", fen / 100, fen % 100)
    };

    // enterprise1 stands at A: 10 % off and no manual review, so the exchange approves
    // the application as it arrives, at the published quote less 10 %.
    let application = application_to(&app, "bank", "BZ-RULE-1").await;
    let seen = bank
        .request(Method::GET, &format!("/api/v1/applications/{application}"))
        .send()
        .await
        .expect("send")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    assert_eq!(seen["status"], "approved", "{seen}");
    let amount = seen["amount"].as_str().expect("amount");
    assert_eq!(seen["premium"], discounted(amount, 10), "{seen}");
    let credit = &seen["applicant_credit"];
    assert_eq!(credit["level"], "A", "{seen}");
    assert_eq!(credit["discount_percent"], 10);
    assert_eq!(credit["manual_review"], false);

    // A penalty takes enterprise1 to B: 5 % off, but a manual review; its next
    // application waits, and the page suggests the quote less 5 %.
    app.as_operator()
        .await
        .post_record(&NewCreditRecord::enterprise(
            &demo_uscc("enterprise1"),
            "administrative_penalty",
            "RULE-1",
        ))
        .await;
    let reviewed = application_to(&app, "bank", "BZ-RULE-2").await;
    let seen = bank.underwriting(&reviewed).await;
    assert_eq!(seen.status, "submitted");
    let credit = seen.applicant_credit.expect("credit");
    assert_eq!(credit.level, "B");
    let raw = bank
        .request(Method::GET, &format!("/api/v1/applications/{reviewed}"))
        .send()
        .await
        .expect("send")
        .json::<serde_json::Value>()
        .await
        .expect("json");
    assert_eq!(raw["applicant_credit"]["discount_percent"], 5);
    assert_eq!(raw["applicant_credit"]["manual_review"], true);
    let officer = Visitor::signed_in(&app, "bank").await;
    let page = officer.ok(&format!("/applications/{reviewed}")).await;
    let suggested = discounted(raw["amount"].as_str().expect("amount"), 5);
    assert!(
        page.contains(&format!("value=\"{suggested}\"")),
        "{suggested}: {page}"
    );
    assert!(page.contains("5%"), "the rule is shown");
}

crate::on_both_backends!(
    the_issuers_rules_by_level_set_the_discount_and_the_review,
    the_office_and_the_underwriting_issuer_are_listed_and_the_subjects_own_reads_are_not,
    another_issuer_the_agency_and_the_applicant_see_no_credit_and_log_nothing,
    the_issuer_sees_a_negative_record_with_its_points_and_the_level_move,
    thirty_first_looks_at_once_make_one_archive_and_thirty_looks,
    a_look_by_resident_id_stores_no_resident_id,
);

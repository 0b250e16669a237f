//! The credit archive (一人一档, 一企一档), attacked: a record moves a level at once and
//! a cancelling record moves it back; a department's reference stores one record
//! however often and however concurrently it is sent; a wrong number or category writes
//! nothing; a resident ID is nowhere in clear; lapsed records leave force once even
//! with two workers racing; a paid claim moves the bidder; only the credit office posts
//! and reads archives.

use chrono::{Duration, TimeDelta};
use reqwest::Method;
use serde_json::json;

use crate::fixtures::credit::NewCreditRecord;
use crate::fixtures::library::{resident_id, ChainCheck};
use crate::fixtures::outbox::MailStatus;
use crate::fixtures::{all_at_once, Anyone, NewClaim, NewTender, Session, TestPki};
use crate::helpers::{demo_uscc, uscc, TestApp};

/// The shipped levels: base score and the points of the shipped categories.
pub(crate) fn base_score() -> i32 {
    baohan::domain::credit::LevelsConfig::shipped()
        .expect("levels")
        .base_score
}

fn category_points(code: &str) -> i32 {
    baohan::domain::catalogue::seed_categories(baohan::domain::catalogue::RECORD_CATEGORIES_TOML)
        .expect("categories")
        .into_iter()
        .find(|(c, _)| c == code)
        .map(|(_, c)| c.points)
        .expect(code)
}

/// Mails about a level change queued for addresses starting with `to`.
async fn level_mails(app: &TestApp, to: &str) -> Vec<String> {
    app.outbox(MailStatus::Pending)
        .await
        .into_iter()
        .filter(|m| m.subject.starts_with("信用等级变更") && m.to_address.starts_with(to))
        .map(|m| m.subject)
        .collect()
}

async fn a_negative_record_lowers_the_level_at_once_and_a_cancellation_restores_it(app: TestApp) {
    let office = app.as_operator().await;
    let enterprise = app.as_enterprise("enterprise1").await;
    let base = base_score();
    let before = enterprise.credit_me().await;
    assert_eq!(
        (before.subject.id.as_deref(), before.subject.score),
        (None, base),
        "no archive yet: the base score"
    );
    assert_eq!(before.subject.level, "A");
    assert_eq!(before.subject.base_score, base);

    // An administrative penalty: the level drops in the answer itself.
    let penalty = NewCreditRecord::enterprise(
        &demo_uscc("enterprise1"),
        "administrative_penalty",
        "滨市监罚〔2026〕101号",
    );
    let recorded = office.post_record(&penalty).await;
    let points = category_points("administrative_penalty");
    assert_eq!(recorded.subject.score, base - points);
    assert_eq!(recorded.subject.level, "B");
    assert_eq!(recorded.record.contribution, -points);
    assert_eq!(recorded.record.subject_id, recorded.subject.id);
    assert_eq!(recorded.subject.masked_id, demo_uscc("enterprise1"));

    // The enterprise sees it, with the record that moved it.
    let mine = enterprise.credit_me().await;
    assert_eq!(
        (mine.subject.score, mine.subject.level.as_str()),
        (base - points, "B")
    );
    assert_eq!(mine.explanation.len(), 1);
    assert_eq!(mine.explanation[0].record_id, recorded.record.id);
    assert_eq!(mine.explanation[0].contribution, -points);
    assert_eq!(mine.level_path(), [("A".to_owned(), "B".to_owned())]);
    assert_eq!(
        mine.level_changes[0].cause_record_id.as_deref(),
        Some(recorded.record.id.as_str())
    );
    assert_eq!(level_mails(&app, "enterprise1@").await.len(), 1);

    // A serious-dishonesty record forces D whatever the score.
    let defaulter = NewCreditRecord::enterprise(
        &demo_uscc("enterprise1"),
        "judgment_defaulter",
        "(2026)鲁16执123号",
    )
    .points(1);
    let listed = office.post_record(&defaulter).await;
    assert_eq!(listed.subject.score, base - points - 1);
    assert!(listed.subject.serious_dishonesty);
    assert_eq!(listed.subject.level, "D");

    // A credit repair cancels the listing, a correction the penalty: back to A.
    let repaired = office
        .cancel_record(&listed.record.id, "credit_repair", "XF-2026-0001")
        .await;
    assert_eq!(
        repaired.record.cancels.as_deref(),
        Some(listed.record.id.as_str())
    );
    assert_eq!(
        (repaired.record.points, repaired.record.in_force),
        (0, false)
    );
    assert_eq!(
        (
            repaired.subject.level.as_str(),
            repaired.subject.serious_dishonesty
        ),
        ("B", false)
    );
    let corrected = office
        .cancel_record(&recorded.record.id, "correction", "GZ-2026-0001")
        .await;
    assert_eq!(
        (corrected.subject.score, corrected.subject.level.as_str()),
        (base, "A")
    );

    let archive = office.credit_subject(&recorded.subject.id).await;
    assert_eq!(archive.subject.score, base);
    assert!(archive.explanation.is_empty(), "nothing in force moves it");
    assert_eq!(
        archive.records.len(),
        4,
        "append-only: nothing was edited away"
    );
    let penalty_now = archive.record(&recorded.record.id);
    assert!(!penalty_now.in_force);
    assert_eq!(
        penalty_now.cancelled_by.as_deref(),
        Some(corrected.record.id.as_str())
    );
    assert_eq!(
        archive.level_path(),
        [("A", "B"), ("B", "D"), ("D", "B"), ("B", "A")].map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(level_mails(&app, "enterprise1@").await.len(), 4);

    // Cancelling again, or cancelling a cancellation, finds nothing in force.
    for id in [&recorded.record.id, &corrected.record.id] {
        let error = office
            .cancel_record(id, "correction", &format!("again-{id}"))
            .fails(409, "invalid_transition")
            .await;
        assert_eq!(error.current_state(), Some("not_in_force"));
    }
    office
        .cancel_record("no-such-record", "correction", "GZ-missing")
        .fails(404, "not_found")
        .await;
    let error = office
        .cancel_record(&listed.record.id, "forgiven", "GZ-bad-reason")
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("reason"));
    assert_eq!(
        app.credit_rows().await,
        [1, 4, 4],
        "the refusals wrote nothing"
    );
    let levels: Vec<_> = app
        .audit_of("credit_subject", &recorded.subject.id)
        .await
        .into_iter()
        .map(|(action, from, to)| (action, from.unwrap_or_default(), to.unwrap_or_default()))
        .collect();
    assert_eq!(levels.len(), 4);
    assert!(levels.iter().all(|(a, _, _)| a == "credit_level_changed"));
    assert!(matches!(app.audit_chain(), ChainCheck::Intact { .. }));
}

async fn the_same_reference_stores_one_record_however_often_it_is_sent(app: TestApp) {
    let office = app.as_operator().await;
    let points = category_points("utility_arrears");
    let subject = uscc("91371600MA3CX0001");
    let once = NewCreditRecord::enterprise(&subject, "utility_arrears", "QF-0001");
    let first = office.post_record(&once).await;
    assert_eq!(first.subject.score, base_score() - points);
    let error = office.post_record(&once).fails(409, "conflict").await;
    assert!(error.message.contains("source_ref"), "{error:?}");
    // The same reference with other content is the same record: refused too.
    let mut changed = once.clone();
    changed.category = "blood_donation".into();
    office.post_record(&changed).fails(409, "conflict").await;

    // Thirty at once with a new reference: one stored, the others refused.
    let racing = NewCreditRecord::enterprise(&subject, "utility_arrears", "QF-0002");
    let answers = all_at_once((0..30).map(|_| {
        office
            .request(Method::POST, "/api/v1/credit/records")
            .json(&racing)
    }))
    .await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{answers:?}"
    );
    assert!(
        statuses.iter().all(|s| [201, 409].contains(s)),
        "{answers:?}"
    );

    let archive = office.credit_subject(&first.subject.id).await;
    assert_eq!(archive.records.len(), 2);
    assert_eq!(
        archive.subject.score,
        base_score() - 2 * points,
        "counted once each"
    );
    assert_eq!(app.credit_rows().await[..2], [1, 2]);

    // Thirty different references at once about a subject nobody recorded yet: one
    // subject, thirty records, and every one counted (no update lost to another).
    let fresh = uscc("91371600MA3CX0009");
    let answers =
        all_at_once((0..30).map(|n| {
            office.request(Method::POST, "/api/v1/credit/records").json(
                &NewCreditRecord::enterprise(&fresh, "volunteer_service", &format!("ZY-{n}")),
            )
        }))
        .await;
    assert!(answers.iter().all(|(s, _)| *s == 201), "{answers:?}");
    let archive = office.credit_lookup("enterprise", &fresh).await;
    assert_eq!(archive.records.len(), 30);
    let expected = (base_score() + 30 * category_points("volunteer_service")).min(1000);
    assert_eq!(archive.subject.score, expected);
    assert_eq!(app.credit_rows().await[..2], [2, 32]);
}

async fn invalid_numbers_and_unknown_categories_are_refused_by_field_and_write_nothing(
    app: TestApp,
) {
    let office = app.as_operator().await;
    let good_person = resident_id("37160219900101123");
    let mut wrong_check = good_person.clone();
    let last = if wrong_check.ends_with('1') { "2" } else { "1" };
    wrong_check.replace_range(17.., last);
    let good_uscc = uscc("91371600MA3CX0002");
    let mut wrong_uscc = good_uscc.clone();
    let last = if wrong_uscc.ends_with('1') { "2" } else { "1" };
    wrong_uscc.replace_range(17.., last);

    let person = |id: &str| NewCreditRecord::person(id, "volunteer_service", "ZY-1");
    let firm = |id: &str| NewCreditRecord::enterprise(id, "tax_grade_a", "SW-1");
    let now = app.now();
    let cases: Vec<(NewCreditRecord, &str)> = vec![
        (person(&wrong_check), "subject_id"),
        (person("37160219900101123"), "subject_id"),
        (person(&format!("{good_person} ")), "subject_id"),
        (person(&good_uscc), "subject_id"),
        (firm(&wrong_uscc), "subject_id"),
        (firm(&good_uscc.to_lowercase()), "subject_id"),
        (firm(&good_person), "subject_id"),
        (
            NewCreditRecord {
                subject_type: "robot".into(),
                ..firm(&good_uscc)
            },
            "subject_type",
        ),
        (
            NewCreditRecord {
                category: "made_up_category".into(),
                ..firm(&good_uscc)
            },
            "category",
        ),
        (
            NewCreditRecord {
                category: "Tax Grade A; DROP TABLE".into(),
                ..firm(&good_uscc)
            },
            "category",
        ),
        (
            NewCreditRecord {
                polarity: Some("neutral".into()),
                ..firm(&good_uscc)
            },
            "polarity",
        ),
        (firm(&good_uscc).points(0), "points"),
        (firm(&good_uscc).points(1001), "points"),
        (
            NewCreditRecord {
                occurred_at: "9999-01-01".into(),
                ..firm(&good_uscc)
            },
            "occurred_at",
        ),
        (
            firm(&good_uscc).occurred_at(now + Duration::days(2)),
            "occurred_at",
        ),
        (
            firm(&good_uscc)
                .occurred_at(now - Duration::days(1))
                .expiring_at(now - Duration::days(2)),
            "expires_at",
        ),
        (
            NewCreditRecord {
                source_ref: " ".into(),
                ..firm(&good_uscc)
            },
            "source_ref",
        ),
    ];
    for (record, field) in &cases {
        let error = office
            .post_record(record)
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some(*field), "{record:?}: {error:?}");
        assert!(!error.message.contains(&good_person), "{error:?}");
    }
    // An unknown key is refused as a malformed body.
    let mut body = serde_json::to_value(firm(&good_uscc)).expect("json");
    body["score"] = json!(999);
    let error = office
        .send(Method::POST, "/api/v1/credit/records", Some(&body))
        .fails(400, "invalid_json")
        .await;
    assert_eq!(error.field(), Some("score"));
    assert_eq!(app.credit_rows().await, [0, 0, 0], "nothing written");
    // The good ones go through.
    office.post_record(&person(&good_person)).await;
    office.post_record(&firm(&good_uscc)).await;
    assert_eq!(app.credit_rows().await[..2], [2, 2]);
}

async fn a_resident_id_never_appears_in_clear(app: TestApp) {
    let office = app.as_operator().await;
    let id = resident_id("37160219850615432");
    let masked = format!("{}********{}", &id[..6], &id[14..]);
    let record = NewCreditRecord::person(&id, "judgment_defaulter", "(2026)鲁16执9号");
    let res = office
        .request(Method::POST, "/api/v1/credit/records")
        .json(&record)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 201);
    let text = res.text().await.expect("body");
    assert!(!text.contains(&id), "{text}");
    assert!(text.contains(&masked), "{text}");

    let found = office.credit_lookup("person", &id).await;
    assert_eq!(found.subject.masked_id.as_deref(), Some(masked.as_str()));
    assert_eq!(found.subject.level, "D");
    assert!(found.subject.serious_dishonesty);
    let by_id = office
        .request(
            Method::GET,
            &format!(
                "/api/v1/credit/subjects/{}",
                found.subject.id.clone().expect("id")
            ),
        )
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("body");
    assert!(!by_id.contains(&id) && by_id.contains(&masked), "{by_id}");
    // The same number sent again (a second department) finds the same subject.
    let again = office
        .post_record(&NewCreditRecord::person(&id, "blood_donation", "XX-1"))
        .await;
    assert_eq!(Some(again.subject.id), found.subject.id);
    // A duplicate and a refusal do not echo it either.
    let dup = office
        .request(Method::POST, "/api/v1/credit/records")
        .json(&record)
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("body");
    assert!(!dup.contains(&id), "{dup}");

    // Nowhere in the database: not in a subject, a record, the audit log or the outbox.
    assert!(
        app.database_contains(&masked).await,
        "the search can find things"
    );
    assert!(
        !app.database_contains(&id).await,
        "the resident ID is stored in clear"
    );
}

async fn lapsed_records_leave_force_once_even_with_two_workers_racing(app: TestApp) {
    let office = app.as_operator().await;
    let now = app.now();
    let base = base_score();
    let points = category_points("utility_arrears");
    // Three subjects, ten lapsing records each; the third also one that stays.
    let subjects: Vec<String> = (3..6)
        .map(|n| uscc(&format!("91371600MA3CY000{n}")))
        .collect();
    for (s, subject) in subjects.iter().enumerate() {
        for n in 0..10 {
            office
                .post_record(
                    &NewCreditRecord::enterprise(
                        subject,
                        "utility_arrears",
                        &format!("QF-{s}-{n}"),
                    )
                    .occurred_at(now - Duration::days(1))
                    .expiring_at(now + Duration::days(1) + Duration::minutes(n)),
                )
                .await;
        }
    }
    let staying = office
        .post_record(
            &NewCreditRecord::enterprise(&subjects[2], "utility_arrears", "QF-stays")
                .occurred_at(now - Duration::days(1)),
        )
        .await;
    assert_eq!(staying.subject.score, base - 11 * points);
    assert_ne!(staying.subject.level, "A");

    assert_eq!(app.expire_credit_records().await, 0, "nothing lapsed yet");
    let before = crate::fixtures::credit::assert_tallies_match_the_archive(&app).await;
    app.advance_clock(TimeDelta::days(2));
    let (one, two) = tokio::join!(app.expire_credit_records(), app.expire_credit_records());
    assert_eq!(
        one + two,
        30,
        "each lapsed record taken once ({one} + {two})"
    );
    assert_eq!(app.expire_credit_records().await, 0);
    // The dashboard's counters followed the expiry, which is not an API call.
    let after = crate::fixtures::credit::assert_tallies_match_the_archive(&app).await;
    assert_eq!(before - after, 30);

    // Sessions last 12 hours: sign in again after the days have passed.
    let office = app.as_operator().await;
    for (s, subject) in subjects.iter().enumerate() {
        let archive = office.credit_lookup("enterprise", subject).await;
        let expected = if s == 2 { base - points } else { base };
        assert_eq!(archive.subject.score, expected, "subject {s}");
        let in_force = archive.records.iter().filter(|r| r.in_force).count();
        assert_eq!(in_force, usize::from(s == 2));
        assert_eq!(archive.explanation.len(), in_force);
        let path = archive.level_path();
        assert_eq!(path.first().map(|p| p.0.as_str()), Some("A"), "{path:?}");
        assert_eq!(
            path.last().map(|p| p.1.as_str()),
            Some(archive.subject.level.as_str()),
            "{path:?}"
        );
    }
    assert!(matches!(app.audit_chain(), ChainCheck::Intact { .. }));
}

async fn a_paid_claim_lowers_the_bidders_level(app: TestApp) {
    TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-CREDIT", 2))
        .await;
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;
    let enterprise = app.as_enterprise("enterprise1").await;
    assert_eq!(enterprise.credit_me().await.subject.level, "A");

    app.advance_clock(TimeDelta::days(2) + TimeDelta::hours(1));
    let demand = NewClaim::new("withdrew_after_deadline", "开标后撤回投标文件", "1000.00");
    let claim = app.as_agency().await.claim(&bond, &demand).await;
    let paid = app.as_issuer("bank").await.decide(&claim, "pay").await;
    assert_eq!(paid.status, "paid");

    let enterprise = app.as_enterprise("enterprise1").await;
    let mine = enterprise.credit_me().await;
    let points = category_points("bid_bond_claim_paid");
    assert_eq!(mine.subject.score, base_score() - points);
    assert_eq!(mine.subject.level, "B");
    crate::fixtures::credit::assert_tallies_match_the_archive(&app).await;
    assert_eq!(mine.explanation.len(), 1);
    assert_eq!(mine.explanation[0].category, "bid_bond_claim_paid");
    assert_eq!(mine.records[0].source_ref, format!("claim:{}", claim.id));
    assert_eq!(mine.level_path(), [("A".to_owned(), "B".to_owned())]);
    assert_eq!(level_mails(&app, "enterprise1@").await.len(), 1);
    // The other bidder is untouched.
    let other = app.as_enterprise("enterprise2").await.credit_me().await;
    assert_eq!(
        (other.subject.level.as_str(), other.records.len()),
        ("A", 0)
    );
}

async fn only_the_credit_office_posts_and_reads_archives(app: TestApp) {
    let office = app.as_operator().await;
    let record = NewCreditRecord::enterprise(&demo_uscc("enterprise2"), "tax_grade_a", "SW-9");
    let recorded = office.post_record(&record).await;
    let subject_path = format!("/api/v1/credit/subjects/{}", recorded.subject.id);
    let other =
        NewCreditRecord::enterprise(&demo_uscc("enterprise1"), "administrative_penalty", "X-1");
    let cancel = json!({
        "cancels": recorded.record.id, "reason": "correction",
        "source_department": "某局", "source_ref": "X-2",
    });
    let lookup = json!({ "subject_type": "enterprise", "subject_id": demo_uscc("enterprise2") });
    let body = serde_json::to_value(&other).expect("json");
    let requests: [(Method, &str, Option<&serde_json::Value>); 4] = [
        (Method::POST, "/api/v1/credit/records", Some(&body)),
        (Method::POST, "/api/v1/credit/cancellations", Some(&cancel)),
        (Method::GET, &subject_path, None),
        (Method::POST, "/api/v1/credit/lookup", Some(&lookup)),
    ];
    let enterprise: Session<Anyone> = app.as_demo("enterprise1").await;
    let subject_itself: Session<Anyone> = app.as_demo("enterprise2").await;
    let issuer: Session<Anyone> = app.as_demo("bank").await;
    let agency: Session<Anyone> = app.as_demo("agency").await;
    for (method, path, body) in &requests {
        for (who, session) in [
            ("enterprise1", &enterprise),
            ("enterprise2", &subject_itself),
            ("bank", &issuer),
            ("agency", &agency),
        ] {
            let status = session.send(method.clone(), path, *body).status().await;
            assert_eq!(status, 403, "{method} {path} as {who}");
        }
        app.signed_out()
            .send(method.clone(), path, *body)
            .fails(401, "unauthenticated")
            .await;
    }
    // Only one's own archive, and only for a subject that has one.
    for session in [&issuer, &agency] {
        session.credit_me().fails(403, "forbidden").await;
    }
    let own = subject_itself.credit_me().await;
    assert_eq!(
        own.subject.id.as_deref(),
        Some(recorded.subject.id.as_str())
    );
    assert_eq!(enterprise.credit_me().await.subject.id, None);
    assert_eq!(
        app.credit_rows().await,
        [1, 1, 0],
        "the refused requests wrote nothing"
    );
}

/// Records posted for many subjects at once (each moving its subject's level, the
/// counters of two levels and of records in force) all land, none waiting on or
/// deadlocking over the counters, which then equal a scan of the archive, before and
/// after the credit office's dashboard folds them.
async fn the_dashboards_counters_hold_under_concurrent_records(app: TestApp) {
    let office = app.as_operator().await;
    let subjects: Vec<String> = (0..24)
        .map(|n| uscc(&format!("91371600MA3CT{n:04}")))
        .collect();
    let requests = subjects.iter().enumerate().flat_map(|(s, subject)| {
        ["utility_arrears", "administrative_penalty"]
            .into_iter()
            .map(move |category| (s, subject.clone(), category))
    });
    let answers =
        all_at_once(requests.map(|(s, subject, category)| {
            office.request(Method::POST, "/api/v1/credit/records").json(
                &NewCreditRecord::enterprise(&subject, category, &format!("TALLY-{s}-{category}")),
            )
        }))
        .await;
    for (status, body) in &answers {
        assert_eq!(*status, 201, "{body}");
    }
    let in_force = crate::fixtures::credit::assert_tallies_match_the_archive(&app).await;
    assert!(in_force >= 48, "{in_force}");
    let desk = crate::pages_ei::Visitor::signed_in(&app, "operator")
        .await
        .ok("/credit/office")
        .await;
    assert!(
        desk.contains(&format!("id=\"count-records\">{in_force}<")),
        "{desk}"
    );
    assert_eq!(
        crate::fixtures::credit::assert_tallies_match_the_archive(&app).await,
        in_force
    );
    // Folded: one row per figure again.
    let rows: i64 = app
        .db(|c| {
            use baohan::db::schema::credit_tallies;
            use diesel::prelude::*;
            credit_tallies::table.count().get_result(c).expect("rows")
        })
        .await;
    assert_eq!(rows, 7);
}

crate::on_both_backends!(
    the_dashboards_counters_hold_under_concurrent_records,
    a_negative_record_lowers_the_level_at_once_and_a_cancellation_restores_it,
    the_same_reference_stores_one_record_however_often_it_is_sent,
    invalid_numbers_and_unknown_categories_are_refused_by_field_and_write_nothing,
    a_resident_id_never_appears_in_clear,
    lapsed_records_leave_force_once_even_with_two_workers_racing,
    a_paid_claim_lowers_the_bidders_level,
    only_the_credit_office_posts_and_reads_archives,
);

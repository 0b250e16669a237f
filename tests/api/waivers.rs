//! Credit rights codes and waivers (信用权益码, 免押), end to end and attacked: a resident
//! with good credit checks into a hotel without a deposit; a default at a hospital
//! lowers the level at once and refuses the next hotel check with the reason; repayment
//! and a credit repair restore it. A code cannot be replayed, forged, altered, used by
//! another provider than the one it was shown to, or used after expiry; thirty checks
//! of one code at once grant one; a subject's line is never overspent; a provider's
//! answers carry no score, record or ID number; a bill unpaid past its window and
//! grace becomes a default by the exchange's clock.

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{json, Value};

use crate::fixtures::credit::NewCreditRecord;
use crate::fixtures::library::resident_id;
use crate::fixtures::{all_at_once, Anyone, NewOrg, NewUser, Operator, Party, Session};
use crate::helpers::{demo_uscc, uscc, TestApp};

const PASSWORD: &str = "a long enough password";

/// The city of a test: the credit office, a hotel, a hospital, a library and a resident
/// with a clean archive.
struct City<'a> {
    app: &'a TestApp,
    office: Session<'a, Operator>,
    hotel: Session<'a, Anyone>,
    hotel_id: String,
    hospital: Session<'a, Anyone>,
    library: Session<'a, Anyone>,
    resident: Session<'a, Anyone>,
    resident_id: String,
}

async fn provider<'a>(
    app: &'a TestApp,
    office: &Session<'a, Operator>,
    kind: &str,
    n: u32,
) -> (Session<'a, Anyone>, String) {
    let mut org = serde_json::to_value(NewOrg::new(
        "provider",
        &format!("测试{kind}{n}"),
        &uscc(&format!("91371600PR{n:07}")),
    ))
    .expect("json");
    org["provider_kind"] = json!(kind);
    let org = office.register_org(&org).await;
    let username = format!("{kind}{n}");
    office
        .add_user(&NewUser::new(&org.id, &username, "前台", "provider"))
        .await;
    (app.as_user(&username, PASSWORD).await, org.id)
}

async fn city(app: &TestApp) -> City<'_> {
    let office = app.as_operator().await;
    let (hotel, hotel_id) = provider(app, &office, "hotel", 1).await;
    let (hospital, _) = provider(app, &office, "hospital", 2).await;
    let (library, _) = provider(app, &office, "library", 3).await;
    let operator_org = office.organization_with_uscc(&demo_uscc("operator")).await;
    let id = resident_id("37160219880412005");
    office
        .add_user(&NewUser::new(&operator_org.id, "wang.li", "王丽", "person").resident_id(&id))
        .await;
    let resident = app.as_user("wang.li", PASSWORD).await;
    City {
        app,
        office,
        hotel,
        hotel_id,
        hospital,
        library,
        resident,
        resident_id: id,
    }
}

impl<'a> City<'a> {
    /// Everyone signs in again (after the clock moved past their sessions).
    async fn signed_in_again(self) -> City<'a> {
        let app = self.app;
        City {
            app,
            office: app.as_operator().await,
            hotel: app.as_user("hotel1", PASSWORD).await,
            hotel_id: self.hotel_id,
            hospital: app.as_user("hospital2", PASSWORD).await,
            library: app.as_user("library3", PASSWORD).await,
            resident: app.as_user("wang.li", PASSWORD).await,
            resident_id: self.resident_id,
        }
    }

    async fn code(&self, provider_id: Option<&str>) -> String {
        let body = match provider_id {
            Some(p) => json!({ "provider_id": p }),
            None => json!({}),
        };
        let answer: Value = self
            .resident
            .post("/api/v1/credit/me/rights-codes", &body, 201)
            .await;
        answer["code"].as_str().expect("code").to_owned()
    }
}

async fn check(provider: &Session<'_, Anyone>, code: &str, matter: &str, amount: &str) -> Value {
    provider
        .send(
            Method::POST,
            "/api/v1/credit/checks",
            Some(&json!({ "code": code, "matter": matter, "amount": amount })),
        )
        .await
}

fn refused(answer: &Value) -> &str {
    assert_eq!(answer["decision"], "refused", "{answer}");
    answer["reason"].as_str().expect("reason")
}

fn granted(answer: &Value) -> String {
    assert_eq!(answer["decision"], "granted", "{answer}");
    assert!(answer["reason"].is_null());
    answer["waiver_id"].as_str().expect("waiver").to_owned()
}

async fn level(city: &City<'_>) -> String {
    city.resident.credit_me().await.subject.level
}

async fn settle(provider: &Session<'_, Anyone>, waiver: &str, outcome: &str) -> Value {
    provider
        .send(
            Method::POST,
            &format!("/api/v1/credit/waivers/{waiver}/settlement"),
            Some(&json!({ "outcome": outcome })),
        )
        .await
}

async fn bill(provider: &Session<'_, Anyone>, waiver: &str, amount: &str) -> Value {
    provider
        .send(
            Method::POST,
            &format!("/api/v1/credit/waivers/{waiver}/bill"),
            Some(&json!({ "amount": amount })),
        )
        .await
}

async fn a_default_lowers_the_level_at_once_and_repayment_with_repair_restores_it(app: TestApp) {
    let city = city(&app).await;
    assert_eq!(
        level(&city).await,
        "A",
        "a clean archive stands at the base level"
    );

    // A hotel stay without a deposit, checked by the hotel's own system (PMS) with an
    // API token its desk made, and paid at check-out.
    let token: Value = city
        .hotel
        .post(
            "/api/v1/auth/tokens",
            &json!({ "name": "PMS 前台系统" }),
            201,
        )
        .await;
    let pms = app.with_token(token["token"].as_str().expect("token"));
    let stay = granted(&check(&pms, &city.code(None).await, "hotel_room", "500.00").await);
    let line: Value = city.resident.get("/api/v1/credit/me/line").await;
    assert_eq!(line["in_use"], "500.00");
    assert_eq!(line["total"], "30000.00");
    let paid = settle(&city.hotel, &stay, "paid").await;
    assert_eq!(paid["state"], "paid");
    let line: Value = city.resident.get("/api/v1/credit/me/line").await;
    assert_eq!(line["in_use"], "0.00", "a settled waiver frees the line");

    // Treat first, pay later: admitted without the deposit, billed at discharge, not
    // paid in the window.
    let stay = granted(
        &check(
            &city.hospital,
            &city.code(None).await,
            "hospital_admission",
            "3000.00",
        )
        .await,
    );
    let billed = bill(&city.hospital, &stay, "2680.50").await;
    assert_eq!(billed["state"], "billed");
    assert_eq!(billed["overdue"], false);
    // A default before the bill is overdue is refused, and changes nothing.
    city.hospital
        .send(
            Method::POST,
            &format!("/api/v1/credit/waivers/{stay}/settlement"),
            Some(&json!({ "outcome": "defaulted" })),
        )
        .fails(409, "invalid_transition")
        .await;
    assert_eq!(level(&city).await, "A");
    app.advance_clock(TimeDelta::days(10) + TimeDelta::hours(1));
    let city = city.signed_in_again().await;
    let defaulted = settle(&city.hospital, &stay, "defaulted").await;
    assert_eq!(defaulted["state"], "defaulted");
    assert_eq!(
        level(&city).await,
        "B",
        "the default lowers the level at once"
    );

    // The next hotel check is refused with the reason; the code is used up by it.
    let code = city.code(None).await;
    assert_eq!(
        refused(&check(&city.hotel, &code, "hotel_room", "300.00").await),
        "unsettled_default"
    );
    assert_eq!(
        refused(&check(&city.hotel, &code, "hotel_room", "300.00").await),
        "already_used"
    );
    // A credit repair of the default is refused while the bill is unpaid.
    let archive = city.resident.credit_me().await;
    let default_record = archive
        .records
        .iter()
        .find(|r| r.category == "waiver_defaulted" && r.in_force)
        .expect("the default's record")
        .id
        .clone();
    city.office
        .send(
            Method::POST,
            "/api/v1/credit/cancellations",
            Some(&json!({
                "cancels": default_record,
                "reason": "credit_repair",
                "source_department": "市信用办",
                "source_ref": "修复-1",
            })),
        )
        .fails(409, "invalid_transition")
        .await;

    // Paid after the default: the line is free, the level is still B.
    let repaid = settle(&city.hospital, &stay, "paid").await;
    assert_eq!(repaid["state"], "repaid");
    assert_eq!(
        refused(&check(&city.hotel, &city.code(None).await, "hotel_room", "300.00").await),
        "level_too_low"
    );
    // The credit office repairs the record; the level comes back and the hotel grants.
    city.office
        .cancel_record(&default_record, "credit_repair", "修复-2")
        .await;
    assert_eq!(level(&city).await, "A");
    // The dashboard's counters followed the default, its record and the repair.
    crate::fixtures::credit::assert_tallies_match_the_archive(&app).await;
    granted(&check(&city.hotel, &city.code(None).await, "hotel_room", "300.00").await);
    let line: Value = city.resident.get("/api/v1/credit/me/line").await;
    assert_eq!(line["defaults_open"], 0);
    assert_eq!(line["in_use"], "300.00");
    let states: Vec<&str> = line["waivers"]
        .as_array()
        .expect("waivers")
        .iter()
        .map(|w| w["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["open", "repaid", "paid"], "newest first");
}

async fn a_code_cannot_be_replayed_forged_altered_misdirected_or_used_late(app: TestApp) {
    let city = city(&app).await;
    // Replayed.
    let code = city.code(None).await;
    granted(&check(&city.hotel, &code, "hotel_room", "200.00").await);
    assert_eq!(
        refused(&check(&city.hotel, &code, "hotel_room", "200.00").await),
        "already_used"
    );
    // Typed with spaces and in lower case, it is the same code (and still used).
    let typed = code
        .to_lowercase()
        .chars()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(
        refused(&check(&city.hotel, &typed, "hotel_room", "200.00").await),
        "already_used"
    );

    // Altered: each of a fresh code's characters changed in turn is refused, and the
    // code itself is still good afterwards.
    let fresh = city.code(None).await;
    for at in [4, 20, 40, fresh.len() - 1] {
        let mut bytes = fresh.clone().into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).expect("ascii");
        let reason =
            refused(&check(&city.hotel, &altered, "hotel_room", "200.00").await).to_owned();
        assert!(
            reason == "forged_or_altered" || reason == "malformed",
            "{at}: {reason}"
        );
    }
    // Forged: a well-formed code sealed under another key.
    let forged = baohan::domain::rights_code::seal(
        &[9; 32],
        &[1; 16],
        chrono::Utc::now() + TimeDelta::minutes(3),
    );
    assert_eq!(
        refused(&check(&city.hotel, &forged, "hotel_room", "200.00").await),
        "forged_or_altered"
    );
    assert_eq!(
        refused(&check(&city.hotel, "not a code", "hotel_room", "200.00").await),
        "malformed"
    );
    granted(&check(&city.hotel, &fresh, "hotel_room", "200.00").await);

    // Shown to one hotel, presented by another: refused, and still good for the first.
    let (other_hotel, _) = provider(&app, &city.office, "hotel", 4).await;
    let scoped = city.code(Some(&city.hotel_id)).await;
    assert_eq!(
        refused(&check(&other_hotel, &scoped, "hotel_room", "200.00").await),
        "not_for_this_provider"
    );
    // A library does not collect hotel deposits, and cannot spend the code trying.
    let open_code = city.code(None).await;
    assert_eq!(
        refused(&check(&city.library, &open_code, "hotel_room", "200.00").await),
        "not_served_by_provider"
    );
    granted(&check(&city.hotel, &scoped, "hotel_room", "200.00").await);
    granted(&check(&other_hotel, &open_code, "hotel_room", "200.00").await);

    // Used late: the code expires after its minutes by the exchange's clock.
    let late = city.code(None).await;
    app.advance_clock(TimeDelta::minutes(6));
    assert_eq!(
        refused(&check(&city.hotel, &late, "hotel_room", "200.00").await),
        "expired"
    );
    // A scoped code for an organization that is not a provider is refused by field.
    let error = city
        .resident
        .send(
            Method::POST,
            "/api/v1/credit/me/rights-codes",
            Some(&json!({ "provider_id": city.office.org_id() })),
        )
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("provider_id"));
}

async fn thirty_checks_of_one_code_at_once_grant_one_and_the_line_holds(app: TestApp) {
    let city = city(&app).await;
    let code = city.code(None).await;
    let body = json!({ "code": code, "matter": "hotel_room", "amount": "800.00" });
    let answers = all_at_once((0..30).map(|_| {
        app.api
            .post(app.url("/api/v1/credit/checks"))
            .bearer_auth(&city.hotel.token)
            .json(&body)
    }))
    .await;
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    let grants = answers
        .iter()
        .filter(|(_, a)| a["decision"] == "granted")
        .count();
    assert_eq!(grants, 1, "{answers:?}");
    assert!(answers
        .iter()
        .filter(|(_, a)| a["decision"] == "refused")
        .all(|(_, a)| a["reason"] == "already_used"));

    // Many codes at once against one matter's ceiling (2,000.00 for hotel rooms): the
    // counters in the database hold it, whatever the interleaving.
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(city.code(None).await);
    }
    let answers = all_at_once(codes.iter().map(|code| {
        app.api
            .post(app.url("/api/v1/credit/checks"))
            .bearer_auth(&city.hotel.token)
            .json(&json!({ "code": code, "matter": "hotel_room", "amount": "500.00" }))
    }))
    .await;
    let grants = answers
        .iter()
        .filter(|(_, a)| a["decision"] == "granted")
        .count();
    assert_eq!(
        grants, 2,
        "800 + 2 x 500 fit under 2,000; a third does not: {answers:?}"
    );
    assert!(answers
        .iter()
        .filter(|(_, a)| a["decision"] == "refused")
        .all(|(_, a)| a["reason"] == "above_line"));
    let line: Value = city.resident.get("/api/v1/credit/me/line").await;
    assert_eq!(line["in_use"], "1800.00");
}

async fn sanctions_and_matters_refuse_with_their_reasons(app: TestApp) {
    let city = city(&app).await;
    // A matter whose deposit is not replaced by credit.
    assert_eq!(
        refused(
            &check(
                &city.hotel,
                &city.code(None).await,
                "rental_housing",
                "100.00"
            )
            .await
        ),
        "not_served_by_provider"
    );
    let (apartment, _) = provider(&app, &city.office, "apartment", 5).await;
    assert_eq!(
        refused(
            &check(
                &apartment,
                &city.code(None).await,
                "rental_housing",
                "100.00"
            )
            .await
        ),
        "not_credit_substituted"
    );
    // Above the matter's ceiling.
    assert_eq!(
        refused(&check(&city.hotel, &city.code(None).await, "hotel_room", "2000.01").await),
        "above_line"
    );
    // An enterprise's code for a resident's matter.
    let firm = app.as_enterprise("enterprise1").await;
    let firm_code: Value = firm
        .post("/api/v1/credit/me/rights-codes", &json!({}), 201)
        .await;
    assert_eq!(
        refused(
            &check(
                &city.hotel,
                firm_code["code"].as_str().expect("code"),
                "hotel_room",
                "100.00"
            )
            .await
        ),
        "not_for_this_subject"
    );
    // The enterprise's code where an enterprise's deposit is taken: the wage authority
    // waives the migrant-worker wage deposit; the hotel does not collect it.
    let (wages, _) = provider(&app, &city.office, "wage_authority", 6).await;
    let mut firm_codes = Vec::new();
    for _ in 0..2 {
        let code: Value = firm
            .post("/api/v1/credit/me/rights-codes", &json!({}), 201)
            .await;
        firm_codes.push(code["code"].as_str().expect("code").to_owned());
    }
    assert_eq!(
        refused(
            &check(
                &city.hotel,
                &firm_codes[0],
                "migrant_wage_deposit",
                "1000.00"
            )
            .await
        ),
        "not_served_by_provider"
    );
    granted(&check(&wages, &firm_codes[1], "migrant_wage_deposit", "1000.00").await);
    assert_eq!(
        refused(
            &check(
                &wages,
                &city.code(None).await,
                "migrant_wage_deposit",
                "1000.00"
            )
            .await
        ),
        "not_for_this_subject"
    );
    // On the serious-dishonesty list (联合惩戒): every matter is refused.
    city.office
        .post_record(&NewCreditRecord::person(
            &city.resident_id,
            "judgment_defaulter",
            "(2026)鲁16执77号",
        ))
        .await;
    assert_eq!(
        refused(&check(&city.hotel, &city.code(None).await, "hotel_room", "100.00").await),
        "dishonesty_list"
    );
    // Bad input is refused by field, before any code is used.
    let code = city.code(None).await;
    for (body, field) in [
        (
            json!({ "code": code, "matter": "hotel_room", "amount": "-1" }),
            "amount",
        ),
        (
            json!({ "code": code, "matter": "hotel_room", "amount": "0.00" }),
            "amount",
        ),
        (
            json!({ "code": code, "matter": "no_such_matter", "amount": "1.00" }),
            "matter",
        ),
        (
            json!({ "code": code, "matter": "hotel_room", "amount": "1.00", "provider_ref": "x".repeat(65) }),
            "provider_ref",
        ),
    ] {
        let error = city
            .hotel
            .send(Method::POST, "/api/v1/credit/checks", Some(&body))
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some(field), "{body}");
    }
    city.hotel
        .send(
            Method::POST,
            "/api/v1/credit/checks",
            Some(&json!({ "code": code, "matter": "hotel_room", "amount": "1.00", "score": 900 })),
        )
        .fails(400, "invalid_json")
        .await;
    // Only a provider checks; only a subject gets a code.
    city.resident
        .send(
            Method::POST,
            "/api/v1/credit/checks",
            Some(&json!({ "code": code, "matter": "hotel_room", "amount": "1.00" })),
        )
        .fails(403, "forbidden")
        .await;
    city.hotel
        .send(
            Method::POST,
            "/api/v1/credit/me/rights-codes",
            Some(&json!({})),
        )
        .fails(403, "forbidden")
        .await;
    // None of that used the code: its first real check answers from the archive, and
    // only that one uses it.
    assert_eq!(
        refused(&check(&city.hotel, &code, "hotel_room", "100.00").await),
        "dishonesty_list"
    );
    assert_eq!(
        refused(&check(&city.hotel, &code, "hotel_room", "100.00").await),
        "already_used"
    );
}

async fn a_provider_learns_nothing_of_the_archive(app: TestApp) {
    let city = city(&app).await;
    city.office
        .post_record(&NewCreditRecord::person(
            &city.resident_id,
            "blood_donation",
            "献血-2026-1",
        ))
        .await;
    let archive = city.resident.credit_me().await;
    let score = archive.subject.score.to_string();
    let masked = archive.subject.masked_id.clone().expect("masked");
    let answers = [
        check(&city.hotel, &city.code(None).await, "hotel_room", "500.00").await,
        check(&city.hotel, &city.code(None).await, "hotel_room", "5000.00").await,
    ];
    let waiver = granted(&answers[0]);
    let mut texts: Vec<String> = answers.iter().map(Value::to_string).collect();
    texts.push(bill(&city.hotel, &waiver, "480.00").await.to_string());
    texts.push(
        city.hotel
            .send(Method::GET, "/api/v1/credit/waivers", None)
            .await
            .to_string(),
    );
    let keys = [
        "score",
        "level",
        "masked_id",
        "name",
        "subject",
        "records",
        "dimensions",
    ];
    for text in &texts {
        assert!(!text.contains(&city.resident_id), "{text}");
        assert!(!text.contains(&masked), "{text}");
        assert!(!text.contains("王丽"), "{text}");
        assert!(!text.contains(&format!(":{score}")), "{text}");
        for key in keys {
            assert!(!text.contains(&format!("\"{key}\"")), "{key} in {text}");
        }
    }
    // Another provider's waiver is not found, to read or to settle.
    city.hospital
        .send(
            Method::POST,
            &format!("/api/v1/credit/waivers/{waiver}/settlement"),
            Some(&json!({ "outcome": "paid" })),
        )
        .fails(404, "not_found")
        .await;
    // And the archive is not the provider's to read.
    city.hotel
        .send(Method::GET, "/api/v1/credit/me", None)
        .fails(403, "forbidden")
        .await;
}

async fn an_unpaid_bill_becomes_a_default_by_the_exchanges_clock(app: TestApp) {
    let city = city(&app).await;
    let stay = granted(
        &check(
            &city.hospital,
            &city.code(None).await,
            "hospital_admission",
            "3000.00",
        )
        .await,
    );
    bill(&city.hospital, &stay, "1200.00").await;
    // Overdue but within the grace: the worker leaves it.
    app.advance_clock(TimeDelta::days(20));
    let city = city.signed_in_again().await;
    assert_eq!(app.default_overdue_waivers().await, 0);
    let overdue: Value = city.resident.get("/api/v1/credit/me/line").await;
    assert_eq!(overdue["waivers"][0]["overdue"], true);
    assert_eq!(level(&city).await, "A");
    // Past the grace: a default, once, whichever worker gets it.
    app.advance_clock(TimeDelta::days(11));
    let city = city.signed_in_again().await;
    let (a, b) = tokio::join!(app.default_overdue_waivers(), app.default_overdue_waivers());
    assert_eq!(a + b, 1);
    assert_eq!(level(&city).await, "B");
    let line: Value = city.resident.get("/api/v1/credit/me/line").await;
    assert_eq!(line["defaults_open"], 1);
    assert_eq!(line["waivers"][0]["state"], "defaulted");
    let archive = city.resident.credit_me().await;
    let defaults = archive
        .records
        .iter()
        .filter(|r| r.category == "waiver_defaulted")
        .count();
    assert_eq!(defaults, 1);
    // Paid after the default: repaid, the line free again.
    let repaid = settle(&city.hospital, &stay, "paid").await;
    assert_eq!(repaid["state"], "repaid");
}

async fn the_statistics_count_waivers_by_domain_matter_and_month(app: TestApp) {
    let city = city(&app).await;
    let empty: Value = app.public_get("/api/v1/stats").await;
    assert_eq!(empty["deposit_free"]["usages"], 0, "{empty}");
    assert_eq!(
        empty["deposit_free"]["by_domain"].as_array().map(Vec::len),
        Some(8)
    );

    let stay = granted(&check(&city.hotel, &city.code(None).await, "hotel_room", "500.00").await);
    settle(&city.hotel, &stay, "paid").await;
    granted(&check(&city.hotel, &city.code(None).await, "hotel_room", "250.00").await);
    let admission = granted(
        &check(
            &city.hospital,
            &city.code(None).await,
            "hospital_admission",
            "3000.00",
        )
        .await,
    );
    bill(&city.hospital, &admission, "100.00").await;
    app.advance_clock(TimeDelta::days(11));
    let city = city.signed_in_again().await;
    settle(&city.hospital, &admission, "defaulted").await;
    // A refusal is no usage.
    refused(
        &check(
            &city.library,
            &city.code(None).await,
            "library_lending",
            "100000.00",
        )
        .await,
    );

    let figures: Value = app.public_get("/api/v1/stats").await;
    let free = &figures["deposit_free"];
    assert_eq!(free["usages"], 3, "{free}");
    assert_eq!(free["subjects_served"], 1, "{free}");
    assert_eq!(free["providers"], 2, "{free}");
    assert_eq!(free["waived_fen"], 375_000, "{free}");
    assert_eq!(free["defaults"], 1, "{free}");
    let domain = |kind: &str| {
        free["by_domain"]
            .as_array()
            .expect("domains")
            .iter()
            .find(|d| d["kind"] == kind)
            .cloned()
            .expect(kind)
    };
    assert_eq!(domain("hotel")["usages"], 2);
    assert_eq!(domain("hotel")["providers"], 1);
    assert_eq!(domain("hotel")["waived_fen"], 75_000);
    assert_eq!(domain("hospital")["defaults"], 1);
    assert_eq!(domain("library")["usages"], 0);
    let matters: Vec<(&str, i64)> = free["by_matter"]
        .as_array()
        .expect("matters")
        .iter()
        .map(|m| {
            (
                m["key"].as_str().expect("key"),
                m["usages"].as_i64().expect("n"),
            )
        })
        .collect();
    assert_eq!(matters, [("hospital_admission", 1), ("hotel_room", 2)]);
    let months = free["by_month"].as_array().expect("months");
    let total: i64 = months
        .iter()
        .map(|m| m["usages"].as_i64().expect("n"))
        .sum();
    assert_eq!(total, 3);

    let page = app
        .api
        .get(app.url("/stats"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("无押金城市"), "{page}");
    assert!(page.contains("id=\"free-usages\">3<"), "{page}");
    assert!(page.contains("¥3,750.00"), "{page}");
    assert!(page.contains("酒店住宿押金"), "the matter by name");
    assert!(!page.contains("王丽"), "nothing names a person");
}

crate::on_both_backends!(
    the_statistics_count_waivers_by_domain_matter_and_month,
    a_default_lowers_the_level_at_once_and_repayment_with_repair_restores_it,
    a_code_cannot_be_replayed_forged_altered_misdirected_or_used_late,
    thirty_checks_of_one_code_at_once_grant_one_and_the_line_holds,
    sanctions_and_matters_refuse_with_their_reasons,
    a_provider_learns_nothing_of_the_archive,
    an_unpaid_bill_becomes_a_default_by_the_exchanges_clock,
);

/// Trying codes is slowed down per client address, on the API and on the scan page
/// alike (they share the count); other endpoints are not limited.
#[tokio::test]
async fn rights_code_checks_are_rate_limited() {
    let app = crate::helpers::spawn_sqlite_with(|s| s.rate_limit_rights_code_per_minute = 2).await;
    let hotel = app
        .as_user::<Anyone>("hotel", crate::fixtures::library::DEMO_PASSWORD)
        .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let res = hotel
            .request(Method::POST, "/api/v1/credit/checks")
            .json(&json!({ "code": "BHQ1GUESS", "matter": "hotel_room", "amount": "1.00" }))
            .send()
            .await
            .expect("send");
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
            crate::fixtures::expect_error(res, 429, "rate_limited").await;
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
    let line: Value = app
        .as_user::<Anyone>("resident", crate::fixtures::library::DEMO_PASSWORD)
        .await
        .get("/api/v1/credit/me/line")
        .await;
    assert_eq!(line["in_use"], "0.00");
}

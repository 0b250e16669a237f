//! The rest of a bond's claims (URDG 758): partial demands and payments that reduce the
//! guarantee instead of ending it, and extend-or-pay demands that end in a signed
//! extension or a payment, every state audited.

use chrono::{DateTime, TimeDelta};
use diesel::RunQueryDsl;
use serde_json::{json, Value};

use crate::fixtures::{NewTender, TestPki};
use crate::helpers::TestApp;

/// An accepted bond of 80,000.00 for enterprise1 from the bank on a new tender whose
/// bids are open (the clock is past the opening); its number, code and application.
async fn accepted_bond(app: &TestApp, code: &str) -> (String, String, String) {
    TestPki::set_up(app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections(code, 2))
        .await;
    let application = app
        .paid_application("enterprise1", "bank", &tender.sections[0])
        .await;
    let bond = app.as_issuer("bank").await.issue(&application).await;
    app.advance_clock(TimeDelta::days(2) + TimeDelta::hours(1));
    app.as_agency().await.accept(&bond).await;
    (bond.number, bond.code, application.id)
}

fn claim_body(amount: &str, extend_to: Option<&str>) -> Value {
    let mut body = json!({
        "reason_code": "refused_to_sign_contract",
        "statement": "中标后拒绝签订合同",
        "amount": amount,
    });
    if let Some(t) = extend_to {
        body["extend_to"] = json!(t);
    }
    body
}

async fn a_partial_claim_leaves_the_rest_outstanding_and_limits_the_next(app: TestApp) {
    let (number, _, _) = accepted_bond(&app, "BZ-PART").await;
    let agency = app.as_agency().await;
    let bank = app.as_issuer("bank").await;
    let claims = format!("/api/v1/guarantees/{number}/claims");
    let decide = |id: &Value| format!("/api/v1/claims/{}/decision", id.as_str().unwrap_or(""));

    // 30,000 of 80,000 claimed and paid: reduced, back in force, not ended.
    let first: Value = agency
        .post(&claims, &claim_body("30000.00", None), 201)
        .await;
    let paid: Value = bank
        .post(&decide(&first["id"]), &json!({ "decision": "pay" }), 200)
        .await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["paid_amount"], "30000.00");
    let g = &paid["guarantee"];
    assert_eq!(
        (&g["status"], &g["paid_amount"], &g["outstanding_amount"]),
        (&json!("accepted"), &json!("30000.00"), &json!("50000.00")),
        "{g}"
    );

    // The next claim is limited by what is outstanding.
    let error = agency
        .post::<Value>(&claims, &claim_body("50000.01", None), 201)
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("amount"));
    assert!(error.message.contains("50000.00"), "{}", error.message);

    // 50,000 claimed, 20,000 of it paid (the rest of the demand is not): still in force
    // for 30,000. A payment above the claim is refused and changes nothing.
    let second: Value = agency
        .post(&claims, &claim_body("50000.00", None), 201)
        .await;
    let too_much = bank
        .post::<Value>(
            &decide(&second["id"]),
            &json!({ "decision": "pay", "amount": "50000.01" }),
            200,
        )
        .fails(422, "validation_failed")
        .await;
    assert_eq!(too_much.field(), Some("amount"));
    let part: Value = bank
        .post(
            &decide(&second["id"]),
            &json!({ "decision": "pay", "amount": "20000" }),
            200,
        )
        .await;
    assert_eq!(part["paid_amount"], "20000.00");
    assert_eq!(part["guarantee"]["outstanding_amount"], "30000.00");
    assert_eq!(part["guarantee"]["status"], "accepted");

    // The last 30,000 ends it: paid, nothing outstanding, no further claim.
    let last: Value = agency
        .post(&claims, &claim_body("30000.00", None), 201)
        .await;
    let ended: Value = bank
        .post(&decide(&last["id"]), &json!({ "decision": "pay" }), 200)
        .await;
    assert_eq!(ended["guarantee"]["status"], "paid");
    assert_eq!(ended["guarantee"]["outstanding_amount"], "0.00");
    agency
        .post::<Value>(&claims, &claim_body("1.00", None), 201)
        .fails(409, "invalid_transition")
        .await;

    let trail = app.guarantee_trail(&number).await;
    let actions: Vec<&str> = trail.steps.iter().map(|s| s.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "accept",
            "claim",
            "pay_part",
            "claim",
            "pay_part",
            "claim",
            "pay_claim"
        ]
    );
    assert_eq!(trail.status, "paid");

    // The sum paid is held by the database itself, whatever the code does.
    let over = app
        .db(move |c| {
            diesel::sql_query(format!(
                "UPDATE guarantees SET paid_fen = amount_fen + 1 WHERE number = '{number}'"
            ))
            .execute(c)
        })
        .await;
    assert!(over.is_err(), "a payment above the guarantee was stored");
}

async fn an_extend_or_pay_demand_ends_in_a_signed_extension(app: TestApp) {
    let (number, code, application) = accepted_bond(&app, "BZ-EXT").await;
    let agency = app.as_agency().await;
    let bank = app.as_issuer("bank").await;
    let claims = format!("/api/v1/guarantees/{number}/claims");
    let before: Value = bank.get(&format!("/api/v1/guarantees/{number}")).await;
    let until =
        DateTime::parse_from_rfc3339(before["valid_until"].as_str().expect("until")).expect("time");

    // The asked expiry must be later than the current one, and within a year of it.
    for bad in [
        until - TimeDelta::days(1),
        until,
        until + TimeDelta::days(367),
    ] {
        let error = agency
            .post::<Value>(
                &claims,
                &claim_body("80000.00", Some(&bad.to_rfc3339())),
                201,
            )
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some("extend_to"), "{bad}");
    }
    let asked = until + TimeDelta::days(30);
    let demand: Value = agency
        .post(
            &claims,
            &claim_body("80000.00", Some(&asked.to_rfc3339())),
            201,
        )
        .await;
    let decide = format!(
        "/api/v1/claims/{}/decision",
        demand["id"].as_str().unwrap_or("")
    );

    // The issuer chooses to extend: the amendment waits for its signature, the demand
    // for the outcome.
    bank.post::<Value>(&decide, &json!({ "decision": "reject" }), 200)
        .fails(422, "validation_failed")
        .await;
    let extending: Value = bank
        .post(&decide, &json!({ "decision": "extend" }), 200)
        .await;
    assert_eq!(extending["status"], "extending");
    assert_eq!(extending["guarantee"]["status"], "claimed");
    let pending = &extending["guarantee"]["pending_amendment"];
    assert_eq!(
        DateTime::parse_from_rfc3339(pending["valid_until"].as_str().expect("until"))
            .expect("time"),
        asked
    );
    bank.post::<Value>(&decide, &json!({ "decision": "extend" }), 200)
        .fails(409, "conflict")
        .await;

    // Signing it withdraws the demand and puts the bond back in force, extended.
    let signed = bank.issue(&crate::fixtures::Application {
        id: application,
        status: "issued".into(),
    });
    let signed = signed.await;
    assert_eq!(signed.guarantee.status, "accepted");
    assert_eq!(signed.guarantee.version, 2);
    let after: Value = agency.get(&format!("/api/v1/guarantees/{number}")).await;
    assert_eq!(
        DateTime::parse_from_rfc3339(after["valid_until"].as_str().expect("until")).expect("time"),
        asked
    );
    assert_eq!(after["claimed_from"], Value::Null);
    let listed: Vec<Value> = agency.get("/api/v1/claims").await;
    assert_eq!(listed[0]["status"], "extended", "{listed:?}");
    assert_eq!(listed[0]["paid_amount"], Value::Null);

    // Every state is in the audit log, and the extension verifies as the bond's
    // current version.
    let trail = app.guarantee_trail(&number).await;
    let steps: Vec<(&str, Option<&str>, Option<&str>)> = trail
        .steps
        .iter()
        .map(|s| (s.action.as_str(), s.from.as_deref(), s.to.as_deref()))
        .collect();
    assert_eq!(
        steps[1..],
        [
            ("claim", Some("accepted"), Some("claimed")),
            ("extend", Some("claimed"), Some("accepted")),
            ("amend", Some("accepted"), Some("accepted")),
        ]
    );
    let decided = app.audited("decide_claim").await;
    assert_eq!(decided.len(), 2, "filed → extending → extended");
    let report = app.verify(number.as_str(), &code).await;
    assert_eq!(report.indication, "PASSED", "{report:?}");
}

async fn an_extension_offered_can_still_give_way_to_payment(app: TestApp) {
    let (number, _, application) = accepted_bond(&app, "BZ-EXTPAY").await;
    let agency = app.as_agency().await;
    let bank = app.as_issuer("bank").await;
    let claims = format!("/api/v1/guarantees/{number}/claims");
    let before: Value = bank.get(&format!("/api/v1/guarantees/{number}")).await;
    let until =
        DateTime::parse_from_rfc3339(before["valid_until"].as_str().expect("until")).expect("time");

    // A plain demand cannot be met by an extension; only a payment names an amount.
    let plain: Value = agency
        .post(&claims, &claim_body("10000.00", None), 201)
        .await;
    let plain_decide = format!(
        "/api/v1/claims/{}/decision",
        plain["id"].as_str().unwrap_or("")
    );
    let error = bank
        .post::<Value>(&plain_decide, &json!({ "decision": "extend" }), 200)
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("decision"));
    let error = bank
        .post::<Value>(
            &plain_decide,
            &json!({ "decision": "reject", "reason": "不符", "amount": "1.00" }),
            200,
        )
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("amount"));
    bank.post::<Value>(
        &plain_decide,
        &json!({ "decision": "reject", "reason": "索赔不符合保函条款" }),
        200,
    )
    .await;

    // Extend offered, then paid after all: the unsigned extension is gone, and with the
    // bids closed nothing else can be signed.
    let asked = (until + TimeDelta::days(10)).to_rfc3339();
    let demand: Value = agency
        .post(&claims, &claim_body("80000.00", Some(&asked)), 201)
        .await;
    let decide = format!(
        "/api/v1/claims/{}/decision",
        demand["id"].as_str().unwrap_or("")
    );
    bank.post::<Value>(&decide, &json!({ "decision": "extend" }), 200)
        .await;
    let paid: Value = bank.post(&decide, &json!({ "decision": "pay" }), 200).await;
    assert_eq!(paid["status"], "paid");
    assert_eq!(paid["guarantee"]["status"], "paid");
    assert_eq!(paid["guarantee"]["pending_amendment"], Value::Null);
    bank.issue(&crate::fixtures::Application {
        id: application,
        status: "issued".into(),
    })
    .fails(409, "conflict")
    .await;
}

/// The same through the pages: the agency's claim form takes the expiry it would accept,
/// the issuer's list offers the extension and a partial amount.
async fn the_pages_file_an_extend_or_pay_demand_and_pay_part_of_a_claim(app: TestApp) {
    use crate::pages_agency::{html, page_session, post_form};
    let (number, _, _) = accepted_bond(&app, "BZ-EXTPAGE").await;
    let (agency, agency_csrf) = page_session(&app, "agency").await;
    let before: Value = app
        .as_agency()
        .await
        .get(&format!("/api/v1/guarantees/{number}"))
        .await;
    let until =
        DateTime::parse_from_rfc3339(before["valid_until"].as_str().expect("until")).expect("time");
    let asked = (until + TimeDelta::days(20)).date_naive().to_string();

    // A date before the current expiry is refused beside its field; the page keeps
    // what was typed.
    let claim_path = format!("/agency/guarantees/{number}/claim");
    let early = (until - TimeDelta::days(3)).date_naive().to_string();
    let post_claim = |extend: String| {
        let (agency, app, path, csrf) = (&agency, &app, &claim_path, &agency_csrf);
        async move {
            let fields = [
                ("csrf_token", csrf.as_str()),
                ("reason_code", "refused_to_sign_contract"),
                ("statement", "中标后拒绝签订合同"),
                ("amount", "30000.00"),
                ("extend_to", extend.as_str()),
            ];
            post_form(agency, app, path, &fields).await
        }
    };
    let refused = post_claim(early.clone()).await;
    assert_eq!(refused.status(), 422);
    let page = refused.text().await.expect("page");
    assert!(page.contains("id=\"extend_to-error\""), "{page}");
    assert!(page.contains(&format!("value=\"{early}\"")), "{page}");
    let filed = post_claim(asked.clone()).await;
    assert_eq!(filed.status(), 303);

    // The issuer sees what the demand accepts instead, and both ways to answer.
    let (issuer, issuer_csrf) = page_session(&app, "bank").await;
    let (_, claims) = html(&issuer, &app, "/issuer/claims").await;
    assert!(claims.contains(&asked), "{claims}");
    assert!(claims.contains("value=\"extend\""), "{claims}");
    assert!(claims.contains("name=\"amount\""), "{claims}");
    // In the officer's browser, at a desk and on a phone: the row offers an amount to
    // pay in part and the extension asked for, and fits the phone's width.
    let browser = crate::fixtures::chromium::Chromium::start("zh-CN").await;
    crate::browser_flow::sign_in_for(&browser, &app, "/issuer/claims", "bank").await;
    assert!(
        browser.wait_for("input[name=amount]").await,
        "{}",
        browser.text("main").await
    );
    assert!(browser.has("button[value=extend]").await);
    assert!(browser.text("main").await.contains(&asked));
    browser.looked_at("issuer-claim-extend-or-pay").await;
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("phone-sized window");
    browser.goto(&app.url("/issuer/claims")).await;
    assert!(browser.wait_for("input[name=amount]").await);
    let overflow = browser
        .eval("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
        .await;
    assert!(
        overflow.as_i64().is_some_and(|o| o <= 0),
        "wider than a phone by {overflow} px"
    );
    browser.screenshot("phone-issuer-claim-extend-or-pay").await;
    browser.close().await;

    let listed: Vec<Value> = app.as_issuer("bank").await.get("/api/v1/claims").await;
    let id = listed[0]["id"].as_str().expect("id").to_owned();
    let paid = post_form(
        &issuer,
        &app,
        &format!("/issuer/claims/{id}/decide"),
        &[
            ("csrf_token", issuer_csrf.as_str()),
            ("decision", "pay"),
            ("reason", ""),
            ("amount", "12000.50"),
        ],
    )
    .await;
    assert_eq!(paid.status(), 303);
    let after: Value = app
        .as_agency()
        .await
        .get(&format!("/api/v1/guarantees/{number}"))
        .await;
    assert_eq!(after["status"], "accepted");
    assert_eq!(after["outstanding_amount"], "67999.50");
    // The claim form now offers what is left.
    let (_, form) = html(&agency, &app, &claim_path).await;
    assert!(
        form.contains("67,999.50") || form.contains("67999.50"),
        "{form}"
    );
}

crate::on_both_backends!(
    the_pages_file_an_extend_or_pay_demand_and_pay_part_of_a_claim,
    a_partial_claim_leaves_the_rest_outstanding_and_limits_the_next,
    an_extend_or_pay_demand_ends_in_a_signed_extension,
    an_extension_offered_can_still_give_way_to_payment,
);

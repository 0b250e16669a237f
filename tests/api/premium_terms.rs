//! Premium terms (保费标准): an issuer publishes what it charges, enterprises see each
//! issuer's terms and the premium for their bond (API and the tender's page), a new
//! version replaces the old one while the history stays, withdrawing hides them; only
//! an issuer's own users change its terms, and bad values change nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::fixtures::{all_at_once, expect_error, NewTender, Party, TestPki};
use crate::helpers::TestApp;
use crate::pages_ei::{hidden, Visitor};

/// The bank's terms: 0.15 % of the bond, at least 500.00, bonds up to 1,000,000.00.
fn bank_terms() -> serde_json::Value {
    json!({
        "rate_bp": 15,
        "minimum_premium": "500.00",
        "maximum_bond": "1000000.00",
        "turnaround_days": 3,
        "note": "工作日当天受理",
    })
}

async fn published_terms_reach_enterprises_with_their_quote(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let bank = app.as_issuer("bank").await;
    let insurer = app.as_issuer("insurer").await;
    let enterprise = app.as_enterprise("enterprise1").await;
    // Nothing published yet: every issuer listed without terms.
    let listed = enterprise.issuers(Some("800000.00")).await;
    assert!(listed.len() >= 2, "{listed:?}");
    assert!(listed
        .iter()
        .all(|i| i.premium_terms.is_none() && i.quote.is_none()));

    let published = bank.publish_terms(&bank_terms()).await;
    assert_eq!((published.version, published.rate_bp), (1, 15));
    assert_eq!(published.rate_percent, "0.15");

    let of = |listed: &[crate::fixtures::ListedIssuer], who: &str| {
        listed
            .iter()
            .find(|i| i.id == who)
            .cloned()
            .expect("listed")
    };
    // 0.15 % of 800,000.00 is 1,200.00.
    let listed = enterprise.issuers(Some("800000.00")).await;
    let shown = of(&listed, bank.org_id());
    let terms = shown.premium_terms.expect("the bank's terms");
    assert_eq!(terms.minimum_premium, "500.00");
    assert_eq!(terms.maximum_bond.as_deref(), Some("1000000.00"));
    assert_eq!(terms.turnaround_days, 3);
    assert_eq!(terms.note.as_deref(), Some("工作日当天受理"));
    let quote = shown.quote.expect("a quote");
    assert!(quote.serves);
    assert_eq!(quote.premium.as_deref(), Some("1200.00"));
    // The insurer published nothing.
    let insurer_shown = of(&listed, insurer.org_id());
    assert!(insurer_shown.premium_terms.is_none() && insurer_shown.quote.is_none());
    // A small bond pays the minimum; one above the maximum is not served.
    let small = of(&enterprise.issuers(Some("80000")).await, bank.org_id());
    assert_eq!(
        small.quote.expect("quote").premium.as_deref(),
        Some("500.00")
    );
    let large = of(&enterprise.issuers(Some("1000000.01")).await, bank.org_id());
    let large = large.quote.expect("quote");
    assert!(!large.serves && large.premium.is_none());
    // Without an amount the list has the terms and no quote.
    let plain = of(&enterprise.issuers(None).await, bank.org_id());
    assert!(plain.premium_terms.is_some() && plain.quote.is_none());
    // A mistyped amount is refused, naming the parameter.
    let error = enterprise
        .issuers(Some("12.345"))
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("bond_amount"));

    // A new version replaces it; the first stays in the history.
    let mut second = bank_terms();
    second["rate_bp"] = json!(20);
    second["maximum_bond"] = json!(null);
    assert_eq!(bank.publish_terms(&second).await.version, 2);
    let shown = of(&enterprise.issuers(Some("800000.00")).await, bank.org_id());
    assert_eq!(shown.premium_terms.expect("terms").rate_bp, 20);
    assert_eq!(
        shown.quote.expect("quote").premium.as_deref(),
        Some("1600.00")
    );
    let own = bank.own_terms().await;
    assert_eq!(own.current.expect("in force").version, 2);
    let versions: Vec<i32> = own.history.iter().map(|v| v.version).collect();
    assert_eq!(versions, [2, 1]);

    // Withdrawn: enterprises see no terms; the history holds the withdrawal.
    bank.withdraw_terms().await;
    let shown = of(&enterprise.issuers(Some("800000.00")).await, bank.org_id());
    assert!(shown.premium_terms.is_none() && shown.quote.is_none());
    let own = bank.own_terms().await;
    assert!(own.current.is_none());
    assert_eq!(own.history.len(), 3);
    assert!(own.history[0].withdrawn && own.history[0].terms.is_none());
    assert_eq!(own.history[2].terms.as_ref().expect("v1").rate_bp, 15);
    // Nothing left to withdraw.
    bank.withdraw_terms().fails(404, "not_found").await;

    // Each version is audited.
    assert_eq!(app.audited("publish_premium_terms").await.len(), 2);
    assert_eq!(app.audited("withdraw_premium_terms").await.len(), 1);
    assert!(matches!(
        app.audit_chain(),
        crate::fixtures::library::ChainCheck::Intact { .. }
    ));
}

async fn only_an_issuers_own_users_publish_and_bad_values_change_nothing(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let bank = app.as_issuer("bank").await;
    let insurer = app.as_issuer("insurer").await;
    // Other roles are refused, and nobody signed out gets in.
    let enterprise = app.as_enterprise("enterprise1").await;
    enterprise
        .publish_terms(&bank_terms())
        .fails(403, "forbidden")
        .await;
    enterprise.withdraw_terms().fails(403, "forbidden").await;
    let agency = app.as_agency().await;
    agency
        .publish_terms(&bank_terms())
        .fails(403, "forbidden")
        .await;
    app.as_operator()
        .await
        .publish_terms(&bank_terms())
        .fails(403, "forbidden")
        .await;
    app.signed_out()
        .publish_terms(&bank_terms())
        .fails(401, "unauthenticated")
        .await;
    // There is no address for another issuer's terms: the insurer changes only its own.
    for method in [Method::PUT, Method::DELETE] {
        let res = insurer
            .request(
                method.clone(),
                &format!("/api/v1/issuers/{}/premium-terms", bank.org_id()),
            )
            .json(&bank_terms())
            .send()
            .await
            .expect("request");
        assert!(
            [404, 405].contains(&res.status().as_u16()),
            "{method}: {}",
            res.status()
        );
    }
    insurer.publish_terms(&bank_terms()).await;
    assert!(bank.own_terms().await.history.is_empty());
    assert_eq!(insurer.own_terms().await.history.len(), 1);

    // Bad values: refused with the field named, nothing stored.
    let with = |field: &str, value: serde_json::Value| {
        let mut terms = bank_terms();
        terms[field] = value;
        terms
    };
    let mut nothing_charged = with("rate_bp", json!(0));
    nothing_charged["minimum_premium"] = json!("0");
    let cases = [
        (with("rate_bp", json!(-1)), "rate_bp"),
        (with("rate_bp", json!(1001)), "rate_bp"),
        (nothing_charged, "rate_bp"),
        (with("minimum_premium", json!("-5.00")), "minimum_premium"),
        (with("minimum_premium", json!("5.001")), "minimum_premium"),
        (with("maximum_bond", json!("0")), "maximum_bond"),
        (with("turnaround_days", json!(0)), "turnaround_days"),
        (with("turnaround_days", json!(365)), "turnaround_days"),
        (with("note", json!("长".repeat(201))), "note"),
        (with("note", json!("line\u{0}break")), "note"),
        (with("note", json!("\u{202e}reversed")), "note"),
    ];
    for (terms, field) in cases {
        let res = bank
            .request(Method::PUT, "/api/v1/issuers/me/premium-terms")
            .json(&terms)
            .send()
            .await
            .expect("put");
        let error = expect_error(res, 422, "validation_failed").await;
        assert_eq!(error.field(), Some(field), "{terms}");
    }
    // An unknown field or a mistyped one is a malformed body.
    bank.publish_terms(&with("discount", json!(5)))
        .fails(400, "invalid_json")
        .await;
    bank.publish_terms(&with("rate_bp", json!("fifteen")))
        .fails(400, "invalid_json")
        .await;
    assert!(bank.own_terms().await.history.is_empty());
    assert_eq!(app.audited("publish_premium_terms").await.len(), 1);
}

/// The bank publishes through its page (a mistyped form comes back with each error
/// beside its field and the values kept), the enterprise sees the terms and the premium
/// for each section on the tender's page, the approve form is prefilled with the quote,
/// and after withdrawing the tender's page says there are no published terms.
async fn terms_published_on_the_page_show_on_the_tender_and_the_approve_form(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-TERMS-1", 3))
        .await;
    let officer = Visitor::signed_in(&app, "bank").await;
    let page = officer.ok("/issuer/premium-terms").await;
    assert!(page.contains("href=\"/issuer/premium-terms\""), "nav link");
    assert!(page.contains("您尚未公布保费标准"), "{page}");
    let csrf = hidden(&page, "csrf_token");

    // Without the token nothing is published.
    let (status, _, _) = officer
        .post("/issuer/premium-terms", &[("rate_percent", "0.15")])
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Mistyped: each error beside its field, what was typed kept.
    let (status, _, again) = officer
        .post(
            "/issuer/premium-terms",
            &[
                ("csrf_token", &csrf),
                ("rate_percent", "15%%"),
                ("minimum_premium", "五百"),
                ("maximum_bond", "60000"),
                ("turnaround_days", "0"),
                ("note", "当天受理"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for field in ["rate_percent", "minimum_premium", "turnaround_days"] {
        assert!(
            again.contains(&format!("id=\"{field}-error\""))
                && again.contains(&format!("href=\"#{field}\"")),
            "{field}: {again}"
        );
    }
    assert!(!again.contains("id=\"maximum_bond-error\""));
    assert!(again.contains("value=\"五百\"") && again.contains("当天受理</textarea>"));
    assert!(app.audited("publish_premium_terms").await.is_empty());

    // Right: 0.15 %, at least 100.00, bonds up to 60,000.00 (section B's 50,000.00
    // but not section A's 80,000.00).
    let (status, to, _) = officer
        .post(
            "/issuer/premium-terms",
            &[
                ("csrf_token", &csrf),
                ("rate_percent", "0.15"),
                ("minimum_premium", "100"),
                ("maximum_bond", "60000"),
                ("turnaround_days", "2"),
                ("note", "当天受理"),
            ],
        )
        .await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/issuer/premium-terms")
    );
    let page = officer.ok("/issuer/premium-terms").await;
    assert!(page.contains("保费标准已公布"), "the flash: {page}");
    assert!(
        page.contains("0.15 %") && page.contains("60,000.00"),
        "{page}"
    );
    assert!(
        page.contains("value=\"0.15\""),
        "the form holds the terms: {page}"
    );

    let bidder = Visitor::signed_in(&app, "enterprise1").await;
    let project = bidder.ok(&format!("/projects/{}", tender.id)).await;
    let bank_id = app.as_issuer("bank").await.org_id().to_owned();
    let quote = |html: &str, section: usize| -> String {
        let id = format!("id=\"quote-{}-{bank_id}\"", tender.sections[section].id);
        let from = html.find(&id).unwrap_or_else(|| panic!("{id} in {html}"));
        html[from..]
            .split("</li>")
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    // Section A (80,000.00) is above the bank's maximum; section B (50,000.00) pays
    // the minimum's 100.00 against 75.00 by the rate.
    let a = quote(&project, 0);
    assert!(
        a.contains("class=\"not-serving\"") && a.contains("不承保此金额的保函"),
        "{a}"
    );
    let b = quote(&project, 1);
    assert!(
        b.contains("保费 100.00 元") && !b.contains("not-serving"),
        "{b}"
    );
    assert!(project.contains("id=\"issuer-terms\"") && project.contains("2 个工作日"));
    // The insurer published none.
    assert!(project.contains("未公布保费标准"), "{project}");
    // In English too.
    bidder.page("/lang?to=en&back=/").await;
    let english = bidder.ok(&format!("/projects/{}", tender.id)).await;
    assert!(
        quote(&english, 1).contains("premium 100.00 yuan"),
        "{english}"
    );
    assert!(quote(&english, 0).contains("does not guarantee a bond this large"));

    // The bank's approve form of an application for section B holds the quote.
    let application = app
        .as_enterprise("enterprise1")
        .await
        .apply(&tender.sections[1], &app.as_issuer("bank").await)
        .await;
    let form = officer
        .ok(&format!("/applications/{}", application.id))
        .await;
    assert!(
        form.contains("name=\"premium\" value=\"100.00\""),
        "prefilled: {form}"
    );

    // Withdrawn from the page: the tender's page says no terms for the bank.
    let (status, _, _) = officer
        .post("/issuer/premium-terms/withdraw", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let page = officer.ok("/issuer/premium-terms").await;
    assert!(page.contains("已撤回") && page.contains("您尚未公布保费标准"));
    let english = bidder.ok(&format!("/projects/{}", tender.id)).await;
    assert!(
        quote(&english, 1).contains("no published terms"),
        "{english}"
    );
    let form = officer
        .ok(&format!("/applications/{}", application.id))
        .await;
    assert!(form.contains("name=\"premium\" value=\"\""), "{form}");
    // An enterprise is not shown the issuer's page, nor can it publish with its own
    // session's token.
    let (status, _) = bidder.page("/issuer/premium-terms").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let bidder_csrf = hidden(&english, "csrf_token");
    for (path, fields) in [
        (
            "/issuer/premium-terms",
            vec![
                ("csrf_token", bidder_csrf.as_str()),
                ("rate_percent", "0.15"),
                ("minimum_premium", "100"),
                ("turnaround_days", "2"),
            ],
        ),
        (
            "/issuer/premium-terms/withdraw",
            vec![("csrf_token", bidder_csrf.as_str())],
        ),
    ] {
        let (status, _, _) = bidder.post(path, &fields).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    // A note too long comes back beside its field, a form far too large is refused;
    // nothing is published.
    let huge = "长".repeat(20_000);
    let (status, _, _) = officer
        .post(
            "/issuer/premium-terms",
            &[("csrf_token", csrf.as_str()), ("note", huge.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let long = "长".repeat(300);
    let (status, _, again) = officer
        .post(
            "/issuer/premium-terms",
            &[
                ("csrf_token", &csrf),
                ("rate_percent", "0.15"),
                ("minimum_premium", "100"),
                ("turnaround_days", "2"),
                ("note", &long),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(again.contains("id=\"note-error\""), "{again}");
    assert_eq!(app.audited("publish_premium_terms").await.len(), 1);
    assert_eq!(app.audited("withdraw_premium_terms").await.len(), 1);
}

/// Thirty publications at once: each gets its own version (none lost, none twice) and
/// its own audit entry; the terms in force are the highest version.
async fn versions_published_at_once_are_numbered_one_by_one(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let bank = app.as_issuer("bank").await;
    let answers = all_at_once((0..30).map(|n| {
        let mut terms = bank_terms();
        terms["rate_bp"] = json!(10 + n);
        bank.request(Method::PUT, "/api/v1/issuers/me/premium-terms")
            .json(&terms)
    }))
    .await;
    let mut versions: Vec<i64> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            body["version"].as_i64().expect("version")
        })
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, (1..=30).collect::<Vec<i64>>());
    let own = bank.own_terms().await;
    assert_eq!(own.history.len(), 30);
    assert_eq!(own.current.expect("in force").version, 30);
    assert_eq!(app.audited("publish_premium_terms").await.len(), 30);
}

crate::on_both_backends!(
    versions_published_at_once_are_numbered_one_by_one,
    published_terms_reach_enterprises_with_their_quote,
    only_an_issuers_own_users_publish_and_bad_values_change_nothing,
    terms_published_on_the_page_show_on_the_tender_and_the_approve_form,
);

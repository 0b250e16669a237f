//! Every role's main pages on a phone (390 x 844, in Chinese, the default): nothing is
//! wider than the screen (lists turn into cards), every page still answers with its
//! heading, and each is kept as a screenshot (not committed).

use crate::browser_flow::sign_in_for;
use crate::fixtures::chromium::Chromium;
use crate::fixtures::{NewTender, Party, TestPki};
use crate::helpers::TestApp;

/// Opens each page and checks it fits the phone's width.
async fn fits_a_phone(browser: &Chromium, app: &TestApp, role: &str, paths: &[&str]) {
    for path in paths {
        browser.goto(&app.url(path)).await;
        assert!(
            browser.wait_for("main h1").await,
            "{role} {path}: {}",
            browser.text("body").await
        );
        let overflow = browser
            .eval("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            .await;
        assert!(
            overflow.as_i64().is_some_and(|o| o <= 0),
            "{role} {path} is wider than a phone by {overflow} px"
        );
        let name = format!("phone-{role}{}", path.replace('/', "-"));
        browser.screenshot(name.trim_end_matches('-')).await;
    }
}

async fn every_role_s_main_pages_fit_a_phone(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-PHONE-1", 3))
        .await;
    // Something in every list: an issued bond and an application waiting.
    app.issued_bond("enterprise1", &tender.sections[0]).await;
    app.issued_bond("enterprise2", &tender.sections[1]).await;
    // A saved application for the bidder's list of them.
    let bank_org = app.as_issuer("bank").await.org_id().to_owned();
    let saved = app
        .as_enterprise("enterprise1")
        .await
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/application-drafts/{}", tender.sections[1].id),
            Some(&serde_json::json!({ "issuer_id": bank_org, "note": "待补资质" })),
        )
        .answer()
        .await;
    assert_eq!(saved.status, 201);

    // An organization's page that names a kind of issuer beside the organization's.
    let bank_id = app.as_issuer("bank").await.org_id().to_owned();
    let bank_page = format!("/operator/organizations/{bank_id}");
    let roles: [(&str, &str, &[&str]); 6] = [
        (
            "enterprise1",
            "/projects",
            &[
                "/",
                "/projects",
                "/enterprise/applications",
                "/enterprise/drafts",
                "/enterprise/guarantees",
                "/enterprise/claims",
                "/credit",
                "/credit/rights-code",
            ],
        ),
        (
            "bank",
            "/issuer/queue",
            &[
                "/",
                "/issuer/queue",
                "/issuer/guarantees",
                "/issuer/premium-terms",
                "/issuer/claims",
                "/webhooks",
            ],
        ),
        (
            "agency",
            "/agency/projects",
            &["/", "/agency/projects", "/agency/claims", "/webhooks"],
        ),
        (
            "operator",
            "/operator/organizations",
            &[
                "/",
                "/operator/organizations",
                &bank_page,
                "/operator/trust",
                "/operator/mail",
                "/webhooks",
                "/operator/audit",
                "/matters",
                "/record-categories",
                "/credit/disputes",
                "/credit/office",
            ],
        ),
        (
            "resident",
            "/credit/rights-code",
            &["/", "/credit", "/credit/rights-code"],
        ),
        (
            "hotel",
            "/provider/check",
            &["/", "/provider/check", "/provider/waivers"],
        ),
    ];
    for (username, first, paths) in roles {
        let browser = Chromium::start("zh-CN").await;
        browser
            .client
            .set_window_size(390, 844)
            .await
            .expect("phone-sized window");
        sign_in_for(&browser, &app, first, username).await;
        fits_a_phone(&browser, &app, username, paths).await;
        browser.close().await;
    }
}

crate::on_both_backends!(every_role_s_main_pages_fit_a_phone);

//! A bid bond from search to letter in a real browser (headless chromium), on the
//! pages only: the bidder signs in, finds the tender by searching and applies; the
//! bank's officer signs in, approves with a premium, confirms payment and issues; the
//! bidder sees the guarantee in force and opens its letter. Screenshots of each main
//! page go to `target/screenshots` (not committed); no page logs a CSP violation.

use crate::fixtures::chromium::Chromium;
use crate::fixtures::library::DEMO_PASSWORD;
use crate::fixtures::{NewTender, Party, TestPki};
use crate::helpers::TestApp;

/// Signs in through the sign-in page, sent there by opening `path`, and lands on it.
pub(crate) async fn sign_in_for(browser: &Chromium, app: &TestApp, path: &str, username: &str) {
    browser.goto(&app.url(path)).await;
    assert!(browser.path().await.starts_with("/login?next="));
    browser.fill("#username", username).await;
    browser.fill("#password", DEMO_PASSWORD).await;
    browser
        .click("form[action='/login'] button[type=submit]")
        .await;
    let landed = browser.wait_to_leave("/login").await;
    assert_eq!(landed, path, "{}", browser.text("main").await);
}

async fn an_enterprise_applies_and_the_bank_issues_in_the_browser(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-FLOW-21", 3))
        .await;
    let section = &tender.sections[0].id;
    let bank_id = app.as_issuer("bank").await.org_id().to_owned();

    // The bidder finds the tender by part of its code and applies to the bank.
    let bidder = Chromium::start("zh-CN").await;
    sign_in_for(&bidder, &app, "/projects", "enterprise1").await;
    bidder.fill("#q", "flow-21").await;
    bidder.click("form[role=search] button[type=submit]").await;
    let link = format!("a[href='/projects/{}']", tender.id);
    assert!(
        bidder.wait_for(&link).await,
        "{}",
        bidder.text("main").await
    );
    bidder.looked_at("enterprise-projects").await;
    bidder.click(&link).await;
    let choice = format!("#issuer-{section}");
    assert!(bidder.wait_for(&choice).await);
    bidder.looked_at("enterprise-project").await;
    bidder
        .find(&choice)
        .await
        .select_by_value(&bank_id)
        .await
        .expect("choose the bank");
    bidder
        .click(&format!(
            "form.apply:has(input[value='{section}']) button[type=submit]"
        ))
        .await;
    assert_eq!(
        bidder.wait_to_leave("/projects").await,
        "/enterprise/applications"
    );
    assert!(bidder.wait_for(".flash").await);
    assert!(bidder.text("main").await.contains("待出函机构审核"));
    bidder.looked_at("enterprise-applications").await;

    // The bank's officer finds it in the queue and takes it through its steps.
    let officer = Chromium::start("zh-CN").await;
    sign_in_for(&officer, &app, "/issuer/queue", "bank").await;
    officer.looked_at("issuer-queue").await;
    officer
        .click("#new + table a[href^='/applications/']")
        .await;
    assert!(officer.wait_for("#premium").await);
    officer.looked_at("issuer-application").await;
    officer.fill("#premium", "800.00").await;
    officer
        .click("form[action$='/approve'] button[type=submit]")
        .await;
    assert!(
        officer
            .wait_for("form[action$='/confirm-payment'] button")
            .await
    );
    assert!(officer.text("main").await.contains("800.00"));
    officer
        .click("form[action$='/confirm-payment'] button[type=submit]")
        .await;
    assert!(officer.wait_for("form[action$='/issue'] button").await);
    officer
        .click("form[action$='/issue'] button[type=submit]")
        .await;
    assert!(officer.wait_for("body").await);
    assert_eq!(
        officer.wait_to_leave("/applications/").await,
        "/issuer/guarantees"
    );
    assert!(officer.wait_for("a[href$='/letter']").await);
    officer.looked_at("issuer-guarantees").await;

    // The bidder sees the guarantee in force and opens its letter.
    bidder.goto(&app.url("/enterprise/guarantees")).await;
    assert!(bidder.wait_for("a[href$='/letter']").await);
    assert!(bidder.text("main").await.contains("有效"));
    bidder.looked_at("enterprise-guarantees").await;
    bidder.click("td a[href$='/letter']").await;
    assert!(bidder.wait_for("main.letter").await);
    assert!(bidder.text("main.letter").await.contains("BZ-FLOW-21"));
    bidder.looked_at("enterprise-letter").await;

    officer.close().await;
    bidder.close().await;
}

crate::on_both_backends!(an_enterprise_applies_and_the_bank_issues_in_the_browser);

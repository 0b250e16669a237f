//! A hotel stay without a deposit, in real browsers (headless chromium): the resident
//! (in English) gets a credit rights code whose QR code on the page reads back as the
//! code; the hotel's front desk (in Chinese) enters it on the scan page and is granted,
//! then tries it again and is refused as used, settles the stay from its ledger, and
//! the resident sees the stay paid. The provider's pages show nothing of the archive;
//! every page is accessible and free of console errors. An enterprise gets a code of its
//! own in English, and the operator registers a provider of a newer kind. Screenshots go
//! to `target/screenshots`.

use crate::browser_flow::sign_in_for;
use crate::fixtures::chromium::{decode_qr, Chromium};
use crate::helpers::TestApp;

/// Asks the rights-code page for a new code; returns the code as shown, after checking
/// that its QR code reads back as the same code.
async fn new_code(browser: &Chromium) -> String {
    browser.click("#new-code").await;
    assert!(browser.wait_for("#code-text").await);
    let shown = browser.text("#code-text").await;
    assert!(shown.starts_with("BHQ1 "), "{shown}");
    let scanned = decode_qr(&browser.element_picture("#code-qr svg").await);
    assert_eq!(scanned, shown.replace(' ', ""), "the QR code is the code");
    shown
}

async fn a_resident_checks_into_a_hotel_without_a_deposit_in_the_browser(app: TestApp) {
    let resident = Chromium::start("en").await;
    sign_in_for(&resident, &app, "/credit/rights-code", "resident").await;
    assert!(resident.has("#no-code").await);
    assert!(
        !resident
            .text("header")
            .await
            .contains("信用体系建设服务中心"),
        "a resident is shown as nobody's staff"
    );
    let shown = new_code(&resident).await;
    assert!(
        resident.text("main").await.contains("30,000.00"),
        "the A line"
    );
    let errors = resident.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    resident.assert_accessible("the rights code page").await;
    resident.looked_at("resident-rights-code").await;

    let desk = Chromium::start("zh-CN").await;
    sign_in_for(&desk, &app, "/provider/check", "hotel").await;
    desk.assert_accessible("the scan page").await;
    let check = |amount: &'static str| {
        let desk = &desk;
        let shown = shown.clone();
        async move {
            desk.fill("#code", &shown).await;
            desk.fill("#amount", amount).await;
            desk.fill("#provider_ref", "RM-1208").await;
            desk.click("#check-submit").await;
            assert!(desk.wait_for("#check-result").await);
            desk.text("#check-result").await
        }
    };
    let answer = check("500.00").await;
    assert!(answer.contains("准予免押"), "{answer}");
    desk.looked_at("hotel-check-granted").await;
    let again = check("500.00").await;
    assert!(again.contains("已使用"), "{again}");
    desk.looked_at("hotel-check-used").await;
    // Nothing of the archive on the provider's pages.
    let text = desk.text("main").await;
    for secret in ["张晓梅", "600", "信用等级", "371602"] {
        assert!(!text.contains(secret), "{secret} on the scan page: {text}");
    }
    let errors = desk.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");

    desk.goto(&app.url("/provider/waivers")).await;
    assert!(desk.wait_for("#waivers").await);
    desk.assert_accessible("the ledger").await;
    let ledger = desk.text("main").await;
    assert!(
        ledger.contains("RM-1208") && ledger.contains("免押中"),
        "{ledger}"
    );
    assert!(!ledger.contains("张晓梅"), "{ledger}");
    desk.looked_at("hotel-ledger").await;
    desk.click("tr[data-state=open] form[action$='/settlement'] button")
        .await;
    assert!(desk.wait_for(".flash").await);
    assert!(desk.has("tr[data-state=paid]").await);
    desk.close().await;

    resident.goto(&app.url("/credit/rights-code")).await;
    assert!(resident.wait_for("#my-waivers").await);
    assert!(resident.has("#my-waivers tr[data-state=paid]").await);
    let page = resident.text("main").await;
    assert!(
        page.contains("Hotel room deposit") && page.contains("Paid"),
        "{page}"
    );
    resident.looked_at("resident-waivers").await;
    resident.goto(&app.url("/credit")).await;
    assert!(resident.wait_for("#level").await);
    resident.assert_accessible("my credit, in English").await;
    resident.looked_at("resident-credit-en").await;
    resident.close().await;
}

/// An enterprise (in English) gets its own rights code and QR code, and the city's
/// operator (in English) registers a provider of one of the newer kinds, a wage
/// guarantee authority, through its form: every kind named in words, none as a key.
async fn an_enterprise_gets_a_code_and_the_operator_registers_a_wage_authority(app: TestApp) {
    let enterprise = Chromium::start("en").await;
    sign_in_for(&enterprise, &app, "/credit/rights-code", "enterprise1").await;
    new_code(&enterprise).await;
    let errors = enterprise.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    enterprise
        .assert_accessible("an enterprise's rights code page")
        .await;
    enterprise.looked_at("enterprise-rights-code-en").await;
    enterprise.close().await;

    let operator = Chromium::start("en").await;
    sign_in_for(&operator, &app, "/operator/organizations/new", "operator").await;
    assert!(operator.wait_for("#provider_kind").await);
    let kinds = operator.text("#provider_kind").await;
    for name in [
        "Hospital",
        "Hotel",
        "Library",
        "Parking",
        "Talent apartment",
        "Wage guarantee authority",
        "Project owner",
        "Culture and tourism authority",
    ] {
        assert!(kinds.contains(name), "{name} missing: {kinds}");
    }
    assert!(
        !kinds.contains("provider-kind"),
        "a message key shown: {kinds}"
    );
    operator
        .assert_accessible("the new organization form")
        .await;
    operator
        .find("#kind")
        .await
        .select_by_value("provider")
        .await
        .expect("the provider kind of organization");
    operator.fill("#name", "Wage Guarantee Office").await;
    operator
        .fill("#uscc", &crate::helpers::uscc("11371600MB00000WA"))
        .await;
    operator
        .find("#provider_kind")
        .await
        .select_by_value("wage_authority")
        .await
        .expect("the wage authority");
    operator
        .click("form[action='/operator/organizations/new'] button[type=submit]")
        .await;
    let landed = operator.wait_to_leave("/operator/organizations/new").await;
    assert!(landed.starts_with("/operator/organizations/"), "{landed}");
    let page = operator.text("main").await;
    assert!(
        page.contains("Wage Guarantee Office") && page.contains("Wage guarantee authority"),
        "{page}"
    );
    operator.looked_at("operator-new-wage-authority-en").await;
    operator.close().await;
}

crate::on_both_backends!(
    a_resident_checks_into_a_hotel_without_a_deposit_in_the_browser,
    an_enterprise_gets_a_code_and_the_operator_registers_a_wage_authority
);

//! The pages in a real browser (headless chromium): the letter as a bidder opens and
//! prints it, and a member of the public verifying it from the URL in its QR code.
//! Screenshots of the pages go to `target/screenshots` (not committed).

use crate::fixtures::chromium::{decode_qr, pdf_pages, Chromium};
use crate::fixtures::library::DEMO_PASSWORD;
use crate::fixtures::{NewTender, TestPki};
use crate::helpers::{TestApp, TestBackend};

/// A server whose public base URL is its own address, so that the URL its letters'
/// QR codes carry opens it.
async fn app_at_its_own_address(backend: TestBackend) -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    backend
        .spawn_with(move |s| {
            s.listen = format!("127.0.0.1:{port}").parse().expect("address");
            s.public_base_url = format!("http://127.0.0.1:{port}");
        })
        .await
}

/// Signs in through the sign-in page, asked for by opening `path`.
async fn sign_in_for(browser: &Chromium, app: &TestApp, path: &str, username: &str) {
    browser.goto(&app.url(path)).await;
    assert!(
        browser.path().await.starts_with("/login?next="),
        "{}",
        browser.path().await
    );
    browser.fill("#username", username).await;
    browser.fill("#password", DEMO_PASSWORD).await;
    browser
        .click("form[action='/login'] button[type=submit]")
        .await;
    let landed = browser.wait_to_leave("/login").await;
    if landed != path {
        browser.screenshot("sign-in-stuck").await;
        panic!("still at {landed}: {}", browser.text("main").await);
    }
}

async fn bytes(app: &TestApp, token: &str, path: &str) -> Vec<u8> {
    let res = app
        .api
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("download");
    assert_eq!(res.status(), 200, "{path}");
    res.bytes().await.expect("body").to_vec()
}

/// The bidder opens its letter: styled by the stylesheet (no CSP error in the
/// console), printed by chromium on exactly one A4 page. A member of the public opens
/// the URL its QR code holds, enters the code and sees it verified; a tampered copy
/// uploaded with the genuine signature fails, with the reason.
async fn a_letter_prints_on_one_page_and_its_qr_code_verifies_it(backend: TestBackend) {
    let app = app_at_its_own_address(backend).await;
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-BROWSER-1", 3))
        .await;
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;
    let letter = format!("/guarantees/{}/letter", bond.number);

    let bidder = Chromium::start("zh-CN").await;
    sign_in_for(&bidder, &app, &letter, "enterprise1").await;
    assert!(bidder.wait_for("main.letter").await);
    let font = bidder
        .eval("return getComputedStyle(document.querySelector('main.letter')).fontFamily")
        .await;
    assert!(
        font.as_str()
            .is_some_and(|f| f.contains("Noto Serif CJK SC")),
        "the letter is styled by the stylesheet: {font}"
    );
    let errors = bidder.console_errors().await;
    assert!(
        errors.is_empty(),
        "console errors on the letter: {errors:?}"
    );
    bidder.screenshot("letter").await;
    bidder.assert_accessible("the letter").await;
    let pdf = bidder.print_a4().await;
    assert_eq!(pdf_pages(&pdf), 1, "the letter prints on one A4 page");
    let qr = decode_qr(&bidder.element_picture("main.letter .verify svg").await);
    assert_eq!(qr, app.url(&format!("/verify?number={}", bond.number)));
    bidder.close().await;

    // Someone holding the printed letter: no account, the code from the letter.
    let public = Chromium::start("zh-CN").await;
    public.goto(&qr).await;
    assert!(public.wait_for("#number").await);
    let prefilled = public
        .eval("return document.querySelector('#number').value")
        .await;
    assert_eq!(prefilled.as_str(), Some(bond.number.as_str()));
    public.screenshot("verify-form").await;
    public.assert_accessible("the verification form").await;
    public.fill("#code", &bond.code).await;
    public
        .click("form[action='/verify'] button[type=submit]")
        .await;
    assert!(
        public.wait_for(".banner.passed").await,
        "{}",
        public.text("main").await
    );
    assert_eq!(public.text("#verdict").await, "验证通过");
    let essentials = public.text("dl.facts").await;
    assert!(essentials.contains(&bond.number), "{essentials}");
    public.screenshot("verify-passed").await;
    public.assert_accessible("the verification report").await;

    // A copy with a changed amount, uploaded with the genuine signature.
    let enterprise = app.as_enterprise("enterprise1").await;
    let document = bytes(
        &app,
        &enterprise.token,
        &format!("/api/v1/guarantees/{}/document", bond.number),
    )
    .await;
    let signature = bytes(
        &app,
        &enterprise.token,
        &format!("/api/v1/guarantees/{}/signature", bond.number),
    )
    .await;
    let text = String::from_utf8(document).expect("JSON document");
    // A 9 before the amount: ten times it, or more.
    let tampered = text.replacen("\"value\":\"", "\"value\":\"9", 1);
    assert_ne!(tampered, text, "the amount is in the document");
    let files = tempfile::tempdir().expect("dir");
    let (doc_path, sig_path) = (
        files.path().join("guarantee.json"),
        files.path().join("guarantee.p7s"),
    );
    std::fs::write(&doc_path, tampered).expect("write");
    std::fs::write(&sig_path, signature).expect("write");
    public.goto(&app.url("/verify")).await;
    public
        .find("#document")
        .await
        .send_keys(&doc_path.display().to_string())
        .await
        .expect("choose the document");
    public
        .find("#signature")
        .await
        .send_keys(&sig_path.display().to_string())
        .await
        .expect("choose the signature");
    public
        .click("form[action='/verify/upload'] button[type=submit]")
        .await;
    assert!(
        public.wait_for(".banner.failed").await,
        "{}",
        public.text("main").await
    );
    assert_eq!(public.text("#verdict").await, "验证未通过");
    let banner = public.text(".banner.failed").await;
    assert!(banner.contains("原因"), "the reason is given: {banner}");
    public.screenshot("verify-failed").await;

    // The same page in English, by the switch, remembered on the next page.
    public.click("a[href^='/lang?to=en']").await;
    assert!(public.wait_for("html[lang=en]").await);
    assert_eq!(public.text("h1").await, "Verify a guarantee");
    public.goto(&app.url("/")).await;
    public.assert_accessible("the home page").await;
    public.goto(&app.url("/stats")).await;
    assert!(public.wait_for("figure.chart svg").await);
    public.assert_accessible("the statistics page").await;
    let errors = public.console_errors().await;
    assert!(
        errors.is_empty(),
        "console errors on the public pages: {errors:?}"
    );
    public.screenshot("stats").await;
    public.goto(&app.url("/login")).await;
    public.assert_accessible("the sign-in page").await;
    // The checker itself catches a field without a label (so the passes above mean
    // something).
    public
        .eval("document.querySelector('main').insertAdjacentHTML('beforeend', '<input type=\"text\">'); return 1")
        .await;
    let caught = public.accessibility_problems().await;
    assert!(
        caught.iter().any(|v| v.id == "label"),
        "axe-core flags an unlabelled field: {caught:?}"
    );
    assert_eq!(
        public
            .eval("return document.documentElement.lang")
            .await
            .as_str(),
        Some("en")
    );
    // On a phone, in English: nothing wider than the screen.
    public
        .client
        .set_window_size(390, 844)
        .await
        .expect("phone-sized window");
    for (path, name) in [("/verify", "verify-phone-en"), ("/stats", "stats-phone-en")] {
        public.goto(&app.url(path)).await;
        assert!(public.wait_for("main h1").await);
        let overflow = public
            .eval("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            .await;
        assert!(
            overflow.as_i64().is_some_and(|o| o <= 0),
            "{path} is wider than a phone by {overflow} px"
        );
        public.screenshot(name).await;
    }
    public.close().await;
}

crate::on_both_backends!(configured: a_letter_prints_on_one_page_and_its_qr_code_verifies_it);

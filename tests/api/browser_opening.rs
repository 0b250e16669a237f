//! Bid opening in a real browser (headless chromium): bonds issued through the API,
//! the clock moved past the opening, the agency signs in, sees every bond PASSED,
//! downloads the CSV with its session and finds the same rows, prints the record of
//! the opening, and accepts a bond. Screenshots go to `target/screenshots`.

use crate::fixtures::chromium::{pdf_pages, Chromium};
use crate::fixtures::library::DEMO_PASSWORD;
use crate::fixtures::{NewTender, TestPki};
use crate::helpers::TestApp;

/// Signs in through the sign-in page, asked for by opening `path`.
async fn sign_in_for(browser: &Chromium, app: &TestApp, path: &str, username: &str) {
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

async fn the_agency_opens_the_bids_and_exports_them(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-OPENING-1", 2))
        .await;
    let first = app.issued_bond("enterprise1", &tender.sections[0]).await;
    let second = app.issued_bond("enterprise2", &tender.sections[0]).await;
    let third = app.issued_bond("enterprise1", &tender.sections[1]).await;
    let numbers = [&first.number, &second.number, &third.number];
    // Past the opening (two days, and an hour for the time the bonds took).
    app.advance_clock(chrono::Duration::days(2) + chrono::Duration::hours(1));

    let agency = Chromium::start("zh-CN").await;
    sign_in_for(&agency, &app, "/agency/projects", "agency").await;
    assert!(agency.wait_for("table.list").await);
    assert!(agency.text("table.list").await.contains("BZ-OPENING-1"));
    agency.screenshot("agency-projects").await;

    let opening = format!("/agency/projects/{}/opening", tender.id);
    agency.click(&format!("a[href='{opening}']")).await;
    assert!(agency.wait_for("table.bonds").await);
    agency.screenshot("agency-opening").await;
    agency.assert_accessible("the bid-opening page").await;
    let table = agency.text("table.bonds").await;
    for number in numbers {
        assert!(table.contains(number.as_str()), "{number} listed: {table}");
    }
    let verdicts = agency
        .eval(
            "return Array.from(document.querySelectorAll('table.bonds [data-verdict]'))\
             .map(e => e.dataset.verdict)",
        )
        .await;
    assert_eq!(
        verdicts,
        serde_json::json!(["PASSED", "PASSED", "PASSED"]),
        "every bond verifies"
    );
    assert_eq!(agency.text("#count-passed").await, "3");
    assert!(table.contains("验证通过"), "{table}");
    let errors = agency.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // The CSV, fetched with the browser's own session.
    let href = agency
        .find("a#csv")
        .await
        .attr("href")
        .await
        .expect("attribute")
        .expect("a link");
    let session = agency
        .client
        .get_named_cookie("baohan_session")
        .await
        .expect("the session cookie");
    let res = app
        .api
        .get(app.url(&href))
        .header("Cookie", format!("baohan_session={}", session.value()))
        .header("Accept-Language", "zh-CN")
        .send()
        .await
        .expect("CSV");
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .expect("type")
        .starts_with("text/csv"));
    let bytes = res.bytes().await.expect("body");
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "UTF-8 with a BOM for Excel"
    );
    let mut reader = csv::Reader::from_reader(&bytes[3..]);
    let headers = reader.headers().expect("headers").clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("column {name} in {headers:?}"))
    };
    let (number_col, code_col, bidder_col) =
        (column("保函编号"), column("结果代码"), column("投标人"));
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), numbers.len(), "the page's rows: {rows:?}");
    for number in numbers {
        let row = rows
            .iter()
            .find(|r| &r[number_col] == number.as_str())
            .unwrap_or_else(|| panic!("{number} in the CSV"));
        assert_eq!(&row[code_col], "PASSED");
        assert!(!row[bidder_col].is_empty());
    }

    // The record of the opening, printed.
    agency.click("a#record").await;
    assert!(agency.wait_for(".record-sheet").await);
    assert_eq!(agency.text("#record-count").await, "3");
    agency.screenshot("agency-opening-record").await;
    let pdf = agency.print_a4().await;
    assert_eq!(pdf_pages(&pdf), 1, "three bonds print on one sheet");

    // Accept the first bond: back on the opening page with the flash message.
    agency.goto(&app.url(&opening)).await;
    assert!(agency.wait_for("table.bonds").await);
    agency
        .click(&format!(
            "form[action='/agency/guarantees/{}/accept'] button",
            first.number
        ))
        .await;
    assert!(agency.wait_for("p.flash").await);
    assert_eq!(agency.text("p.flash").await, "保函已接受。");
    assert!(
        !agency
            .has(&format!(
                "form[action='/agency/guarantees/{}/accept']",
                first.number
            ))
            .await,
        "accepted once"
    );
    let status = app.as_agency().await.guarantee(&first).await;
    assert_eq!(status.status, "accepted");

    // A reduction the bank proposed for the second bond shows on its page.
    app.as_issuer("bank")
        .await
        .post::<serde_json::Value>(
            &format!("/api/v1/guarantees/{}/reduction", second.number),
            &serde_json::json!({ "amount": "60000.00", "reason": "标段保证金调低" }),
            201,
        )
        .await;

    // The agency's other main pages, as they look.
    for (path, ready, name) in [
        (
            format!("/guarantees/{}", second.number),
            "#pending-reduction",
            "agency-guarantee",
        ),
        (
            format!("/agency/projects/{}", tender.id),
            "table.list",
            "agency-project",
        ),
        (
            "/agency/projects/new".to_owned(),
            "#section-1-code",
            "agency-new-project",
        ),
        (
            format!("/agency/guarantees/{}/claim", second.number),
            "#statement",
            "agency-claim",
        ),
        ("/agency/claims".to_owned(), "main h1", "agency-claims"),
        ("/".to_owned(), "#role-counts", "agency-home"),
    ] {
        agency.goto(&app.url(&path)).await;
        assert!(agency.wait_for(ready).await, "{path}");
        agency.screenshot(name).await;
        agency.assert_accessible(name).await;
    }
    let errors = agency.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    agency.close().await;
}

/// The operator's main pages in a browser, and the audit check run by its button.
async fn the_operator_pages_work_in_a_browser(app: TestApp) {
    let _pki = TestPki::set_up(&app).await;
    let operator = Chromium::start("zh-CN").await;
    sign_in_for(&operator, &app, "/operator/audit", "operator").await;
    operator
        .click("form[action='/operator/audit'] button[type=submit]")
        .await;
    assert!(operator.wait_for(".banner.passed").await);
    let entries = app.audit_entries().await;
    assert_eq!(
        operator.text("#chain-entries").await,
        format!("已检查 {entries} 条记录。")
    );
    operator.screenshot("operator-audit").await;
    for (path, ready, name) in [
        ("/", "#role-counts", "operator-home"),
        (
            "/operator/organizations",
            "table.list",
            "operator-organizations",
        ),
        (
            "/operator/organizations/new",
            "#uscc",
            "operator-organization-new",
        ),
        ("/operator/trust", "#certificate_pem", "operator-trust"),
        ("/operator/mail", "main h1", "operator-mail"),
    ] {
        operator.goto(&app.url(path)).await;
        assert!(operator.wait_for(ready).await, "{path}");
        operator.screenshot(name).await;
        operator.assert_accessible(name).await;
    }
    // The signing certificate the test PKI registered is listed with its expiry.
    operator.goto(&app.url("/operator/trust")).await;
    assert!(operator.wait_for("table.list").await);
    assert!(operator.text("main").await.contains("滨州城市商业银行"));
    let errors = operator.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    operator.close().await;
}

crate::on_both_backends!(
    the_agency_opens_the_bids_and_exports_them,
    the_operator_pages_work_in_a_browser,
);

//! The credit office keeps the matters catalogue in a real browser (headless chromium):
//! it signs in on its way to a matter's form, renames the matter, marks it written off
//! without the date and the evidence and is shown the errors beside the fields with its
//! choice kept, adds them and saves, and finds the new version in the matter's history;
//! then the public catalogue and the record categories, each page accessible and free
//! of CSP violations. Screenshots go to `target/screenshots`.

use crate::fixtures::chromium::Chromium;
use crate::fixtures::library::DEMO_PASSWORD;
use crate::helpers::TestApp;

async fn the_credit_office_writes_off_a_matter_in_the_browser(app: TestApp) {
    let office = Chromium::start("zh-CN").await;
    let form = "/matters/rental_housing/edit";
    office.goto(&app.url(form)).await;
    assert!(office.path().await.starts_with("/login?next="));
    office.fill("#username", "operator").await;
    office.fill("#password", DEMO_PASSWORD).await;
    office
        .click("form[action='/login'] button[type=submit]")
        .await;
    assert_eq!(office.wait_to_leave("/login").await, form);
    assert!(office.wait_for("#write_off_state").await);
    office.looked_at("credit-office-matter-form").await;

    // A first edit: the English name, the write-off left in progress.
    office
        .find("#write_off_state")
        .await
        .select_by_value("in_progress")
        .await
        .expect("the state it is in");
    office.fill("#name_en", "Rental deposit (supervised)").await;
    office
        .click("form[action='/matters/rental_housing/edit'] button[type=submit]")
        .await;
    assert_eq!(office.wait_to_leave(form).await, "/matters/rental_housing");
    assert!(office.wait_for(".flash").await);
    assert!(office.text("main").await.contains("推进中"));

    office.goto(&app.url(form)).await;
    assert!(office.wait_for("#write_off_state").await);
    office
        .find("#write_off_state")
        .await
        .select_by_value("done")
        .await
        .expect("done is the next step");
    // Written off, but without the date and the evidence: refused beside the fields.
    office
        .click("form[action='/matters/rental_housing/edit'] button[type=submit]")
        .await;
    assert!(office.wait_for(".error-summary").await);
    assert!(office.has("#write_off_done_on-error").await);
    assert!(office.has("#write_off_evidence-error").await);
    let kept = office
        .eval("return document.querySelector('#write_off_state').value")
        .await;
    assert_eq!(kept, serde_json::json!("done"), "the choice is kept");
    office.looked_at("credit-office-matter-refused").await;

    let today = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
        .date_naive()
        .to_string();
    // A date field takes keystrokes in the browser's own order: set its value instead.
    office
        .eval(&format!(
            "document.querySelector('#write_off_done_on').value = '{today}'; return null"
        ))
        .await;
    office
        .fill(
            "#write_off_evidence",
            "全市住房租赁押金纳入监管账户，不再收取",
        )
        .await;
    office
        .click("form[action='/matters/rental_housing/edit'] button[type=submit]")
        .await;
    assert_eq!(
        office.wait_to_leave(form).await,
        "/matters/rental_housing",
        "{}",
        office.text("main").await
    );
    assert!(office.wait_for(".flash").await);
    let main = office.text("main").await;
    assert!(main.contains("已销号") && main.contains(&today), "{main}");
    office.looked_at("credit-office-matter-saved").await;
    let history = office.text("#history + table").await;
    assert!(
        history.contains("市信用办") && history.contains("初始清单"),
        "{history}"
    );
    let stored = app.signed_out().matter("rental_housing").await.matter;
    assert_eq!(
        (stored.version, stored.fields.write_off_state.as_str()),
        (3, "done")
    );

    // The public pages: the catalogue and the record categories.
    office.goto(&app.url("/matters")).await;
    assert!(office.wait_for("table#matters").await);
    office.looked_at("matters-catalogue").await;
    office.click("a[href='/record-categories']").await;
    assert!(office.wait_for("table#categories").await);
    assert!(office
        .text("table#categories")
        .await
        .contains("失信被执行人"));
    office.looked_at("record-categories").await;
    office.close().await;
}

/// The office imports a file from its desk in the browser: it chooses the file, the
/// result page says what was stored and lists the rejected line by its number, and the
/// page is accessible, free of CSP violations, and looked at in both languages.
async fn the_credit_office_imports_a_file_in_the_browser(app: TestApp) {
    use crate::credit_import::{csv_line, HEADER};
    use crate::fixtures::credit::NewCreditRecord;
    use crate::helpers::uscc;

    let good =
        NewCreditRecord::enterprise(&uscc("91330100MA2BBBBB2"), "administrative_penalty", "BR-1");
    let bad = NewCreditRecord::enterprise(&uscc("91330100MA2BBBBB2"), "no_such", "BR-2");
    let file = app.data_dir().join("browser-records.csv");
    std::fs::write(
        &file,
        format!("{HEADER}\n{}\n{}\n", csv_line(&good), csv_line(&bad)),
    )
    .expect("file written");

    for (lang, stored, name) in [("zh-CN", "1", "zh"), ("en", "0", "en")] {
        let office = Chromium::start(lang).await;
        office.goto(&app.url("/credit/office")).await;
        office.fill("#username", "operator").await;
        office.fill("#password", DEMO_PASSWORD).await;
        office
            .click("form[action='/login'] button[type=submit]")
            .await;
        assert_eq!(office.wait_to_leave("/login").await, "/credit/office");
        office
            .find("#file")
            .await
            .send_keys(&file.display().to_string())
            .await
            .expect("the file chosen");
        office.click("#import-submit").await;
        assert!(office.wait_for("#import-counts").await);
        // The second run (in English) finds the file imported before: nothing again.
        assert_eq!(office.text("#import-stored").await, stored);
        if stored == "1" {
            assert_eq!(office.text("#import-rejected").await, "1");
            assert!(office
                .text("#rejected-lines")
                .await
                .contains("未知记录类别"));
        } else {
            assert!(office.has("#finished-before").await);
        }
        office
            .looked_at(&format!("credit-office-import-result-{name}"))
            .await;
        office.close().await;
    }
}

crate::on_both_backends!(
    the_credit_office_writes_off_a_matter_in_the_browser,
    the_credit_office_imports_a_file_in_the_browser,
);

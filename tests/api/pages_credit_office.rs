//! The credit office's desk: its counts follow the archive; a record added from the form
//! lands in the subject's archive and moves its level; a bad field is shown beside it
//! with what was typed kept (but a looked-up number is never echoed); a lookup by
//! resident ID shows the archive and is a look the resident is shown; a credit repair
//! from the subject's page restores the level; only the office opens the desk.

use reqwest::StatusCode;

use crate::fixtures::library::resident_id;
use crate::helpers::TestApp;
use crate::pages_ei::{hidden, Visitor};

fn count(html: &str, id: &str) -> String {
    html.split(&format!("id=\"{id}\">"))
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or_default()
        .to_owned()
}

async fn the_office_adds_finds_and_repairs_records_from_its_desk(app: TestApp) {
    let office = Visitor::signed_in(&app, "operator").await;
    let desk = office.ok("/credit/office").await;
    assert!(
        desk.contains("href=\"/credit/office\""),
        "in the navigation"
    );
    assert_eq!(count(&desk, "count-subjects"), "0");
    let csrf = hidden(&desk, "csrf_token");

    // The demo resident's number, as the office types it.
    let number = resident_id("37160219900307002");
    let record = |reference: &'static str, points: &'static str| {
        vec![
            ("csrf_token", csrf.clone()),
            ("subject_type", "person".to_owned()),
            ("subject_id", number.clone()),
            ("subject_name", "张晓梅".to_owned()),
            ("category", "administrative_penalty".to_owned()),
            ("polarity", String::new()),
            ("points", points.to_owned()),
            ("occurred_at", "2026-11-20".to_owned()),
            ("expires_at", String::new()),
            ("source_department", "市市场监管局".to_owned()),
            ("source_ref", reference.to_owned()),
            ("note", String::new()),
        ]
    };
    // Points out of range: shown beside the field, the rest kept.
    let bad = record("滨市监罚〔2026〕40号", "5000");
    let fields: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, _, page) = office.post("/credit/office/records", &fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("id=\"points-error\""), "{page}");
    assert!(
        page.contains("滨市监罚〔2026〕40号"),
        "what was typed is kept"
    );

    let good = record("滨市监罚〔2026〕41号", "");
    let fields: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, to, _) = office.post("/credit/office/records", &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(to.starts_with("/credit/office/subjects/"), "{to}");
    let subject = office.ok(&to).await;
    assert!(subject.contains("id=\"level\">B<"), "600 − 30: {subject}");
    assert!(
        !subject.contains(&number),
        "the number is shown masked only"
    );
    assert!(subject.contains("371602********"), "{subject}");

    // Found by the number: the archive itself, and the look is the resident's to see.
    let (status, to, found) = office
        .post(
            "/credit/office/lookup",
            &[
                ("csrf_token", csrf.as_str()),
                ("lookup_type", "person"),
                ("lookup_id", number.as_str()),
            ],
        )
        .await;
    assert_eq!((status, to.as_str()), (StatusCode::OK, ""));
    assert!(found.contains("id=\"level\">B<"));
    assert!(!found.contains(&number));
    let resident = app
        .as_user::<crate::fixtures::Anyone>("resident", crate::fixtures::library::DEMO_PASSWORD)
        .await;
    let looks: serde_json::Value = resident.get("/api/v1/credit/me/looks").await;
    let looks = looks.as_array().expect("looks");
    assert!(
        looks.len() >= 2,
        "the subject page and the lookup: {looks:?}"
    );
    assert!(looks.iter().all(|l| l["purpose"] == "credit_office"));
    // A number with no archive, or a wrong one: beside the field, and not echoed.
    let stranger = resident_id("11010519491231002");
    let (status, _, page) = office
        .post(
            "/credit/office/lookup",
            &[
                ("csrf_token", csrf.as_str()),
                ("lookup_type", "person"),
                ("lookup_id", stranger.as_str()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"lookup_id-error\"") && !page.contains(&stranger));

    // A credit repair from the subject's page restores the level.
    let record_id = found
        .split("action=\"/credit/office/records/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("a cancel form")
        .to_owned();
    let (status, to, _) = office
        .post(
            &format!("/credit/office/records/{record_id}/cancellation"),
            &[
                ("csrf_token", csrf.as_str()),
                ("source_department", "市信用办"),
                ("reason", "credit_repair"),
                ("source_ref", "修复〔2026〕1号"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let repaired = office.ok(&to).await;
    assert!(repaired.contains("id=\"level\">A<"), "{repaired}");
    let desk = office.ok("/credit/office").await;
    assert_eq!(count(&desk, "count-subjects"), "1");
    assert_eq!(count(&desk, "count-records"), "0", "the penalty left force");

    // A file imported through the API is listed on the desk with what it stored.
    assert!(desk.contains("id=\"no-imports\""));
    let csv = format!(
        "{}\nenterprise,{},滨州鲁北路桥建设有限公司,tax_grade_a,,,2026-11-01,,市税务局,税A-2026-9,\n",
        baohan::services::credit_import::COLUMNS.join(","),
        crate::helpers::demo_uscc("enterprise1"),
    );
    let api = app.as_operator().await;
    let res = api
        .request(reqwest::Method::POST, "/api/v1/credit/imports")
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .expect("upload");
    assert_eq!(res.status(), 200);
    let desk = office.ok("/credit/office").await;
    let imports = desk
        .split("id=\"imports\"")
        .nth(1)
        .expect("the imports table")
        .split("</table>")
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(
        imports.contains(">1<") && imports.contains("(csv)"),
        "{imports}"
    );

    // Nobody else opens the desk or posts to it.
    let hotel = Visitor::signed_in(&app, "hotel").await;
    let (status, _) = hotel.page("/credit/office").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let resident_pages = Visitor::signed_in(&app, "resident").await;
    let (status, _) = resident_pages.page("/credit/office").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// Posts the desk's import form: the CSRF token (when given) and a file.
async fn upload(
    office: &Visitor<'_>,
    app: &TestApp,
    csrf: Option<&str>,
    name: &str,
    text: &str,
) -> (StatusCode, String) {
    let mut form = reqwest::multipart::Form::new();
    if let Some(csrf) = csrf {
        form = form.text("csrf_token", csrf.to_owned());
    }
    let file = reqwest::multipart::Part::bytes(text.as_bytes().to_vec()).file_name(name.to_owned());
    let res = office
        .client
        .post(app.url("/credit/office/imports"))
        .header(reqwest::header::ACCEPT, "text/html")
        .multipart(form.part("file", file))
        .send()
        .await
        .expect("upload");
    (res.status(), res.text().await.expect("body"))
}

/// The desk imports a file: the good lines are stored, the bad one is listed by its line
/// number and reason, the same file again stores nothing; a form without its token, a
/// file of another kind and a visitor of another role store nothing.
async fn the_office_imports_a_file_from_its_desk(app: TestApp) {
    use crate::credit_import::{csv_line, HEADER};
    use crate::fixtures::credit::NewCreditRecord;
    use crate::helpers::uscc;

    let office = Visitor::signed_in(&app, "operator").await;
    let desk = office.ok("/credit/office").await;
    assert!(desk.contains("id=\"import-form\""), "{desk}");
    let csrf = hidden(&desk, "csrf_token");
    let good = |reference: &str| {
        csv_line(&NewCreditRecord::enterprise(
            &uscc("91330100MA2AAAAA1"),
            "administrative_penalty",
            reference,
        ))
    };
    let mut bad =
        NewCreditRecord::enterprise(&uscc("91330100MA2AAAAA1"), "no_such_category", "UP-3");
    bad.subject_name = "某公司".into();
    let file = format!(
        "{HEADER}\n{}\n{}\n{}\n",
        good("UP-1"),
        good("UP-2"),
        csv_line(&bad)
    );

    // Without the token: the friendly refusal, nothing stored.
    let (status, page) = upload(&office, &app, None, "records.csv", &file).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert!(page.contains("<html"), "a page, not JSON: {page}");
    assert_eq!(
        count(&office.ok("/credit/office").await, "count-records"),
        "0"
    );

    // Another role: refused.
    let enterprise = Visitor::signed_in(&app, "enterprise1").await;
    let theirs = hidden(&enterprise.ok("/").await, "csrf_token");
    let (status, _) = upload(&enterprise, &app, Some(&theirs), "records.csv", &file).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Not a CSV or NDJSON file: said beside the field, nothing stored.
    let (status, page) = upload(&office, &app, Some(&csrf), "records.txt", &file).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("id=\"file-error\""), "{page}");
    assert!(page.contains(".csv"), "{page}");

    let (status, page) = upload(&office, &app, Some(&csrf), "records.csv", &file).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(count(&page, "import-read"), "3", "{page}");
    assert_eq!(count(&page, "import-stored"), "2", "{page}");
    assert_eq!(count(&page, "import-rejected"), "1", "{page}");
    assert!(
        page.contains("<td class=\"num\" data-label=\"行号\">4</td>"),
        "the bad line's number: {page}"
    );
    assert!(
        page.contains("未知记录类别"),
        "its reason in the visitor's language: {page}"
    );
    let desk = office.ok("/credit/office").await;
    assert_eq!(count(&desk, "count-records"), "2");
    assert!(desk.contains("id=\"imports\""), "the run is listed: {desk}");

    // The same file again: nothing stored twice.
    let (status, page) = upload(&office, &app, Some(&csrf), "records.csv", &file).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("id=\"finished-before\""), "{page}");
    assert_eq!(count(&page, "import-stored"), "0");
    assert_eq!(
        count(&office.ok("/credit/office").await, "count-records"),
        "2"
    );
}

crate::on_both_backends!(
    the_office_adds_finds_and_repairs_records_from_its_desk,
    the_office_imports_a_file_from_its_desk,
);

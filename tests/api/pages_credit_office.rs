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

crate::on_both_backends!(the_office_adds_finds_and_repairs_records_from_its_desk);

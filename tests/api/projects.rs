use serde_json::{json, Value};

use crate::helpers::{assert_error, demo_uscc, uscc, TestApp};

fn project(code: &str, bond: &str, price: Option<&str>) -> Value {
    let deadline = (chrono::Utc::now() + chrono::Duration::days(10))
        .format("%Y-%m-%dT09:00:00+08:00")
        .to_string();
    json!({
        "code": code,
        "name": "滨州市第二水厂扩建工程",
        "tenderee_uscc": demo_uscc("tenderee"),
        "bid_deadline": deadline,
        "bid_opening_at": deadline,
        "bid_validity_days": 90,
        "sections": [
            { "code": "01", "name": "土建", "bond_amount": bond, "estimated_price": price },
            { "code": "02", "name": "设备", "bond_amount": "5000.5" }
        ]
    })
}

async fn the_agency_creates_a_project_with_sections(app: TestApp) {
    let token = app.login("agency").await;
    let res = app
        .post(
            &token,
            "/api/v1/projects",
            &project("BZ-2026-W2", "100000", Some("5000000.00")),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.expect("json");
    assert_eq!(created["sections"][0]["bond_amount"], "100000.00");
    assert_eq!(
        created["sections"][0]["bond_amount_in_words"],
        "人民币壹拾万元整"
    );
    assert_eq!(created["sections"][1]["bond_amount"], "5000.50");
    assert!(created["bid_deadline"]
        .as_str()
        .expect("deadline")
        .ends_with("+08:00"));

    let id = created["id"].as_str().expect("id");
    let res = app.get(&token, &format!("/api/v1/projects/{id}")).await;
    assert_eq!(res.status(), 200);

    // Another agency does not see it.
    let operator = app.login("operator").await;
    let other_uscc = uscc("91371600AG0000099");
    let res = app
        .post(
            &operator,
            "/api/v1/organizations",
            &json!({ "kind": "agency", "name": "Other agency", "uscc": other_uscc }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let other_id = res.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let res = app
        .post(
            &operator,
            "/api/v1/users",
            &json!({ "organization_id": other_id, "username": "other.agency", "display_name": "Other",
                     "role": "agency", "password": "another long password" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let other = &app
        .login_with("other.agency", "another long password")
        .await;
    let res = app.get(other, &format!("/api/v1/projects/{id}")).await;
    assert_error(res, 404, "not_found").await;
    let listed: Value = app
        .get(other, "/api/v1/projects")
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed.as_array().expect("array").len(), 0);
}

async fn bad_amounts_are_refused_naming_the_field(app: TestApp) {
    let token = app.login("agency").await;
    for (bond, field) in [
        ("-100.00", "sections[0].bond_amount"),
        ("1e5", "sections[0].bond_amount"),
        ("100.001", "sections[0].bond_amount"),
        ("abc", "sections[0].bond_amount"),
        ("0", "sections[0].bond_amount"),
    ] {
        let res = app
            .post(&token, "/api/v1/projects", &project("BZ-BAD", bond, None))
            .await;
        let error = assert_error(res, 422, "validation_failed").await;
        assert_eq!(error["details"]["field"], field, "{bond}: {error}");
    }
    // A bond above 2% of the estimated price breaks the legal cap.
    let res = app
        .post(
            &token,
            "/api/v1/projects",
            &project("BZ-CAP", "100000.01", Some("5000000.00")),
        )
        .await;
    let error = assert_error(res, 422, "validation_failed").await;
    assert_eq!(error["details"]["field"], "sections[0].bond_amount");
    // A number instead of a decimal string is a type error.
    let mut p = project("BZ-NUM", "100.00", None);
    p["sections"][0]["bond_amount"] = json!(100.5);
    let res = app.post(&token, "/api/v1/projects", &p).await;
    assert_error(res, 400, "invalid_json").await;
    // Nothing was created by any of them.
    let listed: Value = app
        .get(&token, "/api/v1/projects")
        .await
        .json()
        .await
        .expect("json");
    let codes: Vec<_> = listed
        .as_array()
        .expect("array")
        .iter()
        .map(|p| p["code"].clone())
        .collect();
    assert_eq!(
        codes,
        vec![json!(baohan::services::demo::DEMO_PROJECT_CODE)]
    );
}

async fn the_tenderee_must_be_a_registered_tenderee(app: TestApp) {
    let token = app.login("agency").await;
    let mut p = project("BZ-T1", "1000.00", None);
    p["tenderee_uscc"] = json!("91371600TE000000");
    let res = app.post(&token, "/api/v1/projects", &p).await;
    let error = assert_error(res, 422, "validation_failed").await;
    assert_eq!(error["details"]["field"], "tenderee_uscc");
    p["tenderee_uscc"] = json!(demo_uscc("enterprise1"));
    let res = app.post(&token, "/api/v1/projects", &p).await;
    let error = assert_error(res, 422, "validation_failed").await;
    assert_eq!(error["details"]["field"], "tenderee_uscc");
}

async fn only_agencies_create_projects(app: TestApp) {
    let token = app.login("enterprise1").await;
    let res = app
        .post(
            &token,
            "/api/v1/projects",
            &project("BZ-E1", "1000.00", None),
        )
        .await;
    assert_error(res, 403, "forbidden").await;
}

crate::on_both_backends!(
    the_agency_creates_a_project_with_sections,
    bad_amounts_are_refused_naming_the_field,
    the_tenderee_must_be_a_registered_tenderee,
    only_agencies_create_projects,
);

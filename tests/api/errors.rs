//! Bad input of every kind gets a 4xx in the JSON error shape and changes nothing.

use serde_json::json;

use crate::helpers::{assert_error, TestApp};

async fn malformed_json_is_a_400_naming_the_problem(app: TestApp) {
    let token = app.login("operator").await;
    let res = app
        .client
        .post(app.url("/api/v1/organizations"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"kind\": \"enterprise\", ")
        .send()
        .await
        .expect("request");
    assert_error(res, 400, "invalid_json").await;
}

async fn wrong_types_and_unknown_fields_are_400s_naming_the_field(app: TestApp) {
    let token = app.login("operator").await;
    let res = app
        .post(
            &token,
            "/api/v1/organizations",
            &json!({ "kind": "enterprise", "name": 5, "uscc": "x" }),
        )
        .await;
    let error = assert_error(res, 400, "invalid_json").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("invalid type"),
        "{error}"
    );

    let res = app
        .post(
            &token,
            "/api/v1/organizations",
            &json!({ "kind": "enterprise", "name": "A", "uscc": "x", "colour": "red" }),
        )
        .await;
    let error = assert_error(res, 400, "invalid_json").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap_or_default()
            .contains("colour"),
        "{error}"
    );
}

async fn oversized_bodies_are_413(app: TestApp) {
    let token = app.login("operator").await;
    let huge = "x".repeat(100 * 1024);
    let res = app
        .post(
            &token,
            "/api/v1/organizations",
            &json!({ "kind": "enterprise", "name": huge, "uscc": "x" }),
        )
        .await;
    assert_error(res, 413, "payload_too_large").await;
}

async fn unknown_routes_and_methods_answer_in_json(app: TestApp) {
    let res = app
        .client
        .get(app.url("/api/v1/no-such-thing"))
        .send()
        .await
        .expect("request");
    assert_error(res, 404, "not_found").await;
    let res = app
        .client
        .delete(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    assert!(status == 404 || status == 405, "status {status}");
    let body: serde_json::Value = res.json().await.expect("json body");
    assert!(body["error"]["code"].is_string(), "{body}");
}

async fn wrong_content_type_is_415(app: TestApp) {
    let token = app.login("operator").await;
    let res = app
        .client
        .post(app.url("/api/v1/organizations"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_error(res, 415, "unsupported_media_type").await;
}

crate::on_both_backends!(
    malformed_json_is_a_400_naming_the_problem,
    wrong_types_and_unknown_fields_are_400s_naming_the_field,
    oversized_bodies_are_413,
    unknown_routes_and_methods_answer_in_json,
    wrong_content_type_is_415,
);

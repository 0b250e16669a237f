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

async fn guarantee_numbers_are_checked_before_any_lookup(app: TestApp) {
    crate::exchange::setup_pki(&app).await;
    let project = crate::exchange::create_project(&app, "BZ-NUM", 2).await;
    let section = project["sections"][0]["id"]
        .as_str()
        .expect("section")
        .to_owned();
    let application =
        crate::exchange::paid_application(&app, "enterprise1", "bank", &section).await;
    let (number, code) = crate::exchange::issue_hosted(&app, &application).await;
    let ent = app.login("enterprise1").await;

    // One character changed: the check character catches it, naming the field.
    let mut chars: Vec<char> = number.chars().collect();
    chars[12] = if chars[12] == '0' { '1' } else { '0' };
    let mistyped: String = chars.into_iter().collect();
    let res = app
        .get(&ent, &format!("/api/v1/guarantees/{mistyped}"))
        .await;
    let error = assert_error(res, 422, "validation_failed").await;
    assert_eq!(error["details"]["field"], "number");
    let res = app
        .client
        .post(app.url("/api/v1/verify"))
        .json(&json!({ "number": mistyped, "code": code }))
        .send()
        .await
        .expect("verify");
    let error = assert_error(res, 422, "validation_failed").await;
    assert_eq!(error["details"]["field"], "number");

    // A well-formed number nobody issued is simply not found.
    let unknown = baohan::domain::GuaranteeNumber::new(
        chrono::NaiveDate::from_ymd_opt(2026, 1, 2).expect("date"),
        "ZZZZ",
        7,
    )
    .expect("number");
    let res = app
        .get(&ent, &format!("/api/v1/guarantees/{}", unknown.as_str()))
        .await;
    assert_error(res, 404, "not_found").await;

    // A malformed verification code, and neither kind of request, are field errors.
    let res = app
        .client
        .post(app.url("/api/v1/verify"))
        .json(&json!({ "number": number, "code": "0O1I" }))
        .send()
        .await
        .expect("verify");
    let error = assert_error(res, 422, "validation_failed").await;
    assert_eq!(error["details"]["field"], "code");
    let res = app
        .client
        .post(app.url("/api/v1/verify"))
        .json(&json!({}))
        .send()
        .await
        .expect("verify");
    assert_error(res, 422, "validation_failed").await;
}

async fn garbage_documents_and_signatures_get_format_failure_or_4xx(app: TestApp) {
    use base64::Engine as _;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    for (document, signature) in [
        (b"".as_slice(), b"".as_slice()),
        (b"{\"schema\":\"baohan/guarantee/v1\"}", b"\x30\x82\x01"),
        (b"not json at all", b"\x30\x03\x02\x01\x01"),
        (&[0xff_u8; 300][..], &[0x30_u8; 300][..]),
    ] {
        let res = app
            .client
            .post(app.url("/api/v1/verify"))
            .json(&json!({ "document_base64": b64(document), "signature_base64": b64(signature) }))
            .send()
            .await
            .expect("verify");
        assert_eq!(res.status(), 200);
        let report: serde_json::Value = res.json().await.expect("report");
        assert_eq!(report["indication"], "FAILED", "{report}");
        assert_eq!(report["sub_indication"], "FORMAT_FAILURE", "{report}");
    }
    let res = app
        .client
        .post(app.url("/api/v1/verify"))
        .json(&json!({ "document_base64": "***", "signature_base64": "" }))
        .send()
        .await
        .expect("verify");
    let error = assert_error(res, 422, "validation_failed").await;
    assert_eq!(error["details"]["field"], "document_base64");

    // Uploading garbage as a signature is refused with the report, and nothing is issued.
    crate::exchange::setup_pki(&app).await;
    let project = crate::exchange::create_project(&app, "BZ-GARBAGE", 2).await;
    let section = project["sections"][0]["id"]
        .as_str()
        .expect("section")
        .to_owned();
    let application =
        crate::exchange::paid_application(&app, "enterprise2", "insurer", &section).await;
    let insurer = app.login("insurer").await;
    for garbage in [
        vec![0x30, 0x80],
        vec![0u8; 1000],
        b"-----BEGIN PKCS7-----".to_vec(),
    ] {
        let res = crate::exchange::upload_signature(&app, &insurer, &application, garbage).await;
        let error = assert_error(res, 422, "signature_rejected").await;
        assert_eq!(
            error["details"]["sub_indication"], "FORMAT_FAILURE",
            "{error}"
        );
    }
    let res = crate::exchange::upload_signature(&app, &insurer, &application, Vec::new()).await;
    let error = assert_error(res, 422, "validation_failed").await;
    assert_eq!(error["details"]["field"], "signature");
    let res =
        crate::exchange::upload_signature(&app, &insurer, &application, vec![0x30u8; 200 * 1024])
            .await;
    assert_error(res, 413, "payload_too_large").await;
    let status = app
        .get(&insurer, &format!("/api/v1/applications/{application}"))
        .await;
    let body: serde_json::Value = status.json().await.expect("json");
    assert_eq!(body["status"], "paid", "still waiting for a good signature");
}

crate::on_both_backends!(
    malformed_json_is_a_400_naming_the_problem,
    wrong_types_and_unknown_fields_are_400s_naming_the_field,
    oversized_bodies_are_413,
    unknown_routes_and_methods_answer_in_json,
    wrong_content_type_is_415,
    guarantee_numbers_are_checked_before_any_lookup,
    garbage_documents_and_signatures_get_format_failure_or_4xx,
);

//! Bad input of every kind gets a 4xx in the JSON error shape and changes nothing.

use reqwest::Method;
use serde_json::{json, Value};

use crate::fixtures::library::unissued_number;
use crate::fixtures::{expect_error, NewTender, TestPki};
use crate::helpers::TestApp;

async fn malformed_json_is_a_400_naming_the_problem(app: TestApp) {
    let operator = app.as_operator().await;
    let res = operator
        .request(Method::POST, "/api/v1/organizations")
        .header("content-type", "application/json")
        .body("{\"kind\": \"enterprise\", ")
        .send()
        .await
        .expect("request");
    expect_error(res, 400, "invalid_json").await;
}

async fn wrong_types_and_unknown_fields_are_400s_naming_the_field(app: TestApp) {
    let operator = app.as_operator().await;
    let error = operator
        .register_org(&json!({ "kind": "enterprise", "name": 5, "uscc": "x" }))
        .fails(400, "invalid_json")
        .await;
    assert!(error.message.contains("invalid type"), "{error:?}");

    let error = operator
        .register_org(&json!({ "kind": "enterprise", "name": "A", "uscc": "x", "colour": "red" }))
        .fails(400, "invalid_json")
        .await;
    assert!(error.message.contains("colour"), "{error:?}");
}

async fn oversized_bodies_are_413(app: TestApp) {
    let huge = "x".repeat(100 * 1024);
    app.as_operator()
        .await
        .register_org(&json!({ "kind": "enterprise", "name": huge, "uscc": "x" }))
        .fails(413, "payload_too_large")
        .await;
}

async fn unknown_routes_and_methods_answer_in_json(app: TestApp) {
    app.public_get::<Value>("/api/v1/no-such-thing")
        .fails(404, "not_found")
        .await;
    let res = app
        .api
        .delete(app.url("/healthz"))
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    assert!(status == 404 || status == 405, "status {status}");
    let body: Value = res.json().await.expect("json body");
    assert!(body["error"]["code"].is_string(), "{body}");
}

async fn wrong_content_type_is_415(app: TestApp) {
    let operator = app.as_operator().await;
    let res = operator
        .request(Method::POST, "/api/v1/organizations")
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("request");
    expect_error(res, 415, "unsupported_media_type").await;
}

async fn guarantee_numbers_are_checked_before_any_lookup(app: TestApp) {
    TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-NUM", 2))
        .await;
    let bond = app.issued_bond("enterprise1", &tender.sections[0]).await;
    let enterprise = app.as_enterprise("enterprise1").await;

    // One character changed: the check character catches it, naming the field.
    let mut chars: Vec<char> = bond.number.chars().collect();
    chars[12] = if chars[12] == '0' { '1' } else { '0' };
    let mistyped: String = chars.into_iter().collect();
    let error = enterprise
        .guarantee(&mistyped)
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("number"));
    let error = app
        .verify(&mistyped, &bond.code)
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("number"));

    // A well-formed number nobody issued is simply not found.
    enterprise
        .guarantee(&unissued_number())
        .fails(404, "not_found")
        .await;

    // A malformed verification code, and neither kind of request, are field errors.
    let error = app
        .verify(&bond, "0O1I")
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("code"));
    app.verify_body(&json!({}))
        .fails(422, "validation_failed")
        .await;
}

async fn garbage_documents_and_signatures_get_format_failure_or_4xx(app: TestApp) {
    for (document, signature) in [
        (b"".as_slice(), b"".as_slice()),
        (b"{\"schema\":\"baohan/guarantee/v1\"}", b"\x30\x82\x01"),
        (b"not json at all", b"\x30\x03\x02\x01\x01"),
        (&[0xff_u8; 300][..], &[0x30_u8; 300][..]),
    ] {
        let report = app.verify_documents(document, signature).await;
        assert_eq!(report.indication, "FAILED", "{report:?}");
        assert_eq!(
            report.sub_indication.as_deref(),
            Some("FORMAT_FAILURE"),
            "{report:?}"
        );
    }
    let error = app
        .verify_body(&json!({ "document_base64": "***", "signature_base64": "" }))
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("document_base64"));

    // Uploading garbage as a signature is refused with the report, and nothing is issued.
    TestPki::set_up(&app).await;
    let tender = app
        .as_agency()
        .await
        .create_project(&NewTender::two_sections("BZ-GARBAGE", 2))
        .await;
    let application = app
        .paid_application("enterprise2", "insurer", &tender.sections[0])
        .await;
    let insurer = app.as_issuer("insurer").await;
    for garbage in [
        vec![0x30, 0x80],
        vec![0u8; 1000],
        b"-----BEGIN PKCS7-----".to_vec(),
    ] {
        let error = insurer
            .upload_signature(&application, garbage)
            .fails(422, "signature_rejected")
            .await;
        assert_eq!(error.sub_indication(), Some("FORMAT_FAILURE"), "{error:?}");
    }
    let error = insurer
        .upload_signature(&application, Vec::new())
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("signature"));
    insurer
        .upload_signature(&application, vec![0x30u8; 200 * 1024])
        .fails(413, "payload_too_large")
        .await;
    let application = insurer.application(&application).await;
    assert_eq!(
        application.status, "paid",
        "still waiting for a good signature"
    );
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

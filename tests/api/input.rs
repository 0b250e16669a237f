//! Text, dates, identifiers and JSON bodies as an attacker sends them (issue 9): each
//! is refused with a 4xx in the JSON shape, naming the field where there is one, and
//! nothing is stored.

use std::io::Write as _;

use reqwest::Method;
use serde_json::json;

use crate::fixtures::library::{self, resident_id, unissued_number, ServiceError, DEMO_PASSWORD};
use crate::fixtures::{expect_error, ApiToken, NewOrg, NewTender, NewUser, Tender};
use crate::helpers::{demo_uscc, uscc, TestApp};

/// A USCC whose check character is right, whatever its parts say.
fn checked_uscc(body: &str) -> String {
    let check = baohan::domain::uscc::Uscc::compute_check(body).expect("code alphabet");
    format!("{body}{check}")
}

/// A resident ID number whose check character is right, whatever its parts say.
fn checked_resident_id(body: &str) -> String {
    let check = baohan::domain::resident_id::ResidentId::compute_check(body).expect("digits");
    format!("{body}{check}")
}

/// `body` as JSON text, sent as it is (duplicate keys and all).
async fn send_raw(
    request: reqwest::RequestBuilder,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    request
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request")
}

async fn a_deadline_in_the_year_9999_is_refused_and_nothing_is_stored(app: TestApp) {
    let agency = app.as_agency().await;
    let stored = app.stored_parties_and_projects().await;
    for (field, deadline, opening) in [
        (
            "bid_deadline",
            "9999-12-31T09:00:00+08:00",
            "9999-12-31T09:00:00+08:00",
        ),
        (
            "bid_deadline",
            "2101-01-01T09:00:00+08:00",
            "2101-01-01T09:00:00+08:00",
        ),
        (
            "bid_opening_at",
            "2030-01-01T09:00:00+08:00",
            "9999-12-31T09:00:00+08:00",
        ),
    ] {
        let mut tender = NewTender::two_sections("IN-9999", 5);
        tender.bid_deadline = deadline.into();
        tender.bid_opening_at = opening.into();
        let error = agency
            .create_project(&tender)
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some(field), "{error:?}");
        assert!(error.message.contains("2100-12-31"), "{error:?}");
    }
    assert_eq!(app.stored_parties_and_projects().await, stored);
    assert!(agency.projects().await.iter().all(|p| p.code != "IN-9999"));

    // A postponement into the year 9999 is refused the same way and moves nothing.
    let tender = agency
        .create_project(&NewTender::two_sections("IN-POSTPONE", 5))
        .await;
    let error = agency
        .postpone(&tender, "9999-12-31T09:00:00+08:00")
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("bid_deadline"));
    let unchanged: Tender = agency.project(&tender).await;
    assert_eq!(unchanged.bid_deadline, tender.bid_deadline);

    // So is an expectation of a verifier.
    let error = app
        .verify_body(&json!({
            "number": unissued_number(),
            "code": "ABCDEFGH",
            "expectations": { "valid_through": "9999-12-31T00:00:00+08:00" },
        }))
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("expectations.valid_through"));
}

async fn names_with_bidi_overrides_or_invisible_content_are_field_errors(app: TestApp) {
    let operator = app.as_operator().await;
    let stored = app.stored_parties_and_projects().await;
    let code = uscc("91371600MA3CQ0301");
    for (name, named) in [
        ("滨州银行\u{202E}txt.exe", "U+202E"),
        ("Bank\u{2066}", "U+2066"),
        ("\u{200B}\u{200B}\u{200B}", "U+200B"),
        ("\u{FEFF}", "U+FEFF"),
        ("\u{3164}", "U+3164"),
        ("Name\u{7}", "U+0007"),
        ("\u{2800}\u{2800}", "visible"),
    ] {
        let error = operator
            .register_org(&NewOrg::new("enterprise", name, &code))
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some("name"), "{name:?}: {error:?}");
        assert!(error.message.contains(named), "{name:?}: {error:?}");
    }
    assert_eq!(app.stored_parties_and_projects().await, stored);

    // A name typed decomposed is stored composed (NFC): one spelling per name.
    let org = operator
        .register_org(&NewOrg::new("enterprise", " Cafe\u{301} 公司 ", &code))
        .await;
    let shown = operator
        .send(
            Method::GET,
            &format!("/api/v1/organizations/{}", org.id),
            None,
        )
        .await;
    assert_eq!(shown["name"], "Caf\u{e9} 公司");

    // Users' display names, section names, a project's new name, token names: the same.
    let error = operator
        .add_user(&NewUser::new(
            &org.id,
            "zero.width",
            "\u{200D}",
            "enterprise",
        ))
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("display_name"));
    let agency = app.as_agency().await;
    let mut tender = NewTender::two_sections("IN-NAMES", 5);
    tender.sections[1].name = "桥梁\u{202E}".into();
    let error = agency
        .create_project(&tender)
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("sections[1].name"));
    let tender = agency
        .create_project(&NewTender::two_sections("IN-NAMES", 5))
        .await;
    let error = agency
        .edit_project(&tender, &json!({ "name": "\u{200B}" }))
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("name"));
    let error = operator
        .post::<ApiToken>(
            "/api/v1/auth/tokens",
            &json!({ "name": "robot\u{202E}" }),
            201,
        )
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("name"));
    assert!(app.audited("create_api_token").await.is_empty());
}

async fn a_nul_in_a_sign_in_name_or_token_name_is_a_field_error_not_a_500(app: TestApp) {
    for username in ["agency\u{0}", "\u{0}", "agency\u{0}' OR '1'='1"] {
        let error = app
            .sign_in(username, DEMO_PASSWORD)
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some("username"), "{error:?}");
        assert!(error.message.contains("U+0000"), "{error:?}");
    }
    assert!(app.audited("login").await.is_empty());

    let operator = app.as_operator().await;
    for name in ["robot\u{0}", "\u{0}", "robot\u{1b}[2J"] {
        let error = operator
            .post::<ApiToken>("/api/v1/auth/tokens", &json!({ "name": name }), 201)
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some("name"), "{error:?}");
    }
    assert!(app.audited("create_api_token").await.is_empty());

    // A NUL where no text rule looks: an id in a body, a path, a query parameter.
    let enterprise = app.as_enterprise("enterprise1").await;
    let error = enterprise
        .send(
            Method::POST,
            "/api/v1/applications",
            Some(&json!({ "section_id": "\u{0}", "issuer_id": "x" })),
        )
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("section_id"));
    for path in ["/api/v1/organizations/%00", "/api/v1/applications/a%00b"] {
        operator
            .send(Method::GET, path, None)
            .fails(400, "bad_request")
            .await;
    }
    let error = enterprise
        .send(Method::GET, "/api/v1/applications?status=paid%00", None)
        .fails(422, "validation_failed")
        .await;
    assert_eq!(error.field(), Some("status"));
}

async fn identifiers_that_cannot_exist_are_refused_and_the_whitelist_admits_exceptions(
    app: TestApp,
) {
    let operator = app.as_operator().await;
    let stored = app.stored_parties_and_projects().await;
    let region_zero = checked_uscc("91000000MA3CQ0401");
    for (code, part) in [
        ("000000000000000000".to_owned(), "position 1"),
        (region_zero.clone(), "positions 3-8"),
        (checked_uscc("94371600MA3CQ0402"), "position 2"),
        (checked_uscc("91371600000000000"), "positions 9-17"),
    ] {
        let error = operator
            .register_org(&NewOrg::new("enterprise", "Nobody Ltd", &code))
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some("uscc"), "{code}");
        assert!(error.message.contains(part), "{code}: {error:?}");
    }
    assert_eq!(app.stored_parties_and_projects().await, stored);

    // The operator's whitelist is for the real exceptions.
    let org = operator
        .register_org(
            &NewOrg::new("enterprise", "Old Registration Ltd", &region_zero).whitelisted(),
        )
        .await;
    assert!(org.uscc_whitelisted);
    assert_eq!(org.uscc, region_zero);

    // Resident ID numbers: born in the future, before 1900, or in no region.
    let enterprise1 = operator
        .organization_with_uscc(&demo_uscc("enterprise1"))
        .await;
    for (body, says) in [
        ("37160220991231123", "future"),
        ("37160218000101123", "1900"),
        ("00000019900307123", "region"),
    ] {
        let number = checked_resident_id(body);
        let user =
            NewUser::new(&enterprise1.id, "li.ming", "李明", "enterprise").resident_id(&number);
        let error = operator
            .add_user(&user)
            .fails(422, "validation_failed")
            .await;
        assert_eq!(error.field(), Some("resident_id"));
        assert!(error.message.contains(says), "{error:?}");
        assert!(!error.message.contains(&number[6..14]), "{error:?}");
    }
    let user = NewUser::new(&enterprise1.id, "li.ming", "李明", "enterprise")
        .resident_id(&resident_id("37160219880101123"));
    operator.add_user(&user).await;

    // A whitelisted tenderee is named in a project by its code like any other.
    let tenderee_code = checked_uscc("12000000MB2850009");
    operator
        .register_org(&NewOrg::new("tenderee", "Old Institute", &tenderee_code).whitelisted())
        .await;
    let mut tender = NewTender::two_sections("IN-WHITELISTED", 5);
    tender.tenderee_uscc = tenderee_code;
    app.as_agency().await.create_project(&tender).await;
}

async fn duplicate_keys_are_refused_and_the_last_one_no_longer_wins(app: TestApp) {
    let agency = app.as_agency().await;
    let tender = agency
        .create_project(&NewTender::two_sections("IN-DUP", 5))
        .await;
    let before = tender.sections[1].bond_amount.clone();
    let path = format!("/api/v1/projects/{}", tender.id);
    let res = send_raw(
        agency.request(Method::PATCH, &path),
        "application/json",
        r#"{"bond_amounts":{"B":"50000.00","B":"1.00"}}"#,
    )
    .await;
    let error = expect_error(res, 400, "invalid_json").await;
    assert_eq!(error.field(), Some("bond_amounts.B"), "{error:?}");
    let after: Tender = agency.project(&tender).await;
    assert_eq!(after.sections[1].code, "B");
    assert_eq!(after.sections[1].bond_amount, before);

    // At the top too: a sign-in naming two users is not read as the second.
    let body =
        format!(r#"{{"username":"nobody","username":"agency","password":"{DEMO_PASSWORD}"}}"#);
    let res = send_raw(
        app.api.post(app.url("/api/v1/auth/login")),
        "application/json",
        body,
    )
    .await;
    let error = expect_error(res, 400, "invalid_json").await;
    assert_eq!(error.field(), Some("username"));
    assert_eq!(
        app.audited("login").await.len(),
        1,
        "only the agency's own sign-in"
    );
}

async fn unknown_encodings_and_charsets_are_415_and_gzip_is_read(app: TestApp) {
    let operator = app.as_operator().await;
    let stored = app.stored_parties_and_projects().await;
    let org = NewOrg::new("enterprise", "压缩公司", &uscc("91371600MA3CQ0601"));
    let body = serde_json::to_vec(&org).expect("json");
    for (content_type, encoding) in [
        ("application/json; charset=utf-16", None),
        ("application/json; charset=iso-8859-1", None),
        ("application/json", Some("br")),
        ("application/json", Some("zstd")),
        ("application/json", Some("compress")),
        ("application/json", Some("gzip, gzip")),
        ("application/json", Some("x-unknown")),
    ] {
        let mut request = operator.request(Method::POST, "/api/v1/organizations");
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        let res = send_raw(request, content_type, body.clone()).await;
        expect_error(res, 415, "unsupported_media_type").await;
    }
    assert_eq!(app.stored_parties_and_projects().await, stored);

    // A signature upload names its encoding by the same rule.
    let bank = app.as_issuer("bank").await;
    let request = bank
        .request(Method::POST, "/api/v1/applications/any/signature")
        .header("content-encoding", "br");
    let res = send_raw(request, "application/pkcs7-signature", vec![0x30, 0x00]).await;
    expect_error(res, 415, "unsupported_media_type").await;

    // What this build decodes is read: gzip, with the UTF-8 charset said out loud.
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(&body).expect("gzip");
    let compressed = gzip.finish().expect("gzip");
    let request = operator
        .request(Method::POST, "/api/v1/organizations")
        .header("content-encoding", "gzip");
    let res = send_raw(request, "application/json; charset=utf-8", compressed).await;
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(app.stored_parties_and_projects().await, stored + 1);
}

async fn a_type_error_names_the_field_and_its_position(app: TestApp) {
    let agency = app.as_agency().await;
    let mut tender = serde_json::to_value(NewTender::two_sections("IN-TYPE", 5)).expect("json");
    tender["sections"][1]["bond_amount"] = json!(50000);
    let body = serde_json::to_string_pretty(&tender).expect("json");
    let line = body
        .lines()
        .position(|l| l.contains("50000"))
        .expect("the line")
        + 1;
    let res = send_raw(
        agency.request(Method::POST, "/api/v1/projects"),
        "application/json",
        body,
    )
    .await;
    let error = expect_error(res, 400, "invalid_json").await;
    assert_eq!(error.field(), Some("sections[1].bond_amount"), "{error:?}");
    let details = error.details.clone().expect("details");
    assert_eq!(details.line, Some(line as u64), "{error:?}");
    assert!(details.column.is_some_and(|c| c > 1), "{error:?}");
    assert!(error.message.contains("invalid type"), "{error:?}");
}

async fn bootstrap_refuses_a_username_the_api_would_refuse(app: TestApp) {
    let code = uscc("12371600MB2850009");
    let result = app
        .db(move |conn| {
            library::bootstrap_operator(
                conn,
                "Office",
                &code,
                "Root Admin",
                "a long enough password",
            )
        })
        .await;
    assert!(
        matches!(&result, Err(ServiceError::Invalid { field, .. }) if field == "username"),
        "{result:?}"
    );
}

crate::on_both_backends!(
    a_deadline_in_the_year_9999_is_refused_and_nothing_is_stored,
    names_with_bidi_overrides_or_invisible_content_are_field_errors,
    a_nul_in_a_sign_in_name_or_token_name_is_a_field_error_not_a_500,
    identifiers_that_cannot_exist_are_refused_and_the_whitelist_admits_exceptions,
    duplicate_keys_are_refused_and_the_last_one_no_longer_wins,
    unknown_encodings_and_charsets_are_415_and_gzip_is_read,
    a_type_error_names_the_field_and_its_position,
    bootstrap_refuses_a_username_the_api_would_refuse,
);
